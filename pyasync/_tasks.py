"""Eager task factories for pyasync's Task (Python 3.12+).

With an eager factory, create_task() runs the coroutine's first step at once,
inside the call; a coroutine that finishes without waiting never touches the
loop. Same contract as asyncio.create_eager_task_factory().
"""
from . import _compat
from ._core import Task


def create_eager_task_factory(custom_task_constructor=Task):
    """A task factory that starts the tasks it makes eagerly."""
    if not _compat.HAS_EAGER_TASKS:
        raise RuntimeError("eager tasks need Python 3.12 or newer")

    def factory(loop, coro, *, name=None, context=None):
        return custom_task_constructor(coro, loop=loop, name=name, context=context,
                                       eager_start=True)
    return factory


eager_task_factory = create_eager_task_factory() if _compat.HAS_EAGER_TASKS else None
