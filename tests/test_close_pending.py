"""Closing a loop with tasks still pending, then letting the garbage
collector finalise them, reports what asyncio reports and nothing else: the
tasks' coroutines are closed, asyncio.Queue.put()'s cleanup meets the closed
loop ("Event loop is closed"), and no coroutine is closed while it runs
("coroutine already executing") nor does the interpreter crash."""
import asyncio
import collections
import gc
import re
import subprocess
import sys
import textwrap
import warnings
import weakref

import pytest
from _child import CHILD_CWD

SCRIPT = textwrap.dedent("""
    import asyncio, contextlib, gc, io, sys
    import pyasync

    def one_round(kind):
        loop = pyasync.new_event_loop() if kind == "pyasync" else asyncio.new_event_loop()
        queue = asyncio.Queue(maxsize=1)
        gate = asyncio.Event()

        async def producer():
            for i in range(10):
                await queue.put(i)

        async def outer():
            await loop.create_task(producer())

        async def waiter():
            await gate.wait()

        for make in (producer, outer, waiter):
            loop.create_task(make())
        loop.run_until_complete(asyncio.sleep(0.001))
        loop.close()

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        for _ in range(ROUNDS):
            one_round(sys.argv[1])
            gc.collect()
    sys.stdout.write(err.getvalue())
""")


def reported(kind, rounds=40):
    code = SCRIPT.replace("ROUNDS", str(rounds))
    proc = subprocess.run([sys.executable, "-c", code, kind], cwd=CHILD_CWD, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Which coroutine of a chain the collector reports first (producer() or
    # the Queue.put() it awaits) depends on the collector's order, on either
    # loop: count the reports and the errors they carry.
    lines = ["Exception ignored" if line.startswith("Exception ignored") else line
             for line in proc.stdout.splitlines()
             if line.startswith("Exception ignored") or re.match(r"^\w+(Error|Exception)\b", line)]
    return collections.Counter(lines)


def test_finalised_pending_tasks_report_as_on_asyncio():
    ours, theirs = reported("pyasync"), reported("asyncio")
    assert not any("already executing" in line for line in ours), ours
    assert ours == theirs
    assert theirs  # the scenario does reach the closed loop


def _waiting_on_queue(loop):
    queue = asyncio.Queue(maxsize=1)
    queue.put_nowait(0)
    return queue.put(1)


def _waiting_on(make_future):
    async def wait():
        fut = make_future()
        try:
            await fut
        except BaseException:
            fut.cancel()  # what asyncio.Queue.put() and many libraries do
            raise
    return wait()


WAITS = {
    "queue_put": _waiting_on_queue,
    "loop_future": lambda loop: _waiting_on(loop.create_future),
    "asyncio_future": lambda loop: _waiting_on(lambda: asyncio.Future(loop=loop)),
}


@pytest.mark.parametrize("wait", sorted(WAITS))
def test_task_outlives_the_cancel_that_drops_its_last_reference(loop_factory, wait):
    """The inner coroutine of a pending task is closed after loop.close();
    its cleanup cancels the future the task waits on, whose callback is the
    last reference to the task. The failed scheduling must not destroy the
    task (and so close its outer coroutine, which awaits the running inner
    one) before the cleanup has finished: asyncio's task is destroyed once
    the RuntimeError is dropped. Seen as "coroutine already executing"
    reported by the outer coroutine's finaliser, in any program that closes
    a loop with pending tasks and lets the collector finalise them in this
    order."""
    loop = loop_factory()
    events, unraisable = [], []
    loop.set_exception_handler(lambda lp, ctx: events.append(ctx["message"]))

    async def outer():
        await WAITS[wait](loop)

    task = loop.create_task(outer())
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    inner = task.get_coro().cr_await
    assert inner is not None and not task.done()
    gone = weakref.ref(task)
    del task
    saved_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(f"{type(u.exc_value).__name__}: {u.exc_value}")
    try:
        try:
            inner.close()
        except RuntimeError as exc:
            assert str(exc) == "Event loop is closed"
            events.append("cleanup finished")
        else:
            pytest.fail("cancelling the future on the closed loop did not raise")
        gc.collect()
    finally:
        sys.unraisablehook = saved_hook
    assert gone() is None
    assert unraisable == []
    assert events == ["cleanup finished", "Task was destroyed but it is pending!"]


EXIT_SCRIPT = textwrap.dedent("""
    import asyncio, sys, warnings
    import pyasync
    warnings.simplefilter("ignore", ResourceWarning)
    if sys.argv[1] == "pyasync":
        pyasync.install()
    # What pytest-asyncio's event_loop fixture leaves behind: a new loop set
    # as the current loop, never closed, collected as the interpreter exits.
    asyncio.set_event_loop(asyncio.new_event_loop())
    print("set", type(asyncio.get_event_loop()).__module__)
""")


@pytest.mark.parametrize("kind", ["asyncio", "pyasync"])
def test_a_loop_left_unclosed_at_interpreter_exit_closes_quietly(kind):
    """Its finaliser closes it after the interpreter has started tearing
    modules down: nothing may be reported. pyasync's close() once reached
    for a module function already gone (TypeError in Loop.__del__), seen
    at the end of pytest-asyncio sessions."""
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, kind], cwd=CHILD_CWD,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["set", "asyncio.unix_events" if kind == "asyncio"
                                   else "pyasync._loop"]
    assert proc.stderr == ""


def _classes_with_finalisers():
    import pyasync
    import pyasync._pipes
    import pyasync._subprocess
    import pyasync._transports
    found = {}
    for module in (pyasync, pyasync._core, pyasync._transports, pyasync._pipes,
                   pyasync._subprocess, pyasync._loop):
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__.startswith("pyasync") and \
                    hasattr(obj, "__del__"):
                found[obj.__qualname__] = obj
    return found


def test_objects_never_initialised_go_quietly():
    """A pyasync object made by T.__new__(T) without __init__() (or by a
    subclass whose __init__ skips T's) was never started: letting it go
    reports nothing, and a loop releases its poller and self-pipe. The
    finalisers of Loop and SubprocessTransport once reported an
    AttributeError ("Exception ignored in ... __del__"): they read what
    __init__ sets. (asyncio's uninitialised loops and transports report
    one too: pyasync-only.)"""
    import os

    import pyasync

    classes = _classes_with_finalisers()
    assert {"Loop", "SubprocessTransport", "ReadPipeTransport", "WritePipeTransport",
            "SocketTransport", "DatagramTransport"} <= set(classes)

    class SkipsInit(pyasync.Loop):
        def __init__(self):
            pass

    unraisable, caught = [], []
    saved_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    fds_before = len(os.listdir("/proc/self/fd"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(20):
                for cls in classes.values():
                    obj = cls.__new__(cls)
                    del obj
                obj = SkipsInit()
                del obj
            gc.collect()
    finally:
        sys.unraisablehook = saved_hook
    assert [f"{type(u.exc_value).__name__}: {u.exc_value}" for u in unraisable] == []
    assert [str(w.message) for w in caught] == []
    assert len(os.listdir("/proc/self/fd")) == fds_before
