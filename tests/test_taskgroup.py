"""pyasync.TaskGroup against asyncio.TaskGroup (the reference), on both loops."""
import asyncio
import sys

import pytest

import pyasync


@pytest.fixture(params=["asyncio.TaskGroup", "pyasync.TaskGroup"])
def TaskGroup(request):
    return asyncio.TaskGroup if request.param == "asyncio.TaskGroup" else pyasync.TaskGroup


ALREADY_ENTERED = r"^TaskGroup <TaskGroup entered> has (already been|been already) entered$"


async def value_after(x, delay=0):
    await asyncio.sleep(delay)
    return x


async def fail_after(exc, delay=0):
    await asyncio.sleep(delay)
    raise exc


def test_results(TaskGroup, loop):
    async def main():
        async with TaskGroup() as tg:
            tasks = [tg.create_task(value_after(i, 0.001 * (i % 3))) for i in range(20)]
            named = tg.create_task(value_after("n"), name="named")
        assert named.get_name() == "named"
        return [t.result() for t in tasks]
    assert loop.run_until_complete(main()) == list(range(20))


def test_error_cancels_siblings_and_groups(TaskGroup, loop):
    cancelled = []

    async def sibling():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        async with TaskGroup() as tg:
            tg.create_task(sibling())
            tg.create_task(fail_after(ValueError("one"), 0.001))
            tg.create_task(fail_after(KeyError("two"), 0.001))
    with pytest.raises(BaseExceptionGroup) as info:
        loop.run_until_complete(main())
    group = info.value
    assert group.message == "unhandled errors in a TaskGroup"
    assert {type(e) for e in group.exceptions} == {ValueError, KeyError}
    assert group.__cause__ is None and group.__suppress_context__
    assert cancelled == [True]


def test_error_in_body_aborts_tasks(TaskGroup, loop):
    async def main():
        async with TaskGroup() as tg:
            t = tg.create_task(asyncio.sleep(10))
            await asyncio.sleep(0)
            raise ZeroDivisionError
    with pytest.raises(BaseExceptionGroup) as info:
        loop.run_until_complete(main())
    assert [type(e) for e in info.value.exceptions] == [ZeroDivisionError]


def test_parent_cancellation_propagates(TaskGroup, loop):
    async def main():
        async with TaskGroup() as tg:
            tg.create_task(asyncio.sleep(10))
            await asyncio.sleep(10)

    async def runner():
        task = asyncio.ensure_future(main())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()
    assert loop.run_until_complete(runner()) is True


def test_base_error_propagates_bare(TaskGroup, loop):
    async def main():
        async with TaskGroup() as tg:
            tg.create_task(fail_after(KeyboardInterrupt(), 0.001))
            tg.create_task(asyncio.sleep(10))
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(main())


def test_create_task_refused(TaskGroup, loop):
    async def main():
        tg = TaskGroup()
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="has not been entered"):
            tg.create_task(coro)
        coro.close()
        async with tg:
            pass
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="is finished"):
            tg.create_task(coro)
        if sys.version_info >= (3, 13):
            assert coro.cr_frame is None  # 3.13 closes the refused coroutine
        coro.close()
        # Early 3.11 releases (3.11.2) word it "has been already entered",
        # later ones (3.11.7) and 3.12+ as pyasync does.
        with pytest.raises(RuntimeError, match=ALREADY_ENTERED):
            async with tg:
                pass
    loop.run_until_complete(main())


def test_enter_needs_a_task(TaskGroup, loop):
    # __aenter__ checks for a parent task when awaited: drive it from a plain
    # callback, where the loop runs but no task is current.
    tg = TaskGroup()
    errors = []

    def outside_task():
        aw = tg.__aenter__().__await__()
        try:
            aw.send(None)
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()
    loop.call_soon(outside_task)
    loop.run_forever()
    assert len(errors) == 1 and "cannot determine the parent task" in errors[0]


def test_repr(TaskGroup, loop):
    async def main():
        tg = TaskGroup()
        assert repr(tg) == "<TaskGroup>"
        async with tg:
            tg.create_task(asyncio.sleep(0))
            assert repr(tg) == "<TaskGroup tasks=1 entered>"
        return repr(tg)
    assert loop.run_until_complete(main()) == "<TaskGroup entered>"


def test_nested_groups(TaskGroup, loop):
    async def inner():
        async with TaskGroup() as tg:
            ts = [tg.create_task(value_after(i)) for i in range(5)]
        return sum(t.result() for t in ts)

    async def main():
        async with TaskGroup() as tg:
            ts = [tg.create_task(inner()) for _ in range(5)]
        return [t.result() for t in ts]
    assert loop.run_until_complete(main()) == [10] * 5


def test_task_factory_is_used(TaskGroup, loop):
    made = []

    def factory(lp, coro, **kwargs):
        task = asyncio.Task(coro, loop=lp, **kwargs)
        made.append(task)
        return task
    loop.set_task_factory(factory)

    async def main():
        async with TaskGroup() as tg:
            t = tg.create_task(value_after(1), name="via-factory")
        return t
    task = loop.run_until_complete(main())
    assert task in made and task.get_name() == "via-factory" and task.result() == 1


def test_exit_awaitable_send_ends_with_stop_iteration(TaskGroup, loop):
    # Driven by hand, __aexit__'s awaitable ends like a coroutine: send()
    # raises StopIteration (a C method returning NULL without an exception
    # would be a SystemError).
    async def main():
        tg = TaskGroup()
        await tg.__aenter__()
        steps = tg.__aexit__(None, None, None).__await__()
        with pytest.raises(StopIteration):
            steps.send(None)  # no tasks: __aexit__ has nothing to wait for
    loop.run_until_complete(main())


def test_reinitialised_while_a_task_fails(TaskGroup, loop):
    # __init__() called again on a group in use forgets its parent task;
    # the failing task's done callback then fails, and the failure is
    # reported like any callback's (asyncio: an AttributeError of None).
    reported = []

    async def main():
        loop.set_exception_handler(lambda lp, context: reported.append(context))
        tg = TaskGroup()
        await tg.__aenter__()
        task = tg.create_task(fail_after(ValueError("boom"), 0.001))
        tg.__init__()
        with pytest.raises(ValueError):
            await task
        await asyncio.sleep(0)
    loop.run_until_complete(main())
    assert len(reported) == 1
    assert reported[0]["message"].startswith("Exception in callback")
    assert not isinstance(reported[0]["exception"], SystemError)
