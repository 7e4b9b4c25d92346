"""create_future, create_task, task factories, run_in_executor and the
default executor."""
import asyncio
import concurrent.futures
import contextvars
import threading

import pytest


def test_create_future_belongs_to_loop(loop):
    fut = loop.create_future()
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is loop
    fut.cancel()


def test_create_task_name_and_context(loop):
    var = contextvars.ContextVar("v")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "from-ctx")

    async def main():
        return var.get()
    task = loop.create_task(main(), name="worker", context=ctx)
    assert task.get_name() == "worker"
    assert loop.run_until_complete(task) == "from-ctx"


def test_create_task_rejects_non_coroutine(loop):
    with pytest.raises(TypeError):
        loop.create_task(42)


def test_task_factory(loop):
    made = []

    def factory(lp, coro, **kwargs):
        task = asyncio.Task(coro, loop=lp, **kwargs)
        made.append(task)
        return task
    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def main():
        return 7
    assert loop.run_until_complete(main()) == 7
    t = loop.create_task(main(), name="named")
    assert t.get_name() == "named"
    loop.run_until_complete(t)
    assert len(made) == 2
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory(1)


def test_current_task_and_all_tasks(loop):
    async def main():
        me = asyncio.current_task()
        assert me in asyncio.all_tasks()
        return me
    task = loop.create_task(main())
    assert loop.run_until_complete(task) is task


def test_run_in_executor(loop):
    main_thread = threading.get_ident()

    def work(a, b):
        return a + b, threading.get_ident() != main_thread
    assert loop.run_until_complete(loop.run_in_executor(None, work, 2, 3)) == (5, True)


def test_run_in_executor_exception(loop):
    def fail():
        raise LookupError("in thread")
    with pytest.raises(LookupError, match="in thread"):
        loop.run_until_complete(loop.run_in_executor(None, fail))


def test_run_in_custom_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        fut = loop.run_in_executor(pool, threading.current_thread)
        thread = loop.run_until_complete(fut)
    assert thread is not threading.current_thread()


def test_set_default_executor_type_check(loop):
    with pytest.raises(TypeError, match="executor must be ThreadPoolExecutor instance"):
        loop.set_default_executor(object())


def test_shutdown_default_executor(loop):
    loop.run_until_complete(loop.run_in_executor(None, int))
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, int)


def test_to_thread(loop):
    assert loop.run_until_complete(asyncio.to_thread(sum, [1, 2, 3])) == 6


def test_run_coroutine_threadsafe(loop):
    results = []

    async def coro(x):
        await asyncio.sleep(0)
        return x * 2

    def other_thread():
        fut = asyncio.run_coroutine_threadsafe(coro(21), loop)
        results.append(fut.result(timeout=5))
        loop.call_soon_threadsafe(loop.stop)
    t = threading.Thread(target=other_thread)
    t.start()
    loop.run_forever()
    t.join()
    assert results == [42]


def test_stdlib_primitives_on_loop(loop):
    async def main():
        q = asyncio.Queue()
        lock = asyncio.Lock()
        event = asyncio.Event()

        async def producer():
            for i in range(5):
                await q.put(i)
                await asyncio.sleep(0)
            event.set()

        async def consumer():
            got = []
            while len(got) < 5:
                async with lock:
                    got.append(await q.get())
            return got
        async with asyncio.timeout(5):
            res = await asyncio.gather(producer(), consumer())
        await event.wait()
        done, pending = await asyncio.wait([asyncio.ensure_future(asyncio.sleep(0.01))])
        assert not pending
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(1), 0.01)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(asyncio.sleep(0))
        return res[1]
    assert loop.run_until_complete(main()) == [0, 1, 2, 3, 4]
