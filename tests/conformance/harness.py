"""Loop substitution and loop accounting for the conformance runner.

install(impl) is called by the worker process before any test module is
imported. For impl == "pyasync" it makes every road by which
test.test_asyncio obtains a default event loop lead to a pyasync loop:

* asyncio.DefaultEventLoopPolicy and asyncio.unix_events.DefaultEventLoopPolicy
  become pyasync.EventLoopPolicy. asyncio.events._init_event_loop_policy()
  does ``from . import DefaultEventLoopPolicy`` whenever the policy is None,
  so the many ``asyncio.set_event_loop_policy(None)`` calls in the tests'
  tearDown()/tearDownModule() bring pyasync's policy back lazily;
* the current policy is reset to None, so the next lookup creates ours.

Through the policy this covers asyncio.new_event_loop(), asyncio.run(),
asyncio.Runner() and unittest.IsolatedAsyncioTestCase (all three versions).
Tests that construct a loop class by name (asyncio.SelectorEventLoop(),
asyncio.BaseEventLoop(), test_utils.TestLoop) are not redirected here: the
per-module adapters in suites.py replace the few that matter, and the
accounting below makes any that remain visible.

Accounting: pyasync.Loop.__init__ and asyncio.BaseEventLoop.__init__ are
wrapped to count the loops created, by class. A "target" loop is a loop of the
implementation under test (pyasync.Loop for pyasync, a stdlib
SelectorEventLoop for the asyncio control run); every other loop (mock
BaseEventLoop()s, test_utils.TestLoop, ...) is "foreign" and is reported.
"""
import asyncio
import asyncio.base_events
import asyncio.unix_events
import collections
import importlib.machinery
import os
import sys

IMPLS = ("pyasync", "asyncio")

# class qualname -> number of instances created; reset by the worker per test.
created = collections.Counter()
_target_classes = ()
_impl = None


def _count(self):
    cls = type(self)
    created[f"{cls.__module__}.{cls.__qualname__}"] += 1


def _wrap_init(cls):
    orig = cls.__dict__["__init__"]

    def __init__(self, *args, **kwargs):
        _count(self)
        return orig(self, *args, **kwargs)

    __init__.__wrapped__ = orig
    __init__.__qualname__ = orig.__qualname__
    cls.__init__ = __init__


def select_pyasync(repo_root):
    """Decide which pyasync the worker imports; call before importing it.

    The worker runs with the repository root on sys.path (it is started with
    ``-m`` from there), so the source tree's pyasync/ shadows an installed
    one. That is what a developer wants after ``setup.py build_ext
    --inplace``; but in a fresh clone (CI) the source tree has no compiled
    _core for this interpreter and the package installed in the environment
    (``pip install .``) must be used: it is then imported with the
    repository root taken off sys.path for the time of the import (only:
    processes started by tests, e.g. multiprocessing's forkserver, must
    still be able to import this package). describe_environment() reports
    which one was imported."""
    src = os.path.join(repo_root, "pyasync")
    built = any(os.path.exists(os.path.join(src, "_core" + suffix))
                for suffix in importlib.machinery.EXTENSION_SUFFIXES)
    if not built:
        root = os.path.realpath(repo_root)
        saved = list(sys.path)
        sys.path[:] = [p for p in sys.path
                       if os.path.realpath(p or os.curdir) != root]
        try:
            import pyasync  # noqa: F401  (now in sys.modules)
        except ImportError:
            pass  # reported by install(), with its traceback
        finally:
            sys.path[:] = saved
    return built


def install(impl):
    """Route default loop creation to `impl` and start counting loops."""
    global _impl, _target_classes
    if impl not in IMPLS:
        raise ValueError(f"unknown implementation {impl!r}")
    _impl = impl
    # Count every stdlib loop (BaseEventLoop and all its subclasses).
    _wrap_init(asyncio.base_events.BaseEventLoop)
    if impl == "pyasync":
        import pyasync
        _wrap_init(pyasync.Loop)
        asyncio.DefaultEventLoopPolicy = pyasync.EventLoopPolicy
        asyncio.unix_events.DefaultEventLoopPolicy = pyasync.EventLoopPolicy
        _target_classes = (pyasync.Loop,)
    else:
        _target_classes = (asyncio.SelectorEventLoop,)
    asyncio.set_event_loop_policy(None)
    # Sanity check: the lazily created policy must make target loops.
    loop = asyncio.new_event_loop()
    try:
        if not isinstance(loop, _target_classes):
            raise RuntimeError(
                f"loop substitution failed: asyncio.new_event_loop() "
                f"returned {loop!r}")
    finally:
        loop.close()
        asyncio.set_event_loop_policy(None)
    created.clear()


def target_loop_class():
    return _target_classes[0]


def new_loop():
    """A new loop of the implementation under test (for adapters)."""
    if _impl == "pyasync":
        import pyasync
        return pyasync.new_event_loop()
    # Not asyncio.new_event_loop(): that asks the current policy, and
    # test_runners' TestPolicy calls back into this function.
    return asyncio.SelectorEventLoop()


def split_counts(counter):
    """(target loops, {foreign class: count}) from a Counter of names."""
    target = 0
    foreign = {}
    names = {f"{c.__module__}.{c.__qualname__}" for c in _target_classes}
    for name, n in counter.items():
        if name in names or _is_target_subclass(name):
            target += n
        else:
            foreign[name] = n
    return target, foreign


_subclass_cache = {}


def _is_target_subclass(name):
    # Subclasses of the target class defined by tests (rare) count as target.
    if name in _subclass_cache:
        return _subclass_cache[name]
    result = False
    for base in _target_classes:
        for sub in _all_subclasses(base):
            if f"{sub.__module__}.{sub.__qualname__}" == name:
                result = True
    _subclass_cache[name] = result
    return result


def _all_subclasses(cls):
    seen = []
    stack = [cls]
    while stack:
        c = stack.pop()
        for s in c.__subclasses__():
            if s not in seen:
                seen.append(s)
                stack.append(s)
    return seen


def describe_environment():
    info = {
        "python": sys.version.split()[0],
        "impl": _impl,
        "poller": None,
    }
    if _impl == "pyasync":
        import pyasync
        loop = pyasync.new_event_loop()
        try:
            info["poller"] = loop._poller
        finally:
            loop.close()
        created.clear()
        info["PYASYNC_POLLER"] = os.environ.get("PYASYNC_POLLER", "")
        info["pyasync"] = pyasync._core.__file__
    return info
