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

Tasks and futures are counted too (the "census"), to show which classes the
tests really ran with:

* tasks of every class (pyasync.Task, asyncio's C or Python Task, test
  subclasses), when they register with asyncio: every task, whatever its
  class, calls asyncio.tasks._register_task() when it is created (pyasync's
  C Task too), which adds it to one WeakSet (_all_tasks on 3.11,
  _scheduled_tasks on 3.12/3.13, shared by asyncio's C and Python Tasks);
  that set's class is swapped for a subclass whose add() counts. An eager
  task (3.12+) that finishes within its first step never registers there:
  the pyasync ones are counted anyway (next point), asyncio's are not.
* pyasync.Future, pyasync.Task and their subclasses made by calling the
  class (tests' self.cls(...), eager task factories, asyncio code), by
  wrapping pyasync.Future.__new__ (Task and subclasses inherit it); a task
  counted there is not counted again when it registers. __new__ and not
  __init__: __init__ is where a Future records its _source_traceback in
  debug mode, and a wrapper frame there would show in it (tests check that
  traceback frame by frame). The original __new__ is object.__new__ (the C
  types have no tp_new of their own), so the arguments are checked by
  __init__ as before. pyasync's loop.create_future() and create_task() make
  their objects in C without calling the class: those futures are not
  counted (those tasks are, when they register). asyncio.Future instances
  cannot be counted at all: the C type is immutable.
"""
import asyncio
import asyncio.base_events
import asyncio.unix_events
import collections
import weakref
import importlib.machinery
import os
import sys

IMPLS = ("pyasync", "asyncio")

# class qualname -> number of instances created; reset by the worker per test.
created = collections.Counter()
# "KIND:class qualname" -> number of instances (see the module doc), KIND
# being impl_future, impl_task or other_task; reset by the worker per test.
census = collections.Counter()
# the tasks _count_new() counted (not to be counted again when registered)
_counted_tasks = weakref.WeakSet()
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


def _qualname(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _count_new(base, kind_of):
    """Count the instances of `base` and its subclasses by wrapping
    base.__new__ (see the module doc)."""
    orig = base.__new__
    plain = orig is object.__new__

    def __new__(cls, *args, **kwargs):
        kind = kind_of(cls)
        census[f"{kind}:{_qualname(cls)}"] += 1
        obj = orig(cls) if plain else orig(cls, *args, **kwargs)
        if kind == "impl_task":
            _counted_tasks.add(obj)
        return obj

    base.__new__ = __new__


def _count_registrations():
    """Count the tasks that register with asyncio, by class, but for those
    _count_new() counted already."""
    import asyncio.tasks
    registry = getattr(asyncio.tasks, "_scheduled_tasks", None)
    if registry is None:
        registry = asyncio.tasks._all_tasks  # 3.11
    if not isinstance(registry, weakref.WeakSet):
        return False

    class CountingWeakSet(type(registry)):
        def add(self, item):
            cls = type(item)
            if item not in _counted_tasks:
                kind = ("impl_task" if issubclass(cls, _impl_task_classes)
                        else "other_task")
                census[f"{kind}:{_qualname(cls)}"] += 1
            return super().add(item)

    registry.__class__ = CountingWeakSet
    return True


_impl_task_classes = ()
# what the census can count: the implementation's futures (pyasync only:
# asyncio's C Future type is immutable), and tasks (all classes)
_census_ok = {"futures": False, "tasks": False}


def clear_census():
    census.clear()
    _counted_tasks.clear()


def split_census(counter):
    """{"impl_futures": n, "impl_tasks": n, "other_tasks": {class: n}}."""
    out = {"impl_futures": 0, "impl_tasks": 0, "other_tasks": {}}
    for key, n in counter.items():
        kind, name = key.split(":", 1)
        if kind == "impl_future":
            out["impl_futures"] += n
        elif kind == "impl_task":
            out["impl_tasks"] += n
        else:
            out["other_tasks"][name] = n
    return out


def future_class():
    """The Future class of the implementation under test."""
    if _impl == "pyasync":
        import pyasync
        return pyasync.Future
    return asyncio.Future


def task_class():
    """The Task class of the implementation under test."""
    if _impl == "pyasync":
        import pyasync
        return pyasync.Task
    return asyncio.Task


def taskgroup_class():
    """The implementation's own TaskGroup, if it has one (pyasync.TaskGroup,
    asyncio.TaskGroup for asyncio), else None."""
    if _impl == "pyasync":
        import pyasync
        return getattr(pyasync, "TaskGroup", None)
    return asyncio.TaskGroup


def create_eager_task_factory(task_cls):
    """The implementation's create_eager_task_factory() (3.12+)."""
    if _impl == "pyasync":
        import pyasync
        return pyasync.create_eager_task_factory(task_cls)
    return asyncio.create_eager_task_factory(task_cls)


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


class _BaseEventsLogger:
    """Stands for asyncio.base_events.logger, looked up at each use."""

    def __getattr__(self, name):
        return getattr(asyncio.base_events.logger, name)


def _follow_base_events_logger():
    """Many tests check what the loop logs by patching
    asyncio.base_events.logger (the "asyncio" logger, as the stdlib loop's
    default exception handler sees it). pyasync's default exception handler
    logs to the same logger through its own module global,
    pyasync._loop.logger, which such a patch does not reach: make that
    global follow asyncio.base_events.logger, so that the tests see (and
    check) what pyasync logs. Without a patch it is the same logger."""
    import pyasync._loop
    if getattr(pyasync._loop, "logger", None) is asyncio.base_events.logger:
        pyasync._loop.logger = _BaseEventsLogger()


def install(impl):
    """Route default loop creation to `impl` and start counting loops,
    futures and tasks."""
    global _impl, _target_classes, _impl_task_classes
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
        _impl_task_classes = (pyasync.Task,)
        _follow_base_events_logger()

        def kind_of(cls):
            return ("impl_task" if issubclass(cls, pyasync.Task)
                    else "impl_future")
        _count_new(pyasync.Future, kind_of)
        if "__new__" in vars(pyasync.Task):
            # A tp_new of its own: the Future wrapper is not inherited.
            _count_new(pyasync.Task, kind_of)
        _census_ok["futures"] = True
        _census_ok["tasks"] = _count_registrations()
    else:
        _target_classes = (asyncio.SelectorEventLoop,)
        _impl_task_classes = (asyncio.Task,)
        _census_ok["tasks"] = _count_registrations()
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
    clear_census()


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
        "asyncio_debug": bool(asyncio.coroutines._is_debug_mode()),
        "census_futures": _census_ok["futures"],
        "census_tasks": _census_ok["tasks"],
    }
    if _impl == "pyasync":
        import pyasync
        loop = pyasync.new_event_loop()
        try:
            info["poller"] = loop._poller
        finally:
            loop.close()
        created.clear()
        clear_census()
        info["PYASYNC_POLLER"] = os.environ.get("PYASYNC_POLLER", "")
        info["pyasync"] = pyasync._core.__file__
    return info
