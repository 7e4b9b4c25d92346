"""Conformance runner: CPython's test.test_asyncio against pyasync's loop.

Run from the repository root, with the extension built for the interpreter:

    python -m tests.conformance.run                  # every module
    python -m tests.conformance.run --module test_locks -v
    python -m tests.conformance.run --markdown       # table as markdown
    python -m tests.conformance.run --impl asyncio   # control: stdlib loop
    PYASYNC_POLLER=poll python -m tests.conformance.run

Each module runs in its own worker process (tests/conformance/_worker.py)
with a per-test timeout (faulthandler dumps the stack of a hung test and
ends the worker) and a per-module time budget. A worker that dies (timeout,
crash of the C extension) is restarted without the tests it already ran; the
test it died in is counted as an error.

Exit status: 0 when no test failed or errored, no expected failure passed
unexpectedly, no worker crashed and every module ran at least one test on a
loop of the implementation under test; 1 otherwise; 2 for usage errors.

See docs/conformance.md.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    __package__ = "tests.conformance"

from . import suites  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

COLUMNS = ["ran", "passed", "failed", "errors", "skipped", "excluded",
           "xfail", "xpass"]
# outcome -> column
_COLUMN_OF = {"pass": "passed", "fail": "failed", "error": "errors",
              "skip": "skipped", "excluded": "excluded", "xfail": "xfail",
              "xpass": "xpass"}
MAX_RESTARTS = 10


class ModuleRun:
    """Everything known about one module's run, from the worker's records."""

    def __init__(self, name):
        self.name = name
        self.env = None
        self.results = {}          # id -> result record (last wins)
        self.fixture_errors = []
        self.fixture_skips = []    # classes/modules skipped as a whole
        self.crashes = []          # (id or None, log tail)
        self.unused_excluded = []
        self.unused_xfail = []
        self.elapsed = 0.0
        self.timed_out = False
        self.done = False

    # ---------------------------------------------------------------- counts
    def counts(self):
        c = dict.fromkeys(COLUMNS, 0)
        for rec in self.results.values():
            c[_COLUMN_OF[rec["outcome"]]] += 1
        c["errors"] += len(self.fixture_errors)
        c["skipped"] += len(self.fixture_skips)
        c["ran"] = (c["passed"] + c["failed"] + c["errors"] + c["xfail"]
                    + c["xpass"])
        return c

    def target_loops(self):
        return sum(r.get("target_loops", 0) for r in self.results.values())

    def foreign_loops(self):
        total = {}
        for r in self.results.values():
            for k, v in (r.get("foreign_loops") or {}).items():
                total[k] = total.get(k, 0) + v
        return total

    def census(self):
        """Futures and tasks created, summed over the tests (see harness)."""
        total = {"impl_futures": 0, "impl_tasks": 0, "other_tasks": {}}
        for r in self.results.values():
            c = r.get("census") or {}
            total["impl_futures"] += c.get("impl_futures", 0)
            total["impl_tasks"] += c.get("impl_tasks", 0)
            for k, v in (c.get("other_tasks") or {}).items():
                total["other_tasks"][k] = total["other_tasks"].get(k, 0) + v
        return total

    def foreign_only_tests(self):
        """Tests that made loops, none of them the implementation's."""
        return sorted(i for i, r in self.results.items()
                      if r.get("foreign_loops") and not r.get("target_loops"))

    def problems(self):
        out = [r for r in self.results.values()
               if r["outcome"] in ("fail", "error", "xpass")]
        return sorted(out, key=lambda r: r["id"]) + self.fixture_errors

    def ok(self):
        return (not self.problems() and self.done and not self.timed_out
                and self.target_loops() > 0)


def _read_records(path, run, pending):
    """Fold the worker's JSON lines into `run`; return the id it started
    last without finishing (None if it finished every test it started)."""
    started = None
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return None
    with f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            ev = rec.get("event")
            if ev == "env":
                run.env = rec
            elif ev == "start":
                started = rec["id"]
            elif ev == "result":
                run.results[rec["id"]] = rec
                pending.add(rec["id"])
                started = None
            elif ev == "fixture_error":
                run.fixture_errors.append(rec)
            elif ev == "fixture_skip":
                run.fixture_skips.append(rec)
            elif ev == "done":
                run.done = True
                run.unused_excluded = rec["unused_excluded"]
                run.unused_xfail = rec["unused_xfail"]
    return started


def _tail(path, n=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return ""
    return "".join(lines[-n:])


def run_module(name, args, workdir):
    run = ModuleRun(name)
    done_ids = set()
    deadline = time.monotonic() + args.module_timeout
    t0 = time.monotonic()
    # The worker runs with `-m` from the repository root, which puts the root
    # on its sys.path; harness.select_pyasync() then picks the in-place build
    # of pyasync if there is one for this interpreter, else the installed one.
    env = dict(os.environ)
    for attempt in range(MAX_RESTARTS + 1):
        out = os.path.join(workdir, f"{name}.{attempt}.jsonl")
        log = os.path.join(workdir, f"{name}.{attempt}.log")
        skip = os.path.join(workdir, f"{name}.{attempt}.skip")
        with open(skip, "w", encoding="utf-8") as f:
            f.write("\n".join(sorted(done_ids)))
        cmd = [sys.executable, "-X", "faulthandler", "-m",
               "tests.conformance._worker", "--module", name,
               "--impl", args.impl, "--out", out, "--skip-ids", skip,
               "--per-test-timeout", str(args.per_test_timeout)]
        for k in args.patterns:
            cmd += ["-k", k]
        with open(log, "w", encoding="utf-8") as logf:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env,
                                    stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                rc = None
            # The worker leads its own process group: end whatever it left
            # behind too (children a test forked and a crash orphaned).
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        pending = _read_records(out, run, done_ids)
        if rc == 0 and run.done:
            break
        # The worker died: a hung test (faulthandler exit), a crash, or the
        # module's time budget ran out.
        tail = _tail(log)
        if rc is None:
            why = f"module time budget ({args.module_timeout:g}s) exhausted"
        elif rc == 1 and "Timeout (" in tail:
            why = f"per-test timeout ({args.per_test_timeout:g}s)"
        elif rc < 0:
            try:
                why = f"worker killed by {signal.Signals(-rc).name}"
            except ValueError:
                why = f"worker killed by signal {-rc}"
        else:
            why = f"worker exited with status {rc}"
        run.crashes.append((pending, why, tail))
        if pending is not None:
            run.results[pending] = {
                "id": pending, "outcome": "error", "reason": why,
                "details": [f"{why} while running this test; "
                            f"worker output tail:\n{tail}"],
                "target_loops": 0, "foreign_loops": {}}
            done_ids.add(pending)
        if rc is None or pending is None:
            if rc is None:
                run.timed_out = True
            break
        run.done = False
    else:
        run.crashes.append((None, "too many worker restarts", ""))
    run.elapsed = time.monotonic() - t0
    # Stale entries can't be judged when a worker did not finish.
    if run.crashes:
        run.unused_excluded = run.unused_xfail = []
    return run


# -------------------------------------------------------------------- output

def _env_line(runs, args):
    env = next((r.env for r in runs if r.env), None) or {}
    py = env.get("python", sys.version.split()[0])
    if args.impl == "pyasync":
        line = f"Python {py}, pyasync loop, poller {env.get('poller')}"
        if env.get("asyncio_debug"):
            line += ", asyncio debug mode"
        if args.verbose and env.get("pyasync"):
            line += f" ({env['pyasync']})"
        return line
    line = f"Python {py}, stdlib asyncio loop (control run)"
    if env.get("asyncio_debug"):
        line += ", asyncio debug mode"
    return line


def _foreign_str(d):
    return ", ".join(f"{k.rsplit('.', 1)[-1]}×{v}" for k, v in sorted(d.items())) or "0"


def _census_cells(census, env):
    env = env or {}
    futures = census["impl_futures"] if env.get("census_futures") else "-"
    tasks = census["impl_tasks"] if env.get("census_tasks") else "-"
    other = _other_tasks_str(census["other_tasks"]) if env.get("census_tasks") else "-"
    return [futures, tasks, other]


def _other_tasks_str(d):
    # Class names with their module when the name alone is ambiguous
    # (asyncio's C Task and Python _PyTask are both "Task"-like).
    return ", ".join(f"{_short_class(k)}×{v}" for k, v in sorted(d.items())) or "0"


def _short_class(name):
    mod, _, qual = name.rpartition(".")
    if "<locals>" in name:
        # a class defined in a test function: MODULE.test.<locals>.Cls
        mod = name.split(".<locals>")[0]
        mod = mod.split(".")[-2] if mod.count(".") else mod
        qual = name.rsplit(".", 1)[-1]
    return f"{mod.rsplit('.', 1)[-1]}.{qual.rsplit('.', 1)[-1]}"


def _add_census(total, c):
    total["impl_futures"] += c["impl_futures"]
    total["impl_tasks"] += c["impl_tasks"]
    for k, v in c["other_tasks"].items():
        total["other_tasks"][k] = total["other_tasks"].get(k, 0) + v


class ClassRun(ModuleRun):
    """The tests of one class of a module's run (for --by-class)."""

    def __init__(self, run, cls, results):
        super().__init__(f"{run.name}.{cls}")
        self.env = run.env
        self.results = results
        self.done = True
        self.elapsed = sum(r.get("duration") or 0 for r in results.values())

    def ok(self):
        # A class may run on other loops only (the _OnTestLoop variants).
        return not self.problems()


def split_by_class(run):
    by_cls = {}
    for rid, rec in run.results.items():
        cls = rid.split(".")[1]
        by_cls.setdefault(cls, {})[rid] = rec
    return [ClassRun(run, cls, recs) for cls, recs in sorted(by_cls.items())]


def table_rows(runs):
    rows = []
    total = dict.fromkeys(COLUMNS, 0)
    total_target = 0
    total_foreign = {}
    total_census = {"impl_futures": 0, "impl_tasks": 0, "other_tasks": {}}
    env = next((r.env for r in runs if r.env), None)
    for r in runs:
        c = r.counts()
        _add_census(total_census, r.census())
        for k in COLUMNS:
            total[k] += c[k]
        total_target += r.target_loops()
        for k, v in r.foreign_loops().items():
            total_foreign[k] = total_foreign.get(k, 0) + v
        status = "ok" if r.ok() else "FAIL"
        rows.append([r.name] + [c[k] for k in COLUMNS]
                    + [r.target_loops(), _foreign_str(r.foreign_loops())]
                    + _census_cells(r.census(), r.env or env)
                    + [f"{r.elapsed:.0f}s", status])
    status = "ok" if all(r.ok() for r in runs) else "FAIL"
    rows.append(["total"] + [total[k] for k in COLUMNS]
                + [total_target, _foreign_str(total_foreign)]
                + _census_cells(total_census, env)
                + [f"{sum(r.elapsed for r in runs):.0f}s", status])
    return rows


HEADERS = (["module"] + COLUMNS
           + ["impl loops", "other loops", "impl futures", "impl tasks",
              "other tasks", "time", "status"])


def print_text_table(runs, args):
    rows = table_rows(runs)
    print()
    print(_env_line(runs, args))
    widths = [max(len(str(x)) for x in col) for col in zip(HEADERS, *rows)]
    fmt = "  ".join("{:<%d}" % widths[0] if i == 0 else "{:>%d}" % w
                    for i, w in enumerate(widths))
    print(fmt.format(*HEADERS))
    print(fmt.format(*["-" * w for w in widths]))
    for row in rows:
        if row[0] == "total":
            print(fmt.format(*["-" * w for w in widths]))
        print(fmt.format(*[str(x) for x in row]))


def print_markdown_table(runs, args):
    rows = table_rows(runs)
    print(f"#### {_env_line(runs, args)}")
    print()
    print("| " + " | ".join(HEADERS) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 2) + [":---:"]) + "|")
    for row in rows:
        cells = [str(x) for x in row]
        if row[0] == "total":
            cells = [f"**{x}**" for x in cells]
        print("| " + " | ".join(cells) + " |")
    print()


def print_module_report(run, args):
    c = run.counts()
    line = ", ".join(f"{k} {c[k]}" for k in COLUMNS)
    futures, tasks, other = _census_cells(run.census(), run.env)
    print(f"[{run.name}] {line}; impl loops {run.target_loops()}, other loops "
          f"{_foreign_str(run.foreign_loops())}; impl futures {futures}, "
          f"impl tasks {tasks}, other tasks {other}; {run.elapsed:.1f}s",
          flush=True)
    if args.verbose:
        for rid in sorted(run.results):
            rec = run.results[rid]
            extra = ""
            if rec.get("reason"):
                extra = f"  ({rec['reason']})"
            elif rec["outcome"] == "xfail" and rec.get("details"):
                extra = f"  ({rec['details'][0][:150]})"
            loops = ""
            if rec.get("foreign_loops"):
                loops = f"  [other loops: {_foreign_str(rec['foreign_loops'])}]"
            other = (rec.get("census") or {}).get("other_tasks")
            if other:
                loops += f"  [other tasks: {_other_tasks_str(other)}]"
            print(f"    {rec['outcome']:8} {rid}{extra}{loops}")
    for rec in run.problems():
        print(f"  {rec['outcome'].upper()}: {rec['id']}")
        if rec["outcome"] == "xpass":
            print("    expected to fail, but passed: remove it from "
                  "tests/conformance/exclusions.py")
        for d in rec.get("details", []):
            print("    " + d.rstrip().replace("\n", "\n    "))
    if not run.results:
        print(f"  ERROR: no test of {run.name} ran (see the worker output)")
    elif run.target_loops() == 0:
        print(f"  ERROR: module {run.name} created no loop of the implementation "
              f"under test ({args.impl}): the substitution did not work")
    foreign_only = run.foreign_only_tests()
    if foreign_only:
        print(f"  note: {len(foreign_only)} test(s) ran on other loops only "
              f"(not the implementation's): "
              + ", ".join(foreign_only[:10]) + (" ..." if len(foreign_only) > 10 else ""))
    for pending, why, tail in run.crashes:
        print(f"  WORKER DIED ({why}) in {pending or 'no test'}")
        if (args.verbose or pending is None) and tail:
            print("    " + tail.rstrip().replace("\n", "\n    "))
    for k in run.unused_excluded:
        print(f"  warning: exclusion {k!r} matched no test")
    for k in run.unused_xfail:
        print(f"  warning: expected failure {k!r} matched no test")


def selftest(args):
    """Run the synthetic _selftest module; compare with what is expected."""
    from . import selftest_cases
    args.impl = "pyasync"
    args.patterns = []
    args.per_test_timeout = 5.0
    with tempfile.TemporaryDirectory(prefix="pyasync-conformance-") as wd:
        run = run_module(selftest_cases.MODULE, args, wd)
    print_module_report(run, args)
    got = {i: r["outcome"] for i, r in run.results.items()}
    ok = True
    for i, want in selftest_cases.EXPECTED.items():
        have = got.get(i)
        mark = "ok" if have == want else "MISMATCH"
        ok &= have == want
        print(f"  {mark:8} {i}: expected {want}, got {have}")
    expected_crashes = 2  # the hang and the segfault
    if len(run.crashes) != expected_crashes:
        print(f"  MISMATCH worker deaths: expected {expected_crashes}, "
              f"got {len(run.crashes)}")
        ok = False
    if run.ok():
        print("  MISMATCH the module should count as failed")
        ok = False
    print("selftest: OK" if ok else "selftest: FAILED")
    return 0 if ok else 1


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m tests.conformance.run",
        description="Run CPython's test.test_asyncio modules against "
                    "pyasync's event loop and print a pass table.")
    p.add_argument("--module", action="append", dest="modules", metavar="NAME",
                   help="run only this module (repeatable); default: all of "
                        + ", ".join(suites.MODULES))
    p.add_argument("-k", action="append", dest="patterns", default=[],
                   metavar="SUBSTRING",
                   help="only tests whose id contains SUBSTRING (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print every test's outcome and worker logs")
    p.add_argument("--markdown", action="store_true",
                   help="print the table as markdown")
    p.add_argument("--by-class", action="store_true",
                   help="one row per test class instead of per module "
                        "(time = sum of the tests' durations)")
    p.add_argument("--impl", choices=("pyasync", "asyncio"), default="pyasync",
                   help="loop under test; 'asyncio' runs the same tests on "
                        "the stdlib loop as a control (expected-failure list "
                        "not applied)")
    p.add_argument("--per-test-timeout", type=float, default=60.0,
                   metavar="SECONDS")
    p.add_argument("--module-timeout", type=float, default=600.0,
                   metavar="SECONDS", help="time budget of one module")
    p.add_argument("-j", "--jobs", type=int, default=1,
                   help="modules run in parallel (default 1: several tests "
                        "are timing-sensitive)")
    p.add_argument("--json", metavar="FILE", help="write all results as JSON")
    p.add_argument("--keep-logs", metavar="DIR",
                   help="keep the workers' records and logs in DIR")
    p.add_argument("--list", action="store_true",
                   help="list the modules and exit")
    p.add_argument("--selftest", action="store_true",
                   help="check the runner itself on synthetic tests (a "
                        "hang, a crash, each kind of outcome) and exit")
    args = p.parse_args(argv)

    if args.selftest:
        return selftest(args)

    if args.list:
        for name, (_, minver, why) in suites.MODULES.items():
            avail = "" if suites.available(name) else \
                f"  (needs Python {minver[0]}.{minver[1]})"
            print(f"{name:24} {why}{avail}")
        return 0

    names = args.modules or [n for n in suites.MODULES if suites.available(n)]
    for n in names:
        if not suites.known(n):
            p.error(f"unknown module {n!r}; see --list")
        if not suites.available(n):
            p.error(f"{n} is not run on Python {sys.version.split()[0]}")

    if args.keep_logs:
        os.makedirs(args.keep_logs, exist_ok=True)
        workdir = args.keep_logs
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="pyasync-conformance-")
        workdir = cleanup.name

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            futs = [ex.submit(run_module, n, args, workdir) for n in names]
            runs = []
            for fut in futs:
                run = fut.result()
                runs.append(run)
                print_module_report(run, args)
    finally:
        if cleanup is not None:
            cleanup.cleanup()

    table = runs
    if args.by_class:
        table = [c for r in runs for c in split_by_class(r)]
    if args.markdown:
        print()
        print_markdown_table(table, args)
    else:
        print_text_table(table, args)

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"env": next((r.env for r in runs if r.env), None),
                       "impl": args.impl,
                       "modules": {r.name: {
                           "counts": r.counts(),
                           "impl_loops": r.target_loops(),
                           "other_loops": r.foreign_loops(),
                           "census": r.census(),
                           "elapsed": r.elapsed,
                           "ok": r.ok(),
                           "crashes": [list(c) for c in r.crashes],
                           "results": r.results,
                           "fixture_errors": r.fixture_errors,
                       } for r in runs}}, f, indent=1)

    ok = all(r.ok() for r in runs)
    c = {k: sum(r.counts()[k] for r in runs) for k in COLUMNS}
    # A closing line the CI log reader understands.
    print(f"{c['passed']} passed, {c['failed'] + c['errors'] + c['xpass']} failed, "
          f"{c['skipped'] + c['excluded']} skipped")
    print("conformance: OK" if ok else "conformance: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
