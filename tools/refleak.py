"""Reference-leak hunter for pyasync's tests, in the spirit of CPython's -R.

Runs each test function of the given test modules many times in one process,
on a pyasync loop, and reports the tests after which sys.gettotalrefcount()
keeps growing. Needs a debug interpreter (e.g. Debian's python3.11-dbg) with
the extension built for it:

    python3.11-dbg setup.py build_ext --inplace
    PYTHONPATH=. python3.11-dbg tools/refleak.py tests/test_callbacks.py ...

Fixtures supported: loop, pyloop, loop_kind, loop_factory, pair (socket pair),
Future, Task (pyasync's).
Tests needing any other fixture are listed as skipped.
"""
import gc
import importlib.util
import inspect
import os
import socket
import sys
import warnings

import pyasync

WARMUP, MEASURED = 4, 8


def make_fixtures(names, cleanups):
    values = {}
    for name in names:
        if name in ("loop", "pyloop"):
            lp = pyasync.new_event_loop()
            cleanups.append(lp.close)
            values[name] = lp
        elif name == "loop_kind":
            values[name] = "pyasync"
        elif name == "Future":
            values[name] = pyasync.Future
        elif name == "Task":
            values[name] = pyasync.Task
        elif name == "TaskGroup":
            values[name] = pyasync.TaskGroup
        elif name == "loop_factory":
            def factory():
                lp = pyasync.new_event_loop()
                cleanups.append(lp.close)
                return lp
            values[name] = factory
        elif name == "pair":
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            cleanups += [a.close, b.close]
            values[name] = (a, b)
        else:
            return None
    return values


def run_once(func, names):
    cleanups = []
    try:
        values = make_fixtures(names, cleanups)
        if values is None:
            return False
        try:
            func(**values)
        except BaseException as exc:
            # A failing or skipped test is the test suite's business, not
            # ours; only KeyboardInterrupt stops the hunt.
            if isinstance(exc, KeyboardInterrupt):
                raise
    finally:
        for c in reversed(cleanups):
            c()
    return True


def check(func):
    names = list(inspect.signature(func).parameters)
    deltas = []
    for i in range(WARMUP + MEASURED):
        gc.collect()
        before = sys.gettotalrefcount()
        if not run_once(func, names):
            return None
        gc.collect()
        if i >= WARMUP:
            deltas.append(sys.gettotalrefcount() - before)
    return deltas


def main(paths):
    if not hasattr(sys, "gettotalrefcount"):
        sys.exit("needs a debug interpreter (sys.gettotalrefcount)")
    warnings.simplefilter("ignore")
    leaky, skipped, checked = [], [], 0
    # The measuring loop itself moves the total by a constant; calibrate it
    # on a test that does nothing.
    baseline = check(lambda: None)[-1]
    for path in paths:
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name, func in sorted(vars(mod).items()):
            if not (name.startswith("test_") and inspect.isfunction(func)):
                continue
            if getattr(func, "pytestmark", None):
                skipped.append(f"{path}::{name} (parametrised)")
                continue
            deltas = check(func)
            if deltas is None:
                skipped.append(f"{path}::{name} (fixtures)")
                continue
            checked += 1
            deltas = [d - baseline for d in deltas]
            # A leak grows on every run; noise does not.
            if all(d > 0 for d in deltas[-4:]):
                leaky.append((f"{path}::{name}", deltas))
    for test, deltas in leaky:
        print(f"LEAK {test}: {deltas}")
    for test in skipped:
        print(f"skipped {test}")
    print(f"{checked} tests checked, {len(leaky)} leaking")
    return 1 if leaky else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
