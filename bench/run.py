"""Compare pyasync with asyncio and uvloop, one fresh process per sample.

    python bench/run.py [--rounds N] [--repeat R] [--loops asyncio,uvloop,pyasync]
                        [--only NAME,...] [--json FILE] [--quick] [--timeout S]

Each round runs every benchmark once per loop kind, alternating the kinds
(asyncio, uvloop, pyasync, asyncio, uvloop, pyasync, ...) so that slow drifts
of a shared machine hit every loop alike. Every sample is its own
`python bench/workloads.py NAME KIND` process, so no loop inherits another
one's heap, caches or imported modules; a sample is the best of R timed
runs in its process (bursts of interference on a shared machine only ever
add time). The table reports medians over the
rounds and ratios: other loop's median / pyasync's median. Every metric
(time, memory) is lower-is-better, so > 1 means pyasync is better (faster or
smaller). See bench/README.md.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

import workloads  # bench/ is sys.path[0] when this file runs as a script

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
WORKLOADS = os.path.join(BENCH_DIR, "workloads.py")

# Loops that may be missing: skipped with a note instead of failing the run.
OPTIONAL_LOOPS = {"uvloop"}
SUBJECT, BASELINES = "pyasync", ("asyncio", "uvloop")
NOISY_SPREAD = 0.25  # median (max-min)/median above which the report warns


def child_env():
    """Environment for the workload processes.

    The repo root goes first on PYTHONPATH so `import pyasync` picks up the
    in-place build of this tree, not an installed copy. Debug switches are
    dropped: asyncio debug mode, dev mode or a debug allocator would slow the
    loops by different amounts and make the ratios meaningless.
    """
    env = dict(os.environ)
    for var in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONMALLOC", "PYTHONTRACEMALLOC"):
        env.pop(var, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONHASHSEED"] = "0"  # same dict/set layouts in every process
    return env


def run_child(args, timeout, env):
    """Run workloads.py with `args`; return (parsed JSON line, None) or (None, error text)."""
    cmd = [sys.executable, WORKLOADS] + args
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        # subprocess.run has already killed and reaped the child.
        return None, "timed out after %gs (hang?)" % timeout
    if proc.returncode != 0:
        if proc.returncode < 0:
            try:
                how = "killed by %s" % signal.Signals(-proc.returncode).name
            except ValueError:
                how = "killed by signal %d" % -proc.returncode
        else:
            how = "exit status %d" % proc.returncode
        return None, "\n".join(filter(None, [how, _tail(proc.stderr)]))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line), None
            except ValueError:
                break
    return None, "\n".join(filter(None, ["no JSON result on stdout",
                                          _tail(proc.stdout + proc.stderr)]))


def _tail(text, lines=12):
    kept = [line for line in text.strip().splitlines()][-lines:]
    return "\n".join("    " + line for line in kept)


def probe_loops(kinds, timeout, env):
    """Check each loop kind once; return {kind: info dict with a 'status'}."""
    info = {}
    for kind in kinds:
        result, err = run_child(["--probe", kind], timeout, env)
        if result is not None:
            info[kind] = dict(result, status="ok")
        elif kind in OPTIONAL_LOOPS:
            info[kind] = {"status": "skipped", "error": err}
        else:
            info[kind] = {"status": "failed", "error": err}
    return info


def summarize(samples):
    """samples: {round: value}. Median, min, max or None if empty."""
    values = list(samples.values())
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def speedup(samples, other):
    """How much better pyasync is than `other`: other value / pyasync value.

    Every metric is lower-is-better (seconds, KiB), so > 1 favours pyasync.
    `ratio` compares the medians. `paired_min/max` bound the ratios of the
    two loops' samples taken in the same round, i.e. back to back, which
    cancels most of the machine's slow drifts: a range straddling 1.0 means
    the difference is within the noise.
    """
    mine, theirs = samples.get(SUBJECT, {}), samples.get(other, {})
    if not mine or not theirs:
        return None
    paired = [theirs[r] / mine[r] for r in mine if r in theirs and mine[r] > 0]
    return {"ratio": statistics.median(theirs.values()) / statistics.median(mine.values()),
            "paired_min": min(paired) if paired else None,
            "paired_max": max(paired) if paired else None}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _fmt_value(stats, ops, metric, error):
    """Median per operation in the metric's per-op unit, and the spread."""
    if error:
        return "FAILED"
    if stats is None:
        return "-"
    per_op = stats["median"] * workloads.METRICS[metric].scale / ops
    spread = (stats["max"] - stats["min"]) / stats["median"] * 100 if stats["median"] else 0
    return "%.0f (%2.0f%%)" % (per_op, spread)


def _fmt_ratio(sp):
    if sp is None:
        return "n/a"
    text = "%.2fx" % sp["ratio"]
    if sp["paired_min"] is not None and sp["paired_max"] != sp["paired_min"]:
        text += " [%.2f-%.2f]" % (sp["paired_min"], sp["paired_max"])
        if sp["paired_min"] < 1.0 < sp["paired_max"]:
            text += " ~"
    return text


def print_report(results, kinds, loop_info, meta, out=sys.stdout):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p()
    p("Python %s (%s), %d round(s)%s, %s, fresh process per sample, order %s"
      % (meta["python"], meta["executable"], meta["rounds_done"],
         " [--quick]" if meta["quick"] else "", meta["machine"], " -> ".join(kinds)))
    for kind in kinds:
        li = loop_info[kind]
        if li["status"] == "ok":
            p("  %-8s %s  (%s)" % (kind, li["version"], li["where"]))
        else:
            p("  %-8s %s: %s" % (kind, li["status"].upper(),
                                 li["error"].strip().splitlines()[-1].strip()))
    p()

    ratio_cols = [b for b in BASELINES if b in kinds] if SUBJECT in kinds else []
    headers = ["benchmark", "ops", "unit"] + list(kinds) + \
              ["%s vs %s" % (SUBJECT, b) for b in ratio_cols]
    rows = []
    for res in results:
        ops, metric = res["ops"], res["metric"]
        row = [res["name"], str(ops) if ops else "-", workloads.METRICS[metric].per_op]
        for kind in kinds:
            lr = res["loops"][kind]
            row.append(_fmt_value(lr["stats"], ops, metric, lr["error"])
                       if ops or lr["error"] else "-")
        for b in ratio_cols:
            row.append(_fmt_ratio(res["speedup"].get(b)))
        rows.append(row)
    widths = [max(len(r[i]) for r in [headers] + rows) for i in range(len(headers))]
    for r in [headers] + rows:
        p("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    p()
    units = ", ".join("%s = %s" % (m.per_op, m.what) for m in
                      dict.fromkeys(workloads.METRICS[res["metric"]] for res in results))
    p("unit: %s per operation; median over the rounds, (spread) = (max-min)/median." % units)
    p("Lower is better for every unit.")
    if ratio_cols:
        p("%s vs X: X median / %s median, > 1 means %s is faster (or smaller); [min-max] of the"
          % (SUBJECT, SUBJECT, SUBJECT))
        p("ratios within each round (back-to-back samples); '~' = range crosses 1.0 (noise).")

    # Quiet runs show spreads of 5-15%; far above that, another process was
    # competing for the CPUs and even the medians may be off. Only timings
    # count: a busy machine does not change how much memory a loop uses.
    spreads = [(st["max"] - st["min"]) / st["median"] for res in results
               if res["metric"] == "seconds"
               for lr in res["loops"].values() if (st := lr["stats"]) and st["median"]]
    if spreads and statistics.median(spreads) > NOISY_SPREAD:
        p()
        p("WARNING: noisy run (median spread %.0f%%): the machine was busy; "
          "do not quote these numbers, rerun when it is idle." % (statistics.median(spreads) * 100))

    failures = [(res["name"], kind, res["loops"][kind]["error"])
                for res in results for kind in kinds if res["loops"][kind]["error"]]
    if failures:
        p()
        p("FAILURES:")
        for name, kind, err in failures:
            p("  %s on %s (round %d): %s" % (name, kind, err["round"], err["message"]))
    for kind in kinds:
        # A missing optional loop is explained by the one-line note above.
        if loop_info[kind]["status"] == "failed":
            p()
            p("%s FAILED to load:\n%s" % (kind, loop_info[kind]["error"]))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def _csv(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def _git_revision():
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="samples per loop and benchmark "
                        "(default 7, or 3 with --quick)")
    parser.add_argument("--loops", default=",".join(workloads.LOOP_KINDS),
                        help="loop kinds, in alternation order (default: %(default)s)")
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--json", metavar="FILE", help="also write raw samples and summary here")
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds at 1/10 size: a smoke test, not a measurement")
    parser.add_argument("--repeat", type=int, default=workloads.DEFAULT_REPEATS,
                        help="timed runs per sample process, the best counts "
                        "(default %(default)s; memory benchmarks run once)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds before a workload process is killed (default %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    if args.rounds is None:
        args.rounds = 3 if args.quick else 7
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.loops = _csv(args.loops)
    unknown = [k for k in args.loops if k not in workloads.LOOP_KINDS]
    if unknown or not args.loops or len(set(args.loops)) != len(args.loops):
        parser.error("--loops: need distinct kinds among %s" % ", ".join(workloads.LOOP_KINDS))
    args.only = _csv(args.only) if args.only else list(workloads.BENCHMARKS)
    unknown = [b for b in args.only if b not in workloads.BENCHMARKS]
    if unknown:
        parser.error("unknown benchmark(s) %s; known: %s"
                     % (", ".join(unknown), ", ".join(workloads.BENCHMARKS)))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        return workloads.main(["--list"])

    env = child_env()
    log = lambda *a, **k: print(*a, file=sys.stderr, flush=True, **k)  # noqa: E731
    started = time.time()
    load_at_start = os.getloadavg()[0]  # context for how noisy the run may be
    loop_info = probe_loops(args.loops, args.timeout, env)
    kinds = [k for k in args.loops if loop_info[k]["status"] == "ok"]
    for kind in args.loops:
        if loop_info[kind]["status"] != "ok":
            log("note: %s %s: %s" % (kind, loop_info[kind]["status"],
                                     loop_info[kind]["error"].strip().splitlines()[-1].strip()))

    # samples[name][kind] = {round: value}; errors[name][kind] = first failure.
    samples = {b: {k: {} for k in args.loops} for b in args.only}
    errors = {b: {} for b in args.only}
    ops = {}
    extra = (["--quick"] if args.quick else []) + ["--repeat", str(args.repeat)]
    rounds_done = 0
    try:
        for rnd in range(1, args.rounds + 1):
            log("round %d/%d:" % (rnd, args.rounds), end="")
            for name in args.only:
                log(" " + name, end="")
                for kind in kinds:
                    if kind in errors[name]:
                        continue  # failed once already; don't pay for a hang every round
                    result, err = run_child([name, kind] + extra, args.timeout, env)
                    if result is not None and not result.get("value", 0) > 0:
                        result, err = None, "non-positive value in %r" % result
                    if result is None:
                        errors[name][kind] = {"round": rnd, "message": err}
                        log("\n  FAILED %s on %s: %s" % (name, kind, err))
                        continue
                    samples[name][kind][rnd] = result["value"]
                    ops.setdefault(name, result["ops"])
            log()
            rounds_done = rnd
    except KeyboardInterrupt:
        log("\ninterrupted: reporting the %d complete round(s)" % rounds_done)
        # Drop the partial round so every loop has the same number of samples.
        for per_kind in samples.values():
            for by_round in per_kind.values():
                by_round.pop(rounds_done + 1, None)

    results = []
    for name in args.only:
        results.append({
            "name": name,
            "metric": workloads.BENCHMARKS[name].metric,
            "ops": ops.get(name),
            "loops": {k: {"stats": summarize(samples[name][k]),
                          "samples": [samples[name][k][r] for r in sorted(samples[name][k])],
                          "error": errors[name].get(k)} for k in args.loops},
            # No ratio from the samples that happened to succeed before a failure.
            "speedup": {b: None if errors[name].keys() & {b, SUBJECT} else speedup(samples[name], b)
                        for b in BASELINES if b in args.loops and SUBJECT in args.loops},
        })

    meta = {
        "python": platform.python_version(), "executable": sys.executable,
        "machine": "%s, %d CPUs, load %.1f at start" % (platform.machine(),
                                                        os.cpu_count() or 0, load_at_start),
        "rounds": args.rounds, "rounds_done": rounds_done, "quick": args.quick,
        "order": args.loops, "git": _git_revision(),
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "elapsed_s": round(time.time() - started, 1),
    }
    print_report(results, args.loops, loop_info, meta)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "loops": loop_info, "results": results}, f, indent=1)
        log("wrote %s" % args.json)

    failed = any(errors[b] for b in args.only) or rounds_done < args.rounds or any(
        li["status"] == "failed" for li in loop_info.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
