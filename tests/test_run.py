"""run_forever, run_until_complete, stop, close, is_running, time."""
import asyncio
import concurrent.futures
import threading
import time

import pytest

import pyasync



def test_pyasync_loop_is_an_abstract_event_loop(pyloop):
    assert isinstance(pyloop, asyncio.AbstractEventLoop)
    assert isinstance(pyloop, pyasync.Loop)
    assert not isinstance(pyloop, asyncio.BaseEventLoop)


def test_run_until_complete_coroutine(loop):
    async def main():
        await asyncio.sleep(0)
        return 42
    assert loop.run_until_complete(main()) == 42
    assert not loop.is_running()


def test_run_until_complete_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_awaitable_object(loop):
    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"
    assert loop.run_until_complete(Awaitable()) == "awaited"


def test_run_until_complete_rejects_non_awaitable(loop):
    with pytest.raises(TypeError):
        loop.run_until_complete(42)


def test_run_until_complete_raises_exception_and_stops(loop):
    async def fail():
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(fail())
    # The loop stopped and can run again.
    assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"


def test_run_until_complete_stops_on_base_exception(loop):
    async def interrupt():
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(interrupt())
    assert not loop.is_running()


def test_run_until_complete_stopped_early(loop):
    async def forever():
        loop.stop()
        await asyncio.sleep(10)
    task = loop.create_task(forever())
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed."):
        loop.run_until_complete(task)
    task.cancel()
    loop.run_until_complete(asyncio.sleep(0))


def test_run_while_running_is_refused(loop):
    errors = []

    async def nested():
        coro = asyncio.sleep(0)
        try:
            loop.run_until_complete(coro)
        except RuntimeError as exc:
            errors.append(str(exc))
        coro.close()
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
    loop.run_until_complete(nested())
    assert errors == ["This event loop is already running"] * 2
    assert not loop.is_running()


def test_run_while_another_loop_runs(loop_factory):
    outer = loop_factory()
    inner = loop_factory()
    if True:
        async def main():
            coro = asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="Cannot run the event loop while another "
                                                   "loop is running"):
                inner.run_until_complete(coro)
            coro.close()
            with pytest.raises(RuntimeError, match="another loop is running"):
                inner.run_forever()
        outer.run_until_complete(main())


def test_stop_runs_current_callbacks(loop):
    calls = []
    loop.call_soon(calls.append, 1)
    loop.call_soon(loop.stop)
    loop.call_soon(calls.append, 2)
    loop.run_forever()
    # Everything ready in the iteration that called stop() ran.
    assert calls == [1, 2]


def test_stop_before_run_forever_runs_one_iteration(loop):
    calls = []
    loop.stop()
    loop.call_soon(calls.append, 1)
    loop.run_forever()
    assert calls == [1]
    # stop() only applies once.
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_callbacks_scheduled_while_running_wait_for_next_iteration(loop):
    order = []

    def first():
        order.append("first")
        loop.call_soon(order.append, "scheduled-by-first")
        loop.stop()
    loop.call_soon(first)
    loop.call_soon(order.append, "second")
    loop.run_forever()
    assert order == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["first", "second", "scheduled-by-first"]


def test_is_running_and_running_loop(loop):
    seen = []

    def probe():
        seen.append((loop.is_running(), asyncio.get_running_loop() is loop))
        loop.stop()
    assert not loop.is_running()
    loop.call_soon(probe)
    loop.run_forever()
    assert seen == [(True, True)]
    assert not loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_close(loop):
    assert not loop.is_closed()
    loop.close()
    assert loop.is_closed()
    loop.close()  # idempotent
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_later(1, print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_at(1, print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon_threadsafe(print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_in_executor(None, print)
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.create_task(coro)
    coro.close()


def test_close_refused_while_running(loop):
    errors = []

    def try_close():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()
    loop.call_soon(try_close)
    loop.run_forever()
    assert errors == ["Cannot close a running event loop"]
    assert not loop.is_closed()


def test_close_drops_pending_callbacks(loop):
    calls = []
    loop.call_soon(calls.append, 1)
    loop.call_later(0.01, calls.append, 2)
    loop.close()
    assert calls == []


def test_close_shuts_down_default_executor(loop):
    executor = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(executor)
    assert loop.run_until_complete(loop.run_in_executor(None, sum, [1, 2])) == 3
    loop.close()
    with pytest.raises(RuntimeError):
        executor.submit(print)


def test_time_is_monotonic_clock(loop):
    before = time.monotonic()
    now = loop.time()
    after = time.monotonic()
    assert before <= now <= after


def test_repr(loop):
    r = repr(loop)
    assert "running=False" in r and "closed=False" in r and "debug=False" in r


def test_run_forever_restores_asyncgen_hooks(loop):
    sentinel_first = lambda agen: None  # noqa: E731
    import sys
    old = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=sentinel_first)
    seen = []
    try:
        def probe():
            seen.append(sys.get_asyncgen_hooks().firstiter)
            loop.stop()
        loop.call_soon(probe)
        loop.run_forever()
        assert seen[0] is not sentinel_first
        assert seen[0] == loop._asyncgen_firstiter_hook
        assert sys.get_asyncgen_hooks().firstiter is sentinel_first
    finally:
        sys.set_asyncgen_hooks(*old)


def test_shutdown_asyncgens(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        return g
    g = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == [True]
    del g


def test_exception_in_run_forever_leaves_loop_usable(loop):
    def interrupt():
        raise KeyboardInterrupt
    calls = []
    loop.call_soon(interrupt)
    loop.call_soon(calls.append, "after")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()
    # The callback queued after the interruption is still pending.
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["after"]


def test_system_exit_propagates(loop):
    def leave():
        raise SystemExit(3)
    loop.call_soon(leave)
    with pytest.raises(SystemExit) as info:
        loop.run_forever()
    assert info.value.code == 3


def test_run_forever_in_thread(loop):
    result = []

    def runner():
        asyncio.set_event_loop(loop)
        result.append(loop.run_until_complete(asyncio.sleep(0.01, "thread")))
    t = threading.Thread(target=runner)
    t.start()
    t.join(5)
    assert result == ["thread"]
