"""pyasync.EventLoopPolicy, pyasync.install(), pyasync.run() and
asyncio.Runner / asyncio.run() with pyasync's loop factory.

The expected behaviour is CPython's on the running version: the policy tests
play the same scenario against asyncio.DefaultEventLoopPolicy and
pyasync.EventLoopPolicy and compare what happened (results, exceptions,
warnings with where they point); the runner tests are parametrised over the
stdlib way and the pyasync way of running a coroutine and check the same
contract on both.
"""
import asyncio
import contextvars
import os
import signal
import sys
import threading
import warnings

import pytest

import pyasync
from pyasync import _compat

STDLIB_LOOP = asyncio.SelectorEventLoop  # what the default policy creates


@pytest.fixture(autouse=True)
def default_policy():
    """Every test starts and ends with a fresh default policy."""
    asyncio.set_event_loop_policy(None)
    yield
    asyncio.set_event_loop_policy(None)


# ====================================================================== policy

POLICIES = {
    "asyncio": (asyncio.DefaultEventLoopPolicy, STDLIB_LOOP),
    "pyasync": (pyasync.EventLoopPolicy, pyasync.Loop),
}


class Transcript:
    """What a scenario did, in terms that do not depend on the loop class:
    loops are named loop#1, loop#2... in order of appearance, and said to be
    of the policy's loop class or not."""

    def __init__(self, loop_class):
        self.loop_class = loop_class
        self.events = []
        self.loops = []

    def describe(self, value):
        if isinstance(value, asyncio.AbstractEventLoop):
            for i, known in enumerate(self.loops):
                if known is value:
                    break
            else:
                self.loops.append(value)
                i = len(self.loops) - 1
            kind = ("policy's loop class" if type(value) is self.loop_class
                    else f"other class {type(value).__name__}")
            return f"loop#{i + 1} ({kind})"
        return repr(value)

    def call(self, label, func, *args):
        result = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = func(*args)
            except Exception as exc:
                self.events.append((label, "raises", type(exc).__name__, str(exc)))
            else:
                self.events.append((label, "returns", self.describe(result)))
        for w in caught:
            # Where the warning points: it must be the caller's line (here),
            # whichever policy class is in between.
            where = ("caller" if (w.filename, w.lineno) == _CALL_SITE
                     else f"{w.filename}:{w.lineno}")
            self.events.append((label, "warns", w.category.__name__,
                                str(w.message), where))
        return result

    def note(self, label, value):
        self.events.append((label, "is", self.describe(value)))

    def close_loops(self):
        for loop in self.loops:
            if not loop.is_running() and not loop.is_closed():
                loop.close()


def _call_site():
    # (file, line) of the `result = func(*args)` line of Transcript.call.
    import inspect
    lines, start = inspect.getsourcelines(Transcript.call)
    offset = next(i for i, line in enumerate(lines) if "result = func(*args)" in line)
    return (os.path.abspath(__file__), start + offset)


_CALL_SITE = _call_site()


def in_thread(func, *args):
    """func(*args) in a new thread named 'worker': its result or exception."""
    out = {}

    def target():
        try:
            out["result"] = func(*args)
        except BaseException as exc:
            out["error"] = exc
    thread = threading.Thread(target=target, name="worker")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["result"]


# Scenarios: each takes (policy, transcript) and plays calls on the policy.

def scenario_implicit_loop(policy, t):
    # No loop set in the main thread: get_event_loop() creates one (with a
    # DeprecationWarning from 3.12) and keeps returning it.
    first = t.call("get_event_loop", policy.get_event_loop)
    t.call("get_event_loop again", policy.get_event_loop)
    t.call("is current", lambda: policy.get_event_loop() is first)


def scenario_module_get_event_loop(policy, t):
    # The same through asyncio.get_event_loop() (C-accelerated), with the
    # policy installed.
    asyncio.set_event_loop_policy(policy)
    t.call("asyncio.get_event_loop", asyncio.get_event_loop)
    t.call("asyncio.get_event_loop again", asyncio.get_event_loop)
    t.call("policy agrees", lambda: asyncio.get_event_loop() is policy.get_event_loop())


def scenario_set_none(policy, t):
    t.call("set_event_loop(None)", policy.set_event_loop, None)
    t.call("get_event_loop", policy.get_event_loop)
    asyncio.set_event_loop_policy(policy)
    t.call("asyncio.get_event_loop", asyncio.get_event_loop)


def scenario_set_loop(policy, t):
    loop = t.call("new_event_loop", policy.new_event_loop)
    t.call("set_event_loop(loop)", policy.set_event_loop, loop)
    t.call("get_event_loop", policy.get_event_loop)
    t.call("set_event_loop(None)", policy.set_event_loop, None)
    t.call("get_event_loop after unset", policy.get_event_loop)


def scenario_set_wrong_type(policy, t):
    t.call("set_event_loop(object())", policy.set_event_loop, object())
    t.call("set_event_loop(42)", policy.set_event_loop, 42)


def scenario_new_event_loop(policy, t):
    a = t.call("new_event_loop", policy.new_event_loop)
    b = t.call("new_event_loop again", policy.new_event_loop)
    t.call("distinct", lambda: a is not b)
    t.call("not running, not closed", lambda: (a.is_running(), a.is_closed()))
    # Creating a loop does not make it current.
    t.call("get_event_loop", policy.get_event_loop)


def scenario_other_thread(policy, t):
    t.call("get_event_loop in a thread",
           lambda: in_thread(policy.get_event_loop))

    def set_then_get():
        loop = policy.new_event_loop()
        policy.set_event_loop(loop)
        try:
            return policy.get_event_loop() is loop, type(loop) is t.loop_class
        finally:
            policy.set_event_loop(None)
            loop.close()
    t.call("set then get in a thread", lambda: in_thread(set_then_get))
    # The thread's loop is not the main thread's.
    t.call("main thread get_event_loop", policy.get_event_loop)


def scenario_running_loop(policy, t):
    asyncio.set_event_loop_policy(policy)
    loop = t.call("new_event_loop", policy.new_event_loop)

    async def inside():
        return (asyncio.get_event_loop() is loop,
                asyncio.get_running_loop() is loop)
    t.call("run_until_complete", loop.run_until_complete, inside())
    # Running a loop does not make it the current one: this makes loop#2.
    t.call("get_event_loop after", policy.get_event_loop)


def scenario_after_asyncio_run(policy, t):
    # asyncio.run() sets its loop as the current one, then unsets it.
    asyncio.set_event_loop_policy(policy)

    async def main():
        return (type(asyncio.get_running_loop()) is t.loop_class,
                policy.get_event_loop() is asyncio.get_running_loop())
    t.call("asyncio.run", asyncio.run, main())
    t.call("get_event_loop after run", policy.get_event_loop)
    t.call("asyncio.get_event_loop after run", asyncio.get_event_loop)


SCENARIOS = [
    scenario_implicit_loop,
    scenario_module_get_event_loop,
    scenario_set_none,
    scenario_set_loop,
    scenario_set_wrong_type,
    scenario_new_event_loop,
    scenario_other_thread,
    scenario_running_loop,
    scenario_after_asyncio_run,
]


def play(scenario, name):
    policy_class, loop_class = POLICIES[name]
    policy = policy_class()
    t = Transcript(loop_class)
    try:
        scenario(policy, t)
    finally:
        t.close_loops()
        asyncio.set_event_loop_policy(None)
    return t.events


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[9:])
def test_policy_matches_default_policy(scenario):
    reference = play(scenario, "asyncio")
    ours = play(scenario, "pyasync")
    assert ours == reference
    # Every loop the scenario saw was of the policy's own class.
    assert not any("other class" in str(event) for event in ours), ours


def test_implicit_loop_per_version():
    # What the comparison above compares, spelled out for this version.
    events = play(scenario_implicit_loop, "pyasync")
    deprecation = ("get_event_loop", "warns", "DeprecationWarning",
                   "There is no current event loop", "caller")
    if _compat.PY312:
        assert events[:2] == [
            ("get_event_loop", "returns", "loop#1 (policy's loop class)"),
            deprecation,
        ]
    else:
        assert events[0] == ("get_event_loop", "returns",
                             "loop#1 (policy's loop class)")
        assert deprecation not in events
    # Only the first call creates a loop, and only it warns.
    assert ("get_event_loop again", "returns", "loop#1 (policy's loop class)") in events
    assert [e for e in events if e[1] == "warns"] == ([deprecation] if _compat.PY312 else [])


def test_no_current_loop_errors():
    events = play(scenario_set_none, "pyasync")
    error = ("raises", "RuntimeError",
             "There is no current event loop in thread 'MainThread'.")
    assert ("get_event_loop",) + error in events
    assert ("asyncio.get_event_loop",) + error in events
    events = play(scenario_other_thread, "pyasync")
    assert events[0] == ("get_event_loop in a thread", "raises", "RuntimeError",
                         "There is no current event loop in thread 'worker'.")
    assert events[1] == ("set then get in a thread", "returns", "(True, True)")


def test_policy_class():
    policy = pyasync.EventLoopPolicy()
    assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    # Libraries that check for the default policy keep working.
    assert isinstance(policy, asyncio.DefaultEventLoopPolicy)
    loop = policy.new_event_loop()
    try:
        assert type(loop) is pyasync.Loop
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


# ====================================================================== install()

def test_install_makes_pyasync_the_default():
    assert not isinstance(asyncio.get_event_loop_policy(), pyasync.EventLoopPolicy)
    pyasync.install()
    assert type(asyncio.get_event_loop_policy()) is pyasync.EventLoopPolicy
    loop = asyncio.new_event_loop()
    try:
        assert type(loop) is pyasync.Loop
    finally:
        loop.close()

    async def main():
        return type(asyncio.get_running_loop())
    assert asyncio.run(main()) is pyasync.Loop
    with asyncio.Runner() as runner:
        assert type(runner.get_loop()) is pyasync.Loop
        assert runner.run(main()) is pyasync.Loop


def test_install_twice_and_uninstall():
    pyasync.install()
    pyasync.install()
    assert type(asyncio.get_event_loop_policy()) is pyasync.EventLoopPolicy
    asyncio.set_event_loop_policy(None)
    loop = asyncio.new_event_loop()
    try:
        assert type(loop) is STDLIB_LOOP
    finally:
        loop.close()


def test_install_leaves_a_set_loop_alone():
    # install() replaces the policy: a loop set on the previous policy is not
    # carried over (as with any asyncio.set_event_loop_policy() call).
    old = asyncio.new_event_loop()
    asyncio.set_event_loop(old)
    try:
        pyasync.install()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            current = asyncio.get_event_loop()
        try:
            assert current is not old
            assert type(current) is pyasync.Loop
        finally:
            current.close()
    finally:
        old.close()


# ====================================================================== run()

def _asyncio_run(coro, **kwargs):
    return asyncio.run(coro, **kwargs)


def _installed_asyncio_run(coro, **kwargs):
    # What `python -m pyasync` gives an unchanged program.
    pyasync.install()
    return asyncio.run(coro, **kwargs)


def _asyncio_run_loop_factory(coro, **kwargs):
    return asyncio.run(coro, loop_factory=pyasync.new_event_loop, **kwargs)


RUNS = {
    "asyncio.run": (_asyncio_run, STDLIB_LOOP),
    "pyasync.run": (pyasync.run, pyasync.Loop),
    "asyncio.run+install": (_installed_asyncio_run, pyasync.Loop),
}
if _compat.ASYNCIO_RUN_HAS_LOOP_FACTORY:
    RUNS["asyncio.run(loop_factory)"] = (_asyncio_run_loop_factory, pyasync.Loop)


@pytest.fixture(params=list(RUNS))
def runner(request):
    """(run function, the loop class it must use)."""
    return RUNS[request.param]


def test_run_returns_result_on_its_loop(runner):
    run, loop_class = runner

    async def main(x):
        await asyncio.sleep(0.001)
        return type(asyncio.get_running_loop()), x * 2
    assert run(main(21)) == (loop_class, 42)


def test_run_propagates_exception(runner):
    run, _ = runner
    error = LookupError("from main")

    async def main():
        await asyncio.sleep(0)
        raise error
    with pytest.raises(LookupError) as info:
        run(main())
    assert info.value is error


@pytest.mark.parametrize("exc_class", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_run_propagates_base_exceptions(runner, exc_class):
    run, _ = runner
    loops = []

    async def main():
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        raise exc_class(7)
    with pytest.raises(exc_class):
        run(main())
    assert loops[0].is_closed()


@pytest.mark.parametrize("debug, env, expected", [
    (True, None, True),
    (False, None, False),
    (None, None, False),
    (None, "1", True),
    (False, "1", False),
])
def test_run_debug_flag(runner, monkeypatch, debug, env, expected):
    run, _ = runner
    if env is None:
        monkeypatch.delenv("PYTHONASYNCIODEBUG", raising=False)
    else:
        monkeypatch.setenv("PYTHONASYNCIODEBUG", env)

    if debug is None and sys.flags.dev_mode:
        expected = True  # python -X dev turns asyncio's debug mode on

    async def main():
        return asyncio.get_running_loop().get_debug()
    assert run(main(), debug=debug) is expected


def test_run_refuses_inside_running_loop(runner):
    run, _ = runner
    messages = []

    async def inner():
        return "never"

    async def main():
        coro = inner()
        try:
            run(coro)
        except RuntimeError as exc:
            messages.append(str(exc))
        finally:
            coro.close()
        return "outer done"
    # The outer run is always stdlib's: the inner call must refuse whatever
    # loop is running.
    assert asyncio.run(main()) == "outer done"
    with asyncio.Runner(loop_factory=pyasync.new_event_loop) as r:
        assert r.run(main()) == "outer done"
    assert messages == ["asyncio.run() cannot be called from a running event loop"] * 2


def test_run_rejects_non_coroutine(runner):
    run, _ = runner
    with pytest.raises(Exception) as reference:
        asyncio.run(42)
    with pytest.raises(type(reference.value)) as ours:
        run(42)
    assert str(ours.value) == str(reference.value)


def test_run_closes_loop_and_cancels_leftovers(runner):
    run, _ = runner
    seen = {}

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen["cancelled in loop"] = asyncio.get_running_loop()
            raise

    async def main():
        seen["loop"] = asyncio.get_running_loop()
        seen["task"] = asyncio.create_task(forever())
        await asyncio.sleep(0)
        return "done"
    assert run(main()) == "done"
    assert seen["loop"].is_closed()
    assert seen["task"].cancelled()
    assert seen["cancelled in loop"] is seen["loop"]


def test_run_closes_loop_after_exception(runner):
    run, _ = runner
    loops = []

    async def main():
        loops.append(asyncio.get_running_loop())
        raise ValueError
    with pytest.raises(ValueError):
        run(main())
    assert loops[0].is_closed()
    assert not loops[0].is_running()


def test_run_shuts_down_async_generators(runner):
    run, _ = runner
    log = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            # Closed by the loop, on the loop, before it is closed.
            loop = asyncio.get_running_loop()
            log.append(("finally", loop.is_closed()))

    async def main():
        gen = agen()
        log.append(("first", await gen.__anext__()))
        main.gen = gen  # kept alive: only the shutdown can close it
        return asyncio.get_running_loop()
    loop = run(main())
    assert log == [("first", 1), ("finally", False)]
    assert loop.is_closed()


def test_run_shuts_down_default_executor(runner):
    run, _ = runner
    threads = []

    def job():
        threads.append(threading.current_thread())
        return "job"

    async def main():
        return await asyncio.get_running_loop().run_in_executor(None, job)
    assert run(main()) == "job"
    assert threads and not threads[0].is_alive()


def test_run_context_is_a_copy(runner):
    run, _ = runner
    var = contextvars.ContextVar("var", default="outside")
    var.set("before run")

    async def main():
        seen = var.get()
        var.set("inside")
        return seen
    assert run(main()) == "before run"
    assert var.get() == "before run"


def test_run_ctrl_c_cancels_main_and_raises_keyboardinterrupt(runner, default_sigint):
    run, _ = runner
    log = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
    with pytest.raises(KeyboardInterrupt):
        run(main())
    assert log == ["cancelled"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("name", ["asyncio.run", "pyasync.run", "asyncio.run+install"])
def test_run_sets_and_unsets_current_loop(name):
    # asyncio.run() makes its loop the current one while it runs (so
    # policy.get_event_loop() inside finds it) and unsets it afterwards, so
    # get_event_loop() outside then raises instead of making a loop.
    run, _ = RUNS[name]

    async def main():
        policy = asyncio.get_event_loop_policy()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            current = policy.get_event_loop()
        if current is not asyncio.get_running_loop():
            current.close()
            return False, caught
        return True, caught
    assert run(main()) == (True, [])
    with pytest.raises(RuntimeError, match="There is no current event loop"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop()
            loop.close()


@pytest.mark.skipif(_compat.ASYNCIO_RUN_HAS_LOOP_FACTORY,
                    reason="asyncio.run() has loop_factory on this version")
def test_asyncio_run_has_no_loop_factory_before_312():
    async def main():
        pass
    coro = main()
    with pytest.raises(TypeError):
        asyncio.run(coro, loop_factory=pyasync.new_event_loop)
    coro.close()


# ====================================================================== asyncio.Runner

FACTORIES = {
    "asyncio": (STDLIB_LOOP, STDLIB_LOOP),
    "pyasync": (pyasync.new_event_loop, pyasync.Loop),
}


@pytest.fixture(params=list(FACTORIES))
def factory(request):
    """(loop_factory for asyncio.Runner, the loop class it makes)."""
    return FACTORIES[request.param]


def test_runner_reuses_its_loop(factory):
    loop_factory, loop_class = factory
    log = []

    async def start_background():
        async def background():
            await asyncio.sleep(0.01)
            log.append("background ran")
        start_background.task = asyncio.create_task(background())
        return asyncio.get_running_loop()

    async def later():
        await asyncio.sleep(0.05)
        return asyncio.get_running_loop()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        loop = runner.get_loop()
        assert type(loop) is loop_class
        assert runner.run(start_background()) is loop
        # The task started by the first run() goes on in the second.
        assert runner.run(later()) is loop
        assert log == ["background ran"]
        assert not loop.is_closed()
    assert loop.is_closed()


def test_runner_run_with_context(factory):
    loop_factory, _ = factory
    var = contextvars.ContextVar("var", default="default")

    async def main():
        old = var.get()
        var.set("changed")
        return old
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(main(), context=ctx) == "in ctx"
        assert ctx[var] == "changed"
        # Without a context, runs share the runner's own.
        assert runner.run(main()) == "default"
        assert runner.run(main()) == "changed"
    assert var.get() == "default"


def test_runner_close(factory):
    loop_factory, _ = factory
    log = []

    async def leftover():
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("leftover finally")

    async def agen():
        try:
            yield 1
        finally:
            log.append("agen finally")

    async def main():
        main.task = asyncio.create_task(leftover())
        main.gen = agen()
        await main.gen.__anext__()
        await asyncio.sleep(0)

    runner = asyncio.Runner(loop_factory=loop_factory)
    runner.run(main())
    loop = runner.get_loop()
    runner.close()
    assert loop.is_closed()
    assert main.task.cancelled()
    assert sorted(log) == ["agen finally", "leftover finally"]
    runner.close()  # twice is fine
    with pytest.raises(RuntimeError, match="Runner is closed"):
        runner.get_loop()
    coro = main()
    with pytest.raises(RuntimeError, match="Runner is closed"):
        runner.run(coro)
    coro.close()


def test_runner_debug(factory):
    loop_factory, _ = factory
    for debug in (True, False):
        with asyncio.Runner(debug=debug, loop_factory=loop_factory) as runner:
            assert runner.get_loop().get_debug() is debug


def test_runner_refuses_inside_running_loop(factory):
    loop_factory, _ = factory

    async def inner():
        pass

    async def main():
        coro = inner()
        runner = asyncio.Runner(loop_factory=loop_factory)
        try:
            runner.run(coro)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()
            runner.close()
    message = pyasync.run(main())
    assert message == "Runner.run() cannot be called from a running event loop"


def test_runner_propagates_exception_and_stays_usable(factory):
    loop_factory, _ = factory

    async def fail():
        raise KeyError("k")

    async def ok():
        return "ok"
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        with pytest.raises(KeyError):
            runner.run(fail())
        assert runner.run(ok()) == "ok"


def test_runner_ctrl_c(factory, default_sigint):
    loop_factory, _ = factory
    log = []

    async def main():
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    async def after():
        return "still usable"
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(main())
        assert log == ["cancelled"]
        assert runner.run(after()) == "still usable"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.skipif(not _compat.ASYNCIO_RUN_HAS_LOOP_FACTORY,
                    reason="asyncio.run(loop_factory=) is new in 3.12")
def test_asyncio_run_loop_factory_uses_pyasync():
    async def main():
        return type(asyncio.get_running_loop()), asyncio.get_running_loop()
    loop_class, loop = asyncio.run(main(), loop_factory=pyasync.new_event_loop)
    assert loop_class is pyasync.Loop
    assert loop.is_closed()
    # The policy is not involved: it is still asyncio's default one.
    assert not isinstance(asyncio.get_event_loop_policy(), pyasync.EventLoopPolicy)
