"""Allocation failures in pyasync's C code raise MemoryError and leave
everything usable: no crash, no exception lost or left behind. Each
operation runs with the n-th allocation made to fail, for every n until the
operation succeeds (CPython's _testcapi.set_nomemory), in a subprocess so
that a crash fails the test instead of the run."""
import os
import subprocess
import sys
import textwrap

import pytest
from _child import CHILD_CWD

_testcapi = pytest.importorskip("_testcapi")

SCRIPT = textwrap.dedent("""
    import asyncio, contextvars, gc, sys, _testcapi
    import pyasync

    var = contextvars.ContextVar("var")
    var.set(1)  # a non-empty context: call_soon() copies it for each handle
    loop = pyasync.new_event_loop()
    asyncio.set_event_loop(loop)

    async def coro():
        await asyncio.sleep(0)
        return 1

    def cb(*args):
        pass

    def op_call_soon():
        loop.call_soon(cb, 1, 2)

    def op_call_later():
        loop.call_later(10, cb).cancel()

    def op_future():
        fut = loop.create_future()
        fut.add_done_callback(cb)
        fut.add_done_callback(cb)
        fut.set_result(1)

    def op_task():
        c = coro()
        try:
            loop.create_task(c)
        except MemoryError:
            c.close()
            raise

    def op_run():
        loop.run_until_complete(coro())

    OPS = [op_call_soon, op_call_later, op_future, op_task, op_run]
    name = sys.argv[1]
    op = {f.__name__: f for f in OPS}[name]
    failures = 0
    for n in range(400):
        gc.collect()
        _testcapi.set_nomemory(n, n + 1)
        try:
            op()
        except MemoryError:
            failures += 1
            continue
        finally:
            _testcapi.remove_mem_hooks()
        break
    else:
        raise SystemExit(f"{name}: still failing after 400 allocations")
    # everything still works afterwards
    loop.run_until_complete(coro())
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.close()
    print(name, "ok after", failures, "injected failures")
""")


@pytest.mark.parametrize("op", ["op_call_soon", "op_call_later", "op_future", "op_task",
                                "op_run"])
def test_allocation_failures(op):
    # The debug allocator fills new memory with a pattern: a field left
    # uninitialised on an error path is then a bad pointer, not a lucky NULL.
    env = dict(os.environ, PYTHONMALLOC="debug")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, op], cwd=CHILD_CWD, capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok after" in proc.stdout
