"""pyasync.Future against asyncio.Future (the reference), on both loops."""
import asyncio
import contextvars
import gc
import sys
import weakref

import pytest

import pyasync


@pytest.fixture(params=["asyncio.Future", "pyasync.Future"])
def Future(request):
    return asyncio.Future if request.param == "asyncio.Future" else pyasync.Future


def run_briefly(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_isfuture_and_generic_alias(Future, loop):
    fut = Future(loop=loop)
    assert asyncio.isfuture(fut)
    assert Future[int].__origin__ is Future
    assert fut.get_loop() is loop
    fut.cancel()


def test_result_lifecycle(Future, loop):
    fut = Future(loop=loop)
    assert not fut.done() and not fut.cancelled()
    with pytest.raises(asyncio.InvalidStateError, match=r"^Result is not set\.$"):
        fut.result()
    with pytest.raises(asyncio.InvalidStateError, match=r"^Exception is not set\.$"):
        fut.exception()
    fut.set_result((1, 2))
    assert fut.done() and fut.result() == (1, 2) and fut.exception() is None
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_result(3)
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_exception(ValueError())
    assert not fut.cancel()


def test_exception_lifecycle(Future, loop):
    fut = Future(loop=loop)
    fut.set_exception(ValueError)          # a class is instantiated
    assert isinstance(fut.exception(), ValueError)
    with pytest.raises(ValueError):
        fut.result()
    with pytest.raises(TypeError):
        Future(loop=loop).set_exception(42)


def test_stop_iteration_rejected(Future, loop):
    fut = Future(loop=loop)
    if sys.version_info >= (3, 13):
        fut.set_exception(StopIteration("x"))
        exc = fut.exception()
        assert isinstance(exc, RuntimeError)
        assert isinstance(exc.__cause__, StopIteration)
    else:
        with pytest.raises(TypeError, match="StopIteration .* cannot be raised"):
            fut.set_exception(StopIteration)


def test_cancel_with_message(Future, loop):
    fut = Future(loop=loop)
    assert fut.cancel(msg="stop it")
    assert fut.cancelled() and fut.done()
    with pytest.raises(asyncio.CancelledError, match="stop it"):
        fut.result()
    with pytest.raises(asyncio.CancelledError):
        fut.exception()
    assert not fut.cancel()


def test_done_callbacks_order_args_and_context(Future, loop):
    var = contextvars.ContextVar("v", default="none")
    calls = []
    ctx = contextvars.Context()
    ctx.run(var.set, "ctx")
    fut = Future(loop=loop)
    fut.add_done_callback(lambda f: calls.append(("first", f is fut, var.get())))
    fut.add_done_callback(lambda f: calls.append(("second", var.get())), context=ctx)
    fut.add_done_callback(lambda f: calls.append(("third",)))
    fut.set_result(None)
    assert calls == []  # callbacks run through the loop, not inline
    run_briefly(loop)
    assert calls == [("first", True, "none"), ("second", "ctx"), ("third",)]
    fut.add_done_callback(lambda f: calls.append("late"))
    run_briefly(loop)
    assert calls[-1] == "late"


def test_remove_done_callback(Future, loop):
    calls = []
    fut = Future(loop=loop)

    def cb(f):
        calls.append("cb")
    other = lambda f: calls.append("other")  # noqa: E731
    fut.add_done_callback(cb)
    fut.add_done_callback(other)
    fut.add_done_callback(cb)
    assert fut.remove_done_callback(cb) == 2
    assert fut.remove_done_callback(cb) == 0
    fut.set_result(1)
    run_briefly(loop)
    assert calls == ["other"]


def test_await_future(Future, loop):
    async def main():
        fut = Future()
        loop.call_later(0.001, fut.set_result, "value")
        return await fut
    assert loop.run_until_complete(main()) == "value"


def test_await_future_exception_keeps_traceback(Future, loop):
    async def main():
        fut = Future()

        def fail():
            try:
                raise KeyError("k")
            except KeyError as e:
                fut.set_exception(e)
        loop.call_soon(fail)
        for _ in range(2):
            with pytest.raises(KeyError) as info:
                await fut
            depth = len(__import__("traceback").extract_tb(info.value.__traceback__))
        return depth
    # Raising twice does not grow the traceback.
    assert loop.run_until_complete(main()) <= 3


def test_iter_protocol(Future, loop):
    fut = Future(loop=loop)
    it = fut.__await__()
    assert next(it) is fut
    assert fut._asyncio_future_blocking
    with pytest.raises(RuntimeError, match="await wasn't used with future"):
        next(it)
    fut2 = Future(loop=loop)
    fut2.set_result((1, 2))
    with pytest.raises(StopIteration) as info:
        fut2.__await__().send(None)
    assert info.value.value == (1, 2)


def test_iter_throw_and_close(Future, loop):
    fut = Future(loop=loop)
    it = fut.__await__()
    with pytest.raises(ZeroDivisionError):
        it.throw(ZeroDivisionError())
    it2 = Future(loop=loop).__await__()
    it2.close()
    with pytest.raises(TypeError):
        Future(loop=loop).__await__().throw(42)


def test_attributes(Future, loop):
    fut = Future(loop=loop)
    assert fut._state == "PENDING"
    assert fut._loop is loop
    assert fut._callbacks in (None, [])
    fut.add_done_callback(print)
    assert fut._callbacks[0][0] is print
    fut.set_result(3)
    assert fut._state == "FINISHED" and fut._result == 3
    with pytest.raises(ValueError, match="_log_traceback can only be set to False"):
        fut._log_traceback = True
    fut._log_traceback = False
    run_briefly(loop)


def test_repr(Future, loop):
    fut = Future(loop=loop)
    assert repr(fut) == "<Future pending>"
    fut.set_result(7)
    assert repr(fut) == "<Future finished result=7>"
    fut = Future(loop=loop)
    fut.cancel()
    assert repr(fut) == "<Future cancelled>"


def test_exception_never_retrieved_is_reported(Future, loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    fut = Future(loop=loop)
    fut.set_exception(RuntimeError("lost"))
    del fut
    gc.collect()
    assert len(contexts) == 1
    assert contexts[0]["message"] == "Future exception was never retrieved"
    assert isinstance(contexts[0]["exception"], RuntimeError)


def test_retrieved_exception_is_not_reported(Future, loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    fut = Future(loop=loop)
    fut.set_exception(RuntimeError("seen"))
    fut.exception()
    del fut
    gc.collect()
    assert contexts == []


def test_weakref_and_cycles_collected(Future, loop):
    fut = Future(loop=loop)
    fut.add_done_callback(lambda f, fut=fut: None)  # a cycle through a callback
    ref = weakref.ref(fut)
    del fut
    gc.collect()
    assert ref() is None


def test_subclass_without_init(Future, loop):
    class Sub(Future):
        def __init__(self):
            pass
    fut = Sub()
    with pytest.raises(RuntimeError):
        fut.get_loop()
    assert not fut.done() and not fut.cancelled()


def test_future_without_loop_uses_running_loop(Future, loop):
    async def main():
        return Future().get_loop()
    assert loop.run_until_complete(main()) is loop


def test_task_awaits_pyasync_future(loop):
    # The standard library's Task drives our Future through the public
    # protocol (_asyncio_future_blocking + add_done_callback).
    async def main():
        fut = pyasync.Future()
        loop.call_later(0.001, fut.set_result, 5)
        res = await fut
        fut2 = pyasync.Future()
        task = asyncio.ensure_future(asyncio.wait_for(fut2, 0.01))
        with pytest.raises(TimeoutError):
            await task
        assert fut2.cancelled()
        return res
    assert loop.run_until_complete(main()) == 5


def test_uncallable_done_callback_fails_when_it_runs(Future, loop):
    """asyncio takes any object as a done-callback; one that is not callable
    fails when it runs, reported to the exception handler, and the other
    callbacks still run (set_result() must not raise and drop them)."""
    fut = Future(loop=loop)
    errors, ran = [], []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx["exception"]))
    fut.add_done_callback(None)
    fut.add_done_callback(lambda f: ran.append(f.result()))
    fut.set_result(7)
    run_briefly(loop)
    assert ran == [7]
    assert len(errors) == 1 and isinstance(errors[0], TypeError)
