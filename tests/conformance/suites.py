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
test_futures, test_futures2, test_tasks, test_eager_task_factory
    Mixins parametrised by the Future/Task classes, run with the
    implementation's classes (pyasync.Future/pyasync.Task), on its loop and
    on test_utils.TestLoop: see "Future/Task-parametrised suites" below.

In --impl asyncio (control) mode the same adapters are used with the
standard library's loop, so test ids are identical in both modes.
"""
import importlib
import inspect
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


# ---------------------------------------------------------------- test_subprocess

def _build_test_subprocess():
    """SubprocessMixin (every subprocess behaviour) on the loop under test.
    The module's own Subprocess*WatcherTests run the same mixin on stdlib
    loops with each of asyncio's child watchers, and MultiLoopChildWatcher-
    and GenericWatcherTests test those watcher classes: not run (pyasync's
    loop uses no child watcher). SubprocessTransportTests (asyncio's base
    transport class, on a test loop) runs as it is."""
    mod = _import("test_subprocess")
    test_utils = _import("utils")

    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = harness.new_loop()
        self.set_event_loop(self.loop)

    tests = _named("test_subprocess", "PyasyncSubprocessTests",
                   (mod.SubprocessMixin, test_utils.TestCase), {"setUp": setUp})
    return [tests] + [getattr(mod, name) for name in ("SubprocessTransportTests",)
                      if hasattr(mod, name)]


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


# ------------------------------------------------- Future/Task-parametrised suites
#
# test_futures, test_tasks, test_futures2 and test_eager_task_factory are
# written as mixins parametrised by the Future/Task classes (the module runs
# them for asyncio's C and Python classes: CFutureTests, PyFutureTests,
# CTask_CFuture_Tests, ...). We run the mixins with the implementation's
# classes instead (harness.future_class()/task_class(): pyasync.Future and
# pyasync.Task, or asyncio.Future/Task in --impl asyncio). The C/Py variants
# of the modules themselves are not run: they test asyncio's classes.
#
# Most of these mixins make their loop with test_utils.TestCase.
# new_test_loop(): test_utils.TestLoop, a stdlib BaseEventLoop with a
# virtual clock driven by a generator. Each such class is run twice:
#
#   NAME            new_test_loop() returns a loop of the implementation
#                   under test (a pyasync loop): the classes under test on
#                   their own loop (pyasync's fast paths). A test that needs
#                   the virtual clock (it passes a time generator to
#                   new_test_loop()) is skipped at that point as excluded,
#                   with the reason VCLOCK; it runs in NAME_OnTestLoop.
#   NAME_OnTestLoop the mixin on test_utils.TestLoop, as CPython runs it:
#                   the classes under test on a foreign loop (an
#                   asyncio.BaseEventLoop). Counted as "other loops".
#
# (test_tasks also gives every loop new_test_loop() makes its classes:
# _variants(each_loop=...).)

VCLOCK = ("excluded: needs test_utils.TestLoop's virtual clock (passes a time "
          "generator to new_test_loop()); runs in the _OnTestLoop variant")


def _impl_loop_new_test_loop(self, gen=None):
    if gen is not None:
        raise unittest.SkipTest(VCLOCK)
    loop = harness.new_loop()
    self.set_event_loop(loop)
    return loop


def _variants(module, name, bases, attrs=None, on_impl_loop=True,
              on_test_loop=True, each_loop=None):
    """[NAME (implementation's loop), NAME_OnTestLoop (TestLoop)] classes
    built from `bases` (mixins first, test_utils.TestCase last).
    each_loop(test, loop), if given, is applied to every loop the test
    makes with new_test_loop()."""
    attrs = dict(attrs or {})
    out = []

    def with_each_loop(make):
        if each_loop is None:
            return make

        def new_test_loop(self, gen=None):
            loop = make(self, gen)
            each_loop(self, loop)
            return loop
        return new_test_loop

    test_utils = _import("utils")
    if on_impl_loop:
        out.append(_named(module, name, bases, dict(
            attrs, new_test_loop=with_each_loop(_impl_loop_new_test_loop))))
    if on_test_loop:
        out.append(_named(module, f"{name}_OnTestLoop", bases, dict(
            attrs,
            new_test_loop=with_each_loop(test_utils.TestCase.new_test_loop))))
    return out


def _named(module, name, bases, attrs):
    cls = type(name, tuple(bases), dict(attrs))
    cls.__module__ = f"{PACKAGE}.{module}"
    cls.__qualname__ = name
    return cls


def _impl_core_module():
    """The C extension module of the implementation (pyasync._core or
    _asyncio), for the gc.get_referents() robustness test."""
    if harness.future_class().__module__.startswith("pyasync"):
        import pyasync._core
        return pyasync._core
    import _asyncio
    return _asyncio


# ---------------------------------------------------------------- test_futures

def _build_test_futures():
    mod = _import("test_futures")
    test_utils = _import("utils")
    Future = harness.future_class()

    class SubFuture(Future):
        pass
    SubFuture.__qualname__ = SubFuture.__name__ = f"Sub{Future.__name__}"

    # CFutureTests' extra tests check a C Future's robustness: deleting
    # C-level attributes (test_future_del_segfault), gc.get_referents() of
    # the extension module after a FutureIter is freed (gh-122695, 3.13's
    # test_future_iter_get_referents_segfault): meaningful for any C Future,
    # run when the module has them. The second asks _asyncio; ours asks the
    # implementation's extension module (pyasync._core) instead.
    def test_future_iter_get_referents_segfault(self):
        import gc
        core = _impl_core_module()
        it = iter(self._new_future(loop=self.loop))
        del it
        gc.get_referents(core)
        gc.collect()

    cfuture_extras = {}
    for name, func in mod.CFutureTests.__dict__.items():
        if name == "test_future_iter_get_referents_segfault":
            func = test_future_iter_get_referents_segfault
        if name.startswith("test_"):
            cfuture_extras[name] = func

    classes = []
    classes += _variants("test_futures", "PyasyncFutureTests",
                         (mod.BaseFutureTests, test_utils.TestCase),
                         dict(cls=Future, **cfuture_extras))
    classes += _variants("test_futures", "PyasyncSubFutureTests",
                         (mod.BaseFutureTests, test_utils.TestCase),
                         dict(cls=SubFuture))
    classes += _variants(
        "test_futures", "PyasyncFutureDoneCallbackTests",
        (mod.BaseFutureDoneCallbackTests, test_utils.TestCase),
        dict(_new_future=lambda self: Future(loop=self.loop)))
    classes += _variants(
        "test_futures", "PyasyncSubFutureDoneCallbackTests",
        (mod.BaseFutureDoneCallbackTests, test_utils.TestCase),
        dict(_new_future=lambda self: SubFuture(loop=self.loop)))
    classes += _variants(
        "test_futures", "PyasyncFutureInheritanceTests",
        (mod.BaseFutureInheritanceTests, test_utils.TestCase),
        dict(_get_future_cls=lambda self: Future))
    return classes


# ---------------------------------------------------------------- test_futures2

def _build_test_futures2():
    mod = _import("test_futures2")
    Task = harness.task_class()

    class PyasyncFutureReprTests(mod.FutureReprTests):
        """FutureReprTests makes its task with asyncio.Task(): make it the
        implementation's Task (the module's class runs too, as it is)."""

        def setUp(self):
            super().setUp()
            p = mock.patch("asyncio.Task", Task)
            p.start()
            self.addCleanup(p.stop)

    classes = [
        _named("test_futures2", "PyasyncFutureTests",
               (mod.FutureTests, unittest.IsolatedAsyncioTestCase),
               {"cls": Task}),
        mod.FutureReprTests,
    ]
    # (3.11's FutureReprTests makes its task with wait_for(), already the
    # loop's task: no variant needed.)
    if "asyncio.Task(" in inspect.getsource(mod.FutureReprTests):
        classes.append(_named("test_futures2", "PyasyncFutureReprTests",
                              (PyasyncFutureReprTests,), {}))
    return classes


# ---------------------------------------------------------------- test_tasks

def _ready_len(loop):
    n = getattr(loop, "_ready_count", None)
    return n if n is not None else len(loop._ready)


def _build_test_tasks():
    mod = _import("test_tasks")
    test_utils = _import("utils")
    Future = harness.future_class()
    Task = harness.task_class()

    # CTask_CFuture_Tests' extra test: deleting a C-level attribute of a C
    # Task must raise, not crash. (test_refleaks_in_task___init__ needs a
    # debug build of CPython: support.refcount_test skips it otherwise.)
    ctask_extras = {k: v for k, v in mod.CTask_CFuture_Tests.__dict__.items()
                    if k.startswith("test_")}

    # BaseTaskTests.setUp() makes self.loop make the classes under test
    # (set_task_factory(self.new_task), create_future = self.new_future),
    # but about 20 of its tests make further loops with
    # self.new_test_loop(gen) and leave them with the loop's own classes
    # (asyncio's Task and Future on a TestLoop). Do the same to every loop
    # new_test_loop() makes, so that those tests too run with the classes
    # under test.
    def each_loop(self, loop):
        loop.set_task_factory(self.new_task)
        loop.create_future = lambda: self.new_future(loop)

    classes = []
    # The module's CTask_CFuture_Tests: BaseTaskTests + SetMethodsTest.
    classes += _variants(
        "test_tasks", "PyasyncTask_PyasyncFuture_Tests",
        (mod.BaseTaskTests, mod.SetMethodsTest, test_utils.TestCase),
        dict(Task=Task, Future=Future, **ctask_extras), each_loop=each_loop)
    # The module's *_SubclassTests: subclasses of both classes (and one more
    # test, test_subclasses_ctask_cfuture, added by add_subclass_tests).
    for cls in _variants("test_tasks", "PyasyncTask_PyasyncFuture_SubclassTests",
                         (mod.BaseTaskTests, test_utils.TestCase),
                         dict(Task=Task, Future=Future), each_loop=each_loop):
        classes.append(mod.add_subclass_tests(cls))
    # Mixed: the implementation's Task awaiting asyncio's (C) futures made
    # by loop.create_future(), and asyncio's Task awaiting the
    # implementation's futures (the module's CTask_PyFuture/PyTask_CFuture).
    classes += _variants(
        "test_tasks", "PyasyncTask_CFuture_Tests",
        (mod.BaseTaskTests, test_utils.TestCase),
        dict(Task=Task, Future=asyncio_future()), each_loop=each_loop)
    classes += _variants(
        "test_tasks", "CTask_PyasyncFuture_Tests",
        (mod.BaseTaskTests, test_utils.TestCase),
        dict(Task=asyncio_task(), Future=Future), each_loop=each_loop)

    # asyncio.current_task() on tasks of the implementation (the module's
    # Py/CCurrentLoopTests test asyncio's own current_task functions).
    classes.append(_named(
        "test_tasks", "PyasyncCurrentLoopTests",
        (mod.BaseCurrentLoopTests, test_utils.TestCase),
        {"current_task": staticmethod(asyncio_current_task()),
         "new_task": lambda self, coro: Task(coro, loop=self.loop)}))

    # gather(): GatherTestsBase makes its two loops with new_test_loop() and
    # drains them with `while loop._ready`; a pyasync loop has no _ready
    # deque (docs/differences.md), it has _ready_count.
    def _run_loop(self, loop):
        while _ready_len(loop):
            test_utils.run_briefly(loop)

    # test_issue46672 patches asyncio.base_events.BaseEventLoop.
    # call_exception_handler (a class attribute) and then asserts on
    # self.one_loop.call_exception_handler: patch the class of the loop too
    # (a pyasync.Loop is not a BaseEventLoop).
    def patch_loop_class(test):
        def wrapper(self):
            with mock.patch.object(type(self.one_loop),
                                   "call_exception_handler"):
                return test(self)
        wrapper.__name__ = test.__name__
        wrapper.__qualname__ = test.__qualname__
        return wrapper

    for name in ("FutureGatherTests", "CoroutineGatherTests"):
        base = getattr(mod, name)
        attrs = {"_run_loop": _run_loop}
        if hasattr(base, "test_issue46672"):
            attrs["test_issue46672"] = patch_loop_class(base.test_issue46672)
        classes += _variants("test_tasks", f"Pyasync{name}", (base,), attrs,
                             on_test_loop=False)

    # Loop-generic classes: they make their loop with asyncio.new_event_loop()
    # (a pyasync loop through the policy) and their tasks with
    # loop.create_task() (pyasync.Task).
    for name in ("CTask_Future_Tests", "RunCoroutineThreadsafeTests",
                 "SleepTests", "CompatibilityTests"):
        cls = getattr(mod, name, None)
        if cls is not None:
            classes.append(cls)
    return classes


def asyncio_future():
    import asyncio
    return asyncio.Future


def asyncio_task():
    import asyncio
    return asyncio.Task


def asyncio_current_task():
    import asyncio
    return asyncio.current_task


# ---------------------------------------------------------------- test_taskgroups

def _build_test_taskgroups():
    """The module's classes as they are (asyncio.TaskGroup, with the loop's
    tasks), and TestTaskGroup again with the implementation's TaskGroup
    (pyasync.TaskGroup) in place of asyncio.TaskGroup: the module calls
    taskgroups.TaskGroup() (asyncio.taskgroups) and asyncio.TaskGroup()."""
    mod = _import("test_taskgroups")
    classes = _classes_of(mod)
    TaskGroup = harness.taskgroup_class()
    if TaskGroup is None:
        return classes

    def setUp(self):
        mod.TestTaskGroup.setUp(self)
        import asyncio
        import asyncio.taskgroups
        for target in (asyncio, asyncio.taskgroups):
            p = mock.patch.object(target, "TaskGroup", TaskGroup)
            p.start()
            self.addCleanup(p.stop)

    classes.append(_named("test_taskgroups", "PyasyncTestTaskGroup",
                          (mod.TestTaskGroup,), {"setUp": setUp}))
    return classes


# ------------------------------------------------------- test_eager_task_factory

def _build_test_eager_task_factory():
    mod = _import("test_eager_task_factory")
    test_utils = _import("utils")
    Task = harness.task_class()

    # CEagerTaskFactoryLoopTests' extra tests: test_issue122332 (3.13: a C
    # Task drops its coroutine when done, get_coro() is None) is behaviour of
    # asyncio.Task; test_issue105987 runs _asyncio._swap_current_task() in a
    # subprocess and never touches the implementation: not run.
    extras = {}
    ctests = getattr(mod, "CEagerTaskFactoryLoopTests", None)
    if ctests is not None and "test_issue122332" in ctests.__dict__:
        extras["test_issue122332"] = ctests.__dict__["test_issue122332"]

    def setUp_impl_factory(self):
        mod.EagerTaskFactoryLoopTests.setUp(self)
        self.eager_task_factory = harness.create_eager_task_factory(self.Task)
        self.loop.set_task_factory(self.eager_task_factory)

    return [
        # The module's CEagerTaskFactoryLoopTests:
        # asyncio.create_eager_task_factory(Task) with the implementation's Task.
        _named("test_eager_task_factory", "PyasyncEagerTaskFactoryLoopTests",
               (mod.EagerTaskFactoryLoopTests, test_utils.TestCase),
               dict(Task=Task, **extras)),
        # The same tests with the implementation's own factory
        # (pyasync.create_eager_task_factory).
        _named("test_eager_task_factory",
               "PyasyncFactoryEagerTaskFactoryLoopTests",
               (mod.EagerTaskFactoryLoopTests, test_utils.TestCase),
               dict(Task=Task, setUp=setUp_impl_factory, **extras)),
        _named("test_eager_task_factory", "PyasyncNonEagerTests",
               (mod.BaseNonEagerTaskFactoryTests, test_utils.TestCase),
               {"Task": Task}),
        _named("test_eager_task_factory", "PyasyncEagerTests",
               (mod.BaseEagerTaskFactoryTests, test_utils.TestCase),
               {"Task": Task}),
    ]


# ------------------------------------------------------------ networking suites
#
# test_sock_lowlevel, test_sendfile, test_server, test_ssl and test_sslproto
# write their tests as mixins (or base classes) and pick the loop in small
# per-loop subclasses (SelectorEventLoopTests, EPollEventLoopTests, ...,
# which build stdlib selector loops) through a create_event_loop() or
# new_loop() hook. Those per-loop subclasses are not run; each mixin runs
# once in a Pyasync<Mixin> class whose hook returns a loop of the
# implementation under test. Classes with no hook of their own (they use
# the policy: asyncio.new_event_loop(), IsolatedAsyncioTestCase) run as
# they are.

_LOOP_HOOKS = ("create_event_loop", "new_loop")


def _picks_own_loop(cls):
    return any(hook in vars(cls) for hook in _LOOP_HOOKS)


def _on_impl_loop(name, variants):
    """variants: [(new class name, (base class names in the module), hook)]."""
    def build():
        mod = _import(name)
        test_utils = _import("utils")
        classes = [cls for cls in _classes_of(mod) if not _picks_own_loop(cls)]
        for new_name, base_names, hook in variants:
            bases = tuple(getattr(mod, b) for b in base_names)
            if not any(issubclass(b, unittest.TestCase) for b in bases):
                bases += (test_utils.TestCase,)
            cls = _named(name, new_name, bases,
                         {hook: lambda self: harness.new_loop()})
            classes = [c for c in classes if c not in bases] + [cls]
        return classes
    return build


def _set_up_on_impl_loop(module, new_name, base):
    """A subclass of `base` (a test_utils.TestCase whose setUp() makes an
    asyncio.SelectorEventLoop() and sets it) whose setUp() makes the loop
    under test instead."""
    def setUp(self):
        super(base, self).setUp()  # test_utils.TestCase's, skipping base's own
        self.loop = harness.new_loop()
        self.set_event_loop(self.loop)
    return _named(module, new_name, (base,), {"setUp": setUp})


def _build_test_unix_events():
    """TestFunctional and TestFork as they are (their loops come from the
    policy); SelectorEventLoopUnixSocketTests (create_unix_server and
    create_unix_connection argument checks) with a pyasync loop in place of
    the asyncio.SelectorEventLoop() its setUp() makes. The other classes test
    the standard library's pipe transports, signal handling and child
    watchers through their internals (mocked selectors, _sock_sendfile_native_impl)."""
    mod = _import("test_unix_events")
    unix_sockets = _set_up_on_impl_loop("test_unix_events", "PyasyncUnixSocketTests",
                                        mod.SelectorEventLoopUnixSocketTests)
    return [mod.TestFunctional, unix_sockets] + ([mod.TestFork] if hasattr(mod, "TestFork")
                                                 else [])


def _build_test_base_events():
    """BaseEventLoopWithSelectorTests (create_connection, create_server,
    create_datagram_endpoint and getnameinfo, their argument checks and
    error paths, mostly with the socket module or the loop's own methods
    mocked) with a pyasync loop in place of the asyncio.SelectorEventLoop()
    of its setUp(); RunningLoopTests as it is. The other classes test
    BaseEventLoop itself (BaseEventLoop() instances, _run_once, _ready) or
    BaseSelectorEventLoop's sendfile fallback through its internals."""
    mod = _import("test_base_events")
    with_loop = _set_up_on_impl_loop("test_base_events", "PyasyncEventLoopWithSocketsTests",
                                     mod.BaseEventLoopWithSelectorTests)
    return [with_loop, mod.RunningLoopTests]


def _outside(module, class_names=None):
    """Classes (None: all) of a test module outside test.test_asyncio that
    run asyncio programs on loops from the policy."""
    def build():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            # 3.11 keeps unittest's tests in unittest.test.
            mod = importlib.import_module(module.replace("test.test_unittest.",
                                                         "unittest.test."))
        if class_names is None:
            return _classes_of(mod)
        return [getattr(mod, c) for c in class_names]
    return build


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
    "test_taskgroups": (_build_test_taskgroups, (3, 11),
                        "asyncio.TaskGroup on the loop, and the "
                        "implementation's TaskGroup"),
    "test_threads": (_plain("test_threads"), (3, 11),
                     "asyncio.to_thread() (default executor)"),
    "test_staggered": (_plain("test_staggered"), (3, 13),
                       "staggered_race() (timers, cancellation)"),
    "test_futures": (_build_test_futures, (3, 11),
                     "Future (the implementation's class), on its loop "
                     "and on test_utils.TestLoop"),
    "test_futures2": (_build_test_futures2, (3, 11),
                      "Task tracebacks, exception handler context, repr"),
    "test_tasks": (_build_test_tasks, (3, 11),
                   "Task and Future (the implementation's classes), on its "
                   "loop and on test_utils.TestLoop; gather, current_task"),
    "test_eager_task_factory": (_build_test_eager_task_factory, (3, 12),
                                "eager task factories with the "
                                "implementation's Task"),
    "test_sock_lowlevel": (_on_impl_loop("test_sock_lowlevel", [
        ("PyasyncSockTests", ("BaseSockTestsMixin",), "create_event_loop")]), (3, 11),
        "sock_* operations, create_connection/create_server, Unix sockets"),
    "test_subprocess": (_build_test_subprocess, (3, 11),
                        "subprocess_exec/subprocess_shell, asyncio.subprocess"),
    "test_streams": (_plain("test_streams"), (3, 11),
                     "asyncio streams on the loop's transports"),
    "test_server": (_on_impl_loop("test_server", [
        ("PyasyncStartServerTests", ("BaseStartServer",), "new_loop")]), (3, 11),
        "Server objects: start_serving, serve_forever, close, wait_closed"),
    "test_sendfile": (_on_impl_loop("test_sendfile", [
        ("PyasyncSendfileTests", ("SendfileTestsBase",), "create_event_loop")]), (3, 11),
        "loop.sendfile() and sock_sendfile(), native and fallback"),
    "test_buffered_proto": (_on_impl_loop("test_buffered_proto", [
        ("PyasyncBufferedProtocolTests", ("BaseTestBufferedProtocol",), "new_loop")]),
        (3, 11), "BufferedProtocol (get_buffer/buffer_updated) over create_connection"),
    "test_base_events": (_build_test_base_events, (3, 11),
                         "create_connection/create_server/create_datagram_endpoint "
                         "argument checks and error paths"),
    "test_unix_events": (_build_test_unix_events, (3, 11),
                         "create_unix_server/create_unix_connection and add_reader "
                         "argument checks; asyncio.run(), subprocesses, signals after fork"),
    "test_asyncgen": (_outside("test.test_asyncgen", ["AsyncGenAsyncioTest"]), (3, 11),
                      "async generators on the loop: aclose()/athrow(), the "
                      "firstiter/finalizer hooks, shutdown_asyncgens()"),
    "test_contextlib_async": (_outside("test.test_contextlib_async"), (3, 11),
                              "asynccontextmanager, AsyncExitStack, aclosing "
                              "under asyncio.run()"),
    "test_async_case": (_outside("test.test_unittest.test_async_case", ["TestAsyncCase"]),
                        (3, 11), "unittest.IsolatedAsyncioTestCase: its runner, "
                        "cleanups, cancellation, debug mode"),
    "test_coroutines": (_outside("test.test_coroutines", ["CoroAsyncIOCompatTest"]),
                        (3, 11), "a coroutine-based context manager under "
                        "run_until_complete()"),
    "test_logging": (_outside("test.test_logging", ["LogRecordTest", "BasicConfigTest"]),
                     (3, 12), "logging's taskName: the running task's name under "
                     "asyncio.Runner (LogRecord.taskName, %(taskName)s)"),
    "test_ssl": (_on_impl_loop("test_ssl", [
        ("PyasyncTestSSL", ("TestSSL",), "new_loop")]), (3, 11),
        "TLS connections, servers and start_tls over the loop's transports"),
    "test_sslproto": (_on_impl_loop("test_sslproto", [
        ("PyasyncStartTLSTests", ("BaseStartTLS",), "new_loop")]), (3, 11),
        "start_tls() and asyncio.sslproto over the loop's transports"),
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
