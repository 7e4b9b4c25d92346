"""Virtual time for tests: pyasync loops whose clock jumps over waits.

    loop = pyasync.testing.new_event_loop()          # autojump, time() starts at 0.0
    loop.run_until_complete(asyncio.sleep(3600))     # returns at once; loop.time() == 3600.0

    asyncio.run(main(), loop_factory=pyasync.testing.new_event_loop)   # 3.12+
    with asyncio.Runner(loop_factory=pyasync.testing.new_event_loop) as runner: ...
    asyncio.set_event_loop_policy(pyasync.testing.EventLoopPolicy())  # 3.11, unittest

When nothing is ready to run and no I/O is ready, the clock is set to the
next timer's deadline instead of waiting for it: sleeps, timeouts,
wait_for(), call_later() chains, retries with back-off and keep-alive timers
complete at once, in deadline order, with the outcome they have on a real
clock. Real I/O keeps working: with `autojump_threshold` > 0 the loop first
waits that many real seconds for I/O before it jumps. While a job of the
loop's executor runs (run_in_executor(), asyncio.to_thread(), DNS), the
clock follows real time instead, so a thread's result is waited for, not
jumped over. A thread the program starts itself is not known to the loop:
give such tests an `autojump_threshold`.

With autojump=False the clock moves only when a test says so:
`pyasync.testing.advance(loop, seconds)` runs every timer due within
`seconds`, each at its own deadline, and leaves loop.time() advanced by
exactly `seconds` (from a coroutine on that loop: `await advance(loop,
seconds)`).
"""
import asyncio
import math

from ._loop import Loop
from ._policy import EventLoopPolicy as _EventLoopPolicy

__all__ = ("EventLoopPolicy", "VirtualTimeLoop", "advance", "new_event_loop")


class VirtualTimeLoop(Loop):
    """A pyasync loop with a virtual clock (see the module's documentation)."""

    def run_in_executor(self, executor, func, *args):
        fut = super().run_in_executor(executor, func, *args)
        self._virtual_threads_busy += 1
        fut.add_done_callback(self._executor_job_done)
        return fut

    def _executor_job_done(self, fut):
        self._virtual_threads_busy -= 1


def new_event_loop(*, autojump=True, start=0.0, autojump_threshold=0.0):
    """A new pyasync loop whose time() is virtual, starting at `start`."""
    if not isinstance(autojump_threshold, (int, float)) or not autojump_threshold >= 0:
        raise ValueError(f"autojump_threshold must be a number >= 0, not {autojump_threshold!r}")
    loop = VirtualTimeLoop()
    try:
        loop._use_virtual_clock(float(start))
    except BaseException:
        loop.close()
        raise
    loop._virtual_jump_limit = math.inf if autojump else -math.inf
    loop._virtual_threshold = float(autojump_threshold)
    return loop


class EventLoopPolicy(_EventLoopPolicy):
    """pyasync's policy, with loops of virtual time: for asyncio.run() and
    IsolatedAsyncioTestCase on 3.11, where there is no loop_factory."""

    def __init__(self, **loop_options):
        super().__init__()
        self._loop_options = loop_options

    def new_event_loop(self):
        return new_event_loop(**self._loop_options)


def advance(loop, seconds):
    """Run every timer of `loop` due within `seconds` of virtual time, each
    at its own deadline, and leave loop.time() exactly `seconds` later. For
    loops made with autojump=False (with autojump, any wait does this).

    Called while the loop is not running, it runs the loop until then and
    returns None. Called from code running on the loop, it returns an
    awaitable that completes at that time: `await advance(loop, 5)`.
    """
    if not isinstance(loop, VirtualTimeLoop):
        raise TypeError(f"advance() needs a loop of pyasync.testing, not {type(loop).__name__}")
    if not seconds >= 0:
        raise ValueError(f"cannot advance by {seconds!r} seconds")
    target = loop.time() + seconds
    if target > loop._virtual_jump_limit:
        loop._virtual_jump_limit = target
    # A timer at the target itself: jumping to the timers up to the limit
    # reaches it last, and the clock stops there.
    if loop.is_running():
        return asyncio.sleep(seconds)
    loop.run_until_complete(asyncio.sleep(seconds))
    return None
