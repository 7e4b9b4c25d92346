"""asyncio.all_tasks() sees pyasync's tasks exactly as it sees asyncio's.

pyasync registers its tasks in asyncio's own WeakSet from C (csrc/taskregistry.c)
and takes them out when they finish or die; these tests hold it to the
behaviour of asyncio.Task, the reference, on both loops.
"""
import asyncio
import gc
from asyncio import tasks as asyncio_tasks

import pytest

import pyasync
from pyasync import _compat


@pytest.fixture(params=["asyncio.Task", "pyasync.Task"])
def Task(request):
    return asyncio.Task if request.param == "asyncio.Task" else pyasync.Task


def registry():
    return getattr(asyncio_tasks, _compat.TASK_REGISTRY_NAME)


async def wait_on(fut):
    return await fut


def test_all_tasks_tracks_pending_tasks_only(Task, loop):
    async def main():
        me = asyncio.current_task()
        futs = [loop.create_future() for _ in range(50)]
        children = [Task(wait_on(f), loop=loop) for f in futs]
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {me, *children}
        for fut in futs[:20]:
            fut.set_result(None)
        await asyncio.gather(*children[:20])
        assert asyncio.all_tasks() == {me, *children[20:]}
        for fut in futs[20:]:
            fut.set_result(None)
        await asyncio.gather(*children[20:])
        assert asyncio.all_tasks() == {me}
    loop.run_until_complete(Task(main(), loop=loop))


def test_finished_tasks_leave_the_registry(Task, loop):
    async def quick():
        await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*[Task(quick(), loop=loop) for _ in range(1000)])
    gc.collect()
    before = len(registry())
    loop.run_until_complete(Task(main(), loop=loop))
    gc.collect()
    assert len(registry()) == before


def test_task_finishing_while_registry_is_iterated(Task, loop):
    """WeakSet defers removals while it is being iterated; so must we."""
    async def main():
        fut = loop.create_future()
        child = Task(wait_on(fut), loop=loop)
        await asyncio.sleep(0)
        iterator = iter(registry())
        first = next(iterator)  # the WeakSet now counts as being iterated
        fut.set_result("done")
        assert await child == "done"
        rest = list(iterator)  # no "set changed size during iteration"
        assert child in [first, *rest]
        assert child not in asyncio.all_tasks()
        # The next registration commits the deferred removal.
        other = Task(asyncio.sleep(0), loop=loop)
        assert asyncio.all_tasks() == {asyncio.current_task(), other}
        await other
    loop.run_until_complete(Task(main(), loop=loop))


def test_pending_task_collected_leaves_the_registry(Task, loop):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx["message"]))

    async def forever():
        await loop.create_future()

    gc.collect()
    before = len(registry())
    task = Task(forever(), loop=loop)
    loop.run_until_complete(asyncio.sleep(0))
    assert task in asyncio.all_tasks(loop)
    del task
    gc.collect()
    assert len(registry()) == before
    assert asyncio.all_tasks(loop) == set()
    assert reports == ["Task was destroyed but it is pending!"]


def test_eager_task_registered_after_it_blocks(Task, loop):
    if not _compat.HAS_EAGER_TASKS:
        pytest.skip("eager tasks are new in 3.12")

    async def main():
        fut = loop.create_future()
        child = Task(wait_on(fut), loop=loop, eager_start=True)
        assert asyncio.all_tasks() == {asyncio.current_task(), child}
        fut.set_result(1)
        assert await child == 1
        assert asyncio.all_tasks() == {asyncio.current_task()}
    loop.run_until_complete(Task(main(), loop=loop))
