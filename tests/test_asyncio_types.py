"""pyasync's Future and Task are asyncio's: isinstance(x, asyncio.Future) and
isinstance(x, asyncio.Task) hold for every future and task a pyasync loop
makes, CPython's C Task and ours await each other, and asyncio's own methods
called on our objects read the same state (our types use the fields of their
base types, _asyncio.Future and _asyncio.Task)."""
import asyncio
import subprocess
import sys
import textwrap

import pytest

import pyasync
from _child import CHILD_CWD

PY312 = sys.version_info >= (3, 12)


async def answer(x=42):
    await asyncio.sleep(0)
    return x


def all_made_futures_and_tasks(loop):
    """(label, object) for every way a loop's user gets a future or task."""
    made = []

    async def collect():
        made.append(("create_future", loop.create_future()))
        made.append(("create_task", loop.create_task(answer())))
        made.append(("asyncio.create_task", asyncio.create_task(answer())))
        made.append(("asyncio.ensure_future", asyncio.ensure_future(answer())))
        made.append(("current_task", asyncio.current_task()))
        made.append(("gather", asyncio.gather(answer())))
        if PY312:
            loop.set_task_factory(pyasync.eager_task_factory)
            made.append(("eager_task_factory", loop.create_task(answer())))
            loop.set_task_factory(asyncio.eager_task_factory)
            made.append(("asyncio.eager_task_factory", loop.create_task(answer())))
            loop.set_task_factory(None)
        for label, obj in made[1:]:
            if label != "current_task":
                await obj
        made[0][1].cancel()

    loop.run_until_complete(collect())
    return made


def test_everything_a_loop_makes_is_an_asyncio_future(loop):
    made = all_made_futures_and_tasks(loop)
    for label, obj in made:
        assert isinstance(obj, asyncio.Future), label
        assert type(obj) is obj.__class__, label
        assert asyncio.isfuture(obj), label
    tasks = [label for label, obj in made if isinstance(obj, asyncio.Task)]
    assert "create_future" not in tasks and "gather" not in tasks
    assert set(tasks) >= {"create_task", "asyncio.create_task", "current_task"}


def test_pyasync_loop_makes_pyasync_types(pyloop):
    for label, obj in all_made_futures_and_tasks(pyloop):
        if label in ("gather", "asyncio.eager_task_factory"):
            continue  # asyncio's _GatheringFuture; asyncio.Task by definition
        expected = pyasync.Task if isinstance(obj, asyncio.Task) else pyasync.Future
        assert type(obj) is expected, label


def test_class_hierarchy():
    assert issubclass(pyasync.Future, asyncio.Future)
    assert issubclass(pyasync.Task, asyncio.Task)
    assert issubclass(pyasync.Task, pyasync.Future)
    assert not issubclass(pyasync.Future, asyncio.Task)
    assert pyasync.Task.__mro__ == (pyasync.Task, pyasync.Future, asyncio.Task,
                                    asyncio.Future, object)


def test_direct_construction_and_subclasses(pyloop):
    class MyTask(pyasync.Task):
        pass

    class MyFuture(pyasync.Future):
        pass

    fut = pyasync.Future(loop=pyloop)
    task = pyasync.Task(answer(), loop=pyloop)
    mine = MyTask(answer(), loop=pyloop)
    myfut = MyFuture(loop=pyloop)
    assert isinstance(fut, asyncio.Future) and not isinstance(fut, asyncio.Task)
    assert isinstance(task, asyncio.Task) and isinstance(mine, asyncio.Task)
    assert isinstance(myfut, asyncio.Future)
    assert pyloop.run_until_complete(asyncio.gather(task, mine)) == [42, 42]
    fut.cancel()
    myfut.cancel()


def test_import_keeps_asyncio_c_bookkeeping():
    """Importing pyasync before asyncio must leave asyncio using its C task
    bookkeeping (importing _asyncio first would make asyncio.tasks fall
    back to the Python one, and a TaskGroup could not find its task)."""
    code = textwrap.dedent("""
        import pyasync, asyncio, asyncio.tasks as t
        c_function = type(len)
        assert type(t._enter_task) is c_function, t._enter_task
        assert asyncio.Task is t._CTask
        async def main():
            async with asyncio.TaskGroup() as tg:
                tg.create_task(asyncio.sleep(0))
            return asyncio.current_task() is not None
        pyasync.install()
        assert asyncio.run(main())
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=CHILD_CWD, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------- interoperation

def test_c_task_awaits_pyasync_future_and_task(pyloop):
    async def waiter(aw):
        return await aw

    async def main():
        fut = pyasync.Future(loop=pyloop)
        c_task = asyncio.Task(waiter(fut), loop=pyloop)
        await asyncio.sleep(0)
        assert c_task._fut_waiter is fut
        fut.set_result("from our future")
        ours = pyasync.Task(answer("from our task"), loop=pyloop)
        c_task2 = asyncio.Task(waiter(ours), loop=pyloop)
        return await c_task, await c_task2

    assert pyloop.run_until_complete(main()) == ("from our future", "from our task")


def test_pyasync_task_awaits_c_future_and_task(pyloop):
    async def waiter(aw):
        return await aw

    async def main():
        fut = asyncio.Future(loop=pyloop)
        ours = pyasync.Task(waiter(fut), loop=pyloop)
        await asyncio.sleep(0)
        assert ours._fut_waiter is fut
        fut.set_result(1)
        c_task = asyncio.Task(answer(2), loop=pyloop)
        ours2 = pyasync.Task(waiter(c_task), loop=pyloop)
        return await ours, await ours2

    assert pyloop.run_until_complete(main()) == (1, 2)


@pytest.mark.parametrize("outer", ["c", "pyasync"])
@pytest.mark.parametrize("inner", ["c", "pyasync"])
def test_cancellation_crosses_implementations(pyloop, outer, inner):
    kinds = {"c": asyncio.Task, "pyasync": pyasync.Task}
    started = pyloop.create_future()

    async def sleeper():
        started.set_result(None)
        await asyncio.sleep(3600)

    async def main():
        inner_task = kinds[inner](sleeper(), loop=pyloop)

        async def wait_inner():
            return await inner_task

        outer_task = kinds[outer](wait_inner(), loop=pyloop)
        await started
        await asyncio.sleep(0)
        assert isinstance(outer_task._fut_waiter, asyncio.Future)
        outer_task.cancel("stop")
        with pytest.raises(asyncio.CancelledError):
            await outer_task
        assert outer_task.cancelled()
        assert inner_task.cancelled()

    pyloop.run_until_complete(main())


# ---------------------------------------------------------------- asyncio's methods on our objects

def test_asyncio_future_methods_read_our_state(pyloop):
    fut = pyasync.Future(loop=pyloop)
    assert not asyncio.Future.done(fut)
    assert asyncio.Future.get_loop(fut) is pyloop
    fut.set_result("r")
    assert asyncio.Future.done(fut) and not asyncio.Future.cancelled(fut)
    assert asyncio.Future.result(fut) == "r"
    assert asyncio.Future.exception(fut) is None

    err = pyasync.Future(loop=pyloop)
    exc = ValueError("e")
    err.set_exception(exc)
    assert asyncio.Future.exception(err) is exc
    assert not err._log_traceback  # retrieved through the base method

    cancelled = pyasync.Future(loop=pyloop)
    cancelled.cancel("why")
    assert asyncio.Future.cancelled(cancelled)
    with pytest.raises(asyncio.CancelledError, match="why"):
        asyncio.Future.result(cancelled)

    # and the reverse: the base's state changes are seen by our methods
    other = pyasync.Future(loop=pyloop)
    asyncio.Future.set_result(other, 7)
    assert other.done() and other.result() == 7


def test_asyncio_task_methods_read_our_state(pyloop):
    coro = answer()
    task = pyasync.Task(coro, loop=pyloop, name="named")
    assert asyncio.Task.get_coro(task) is coro
    assert asyncio.Task.get_name(task) == "named"
    assert asyncio.Task.cancelling(task) == 0
    task.cancel()
    assert asyncio.Task.cancelling(task) == 1
    with pytest.raises(asyncio.CancelledError):
        pyloop.run_until_complete(task)
    assert asyncio.Future.cancelled(task)


def _call_quietly(fn, *args):
    try:
        fn(*args)
    except (Exception, asyncio.CancelledError):
        pass


def test_base_methods_on_our_objects_never_crash(pyloop):
    """Every method and attribute of asyncio.Future/asyncio.Task, called on
    our objects in each state, and our own methods on objects never
    initialised: exceptions are fine, a crash or a hang is not."""
    def make_objects():
        objs = [pyasync.Future.__new__(pyasync.Future), pyasync.Task.__new__(pyasync.Task)]
        pending = pyasync.Future(loop=pyloop)
        done = pyasync.Future(loop=pyloop)
        done.set_result(1)
        failed = pyasync.Future(loop=pyloop)
        failed.set_exception(ValueError())
        failed._log_traceback = False
        cancelled = pyasync.Future(loop=pyloop)
        cancelled.cancel()
        task = pyasync.Task(answer(), loop=pyloop)
        waiting = pyasync.Task(asyncio.sleep(3600), loop=pyloop)
        objs += [pending, done, failed, cancelled, task, waiting]
        return objs, [task, waiting]

    names = sorted(set(dir(asyncio.Task)) - set(dir(object)) - {"__del__", "__init__"})
    for name in names:
        objs, tasks = make_objects()
        pyloop.run_until_complete(asyncio.sleep(0))  # `waiting` now waits on a timer
        for i, obj in enumerate(objs):
            base = asyncio.Task if isinstance(obj, asyncio.Task) else asyncio.Future
            # asyncio's own methods crash CPython itself on an object that
            # was never initialised (asyncio.Task.__new__(asyncio.Task)
            # .get_context() segfaults), so those get only our methods.
            classes = (type(obj),) if i < 2 else (type(obj), base)
            for cls in classes:
                attr = getattr(cls, name, None)
                if attr is None:
                    continue
                if hasattr(attr, "__get__") and not callable(attr):
                    _call_quietly(attr.__get__, obj, type(obj))
                elif callable(attr):
                    _call_quietly(attr, obj)
                    _call_quietly(attr, obj, None)
        for t in tasks:
            t.cancel()
        pyloop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


@pytest.mark.parametrize("impl", ["asyncio", "pyasync"])
def test_subclasses_finalised_at_interpreter_exit(impl):
    """Subclasses of Task and Future kept alive in a cycle until the
    interpreter exits report a pending task and unretrieved exceptions, as
    asyncio's do, once each (no recursion through the finalizers)."""
    code = textwrap.dedent(f"""
        import asyncio, pyasync
        base = {impl}
        class MyTask(base.Task):
            pass
        class MyFuture(base.Future):
            pass
        loop = pyasync.new_event_loop()
        async def boom():
            raise ValueError("never retrieved")
        async def forever():
            await asyncio.sleep(3600)
        tasks = [MyTask(boom(), loop=loop), MyTask(forever(), loop=loop)]
        loop.run_until_complete(asyncio.sleep(0.01))
        f = MyFuture(loop=loop)
        f.set_exception(ValueError("f"))
        holder = [tasks, f, loop]
        holder.append(holder)
        f.me = f
        del tasks, f, loop
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=CHILD_CWD, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("MyFuture exception was never retrieved") == 1, out.stderr
    assert out.stderr.count("MyTask exception was never retrieved") == 1, out.stderr
    assert out.stderr.count("Task was destroyed but it is pending!") == 1, out.stderr
    assert "RecursionError" not in out.stderr
