"""Compare loops timed in turn inside one process (workloads.py --interleave).

    python bench/interleaved.py [--rounds R] [--only NAME,...] [--quick]

On a machine whose speed changes from process to process and in bursts
(bench/README.md, "A sample is the best of..."), back-to-back processes do
not pair up well. Here each benchmark runs in one process that times the
loops in turn, R rounds, the order rotating. The table gives each loop's
best round and the ratios of the best rounds, with the range of the
per-round ratios. The loops share the interpreter, so use run.py for the
figures of record and this to see through the noise.
"""
import argparse
import json
import statistics
import subprocess
import sys

import run
import workloads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", help="comma-separated benchmark names (default: all timed)")
    parser.add_argument("--loops", default="asyncio,uvloop,pyasync")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else [
        b.name for b in workloads.BENCHMARKS.values() if b.metric == "seconds"]
    kinds = args.loops.split(",")
    env = run.child_env()
    subject = run.SUBJECT
    print("%-16s %7s  %s  %s" % ("benchmark", "ops", "  ".join("%10s" % k for k in kinds),
                                 "  ".join("%s vs %-8s" % (subject, k) for k in kinds
                                           if k != subject)))
    for name in names:
        cmd = [sys.executable, run.WORKLOADS, name, "--interleave", args.loops,
               "--repeat", str(args.rounds)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=run.REPO_ROOT)
        if proc.returncode != 0:
            print("%-16s failed: %s" % (name, proc.stderr.strip().splitlines()[-1:]))
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        times, ops = res["times"], res["ops"]
        best = {k: min(v) for k, v in times.items()}
        cells = ["%8.0f ns" % (best[k] * 1e9 / ops) for k in kinds]
        ratios = []
        for k in kinds:
            if k == subject:
                continue
            per_round = [a / b for a, b in zip(times[k], times[subject])]
            ratios.append("%5.2fx [%.2f-%.2f] med %.2f" % (
                best[k] / best[subject], min(per_round), max(per_round),
                statistics.median(per_round)))
        print("%-16s %7d  %s  %s" % (name, ops, "  ".join(cells), "  ".join(ratios)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
