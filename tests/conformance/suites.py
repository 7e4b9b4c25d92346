"""Which test.test_asyncio modules run, and how each is adapted.

Each entry of MODULES maps a test.test_asyncio module name to a builder
that returns the list of unittest classes to run from it. Most modules are
loop-generic as they stand: they get their loop from the event loop policy
(asyncio.run, asyncio.Runner, IsolatedAsyncioTestCase, asyncio.new_event_loop),
which harness.install() has pointed at the implementation under test. The
others are adapted here:

test_events
    The module's own loop classes (EPollEventLoopTests, PollEventLoopTests,
    SelectEventLoopTests) build stdlib selector loops and are NOT run.
    Instead PyasyncEventLoopTests combines the module's mixins
    (UnixEventLoopTestsMixin + SubprocessTestsMixin) with a create_event_loop()
    returning a loop of the implementation under test. PyasyncHandleTests and
    PyasyncTimerTests run the module's HandleTests/TimerTests with
    asyncio.Handle/TimerHandle replaced by pyasync.Handle/TimerHandle (the
    handles that pyasync's call_soon()/call_later() return). The policy- and
    loop-generic classes (AbstractEventLoopTests, PolicyTests,
    Test[Py|C]GetEventLoop, TestServer) run unchanged, on pyasync through the
    policy. Classes that test only stdlib objects and never touch a loop
    (HandleTests/TimerTests on asyncio's handles, TestAbstractServer) are
    not run.
test_runners
    BaseTest.new_loop() makes a mock asyncio.BaseEventLoop() (mocked
    _selector/_write_to_self/shutdown_asyncgens) for its TestPolicy. It is
    replaced by a loop of the implementation under test that records
    shutdown_asyncgens() calls the same way (and still runs the real one).
test_pep492
    BaseTest.setUp() makes a mock asyncio.BaseEventLoop(); replaced by a loop
    of the implementation under test.

In --impl asyncio (control) mode the same adapters are used with the
standard library's loop, so test ids are identical in both modes.
"""
import importlib
import sys
import unittest
from unittest import mock

from . import harness

PACKAGE = "test.test_asyncio"


def _import(name):
    return importlib.import_module(f"{PACKAGE}.{name}")


def _classes_of(mod):
    """The TestCase classes the default loader would run from `mod`."""
    out = []
    for name in dir(mod):
        obj = getattr(mod, name)
        if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                and obj.__module__ == mod.__name__):
            out.append(obj)
    return out


def _plain(name):
    def build():
        return _classes_of(_import(name))
    return build


# ---------------------------------------------------------------- test_events

def _patch_handles(testcase):
    """Make asyncio.Handle/TimerHandle the implementation's for one test."""
    if harness.target_loop_class().__module__.startswith("asyncio"):
        return
    import asyncio
    import asyncio.events
    import pyasync
    for mod in (asyncio, asyncio.events):
        for name, repl in (("Handle", pyasync.Handle),
                           ("TimerHandle", pyasync.TimerHandle)):
            p = mock.patch.object(mod, name, repl)
            p.start()
            testcase.addCleanup(p.stop)


def _build_test_events():
    mod = _import("test_events")
    test_utils = _import("utils")

    class PyasyncEventLoopTests(mod.UnixEventLoopTestsMixin,
                                mod.SubprocessTestsMixin,
                                test_utils.TestCase):
        """test_events' loop mixins on the loop under test."""

        def create_event_loop(self):
            return harness.new_loop()

    class PyasyncHandleTests(mod.HandleTests):
        def setUp(self):
            super().setUp()
            _patch_handles(self)

    class PyasyncTimerTests(mod.TimerTests):
        def setUp(self):
            super().setUp()
            _patch_handles(self)

    classes = [PyasyncEventLoopTests, PyasyncHandleTests, PyasyncTimerTests]
    for name in ("AbstractEventLoopTests", "PolicyTests", "TestPyGetEventLoop",
                 "TestCGetEventLoop", "TestServer"):
        cls = getattr(mod, name, None)
        if cls is not None:
            classes.append(cls)
    # Our variant classes live in this module; give them a readable home so
    # tracebacks and ids say where they come from.
    for cls in classes[:3]:
        cls.__module__ = f"{PACKAGE}.test_events"
        cls.__qualname__ = cls.__name__
    return classes


# ---------------------------------------------------------------- test_runners

def _build_test_runners():
    mod = _import("test_runners")

    def new_loop(self):
        loop = harness.new_loop()
        loop.shutdown_ag_run = False
        real_shutdown_asyncgens = loop.shutdown_asyncgens

        async def shutdown_asyncgens():
            loop.shutdown_ag_run = True
            await real_shutdown_asyncgens()

        loop.shutdown_asyncgens = shutdown_asyncgens
        return loop

    mod.BaseTest.new_loop = new_loop
    return _classes_of(mod)


# ---------------------------------------------------------------- test_pep492

def _build_test_pep492():
    mod = _import("test_pep492")
    test_utils = _import("utils")

    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = harness.new_loop()
        self.set_event_loop(self.loop)

    mod.BaseTest.setUp = setUp
    return _classes_of(mod)


# ---------------------------------------------------------------- registry

# name -> (builder, minimum Python version, why it is run)
MODULES = {
    "test_events": (_build_test_events, (3, 11),
                    "loop API: callbacks, timers, I/O, signals, executor, "
                    "networking, pipes, subprocesses; Handle; policy"),
    "test_runners": (_build_test_runners, (3, 11),
                     "asyncio.run() and asyncio.Runner"),
    "test_locks": (_plain("test_locks"), (3, 11), "locks on the loop"),
    "test_queues": (_plain("test_queues"), (3, 11), "queues on the loop"),
    "test_timeouts": (_plain("test_timeouts"), (3, 11),
                      "asyncio.timeout() (loop.call_at/time)"),
    "test_waitfor": (_plain("test_waitfor"), (3, 11), "asyncio.wait_for()"),
    "test_pep492": (_build_test_pep492, (3, 11), "async/await on the loop"),
    "test_context": (_plain("test_context"), (3, 11),
                     "contextvars across callbacks"),
    "test_taskgroups": (_plain("test_taskgroups"), (3, 11),
                        "TaskGroup on the loop"),
    "test_threads": (_plain("test_threads"), (3, 11),
                     "asyncio.to_thread() (default executor)"),
    "test_staggered": (_plain("test_staggered"), (3, 13),
                       "staggered_race() (timers, cancellation)"),
}


def _build_selftest():
    from . import selftest_cases
    return selftest_cases.build()


# Runnable by name (--module) but not part of the default run.
HIDDEN_MODULES = {
    "_selftest": (_build_selftest, (3, 11),
                  "synthetic tests checking the runner (run.py --selftest)"),
}


def _entry(name):
    return MODULES.get(name) or HIDDEN_MODULES[name]


def known(name):
    return name in MODULES or name in HIDDEN_MODULES


def available(name):
    builder, minver, _ = _entry(name)
    return sys.version_info[:2] >= minver


def build(name):
    builder, _, _ = _entry(name)
    return builder()
