"""pyasync.run(): asyncio.run() on a pyasync loop."""
import asyncio
from asyncio import events

from ._policy import new_event_loop


def run(main, *, debug=None):
    """Run the coroutine `main` on a new pyasync loop and return its result.

    Same contract as asyncio.run(): it creates the loop and makes it the
    current event loop, runs `main`, cancels the tasks left over, shuts down
    async generators and the default executor, closes the loop and unsets it.
    It cannot be called while a loop is running in this thread.
    """
    if events._get_running_loop() is not None:
        raise RuntimeError(
            "asyncio.run() cannot be called from a running event loop")
    # asyncio.Runner sets the current loop only for loops it gets from the
    # policy, not for a loop_factory; asyncio.run() goes through the policy,
    # so do what it does by hand.
    runner = asyncio.Runner(debug=debug, loop_factory=new_event_loop)
    try:
        events.set_event_loop(runner.get_loop())
        return runner.run(main)
    finally:
        try:
            runner.close()
        finally:
            events.set_event_loop(None)
