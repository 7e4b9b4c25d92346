"""A replaced call_soon() sees every callback that asyncio's Future and Task
schedule, however it was replaced: on the instance, in a subclass, by a new
__class__, or by patching the class after the loop was made. asyncio's
futures and tasks call loop.call_soon(); pyasync's queue callbacks directly
only while call_soon() is its own."""
import asyncio
from unittest import mock

import pytest


async def one_step():
    await asyncio.sleep(0)
    return "done"


def exercise(loop):
    """A future's done-callback and a task's steps; returns the result."""
    fut = loop.create_future()
    seen = []
    fut.add_done_callback(lambda f: seen.append(f.result()))
    loop.call_soon(fut.set_result, 1)
    task = loop.create_task(one_step())
    assert loop.run_until_complete(task) == "done"
    assert seen == [1]


def counting(original):
    calls = []

    def call_soon(self, callback, *args, **kwargs):
        calls.append(callback)
        return original(self, callback, *args, **kwargs)
    return call_soon, calls


@pytest.mark.parametrize("how", ["instance", "subclass", "class_patched_later"])
def test_replaced_call_soon_sees_future_and_task_callbacks(loop, how):
    cls = type(loop)
    original = cls.call_soon
    call_soon, calls = counting(original)
    exercise(loop)  # the loop has run with its own call_soon first
    if how == "instance":
        loop.call_soon = call_soon.__get__(loop)
        exercise(loop)
        del loop.call_soon
    elif how == "subclass":
        sub = type("Sub", (cls,), {"call_soon": call_soon})
        loop.__class__ = sub
        exercise(loop)
        loop.__class__ = cls
    else:
        with mock.patch.object(cls, "call_soon", call_soon):
            exercise(loop)
    # the done-callback, the task's first step and its wakeup after sleep(0)
    names = [getattr(cb, "__name__", type(cb).__name__) for cb in calls]
    assert "<lambda>" in names, names  # the future's done-callback
    steps = [n for n in names if "step" in n.lower() or "wakeup" in n.lower()]
    assert len(steps) >= 2, names  # the task's first step and the one after sleep(0)
    count = len(calls)
    exercise(loop)  # back to the loop's own call_soon
    assert len(calls) == count
