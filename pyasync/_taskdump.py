"""pyasync.dump_tasks(): what every task of a loop is doing, as a tree.

A task is printed under the task that awaits it: directly (`await task`),
through gather(), or as a child of a TaskGroup whose `async with` block the
parent is leaving. Each task shows its coroutine stack (outermost frame
first) and what it waits on at the bottom of that stack. Works for pyasync's
tasks and for asyncio's own tasks on any loop; nothing is kept or counted
while no dump is asked for.

A dump can also be asked for from outside a running process: with
PYASYNC_DUMP_TASKS_SIGNAL set to a signal name or number (for example
SIGUSR1) when pyasync is imported, a pyasync loop that starts running in the
main thread installs a handler for that signal that dumps the running loop's
tasks to stderr.
"""
import asyncio
import os
import reprlib
import signal
import sys
import threading
from asyncio import events, tasks

__all__ = ("dump_tasks",)

ENV_SIGNAL = "PYASYNC_DUMP_TASKS_SIGNAL"

_repr = reprlib.Repr()
_repr.maxother = 80


def dump_tasks(loop=None, file=None):
    """Print every pending task of `loop` (the running loop by default) to
    `file` (sys.stderr by default): name, state, coroutine stack and what
    it awaits, nested under the task that awaits it."""
    if loop is None:
        loop = events.get_running_loop()
    if file is None:
        file = sys.stderr
    pending = sorted(tasks.all_tasks(loop), key=_task_order)
    current = tasks.current_task(loop)
    if current is not None and current not in pending:
        pending.insert(0, current)
    # What each task is doing, worked out once: its frames, its state line
    # and the tasks it waits for (its children in the tree).
    info = {task: _examine(task, current) for task in pending}
    awaited = {kid for _, _, kids in info.values() for kid in kids}
    for kid in awaited.difference(info):  # awaited, but not one of the loop's pending tasks
        frames, state, _ = _examine(kid, current)
        info[kid] = frames, state, []
    lines = [f"{len(pending)} task{'s' if len(pending) != 1 else ''} of {_repr.repr(loop)}"]
    seen = set()
    for task in pending:
        if task not in awaited:
            _format_task(task, info, seen, lines, 0)
    for task in pending:  # tasks in a cycle of awaits have no root
        if task not in seen:
            _format_task(task, info, seen, lines, 0)
    file.write("\n".join(lines) + "\n")
    flush = getattr(file, "flush", None)
    if flush is not None:
        flush()


def _task_order(task):
    name = task.get_name()
    return (0, name) if isinstance(name, str) else (1, str(name))


def _examine(task, current):
    """(frames, "(state), what it awaits", awaited tasks) of one task."""
    frames = list(_coroutine_frames(task.get_coro()))
    waiter = _waiter(task)
    if task is current:
        return frames, "(running)", []
    if task.done():
        return frames, "(done)", []
    if waiter is None:
        return frames, "(ready to run)", []
    what, kids = _what_it_awaits(waiter, frames)
    return frames, f"(waiting), {what}", [kid for kid in kids if kid is not task]


def _format_task(task, info, seen, lines, depth):
    seen.add(task)
    pad = "    " * depth
    frames, state, kids = info[task]
    lines.append(f"{pad}Task {task.get_name()!r} {state}")
    for frame in frames:
        code = frame.f_code
        lines.append(f"{pad}  | {code.co_filename}:{frame.f_lineno} in {code.co_name}")
    if not frames:
        lines.append(f"{pad}  | {_repr.repr(task.get_coro())}")
    for kid in kids:
        if kid in seen:
            lines.append(f"{pad}    Task {kid.get_name()!r} (shown above)")
        else:
            _format_task(kid, info, seen, lines, depth + 1)


def _coroutine_frames(coro):
    """The frames of a coroutine and of what it awaits, outermost first."""
    depth = 0
    while coro is not None and depth < 1000:
        depth += 1
        frame = (getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                 or getattr(coro, "ag_frame", None))
        if frame is not None:
            yield frame
        coro = (getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
                or getattr(coro, "ag_await", None))


def _waiter(task):
    try:
        return task._fut_waiter
    except AttributeError:
        return None


def _what_it_awaits(waiter, frames):
    """What a task waiting on `waiter` awaits, described, and the tasks it
    waits for: the task it awaits, gather()'s children, or the tasks of the
    TaskGroup it is leaving."""
    if isinstance(waiter, asyncio.Task):
        return f"awaiting Task {waiter.get_name()!r}", [waiter]
    kids = getattr(waiter, "_children", None)  # gather()
    if isinstance(kids, list):
        return "awaiting gather()", [k for k in kids if isinstance(k, asyncio.Task) and not k.done()]
    group = _group_waited_on(waiter, frames)
    if group is not None:
        return ("awaiting its TaskGroup",
                sorted((t for t in group._tasks if not t.done()), key=_task_order))
    # The innermost frame that is a method of one of asyncio's own classes
    # (Event.wait, Lock.acquire, Queue.get, Condition.wait, ...).
    for frame in reversed(frames):
        owner = frame.f_locals.get("self")
        module = type(owner).__module__ if owner is not None else ""
        if module.startswith("asyncio.") or module == "asyncio":
            return f"awaiting {type(owner).__name__}.{frame.f_code.co_name}()", []
        if frame.f_code.co_name == "sleep" and frame.f_globals.get("__name__") == "asyncio.tasks":
            return "in asyncio.sleep()", []
    return f"awaiting {_repr.repr(waiter)}", []


def _group_waited_on(waiter, frames):
    """The TaskGroup whose completion future is `waiter`, found among the
    locals of the task's frames (asyncio's __aexit__ has it as `self`; a
    pyasync TaskGroup's C __aexit__ has no frame, the `async with` target
    is the caller's local)."""
    for frame in frames:
        for value in frame.f_locals.values():
            if getattr(value, "_on_completed_fut", None) is waiter and hasattr(value, "_tasks"):
                return value
    return None


# ---------------------------------------------------------------- on a signal

# Read once, when pyasync is imported: looking it up each time a loop
# starts would allocate on the way into run_forever().
SIGNAL_FROM_ENV = os.environ.get(ENV_SIGNAL) or None
_installed_signal = None


def _dump_on_signal(signum, frame):
    loop = events._get_running_loop()
    if loop is None:
        sys.stderr.write(f"pyasync: signal {signum}: no event loop is running\n")
        return
    dump_tasks(loop, sys.stderr)


def install_signal_dump():
    """Called by a pyasync loop as it starts running: install the dump
    handler named by PYASYNC_DUMP_TASKS_SIGNAL (as it was when pyasync was
    imported), once, from the main thread."""
    global _installed_signal
    if SIGNAL_FROM_ENV is None or _installed_signal is not None:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    signum = _parse_signal(SIGNAL_FROM_ENV)
    signal.signal(signum, _dump_on_signal)
    _installed_signal = signum


def _parse_signal(name):
    text = name.strip()
    if text.isdigit():
        return signal.Signals(int(text))
    text = text.upper()
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return signal.Signals[text]
    except KeyError:
        raise ValueError(f"{ENV_SIGNAL}={name!r} does not name a signal") from None
