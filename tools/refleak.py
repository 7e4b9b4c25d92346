"""Reference-leak hunter for pyasync's tests, in the spirit of CPython's -R.

Runs tests through pytest itself, so fixtures, parametrisation, skips and
marks behave as in an ordinary run, and every test that pytest would run is
checked. A plugin runs each test (setup, call and teardown) WARMUP + RUNS
times in a row and reads sys.gettotalrefcount() and sys.getallocatedblocks()
around each run, after a garbage collection. A test whose references or
memory blocks grow on every one of the RUNS measured runs leaks (noise and
caches filled once do not grow every time). Tests parametrised over both
loops run on both: a leak in the [asyncio] variant alone is the standard
library's (or the test's), not pyasync's.

Needs a debug interpreter (sys.gettotalrefcount), e.g. Debian's
python3.11-dbg, with pytest installed and the extension built for it:

    python3.11-dbg setup.py build_ext --inplace
    PYTHONPATH=. python3.11-dbg tools/refleak.py                  # whole suite
    PYTHONPATH=. python3.11-dbg tools/refleak.py -R 3:6 tests/test_task.py -k cancel

Options before the pytest arguments: -R WARMUP:RUNS (default 3:4). Anything
else is passed to pytest, after --continue-on-collection-errors: a module
that cannot be imported (a missing test dependency) is listed, and the other
modules are still checked. Exit status: 0 if no test leaked or failed and
every module was collected.
"""
import gc
import sys

import pytest
from _pytest.runner import runtestprotocol

DEFAULT_WARMUP, DEFAULT_RUNS = 3, 4


def clear_caches():
    # Caches that a run may fill with new entries (as CPython's -R clears).
    import linecache
    import re
    re.purge()
    linecache.clearcache()
    sys._clear_type_cache()
    gc.collect()


def leaks(deltas):
    return bool(deltas) and all(d >= 1 for d in deltas)


class RefLeakHunter:
    def __init__(self, warmup, runs):
        self.warmup, self.runs = warmup, runs
        self.leaking = []      # (nodeid, reference deltas, block deltas)
        self.not_measured = []  # (nodeid, why)
        self.not_collected = []  # nodeids of modules that failed to import
        self.measured = 0

    def pytest_collectreport(self, report):
        if report.failed:
            self.not_collected.append(report.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        # Each reading is taken at the same point, with the same variables
        # alive (one reading before, the reports of one run), so that the
        # bookkeeping itself does not show as a leak; the deltas go into
        # lists made beforehand.
        ref_deltas, block_deltas = [0] * self.runs, [0] * self.runs
        refs_before = blocks_before = 0
        for i in range(self.warmup + self.runs):
            # The sections of captured output would pile up from run to run.
            item._report_sections = []
            # The real next item every time: higher-scoped fixtures that it
            # does not share are set up and torn down in every run, so they
            # count the same in each.
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            clear_caches()
            refs_after, blocks_after = sys.gettotalrefcount(), sys.getallocatedblocks()
            if i >= self.warmup:
                ref_deltas[i - self.warmup] = refs_after - refs_before
                block_deltas[i - self.warmup] = blocks_after - blocks_before
            refs_before, blocks_before = refs_after, blocks_after
            outcome = next((r for r in reports if not r.passed), None)
            if outcome is not None:
                # A failure or a skip ends the runs: it is what pytest reports.
                why = "skipped" if outcome.skipped else "failed"
                if outcome.failed and i > 0:
                    why = f"failed on run {i + 1} only"
                self.not_measured.append((item.nodeid, why))
                break
        else:
            self.measured += 1
            if leaks(ref_deltas) or leaks(block_deltas):
                self.leaking.append((item.nodeid, ref_deltas, block_deltas))
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def pytest_terminal_summary(self, terminalreporter):
        write = terminalreporter.write_line
        terminalreporter.section("reference leaks")
        for nodeid in self.not_collected:
            write(f"not collected (error): {nodeid}")
        for nodeid, why in self.not_measured:
            write(f"not measured ({why}): {nodeid}")
        for nodeid, refs, blocks in self.leaking:
            write(f"LEAK {nodeid}: references {refs}, memory blocks {blocks}")
        write(f"{self.measured} tests measured ({self.warmup} warm-up runs, {self.runs} "
              f"measured), {len(self.leaking)} leaking, {len(self.not_measured)} not measured, "
              f"{len(self.not_collected)} modules not collected")


def parse_args(argv):
    warmup, runs = DEFAULT_WARMUP, DEFAULT_RUNS
    args = list(argv)
    if args[:1] == ["-R"]:
        if len(args) < 2:
            sys.exit("-R needs WARMUP:RUNS")
        spec = args[1]
        del args[:2]
        try:
            warmup_text, runs_text = spec.split(":")
            warmup, runs = int(warmup_text), int(runs_text)
        except ValueError:
            sys.exit(f"-R {spec}: expected WARMUP:RUNS, two integers")
        if warmup < 1 or runs < 1:
            # The first run only sets the starting point.
            sys.exit(f"-R {spec}: WARMUP and RUNS must be 1 or more")
    return warmup, runs, args


def main(argv):
    if not hasattr(sys, "gettotalrefcount"):
        sys.exit("needs a debug interpreter (sys.gettotalrefcount), e.g. python3.11-dbg")
    warmup, runs, args = parse_args(argv)
    hunter = RefLeakHunter(warmup, runs)
    status = pytest.main(["--continue-on-collection-errors", *args], plugins=[hunter])
    if status == 0 and hunter.leaking:
        status = 1
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
