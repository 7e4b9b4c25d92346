#!/usr/bin/env python3
"""pipe_read beside a C reader: what any loop could reach on this machine.

The pipe_read workload (256 MiB from `head -c`, read through
proc.stdout.read(256 KiB)) run on asyncio, uvloop and pyasync, alternating
with bench/pipe_reader.c, a C reader that does what a loop does per chunk
(epoll_wait(), one read(), two copies) and then spends a fixed time standing
in for the Python a loop runs per chunk. One fresh process per sample;
medians, and each median's speed-up over asyncio and over the faster of
asyncio and uvloop.

    python bench/pipe_ceiling.py --rounds 7 --costs 0,2,5,10
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import workloads
from echo import DEFAULT_BUILD_DIR, build_c  # bench/ is sys.path[0] when run as a script
from run import child_env

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
MIB = 1024 * 1024


def sample(kind, size_mib, exe, env):
    """Seconds for one run of kind: a loop kind, or ("c", cost in us)."""
    if isinstance(kind, tuple):
        cmd = [exe, str(kind[1]), str(size_mib * MIB)]
    else:
        cmd = [sys.executable, os.path.join(BENCH_DIR, "workloads.py"), "pipe_read", kind,
               "--repeat", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), proc.stderr[-2000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])["value"]


def label(kind):
    return "C, %g us/chunk" % kind[1] if isinstance(kind, tuple) else kind


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--costs", default="0,2,5,10",
                        help="microseconds per chunk of the C reader, comma-separated")
    parser.add_argument("--loops", default="asyncio,uvloop,pyasync")
    args = parser.parse_args()
    loops = args.loops.split(",")
    if "asyncio" not in loops:
        parser.error("--loops must include asyncio, the reference of the ratios")
    exe = build_c(DEFAULT_BUILD_DIR, ("pipe_reader",))["pipe_reader"]
    env = child_env()
    kinds = [("c", float(c)) for c in args.costs.split(",")] + loops
    size_mib = workloads.BENCHMARKS["pipe_read"].n
    times = {label(k): [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds:
            times[label(kind)].append(sample(kind, size_mib, exe, env))
        print("round %d/%d done" % (r + 1, args.rounds), file=sys.stderr, flush=True)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = med["asyncio"]
    faster = min(v for k, v in med.items() if k in ("asyncio", "uvloop"))
    print("%-20s %9s %9s %9s %12s" % ("reader", "median ms", "min ms", "max ms",
                                      "vs asyncio / vs faster"))
    for name, ts in times.items():
        print("%-20s %9.0f %9.0f %9.0f %8.2fx / %.2fx" % (
            name, med[name] * 1e3, min(ts) * 1e3, max(ts) * 1e3, base / med[name],
            faster / med[name]))


if __name__ == "__main__":
    main()
