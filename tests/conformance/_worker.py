"""Run one test.test_asyncio module in this process; write JSON lines.

Started by run.py, one process per module (and again after a crash or a
per-test timeout, with the tests already done left out). Not meant to be run
by hand, but it can be, for debugging:

    python -m tests.conformance._worker --module test_locks --out /tmp/r.jsonl

Records written to --out, one JSON object a line, flushed as they happen so
that the parent knows how far a crashed or hung worker got:

    {"event": "env", ...}                        first
    {"event": "start", "id": ID}                 before each test
    {"event": "result", "id": ID, "outcome": ..., ...}
    {"event": "fixture_error", "id": ..., "outcome": "error", ...}
    {"event": "done", "unused_excluded": [...], "unused_xfail": [...]}

outcome is one of pass, fail, error, skip, excluded, xfail, xpass.
"""
import argparse
import faulthandler
import gc
import json
import os
import signal
import sys
import time
import unittest
import warnings

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    __package__ = "tests.conformance"

from . import exclusions, harness, suites  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Worse outcomes win when a test reports more than one (e.g. a failure in
# the test and an error in a cleanup).
_MAX_OUTPUT = 4000
_RANK = ["pass", "skip", "excluded", "xfail", "xpass", "fail", "error"]


def test_key(module, test):
    return f"{module}.{type(test).__name__}.{test._testMethodName}"


class _Writer:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def write(self, **rec):
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()


class JsonResult(unittest.TestResult):
    def __init__(self, writer, module, timeout):
        super().__init__()
        self.writer = writer
        self.module = module
        self.timeout = timeout
        self.cur = None
        self.buffer = True  # attach the test's output to its failure

    # -- per test
    def _begin(self, test):
        key = test_key(self.module, test)
        self.cur = {"id": key, "outcomes": [], "details": [], "reason": None}
        self.writer.write(event="start", id=key)
        harness.created.clear()
        harness.clear_census()
        self.t0 = time.monotonic()

    def startTest(self, test):
        super().startTest(test)
        self._begin(test)
        if self.timeout:
            faulthandler.dump_traceback_later(self.timeout, exit=True,
                                              file=sys.__stderr__)

    def stopTest(self, test):
        if self.timeout:
            # Re-armed, not just cancelled: a class or module fixture that
            # hangs between two tests is caught too (and reported by the
            # parent as a worker death outside any test).
            faulthandler.dump_traceback_later(self.timeout, exit=True,
                                              file=sys.__stderr__)
        if self.cur is None:
            super().stopTest(test)
            return
        # What the test printed or logged (asyncio logs errors it can't
        # raise: "Task exception was never retrieved", "Exception in
        # callback" ...). Kept for passing tests too, for -v and --json.
        output = ""
        for buf in (self._stdout_buffer, self._stderr_buffer):
            if buf is not None:
                output += buf.getvalue()
        super().stopTest(test)
        cur, self.cur = self.cur, None
        if "xfail" in cur["outcomes"]:
            # A test that failed half-way may leave objects behind (a pipe
            # it never handed to the loop): collect them now, with their
            # ResourceWarnings, not inside the next test's assertWarns().
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
        outcomes = cur["outcomes"] or ["pass"]
        outcome = max(outcomes, key=_RANK.index)
        target, foreign = harness.split_counts(harness.created)
        self.writer.write(
            event="result", id=cur["id"], outcome=outcome,
            reason=cur["reason"], details=cur["details"],
            duration=round(time.monotonic() - self.t0, 3),
            target_loops=target, foreign_loops=foreign,
            census=harness.split_census(harness.census),
            output=output[-_MAX_OUTPUT:])

    def _detail(self, err, test, prefix=""):
        return prefix + self._exc_info_to_string(err, test)

    def _fixture_error(self, test, err):
        # setUpClass/tearDownClass/setUpModule/tearDownModule failures come
        # with an _ErrorHolder outside startTest()/stopTest().
        self.writer.write(
            event="fixture_error", id=f"{self.module}.<{test.description}>",
            outcome="error", details=[self._exc_info_to_string(err, test)])

    def addSuccess(self, test):
        super().addSuccess(test)
        self.cur["outcomes"].append("pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.cur["outcomes"].append("fail")
        self.cur["details"].append(self._detail(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        if self.cur is None or not isinstance(test, unittest.TestCase):
            self._fixture_error(test, err)
            return
        self.cur["outcomes"].append("error")
        self.cur["details"].append(self._detail(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if not isinstance(test, unittest.TestCase):
            # A class or module skipped as a whole by its fixture.
            self.writer.write(event="fixture_skip",
                              id=f"{self.module}.<{test.description}>",
                              reason=reason)
            return
        if self.cur is None:
            # Python 3.12.1+ reports a skipped test without startTest().
            self._begin(test)
        if reason.startswith("excluded: "):
            self.cur["outcomes"].append("excluded")
        else:
            self.cur["outcomes"].append("skip")
        self.cur["reason"] = reason

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.cur["outcomes"].append("xfail")
        tb = self._exc_info_to_string(err, test).rstrip().splitlines()
        self.cur["details"].append(tb[-1] if tb else "")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.cur["outcomes"].append("xpass")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None or self.cur is None:
            return
        kind = "fail" if issubclass(err[0], test.failureException) else "error"
        self.cur["outcomes"].append(kind)
        self.cur["details"].append(
            self._detail(err, test, prefix=f"[subtest {subtest._subDescription()}]\n"))


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


def _mark(test, key, excluded, xfail):
    name = test._testMethodName
    reason = excluded.lookup(key)
    if reason is not None:
        def skipped():
            pass
        skipped.__unittest_skip__ = True
        skipped.__unittest_skip_why__ = f"excluded: {reason}"
        setattr(test, name, skipped)
        return
    if xfail is not None:
        reason = xfail.lookup(key)
        if reason is not None:
            test.__unittest_expecting_failure__ = True


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--module", required=True)
    p.add_argument("--impl", default="pyasync", choices=harness.IMPLS)
    p.add_argument("--out", required=True)
    p.add_argument("--skip-ids", help="file: test ids not to run (done)")
    p.add_argument("--per-test-timeout", type=float, default=60.0)
    p.add_argument("-k", dest="patterns", action="append", default=[],
                   help="only run test ids containing this substring")
    args = p.parse_args(argv)

    writer = _Writer(args.out)
    # A process started in the background by a non-interactive shell
    # (`cmd &`) inherits SIGINT ignored, and Python then leaves it ignored:
    # _thread.interrupt_main() does nothing and asyncio.Runner installs no
    # SIGINT handler, so test_runners' interrupt tests hang (on any loop).
    # The tests assume a normal interpreter start.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    harness.select_pyasync(REPO_ROOT)
    harness.install(args.impl)
    env = harness.describe_environment()
    writer.write(event="env", **env)

    classes = suites.build(args.module)

    version = "%d.%d" % sys.version_info[:2]
    excluded = exclusions.excluded(version, env.get("poller"))
    xfail = (exclusions.expected_failures(version, env.get("poller"),
                                          env.get("asyncio_debug"))
             if args.impl == "pyasync" else None)

    skip_ids = set()
    if args.skip_ids:
        with open(args.skip_ids, encoding="utf-8") as f:
            skip_ids = {line.strip() for line in f if line.strip()}

    loader = unittest.TestLoader()
    tests = []
    for cls in classes:
        for test in _flatten(loader.loadTestsFromTestCase(cls)):
            key = test_key(args.module, test)
            if args.patterns and not any(s in key for s in args.patterns):
                continue
            _mark(test, key, excluded, xfail)
            if key in skip_ids:
                continue
            tests.append(test)

    result = JsonResult(writer, args.module, args.per_test_timeout)
    if args.per_test_timeout:
        faulthandler.dump_traceback_later(args.per_test_timeout, exit=True,
                                          file=sys.__stderr__)
    unittest.TestSuite(tests).run(result)
    faulthandler.cancel_dump_traceback_later()

    done = {"event": "done",
            "unused_excluded": excluded.unused(args.module),
            "unused_xfail": xfail.unused(args.module) if xfail else []}
    if args.patterns:  # a partial run can't tell stale entries
        done["unused_excluded"] = done["unused_xfail"] = []
    writer.write(**done)
    writer.f.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads left behind by a test must not keep the worker alive.
    os._exit(0)


if __name__ == "__main__":
    main()
