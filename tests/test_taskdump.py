"""pyasync.dump_tasks(): the tree of tasks and what each awaits, on both
loops (the dump of an asyncio loop is the reference: the same program gives
the same dump but for the loop's own line), and the dump on a signal."""
import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
from _child import CHILD_CWD

import pyasync


async def _scenario(taskgroup_type):
    """Tasks blocked in the usual ways; returns the dump taken while they are."""
    out = io.StringIO()
    ev, lock, queue = asyncio.Event(), asyncio.Lock(), asyncio.Queue()
    await lock.acquire()

    async def leaf():
        await ev.wait()

    async def locked():
        async with lock:
            pass

    async def sleeper():
        await asyncio.sleep(3600)

    async def getter():
        await queue.get()

    async def waits_for(task):
        await task

    first = asyncio.create_task(leaf(), name="leaf")
    gathered = asyncio.gather(sleeper(), getter())

    async def dumper():
        await asyncio.sleep(0.01)
        pyasync.dump_tasks(file=out)
        ev.set()
        lock.release()
        queue.put_nowait(1)
        gathered.cancel()

    async with taskgroup_type() as tg:
        tg.create_task(locked(), name="locked")
        tg.create_task(waits_for(first), name="waits-for-leaf")
        tg.create_task(dumper(), name="dumper")
    with pytest.raises(asyncio.CancelledError):
        await gathered
    return out.getvalue()


def _run(loop, coro):
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        asyncio.set_event_loop(None)


def _body(dump):
    """The dump without its first line (which names the loop), with task
    numbers dropped (asyncio's counter is global to the process)."""
    return [re.sub(r"'Task-\d+'", "'Task-N'", line) for line in dump.splitlines()[1:]]


@pytest.mark.parametrize("taskgroup", ["asyncio", "pyasync"])
def test_dump_is_a_tree_of_what_each_task_awaits(loop_factory, loop_kind, taskgroup):
    tg_type = asyncio.TaskGroup if taskgroup == "asyncio" else pyasync.TaskGroup
    dump = _run(loop_factory(), _scenario(tg_type))
    lines = dump.splitlines()
    assert lines[0].startswith("7 tasks of <")
    body = "\n".join(_body(dump))
    # The parent is leaving its TaskGroup; the group's tasks are under it.
    assert "Task 'Task-N' (waiting), awaiting its TaskGroup" in body
    assert "\n    Task 'dumper' (running)\n" in body
    assert "\n    Task 'locked' (waiting), awaiting Lock.acquire()\n" in body
    assert "\n    Task 'waits-for-leaf' (waiting), awaiting Task 'leaf'\n" in body
    # A task awaited by another is shown under it, not as a root.
    assert "\n        Task 'leaf' (waiting), awaiting Event.wait()\n" in body
    assert "\nTask 'leaf'" not in body
    assert "(waiting), in asyncio.sleep()" in body
    assert "(waiting), awaiting Queue.get()" in body
    # Each task's stack, outermost frame first, file:line in function.
    assert f"  | {__file__}:" in body
    assert "in leaf\n" in body


@pytest.mark.parametrize("taskgroup", ["asyncio", "pyasync"])
def test_dump_is_the_same_on_both_loops(taskgroup):
    tg_type = asyncio.TaskGroup if taskgroup == "asyncio" else pyasync.TaskGroup
    dumps = []
    for make in (pyasync.new_event_loop, asyncio.new_event_loop):
        loop = make()
        try:
            dumps.append(_body(_run(loop, _scenario(tg_type))))
        finally:
            loop.close()
    assert dumps[0] == dumps[1]


def test_dump_of_a_loop_that_is_not_running(loop_factory):
    loop = loop_factory()

    async def forever():
        await asyncio.sleep(3600)

    task = loop.create_task(forever(), name="idle")
    loop.run_until_complete(asyncio.sleep(0))
    out = io.StringIO()
    pyasync.dump_tasks(loop, file=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("1 task of <")
    assert lines[1] == "Task 'idle' (waiting), in asyncio.sleep()"
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))


def test_dump_without_a_running_loop_raises():
    with pytest.raises(RuntimeError, match="no running event loop"):
        pyasync.dump_tasks()


# The signal comes from another thread while the loop waits in poll, as a
# `kill -USR1 <pid>` from outside would (the main thread takes it).
SIGNAL_PROGRAM = textwrap.dedent("""
    import asyncio, os, signal, threading, pyasync

    async def stuck():
        await asyncio.Event().wait()

    async def main():
        asyncio.create_task(stuck(), name="stuck-forever")
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        await asyncio.sleep(0.5)
        print("still running")

    pyasync.run(main())
""")


def test_dump_on_the_signal_named_by_the_environment():
    env = dict(os.environ, PYASYNC_DUMP_TASKS_SIGNAL="SIGUSR1")
    proc = subprocess.run([sys.executable, "-c", SIGNAL_PROGRAM], cwd=CHILD_CWD, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "still running\n"
    assert "Task 'stuck-forever' (waiting), awaiting Event.wait()" in proc.stderr
    assert "Task 'Task-1' (waiting), in asyncio.sleep()" in proc.stderr


def test_no_dump_handler_without_the_environment():
    env = {k: v for k, v in os.environ.items() if k != "PYASYNC_DUMP_TASKS_SIGNAL"}
    code = SIGNAL_PROGRAM.replace(
        "threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()",
        "assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL")
    assert code != SIGNAL_PROGRAM
    proc = subprocess.run([sys.executable, "-c", code], cwd=CHILD_CWD, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_a_bad_signal_name_is_a_clear_error():
    env = dict(os.environ, PYASYNC_DUMP_TASKS_SIGNAL="SIGNOPE")
    proc = subprocess.run([sys.executable, "-c", "import pyasync, asyncio; pyasync.run(asyncio.sleep(0))"],
                          cwd=CHILD_CWD, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "ValueError: PYASYNC_DUMP_TASKS_SIGNAL='SIGNOPE' does not name a signal" in proc.stderr


def test_signal_names_and_numbers():
    from pyasync._taskdump import _parse_signal
    assert _parse_signal("SIGUSR2") is signal.SIGUSR2
    assert _parse_signal("usr2") is signal.SIGUSR2
    assert _parse_signal(str(int(signal.SIGUSR1))) is signal.SIGUSR1


def test_asyncio_tasks_on_a_pyasync_loop_are_dumped_too():
    loop = pyasync.new_event_loop()
    loop.set_task_factory(lambda lp, coro, **kw: asyncio.Task(coro, loop=lp, **kw))
    try:
        async def child(ev):
            await ev.wait()

        async def main():
            ev = asyncio.Event()
            kid = asyncio.create_task(child(ev), name="asyncio-kid")
            await asyncio.sleep(0)
            assert type(kid) is asyncio.Task
            out = io.StringIO()
            pyasync.dump_tasks(file=out)
            ev.set()
            await kid
            return out.getvalue()

        dump = loop.run_until_complete(main())
    finally:
        loop.close()
    assert "Task 'asyncio-kid' (waiting), awaiting Event.wait()" in dump
    assert "(running)" in dump
