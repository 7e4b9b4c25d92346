"""Eager task factories for pyasync's Task (Python 3.12+).

With an eager factory, create_task() runs the coroutine's first step at once,
inside the call; a coroutine that finishes without waiting never touches the
loop. Same contract as asyncio.create_eager_task_factory(); the factory itself
is C (csrc/eagerfactory.c), and with pyasync.Task it makes and starts the task
without a Python call.
"""
from . import _compat
from ._core import EagerTaskFactory, Task


def create_eager_task_factory(custom_task_constructor=Task):
    """A task factory that starts the tasks it makes eagerly."""
    return EagerTaskFactory(custom_task_constructor)


eager_task_factory = create_eager_task_factory() if _compat.HAS_EAGER_TASKS else None
