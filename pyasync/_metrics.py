"""pyasync.metrics(): what a pyasync loop has done, from counters the C loop
keeps (csrc/metrics.h)."""
from asyncio import events

from ._core import LoopBase

__all__ = ("metrics",)


def metrics(loop=None):
    """A dict of what `loop` (the running loop by default) has done:

    iterations, callbacks, task_steps, tasks_created, tasks_finished,
    timers_scheduled, timers_cancelled, io_events, interest_changes: counts
    since the loop was made;
    ready, timers, fds: callbacks queued, timers pending and file
    descriptors watched now;
    timing, seconds, seconds_in_poll, seconds_running, utilisation,
    slow_callbacks, slowest, slow_callback_duration: time accounting, which
    the first call turns on (timing is False then, and the figures are 0):
    the time since then, the part of it blocked waiting for events, the
    rest, their ratio, and the callbacks and task steps that ran for at
    least loop.slow_callback_duration seconds: how many, and the five
    slowest as (seconds, description), longest first.
    """
    if loop is None:
        loop = events.get_running_loop()
    if not isinstance(loop, LoopBase):
        raise TypeError(f"metrics() needs a pyasync loop, not {type(loop).__name__}")
    return loop._metrics()
