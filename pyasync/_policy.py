"""The event loop policy, install() and new_event_loop().

The policy is the standard library's default policy for this Python version
with our loop as its factory, so get_event_loop() warns and errs exactly as
asyncio's does on each version.
"""
import asyncio

from . import _compat
from ._loop import Loop


def new_event_loop():
    """Create a new pyasync event loop (also usable as a loop_factory)."""
    return Loop()


class EventLoopPolicy(_compat.BaseDefaultPolicy):
    """asyncio's default event loop policy, creating pyasync loops."""

    _loop_factory = Loop

    def __repr__(self):
        return f'<{self.__class__.__name__}>'


def install():
    """Make pyasync the event loop of asyncio.run() and friends by setting
    pyasync.EventLoopPolicy as the current policy."""
    asyncio.set_event_loop_policy(EventLoopPolicy())
