"""pyasync.Task against asyncio.Task (the reference), on both loops."""
import asyncio
import contextvars
import gc
import sys

import pytest

import pyasync


@pytest.fixture(params=["asyncio.Task", "pyasync.Task"])
def Task(request):
    return asyncio.Task if request.param == "asyncio.Task" else pyasync.Task


async def double(x):
    await asyncio.sleep(0)
    return x * 2


def test_result_and_name(Task, loop):
    task = Task(double(21), loop=loop, name="doubler")
    assert task.get_name() == "doubler"
    task.set_name(42)
    assert task.get_name() == "42"
    assert loop.run_until_complete(task) == 42
    assert task.done() and not task.cancelled()
    assert Task[int].__origin__ is Task


def test_default_names_are_numbered(Task, loop):
    a = Task(double(1), loop=loop)
    b = Task(double(1), loop=loop)
    assert a.get_name().startswith("Task-") and b.get_name().startswith("Task-")
    assert a.get_name() != b.get_name()
    loop.run_until_complete(asyncio.gather(a, b))


def test_rejects_non_coroutine(Task, loop):
    with pytest.raises(TypeError, match="a coroutine was expected"):
        Task(42, loop=loop)
    with pytest.raises(TypeError):
        Task(double, loop=loop)


def test_exception_propagates(Task, loop):
    async def fail():
        await asyncio.sleep(0)
        raise KeyError("inner")
    task = Task(fail(), loop=loop)
    with pytest.raises(KeyError):
        loop.run_until_complete(task)
    assert isinstance(task.exception(), KeyError)


def test_cancel_with_message_and_counts(Task, loop):
    started = []

    async def sleeper():
        started.append(True)
        await asyncio.sleep(10)
    task = Task(sleeper(), loop=loop)
    loop.run_until_complete(asyncio.sleep(0))
    assert task.cancel("go away")
    assert task.cancelling() == 1
    with pytest.raises(asyncio.CancelledError, match="go away"):
        loop.run_until_complete(task)
    assert task.cancelled()
    assert not task.cancel()
    assert task.uncancel() == 0


def test_cancel_before_start(Task, loop):
    ran = []

    async def body():
        ran.append(True)
    task = Task(body(), loop=loop)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)
    assert ran == []


def test_cancellation_can_be_caught(Task, loop):
    async def stubborn():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()
            return "survived"
    task = Task(stubborn(), loop=loop)
    loop.run_until_complete(asyncio.sleep(0))
    task.cancel()
    assert loop.run_until_complete(task) == "survived"


def test_bare_yield_and_bad_yields(Task, loop):
    import types

    @types.coroutine
    def bare():
        yield

    @types.coroutine
    def bad():
        yield 42

    async def yields_bare():
        await bare()
        return "ok"

    async def yields_bad():
        await bad()
    assert loop.run_until_complete(Task(yields_bare(), loop=loop)) == "ok"
    with pytest.raises(RuntimeError, match="Task got bad yield: 42"):
        loop.run_until_complete(Task(yields_bad(), loop=loop))


def test_await_itself(Task, loop):
    async def selfish():
        await task
    task = Task(selfish(), loop=loop)
    with pytest.raises(RuntimeError, match="Task cannot await on itself"):
        loop.run_until_complete(task)


def test_future_of_another_loop(Task, loop, loop_factory):
    other = loop_factory()

    async def wrong():
        await other.create_future()
    with pytest.raises(RuntimeError, match="attached to a different loop"):
        loop.run_until_complete(Task(wrong(), loop=loop))


def test_current_task_and_all_tasks(Task, loop):
    async def probe():
        return asyncio.current_task(), asyncio.all_tasks()
    task = Task(probe(), loop=loop)
    current, everything = loop.run_until_complete(task)
    assert current is task
    assert task in everything


def test_context(Task, loop):
    var = contextvars.ContextVar("v", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")

    async def read():
        return var.get()
    task = Task(read(), loop=loop, context=ctx)
    assert loop.run_until_complete(task) == "in ctx"


def test_set_result_refused(Task, loop):
    task = Task(double(1), loop=loop)
    with pytest.raises(RuntimeError, match="^Task does not support set_result operation$"):
        task.set_result(1)
    with pytest.raises(RuntimeError, match="^Task does not support set_exception operation$"):
        task.set_exception(ValueError())
    loop.run_until_complete(task)


def test_repr_and_stack(Task, loop):
    async def waiting():
        await asyncio.sleep(10)
    task = Task(waiting(), loop=loop, name="w")
    loop.run_until_complete(asyncio.sleep(0))
    r = repr(task)
    assert r.startswith("<Task pending name='w' coro=<") and "wait_for=" in r
    frames = task.get_stack()
    assert frames and frames[0].f_code.co_name == "waiting"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)


def test_awaited_future_shows_the_task_wakeup_as_asyncio(loop):
    """A future a task waits on names the task's wake-up as CPython's C Task
    does, in its repr and its callbacks (tests and logs read both)."""
    fut = loop.create_future()

    async def waiting():
        await fut
    task = loop.create_task(waiting())
    loop.run_until_complete(asyncio.sleep(0))
    assert repr(fut) == "<Future pending cb=[Task.task_wakeup()]>"
    (callback, _), = fut._callbacks
    assert callback.__name__ == "task_wakeup" and callback.__self__ is task
    fut.set_result(None)
    loop.run_until_complete(task)


def test_destroyed_pending_task_is_reported(Task, loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def forever():
        await loop.create_future()
    task = Task(forever(), loop=loop)
    loop.run_until_complete(asyncio.sleep(0))
    del task
    gc.collect()
    messages = [c["message"] for c in contexts]
    assert "Task was destroyed but it is pending!" in messages


def test_unretrieved_exception_is_reported(Task, loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def fail():
        raise ValueError("lost")
    task = Task(fail(), loop=loop)
    loop.run_until_complete(asyncio.sleep(0))
    assert task.done()
    del task
    gc.collect()
    assert [c["message"] for c in contexts] == ["Task exception was never retrieved"]


def test_keyboard_interrupt_leaves_loop(Task, loop):
    async def interrupt():
        raise KeyboardInterrupt
    task = Task(interrupt(), loop=loop)
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(task)
    assert task.done()


def test_stdlib_combinators_with_our_tasks(Task, loop):
    async def main():
        tasks = [Task(double(i)) for i in range(10)]
        assert await asyncio.gather(*tasks) == [i * 2 for i in range(10)]
        done, pending = await asyncio.wait([Task(double(1))])
        assert not pending
        slow = Task(asyncio.sleep(10))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow, 0.001)
        assert slow.cancelled()
        shielded = Task(double(5))
        assert await asyncio.shield(shielded) == 10
        async with asyncio.timeout(0.001):
            await asyncio.sleep(0)
        return "ok"
    assert loop.run_until_complete(Task(main(), loop=loop)) == "ok"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_eager_start(Task, loop):
    order = []

    async def body():
        order.append("body")
        return 1

    async def main():
        task = Task(body(), loop=loop, eager_start=True)
        order.append("after")
        assert task.done()
        return await task
    assert loop.run_until_complete(Task(main(), loop=loop)) == 1
    assert order == ["body", "after"]


EAGER = pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")


@pytest.fixture(params=["asyncio", "pyasync"])
def eager_factory(request):
    if sys.version_info < (3, 12):
        pytest.skip("eager tasks are 3.12+")
    if request.param == "asyncio":
        return asyncio.eager_task_factory
    return pyasync.eager_task_factory


@EAGER
def test_eager_task_factory(loop, eager_factory):
    loop.set_task_factory(eager_factory)
    order = []

    async def quick():
        order.append("quick ran")
        return "quick"

    async def slow():
        order.append("slow started")
        await asyncio.sleep(0)
        order.append("slow resumed")
        return "slow"

    async def main():
        t1 = asyncio.create_task(quick(), name="q")
        order.append("after quick")
        assert t1.done() and t1.result() == "quick" and t1.get_name() == "q"
        t2 = asyncio.create_task(slow())
        order.append("after slow")
        assert not t2.done()
        assert t2 in asyncio.all_tasks()
        return await t2
    assert loop.run_until_complete(main()) == "slow"
    assert order == ["quick ran", "after quick", "slow started", "after slow", "slow resumed"]


@EAGER
def test_pyasync_eager_factory_makes_pyasync_tasks(pyloop):
    pyloop.set_task_factory(pyasync.eager_task_factory)

    async def main():
        return type(asyncio.current_task())
    assert pyloop.run_until_complete(main()) is pyasync.Task


@EAGER
@pytest.mark.parametrize("constructor", [asyncio.Task, pyasync.Task])
def test_eager_factory_with_custom_constructor(loop, constructor):
    # Our factory (C) and asyncio's give the same tasks: started inside
    # create_task(), named, in the given context.
    var = contextvars.ContextVar("v", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")
    seen = []

    async def body():
        seen.append(var.get())
        await asyncio.sleep(0)
        return "ok"

    for factory in (pyasync.create_eager_task_factory(constructor),
                    asyncio.create_eager_task_factory(constructor)):
        seen.clear()
        loop.set_task_factory(factory)

        async def main():
            task = loop.create_task(body(), name="eager", context=ctx)
            assert seen == ["given"]  # the first step already ran
            assert type(task) is constructor and task.get_name() == "eager"
            return await task
        assert loop.run_until_complete(main()) == "ok"
        loop.set_task_factory(None)


def test_a_task_factorys_task_is_named_with_any_object(loop):
    """create_task(name=...) calls set_name(name) on a factory's task with
    the name as one argument, whatever its type (a tuple included)."""
    def factory(loop, coro, **kwargs):
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def nothing():
        pass

    async def main():
        names = []
        for name in ((1, 2), ("a",), (), 7):
            task = loop.create_task(nothing(), name=name)
            names.append(task.get_name())
            await task
        return names
    loop.set_task_factory(factory)
    try:
        assert loop.run_until_complete(main()) == ["(1, 2)", "('a',)", "()", "7"]
    finally:
        loop.set_task_factory(None)


@EAGER
def test_eager_factory_bad_arguments(pyloop):
    with pytest.raises(TypeError, match="callable"):
        pyasync.create_eager_task_factory(42)
    factory = pyasync.create_eager_task_factory()
    assert factory.custom_task_constructor is pyasync.Task
    assert "pyasync.Task" in repr(factory)
    coro = double(1)
    with pytest.raises(TypeError, match="2 positional arguments"):
        factory(pyloop)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        factory(pyloop, coro, bogus=1)
    with pytest.raises(TypeError, match="a coroutine was expected"):
        factory(pyloop, 42)
    coro.close()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="before 3.12 only")
def test_eager_factory_needs_312():
    assert pyasync.eager_task_factory is None
    with pytest.raises(RuntimeError, match="3.12"):
        pyasync.create_eager_task_factory()


def test_task_context_from_empty_context(Task, loop):
    if Task is asyncio.Task and sys.version_info < (3, 12):
        pytest.skip("asyncio.Task.get_context() is 3.12+")
    # Created from an empty context (pyasync makes the task's context lazily
    # and may drop it when unobservable): values set by the coroutine stay
    # visible, and a context handed out keeps its identity.
    var = contextvars.ContextVar("tv")
    seen = []

    async def setter():
        var.set("in task")

    async def grabber():
        seen.append(asyncio.current_task().get_context())
        await asyncio.sleep(0)

    async def reader():
        return var.get("unset")

    def make(coro):
        return contextvars.Context().run(Task, coro, loop=loop)
    t1 = make(setter())
    loop.run_until_complete(t1)
    assert t1.get_context()[var] == "in task"
    t2 = make(grabber())
    loop.run_until_complete(t2)
    assert t2.get_context() is seen[0]
    assert loop.run_until_complete(make(reader())) == "unset"
