"""pyasync.run(): asyncio.run() on a pyasync loop."""
import asyncio
from asyncio import events

from ._policy import new_event_loop


def run(main, *, debug=None):
    """Run the coroutine `main` on a new pyasync loop and return its result.

    Same contract as asyncio.run(): it creates the loop, runs `main`, cancels
    the tasks left over, shuts down async generators and the default executor,
    and closes the loop. It cannot be called while a loop is running in this
    thread.
    """
    if events._get_running_loop() is not None:
        raise RuntimeError(
            "asyncio.run() cannot be called from a running event loop")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
