"""HTTP servers: requests/s and server CPU per request on asyncio, uvloop and pyasync, with wrk.

    python bench/httpbench.py [--rounds N] [--loops asyncio,uvloop,pyasync]
                         [--only protocol,uvicorn,keepalive,close]
                         [--connections C] [--duration S] [--warmup S]
                         [--pin split|same|none] [--json FILE]

For each server (a minimal asyncio.Protocol, and uvicorn with httptools
serving an ASGI hello app; see bench/http_server.py) and each connection
mode (keep-alive, and "Connection: close": one connection per request),
every loop kind serves wrk (one thread, C connections) in a fresh server
process. Each round runs every configuration once, the loop kinds in turn;
the report gives medians over the rounds and pyasync's ratios to each other
loop ([min-max] of the per-round ratios). Besides the rate it gives what the
server pays per request: its CPU time (user + system, from /proc, over the
measured wrk run) divided by the requests served. Needs wrk (Debian: `apt-get
install wrk`) and, for the uvicorn server, uvicorn and httptools (the bench
extra). See bench/README.md, "HTTP servers".
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from run import _csv, child_env  # bench/ is sys.path[0] when run as a script
from echo import (_exit_status, _free_tcp_port, _preexec, _proc_cpu_seconds, _raise_interrupt,
                  _table, _tail, _wait_ready, spawn, stop, stop_all)
import workloads

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
HTTP_SERVER = os.path.join(BENCH_DIR, "http_server.py")
SERVERS = ("protocol", "uvicorn")
MODES = ("keepalive", "close")
SUBJECT = "pyasync"

log = lambda *a, **k: print(*a, file=sys.stderr, flush=True, **k)  # noqa: E731


class SampleError(Exception):
    pass


def parse_wrk(text):
    """Requests, seconds, errors and non-2xx responses from wrk's report."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text)
    if not m:
        raise SampleError("wrk printed no request count:\n" + _tail(text))
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    errors = 0
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if e:
        errors = sum(int(x) for x in e.groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"requests": int(m.group(1)), "seconds": float(m.group(2)) * scale,
            "errors": errors, "non2xx": int(bad.group(1)) if bad else 0}


def run_sample(kind, server_kind, mode, args, env, tmpdir, seq):
    server_cpu, client_cpu = (args.cpus[0], args.cpus[1]) if args.pin == "split" else \
        (args.cpus[0], args.cpus[0]) if args.pin == "same" else (None, None)
    addr = "127.0.0.1:%d" % _free_tcp_port("127.0.0.1")
    cmd = [sys.executable, HTTP_SERVER, "--loop", kind, "--server", server_kind, "--addr", addr]
    err_path = os.path.join(tmpdir, "server%d.err" % seq)
    url = "http://%s/" % addr
    wrk = [args.wrk, "-t1", "-c%d" % args.connections]
    if mode == "close":
        wrk += ["-H", "Connection: close"]
    server = None
    with open(err_path, "w+") as err_file:
        try:
            server = spawn(cmd, cpu=server_cpu, stdout=subprocess.PIPE, stderr=err_file,
                           stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
            state = _wait_ready(server, 20.0)
            if state != "ready":
                err_file.seek(0)
                raise SampleError("server not ready (%s):\n%s" % (
                    _exit_status(server.poll()) if state == "exited" else state,
                    _tail(err_file.read())))
            if args.warmup > 0:
                subprocess.run(wrk + ["-d%ds" % args.warmup, url], capture_output=True,
                               preexec_fn=_preexec(client_cpu), timeout=args.warmup + 30)
            cpu0 = _proc_cpu_seconds(server.pid)
            out = subprocess.run(wrk + ["-d%ds" % args.duration, url], capture_output=True,
                                 text=True, preexec_fn=_preexec(client_cpu),
                                 timeout=args.duration + 30).stdout
            cpu1 = _proc_cpu_seconds(server.pid)
            if server.poll() is not None or cpu0 is None or cpu1 is None:
                err_file.seek(0)
                raise SampleError("server died: %s\n%s" % (_exit_status(server.poll()),
                                                          _tail(err_file.read())))
            result = parse_wrk(out)
            if result["requests"] == 0 or result["non2xx"]:
                raise SampleError("bad run: %r" % result)
            result["rps"] = result["requests"] / result["seconds"]
            result["cpu_us"] = (cpu1 - cpu0) / result["requests"] * 1e6
            return result
        finally:
            stop(server, grace=2.0)


def ratio_range(samples, field, subject, other):
    """Median of subject/other, and [min-max] of the per-round ratios."""
    rounds = [r for r in samples if subject in r and other in r]
    if not rounds:
        return None
    ratios = [r[subject][field] / r[other][field] for r in rounds]
    med = statistics.median([r[subject][field] for r in rounds]) / \
        statistics.median([r[other][field] for r in rounds])
    return med, min(ratios), max(ratios)


def _fmt_ratio(r):
    if r is None:
        return "n/a"
    med, lo, hi = r
    text = "%.2fx [%.2f-%.2f]" % (med, lo, hi)
    return text + (" ~" if lo < 1.0 < hi else "")


def median_cells(per_round, kinds, field, fmt, others):
    """One table row's cells: each loop's median of `field` over the rounds
    ("failed" where it has none), then SUBJECT's ratio to each of `others`."""
    cells = []
    for k in kinds:
        vals = [r[k][field] for r in per_round if k in r]
        cells.append(fmt % statistics.median(vals) if vals else "failed")
    return cells + [_fmt_ratio(ratio_range(per_round, field, SUBJECT, o)) for o in others]


def report(configs, kinds, samples, failures):
    others = [k for k in ("uvloop", "asyncio") if k in kinds and k != SUBJECT] \
        if SUBJECT in kinds else []
    for title, field, fmt in (("requests/s (median over the rounds)", "rps", "%.0f"),
                              ("server CPU per request in microseconds (median); "
                               "pyasync/X below 1 means pyasync pays less", "cpu_us", "%.1f")):
        print()
        print(title)
        head = ["server", "mode"] + kinds + ["%s/%s" % (SUBJECT, o) for o in others]
        rows = [[server_kind, mode] + median_cells(samples.get((server_kind, mode), []), kinds,
                                                   field, fmt, others)
                for server_kind, mode in configs]
        print("\n".join(_table(head, rows, left=2)))
    errs = {(s, m, k): r[k]["errors"] for (s, m), rs in samples.items() for r in rs
            for k in r if r[k]["errors"]}
    if errs:
        print()
        print("socket errors reported by wrk (summed over the rounds):")
        for (s, m, k), n in sorted(errs.items()):
            print("  %s %s %s: %d" % (s, m, k, n))
    if failures:
        print()
        print("FAILURES")
        for (s, m, k), text in failures.items():
            print("  %s %s %s: %s" % (s, m, k, text))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loops", default=",".join(workloads.LOOP_KINDS))
    parser.add_argument("--only", help="servers (protocol, uvicorn) and/or modes "
                        "(keepalive, close); a dimension not mentioned keeps all its values")
    parser.add_argument("--connections", type=int, default=64)
    # wrk takes whole seconds.
    parser.add_argument("--duration", type=int, default=3, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of load first (0: none)")
    parser.add_argument("--pin", choices=("split", "same", "none"), default="split",
                        help="server and wrk on different CPUs (default), one, or unpinned")
    parser.add_argument("--json", metavar="FILE", help="also write the raw samples here")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be at least 1 and --warmup at least 0")
    args.loops = _csv(args.loops)
    if any(k not in workloads.LOOP_KINDS for k in args.loops):
        parser.error("--loops: among %s" % ", ".join(workloads.LOOP_KINDS))
    args.servers, args.modes = list(SERVERS), list(MODES)
    if args.only:
        tokens = _csv(args.only)
        bad = [t for t in tokens if t not in SERVERS + MODES]
        if bad:
            parser.error("--only: %s is not a server (%s) or a mode (%s)"
                         % (bad[0], ", ".join(SERVERS), ", ".join(MODES)))
        args.servers = [t for t in tokens if t in SERVERS] or args.servers
        args.modes = [t for t in tokens if t in MODES] or args.modes
    args.cpus = sorted(os.sched_getaffinity(0))
    if args.pin == "split" and len(args.cpus) < 2:
        parser.error("--pin split needs 2 CPUs")
    args.wrk = shutil.which("wrk")
    if args.wrk is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    return args


def main(argv=None):
    args = parse_args(argv)
    env = child_env()
    configs = [(s, m) for s in args.servers for m in args.modes]
    samples = {c: [] for c in configs}
    failures = {}
    tmpdir = tempfile.mkdtemp(prefix="pyasync-http-")
    old = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    seq = 0
    try:
        for rnd in range(1, args.rounds + 1):
            log("round %d/%d:" % (rnd, args.rounds), end="")
            for server_kind, mode in configs:
                log(" %s/%s" % (server_kind, mode), end="")
                results = {}
                for kind in args.loops:
                    if (server_kind, mode, kind) in failures:
                        continue
                    seq += 1
                    try:
                        results[kind] = run_sample(kind, server_kind, mode, args, env, tmpdir,
                                                   seq)
                    except (SampleError, subprocess.TimeoutExpired) as exc:
                        failures[(server_kind, mode, kind)] = str(exc)
                samples[(server_kind, mode)].append(results)
            log("")
    except KeyboardInterrupt:
        log("\ninterrupted: reporting the rounds done")
    finally:
        stop_all()
        for s, h in old.items():
            signal.signal(s, h)
        shutil.rmtree(tmpdir, ignore_errors=True)
    print("HTTP servers under wrk -t1 -c%d, %ds measured after %ds of warm-up, %d rounds, "
          "pin %s; %s" % (args.connections, args.duration, args.warmup, args.rounds, args.pin,
                          time.strftime("%Y-%m-%d %H:%M")))
    report(configs, args.loops, samples, failures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "cpus"},
                       "samples": {"%s/%s" % c: v for c, v in samples.items()}}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
