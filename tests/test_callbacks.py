"""call_soon, call_later, call_at, call_soon_threadsafe, handles, contexts,
and what happens to exceptions raised by callbacks."""
import asyncio
import contextvars
import functools
import itertools
import logging
import threading
import time

import pytest

import pyasync


def run_briefly(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_call_soon_fifo_with_args(loop):
    calls = []
    for i in range(100):
        loop.call_soon(calls.append, i)
    loop.call_soon(lambda *a: calls.append(a), 1, "two", None)
    run_briefly(loop)
    assert calls == list(range(100)) + [(1, "two", None)]


def test_call_soon_returns_cancellable_handle(loop):
    calls = []
    h = loop.call_soon(calls.append, 1)
    assert isinstance(h, asyncio.Handle if loop.__class__.__module__.startswith("asyncio")
                      else pyasync.Handle)
    assert not h.cancelled()
    h.cancel()
    assert h.cancelled()
    h.cancel()  # idempotent
    run_briefly(loop)
    assert calls == []


def test_handle_cancelling_itself_while_running(loop):
    calls = []
    handles = []

    def cb():
        handles[0].cancel()
        calls.append("ran")
    handles.append(loop.call_soon(cb))
    run_briefly(loop)
    assert calls == ["ran"]
    assert handles[0].cancelled()


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe"])
def test_coroutine_callbacks_rejected(loop, method):
    async def coro_func():
        pass
    coro = coro_func()
    schedule = getattr(loop, method)
    loop.set_debug(True)  # asyncio checks only in debug mode, and so do we
    with pytest.raises(TypeError, match="coroutines cannot be used with"):
        schedule(coro)
    with pytest.raises(TypeError, match="coroutines cannot be used with"):
        schedule(coro_func)
    with pytest.raises(TypeError, match="a callable object was expected"):
        schedule(42)
    coro.close()


def test_callbacks_not_checked_without_debug(loop):
    """Outside debug mode asyncio takes any object: a bad callback fails
    when it runs, reported to the exception handler, and the loop goes on
    (a CPython Future's done-callbacks rely on it: set_result() must not
    raise for one of them)."""
    errors, ran = [], []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx["exception"]))
    coro = asyncio.sleep(0)
    loop.call_soon("not callable")
    loop.call_soon_threadsafe(42)
    loop.call_later(0, None)
    loop.call_at(loop.time(), coro)
    loop.call_soon(ran.append, "after")
    for _ in range(3):
        run_briefly(loop)
    coro.close()
    assert ran == ["after"]
    assert len(errors) == 4 and all(isinstance(e, TypeError) for e in errors)


def test_marked_coroutine_function_rejected_in_debug(loop):
    import inspect
    if not hasattr(inspect, "markcoroutinefunction"):
        pytest.skip("inspect.markcoroutinefunction is 3.12+")

    def plain():
        pass
    inspect.markcoroutinefunction(plain)
    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used with"):
        loop.call_soon(plain)


def test_call_soon_unknown_keyword(loop):
    with pytest.raises(TypeError):
        loop.call_soon(print, bogus=1)
    with pytest.raises(TypeError):
        loop.call_later(1, print, bogus=1)


def test_call_soon_missing_callback(loop):
    with pytest.raises(TypeError):
        loop.call_soon()
    with pytest.raises(TypeError):
        loop.call_later(1)


def test_call_later_ordering(loop):
    calls = []
    loop.call_later(0.03, calls.append, 3)
    loop.call_later(0.01, calls.append, 1)
    loop.call_later(0.02, calls.append, 2)
    loop.call_later(0.04, loop.stop)
    t0 = time.monotonic()
    loop.run_forever()
    assert calls == [1, 2, 3]
    assert time.monotonic() - t0 >= 0.035


def test_timers_with_same_deadline_fire_in_order(pyloop):
    # Stronger than asyncio, whose heapq gives no order for equal deadlines.
    loop = pyloop
    calls = []
    when = loop.time() + 0.01
    for i in range(50):
        loop.call_at(when, calls.append, i)
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert calls == list(range(50))


def test_call_later_does_not_fire_early(loop):
    fired = []
    start = loop.time()
    loop.call_later(0.05, lambda: (fired.append(loop.time()), loop.stop()))
    loop.run_forever()
    assert fired[0] - start >= 0.05 - loop._clock_resolution


def test_call_later_bad_delay(loop):
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match=r"^unsupported operand type\(s\) for \+: 'float' and 'str'$"):
        loop.call_later("1", print)
    with pytest.raises(TypeError, match=r"and 'list'$"):
        loop.call_later([], print)


def test_call_at_bad_when(loop):
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)


def test_nan_deadline_refused(pyloop):
    # asyncio accepts NaN and then fails inside its selector; pyasync refuses
    # it where it is given.
    with pytest.raises(ValueError, match="delay must not be NaN"):
        pyloop.call_later(float("nan"), print)
    with pytest.raises(ValueError, match="when must not be NaN"):
        pyloop.call_at(float("nan"), print)


def test_infinite_delay_is_accepted(loop):
    h = loop.call_later(float("inf"), print)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert not h.cancelled()
    h.cancel()


def test_call_at_non_number_when(pyloop):
    # asyncio accepts it and fails later, inside the loop, when the heap
    # compares deadlines; pyasync refuses it at once.
    with pytest.raises(TypeError):
        pyloop.call_at("soon", print)


def test_timer_handle_api(loop):
    h = loop.call_at(loop.time() + 100, print)
    assert isinstance(h.when(), float)
    assert h.when() > loop.time()
    h2 = loop.call_at(h.when() + 1, print)
    assert h < h2 and h <= h2 and h2 > h and h2 >= h and h != h2
    assert hash(h) == hash(h.when())
    assert "when=" in repr(h)
    h.cancel()
    assert h.cancelled()
    assert "cancelled" in repr(h)
    h2.cancel()


def test_cancelled_timer_does_not_run(loop):
    calls = []
    h = loop.call_later(0.01, calls.append, "x")
    h.cancel()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert calls == []


def test_handle_repr_names_callback(loop):
    def my_callback():
        pass
    h = loop.call_soon(my_callback)
    assert repr(h).startswith("<Handle ")
    assert "my_callback" in repr(h)
    h.cancel()
    assert "cancelled" in repr(h)


def test_handle_get_context(loop, loop_kind):
    if loop_kind == "asyncio" and not hasattr(asyncio.Handle, "get_context"):
        pytest.skip("asyncio.Handle.get_context() is 3.12+ (pyasync has it everywhere)")
    ctx = contextvars.copy_context()
    h = loop.call_soon(print, context=ctx)
    assert h.get_context() is ctx
    h.cancel()
    h2 = loop.call_soon(print)
    assert isinstance(h2.get_context(), contextvars.Context)
    h2.cancel()


var = contextvars.ContextVar("var", default="unset")


def test_callbacks_run_in_copy_of_scheduling_context(loop):
    seen = []

    def read():
        seen.append(var.get())

    def write_then_read():
        var.set("changed-inside")
        seen.append(var.get())
    token = var.set("outer")
    try:
        loop.call_soon(read)
        loop.call_soon(write_then_read)
        loop.call_soon(read)
    finally:
        var.reset(token)
    run_briefly(loop)
    # Each callback has its own copy: the write does not leak.
    assert seen == ["outer", "changed-inside", "outer"]
    assert var.get() == "unset"


def test_explicit_context_is_used_and_mutated(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "in-ctx")
    seen = []

    def cb():
        seen.append(var.get())
        var.set("mutated")
    loop.call_soon(cb, context=ctx)
    loop.call_later(0, cb, context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["in-ctx", "mutated"]
    assert ctx[var] == "mutated"


def test_exception_in_callback_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))
    calls = []

    def bad():
        raise ZeroDivisionError("oops")
    h = loop.call_soon(bad)
    loop.call_soon(calls.append, "still running")
    run_briefly(loop)
    assert calls == ["still running"]
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["handle"] is h
    assert ctx["message"].startswith("Exception in callback ")
    assert "bad" in ctx["message"]


def test_cancelled_error_in_callback_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def cancel():
        raise asyncio.CancelledError
    loop.call_soon(cancel)
    run_briefly(loop)
    assert isinstance(contexts[0]["exception"], asyncio.CancelledError)


def test_default_exception_handler_logs(loop, caplog):
    def failing_callback():
        raise RuntimeError("logged")
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(failing_callback)
        run_briefly(loop)
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    msg = records[0].getMessage()
    assert msg.startswith("Exception in callback ")
    assert "failing_callback" in msg
    assert "handle: <Handle" in msg
    assert records[0].exc_info[0] is RuntimeError


def test_error_in_custom_handler_falls_back_to_default(loop, caplog):
    def handler(lp, ctx):
        raise ValueError("handler broke")

    def bad():
        raise KeyError("original")
    loop.set_exception_handler(handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(bad)
        run_briefly(loop)
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(m.startswith("Unhandled error in exception handler") for m in msgs)


def test_set_exception_handler_validation(loop):
    with pytest.raises(TypeError, match="A callable object or None is expected"):
        loop.set_exception_handler(42)
    handler = lambda lp, ctx: None  # noqa: E731
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_call_exception_handler_direct(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "custom message", "extra": 1})
    msg = caplog.records[-1].getMessage()
    assert msg == "custom message\nextra: 1"


def test_call_soon_threadsafe_wakes_blocked_loop(loop):
    # Nothing scheduled: the loop blocks in poll until the thread wakes it.
    def other_thread():
        time.sleep(0.05)
        loop.call_soon_threadsafe(loop.stop)
    t = threading.Thread(target=other_thread)
    t0 = time.monotonic()
    t.start()
    loop.run_forever()
    t.join()
    assert time.monotonic() - t0 < 5


def test_call_soon_threadsafe_many_threads(loop):
    results = []
    done = threading.Event()
    n_threads, per_thread = 4, 500

    def worker(k):
        for i in range(per_thread):
            loop.call_soon_threadsafe(results.append, (k, i))

    def check():
        if len(results) == n_threads * per_thread:
            loop.stop()
        else:
            loop.call_later(0.001, check)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    loop.call_soon(check)
    loop.run_forever()
    for t in threads:
        t.join()
    done.set()
    for k in range(n_threads):
        assert [i for kk, i in results if kk == k] == list(range(per_thread))


def test_debug_mode_checks_thread(loop):
    loop.set_debug(True)
    errors = []

    def from_thread():
        try:
            loop.call_soon(print)
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.call_soon_threadsafe(loop.stop)

    def start_thread():
        threading.Thread(target=from_thread).start()
    loop.call_soon(start_thread)
    loop.run_forever()
    assert errors == ["Non-thread-safe operation invoked on an event loop other than the "
                      "current one"]


def test_debug_mode_slow_callback_warning(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    def slow_callback():
        time.sleep(0.03)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(slow_callback)
        run_briefly(loop)
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("Executing <Handle") and "slow_callback" in m and
               "took" in m for m in msgs), msgs


def test_debug_mode_source_traceback(loop):
    loop.set_debug(True)
    assert loop.get_debug()
    h = loop.call_soon(print)
    assert h._source_traceback
    last = h._source_traceback[-1]
    assert last[0] == __file__
    assert last[2] == "test_debug_mode_source_traceback"
    assert "created at" in repr(h)
    h.cancel()
    loop.set_debug(False)
    h2 = loop.call_soon(print)
    assert not h2._source_traceback
    h2.cancel()


def test_debug_exception_context_has_source_traceback(loop):
    loop.set_debug(True)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        raise ValueError
    loop.call_soon(bad)
    run_briefly(loop)
    assert contexts[0]["source_traceback"]


def test_handle_constructor(pyloop):
    h = pyasync.Handle(print, ("x",), pyloop)
    assert h._args == ("x",) and h._callback is print and h._loop is pyloop
    t = pyasync.TimerHandle(5.0, print, (), pyloop)
    assert t.when() == 5.0 and not t._scheduled
    assert isinstance(t, pyasync.Handle)


# The ready queue and the timer heap give back the memory of a burst: a
# million entries take 8 and 24 MB. Their capacity falls back to a few
# hundred entries; the time bound would catch a shrink that copies on every
# pop (quadratic) instead of halving once in a while.
MEMORY_RETURNED_CAPACITY = 1024
MEMORY_RETURNED_SECONDS = 30


def test_million_cancelled_timers_are_compacted(pyloop):
    handles = [pyloop.call_later(100, print) for _ in range(1_000_000)]
    assert pyloop._timers_capacity >= 1_000_000
    for h in handles:
        h.cancel()
    del handles
    assert pyloop._timer_cancelled_count == 1_000_000
    start = time.monotonic()
    run_briefly(pyloop)
    assert time.monotonic() - start < MEMORY_RETURNED_SECONDS
    assert len(pyloop._scheduled) == 0
    assert pyloop._timer_cancelled_count == 0
    assert pyloop._timers_capacity <= MEMORY_RETURNED_CAPACITY
    # Partial cancellation: live timers survive the compaction, in order.
    calls = []
    live = [pyloop.call_later(0.001 * (i % 5), calls.append, i) for i in range(300)]
    for h in live[::3]:
        h.cancel()
    for h in live[1::3]:
        h.cancel()
    run_briefly(pyloop)
    assert len(pyloop._scheduled) <= 100
    pyloop.call_later(0.01, pyloop.stop)
    pyloop.run_forever()
    assert sorted(calls) == list(range(2, 300, 3))


def test_timer_heap_gives_memory_back_as_timers_fire(pyloop):
    due = pyloop.time() - 1
    fired = []
    for i in range(300_000):
        pyloop.call_at(due, fired.append, i)
    assert pyloop._timers_capacity >= 300_000
    start = time.monotonic()
    run_briefly(pyloop)
    assert time.monotonic() - start < MEMORY_RETURNED_SECONDS
    assert fired == list(range(300_000))
    assert pyloop._timers_capacity <= MEMORY_RETURNED_CAPACITY


def test_ready_queue_gives_memory_back_after_a_burst(pyloop):
    calls = itertools.count()
    for _ in range(1_000_000):
        pyloop.call_soon(next, calls)
    assert pyloop._ready_capacity >= 1_000_000
    start = time.monotonic()
    run_briefly(pyloop)
    assert time.monotonic() - start < MEMORY_RETURNED_SECONDS
    assert next(calls) == 1_000_000
    assert pyloop._ready_count == 0
    assert pyloop._ready_capacity <= MEMORY_RETURNED_CAPACITY


def test_ready_queue_keeps_its_order_while_it_shrinks(pyloop):
    # 2500 callbacks (a ring of 4096) each queue one more: the second batch
    # wraps around the end of the ring, and is still wrapped when it falls
    # below a quarter of the ring and the ring shrinks.
    order = []

    def step(i):
        order.append(i)
        if i < 2500:
            pyloop.call_soon(step, i + 2500)
    for i in range(2500):
        pyloop.call_soon(step, i)
    pyloop.call_later(0.05, pyloop.stop)
    pyloop.run_forever()
    assert order == list(range(5000))
    assert pyloop._ready_capacity <= MEMORY_RETURNED_CAPACITY


@pytest.mark.parametrize("seed", range(5))
def test_timer_heap_order_randomized(pyloop, seed):
    import random
    rng = random.Random(seed)
    base = pyloop.time() - 10  # all due: one iteration pops the whole heap
    fired = []
    expected = []
    handles = []
    for seq in range(3000):
        when = base + rng.choice([rng.random(), rng.randint(0, 20) / 10])
        handles.append((when, seq, pyloop.call_at(when, fired.append, (when, seq))))
    for when, seq, h in handles:
        if rng.random() < 0.4:
            h.cancel()
        else:
            expected.append((when, seq))
    run_briefly(pyloop)
    assert fired == sorted(expected)


def test_callbacks_from_empty_context_are_isolated(loop):
    # Scheduled from a context with no variable set, each callback still gets
    # a context of its own: a write in one is invisible to the next, and
    # get_context() returns the context the callback ran in.
    def scenario():
        lp = loop
        seen = []
        handles = []

        def writer():
            var.set("written")
            seen.append(("writer", var.get()))

        def reader():
            seen.append(("reader", var.get()))
        handles.append(lp.call_soon(writer))
        handles.append(lp.call_soon(reader))
        lp.call_soon(lp.stop)
        lp.run_forever()
        # _context: get_context() is 3.12+ in asyncio.
        ctx0 = handles[0]._context
        assert ctx0 is handles[0]._context
        assert ctx0[var] == "written"
        assert var not in handles[1]._context
        return seen
    # Run in a brand-new empty context, whatever the test runner set.
    seen = contextvars.Context().run(scenario)
    assert seen[1] == ("reader", "unset")
    assert seen[0] == ("writer", "written")


def test_get_context_during_run_is_running_context(loop):
    found = []
    handles = []

    def cb():
        var.set("inside")
        found.append(handles[0]._context[var])
    handles.append(loop.call_soon(cb))
    run_briefly(loop)
    assert found == ["inside"]


def test_custom_exception_handler_runs_in_handle_context(loop):
    # 3.12+: the handler runs in the context of the failing handle.
    import sys
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(var.get()))
    ctx = contextvars.Context()
    ctx.run(var.set, "handle-context")

    def bad():
        raise ValueError
    loop.call_soon(bad, context=ctx)
    run_briefly(loop)
    expected = "handle-context" if sys.version_info >= (3, 12) else "unset"
    assert seen == [expected]


def test_timer_when_gives_back_the_number_it_was_given(loop):
    # asyncio keeps the object given to call_at()/TimerHandle(): an int
    # stays an int (repr "when=123"), a float a float; call_later()'s
    # deadline is loop.time() + delay, a float.
    h = loop.call_at(123, print)
    assert h.when() == 123 and type(h.when()) is int and "when=123 " in repr(h)
    h.cancel()
    h = loop.call_at(12.5, print)  # may reuse the int handle's memory
    assert h.when() == 12.5 and type(h.when()) is float
    h.cancel()
    assert type(loop.call_later(1, print).when()) is float
    handle_type = type(h)
    h = handle_type(123, print, (), loop)
    assert h.when() == 123 and type(h.when()) is int
