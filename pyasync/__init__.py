"""pyasync: an asyncio event loop written in C.

    import asyncio, pyasync
    pyasync.run(main())                                      # like asyncio.run()
    asyncio.run(main(), loop_factory=pyasync.new_event_loop) # Python 3.12+
    pyasync.install()                                        # make it the default

or, for an unchanged program: python -m pyasync script.py [args...]
"""
import sys as _sys

if _sys.platform == "win32":
    raise ImportError("pyasync needs epoll or poll(); Windows is not supported")

# Refuses an interpreter pyasync has not been tested on, before the C
# extension is loaded.
from . import _compat  # noqa: E402,F401

try:
    from ._core import Future, Handle, Task, TaskGroup, TimerHandle, pollers  # noqa: E402
except ImportError as _exc:  # pragma: no cover - depends on how it was installed
    raise ImportError(
        "pyasync's C extension (pyasync._core) is not built for this interpreter. "
        "Install pyasync with 'pip install .' and run Python from outside its source "
        "tree, or build it in place with 'python setup.py build_ext --inplace'."
    ) from _exc
from ._loop import Loop  # noqa: E402
from ._policy import EventLoopPolicy, install, new_event_loop  # noqa: E402
from ._runner import run  # noqa: E402
from ._metrics import metrics  # noqa: E402
from ._taskdump import dump_tasks  # noqa: E402
from ._tasks import create_eager_task_factory, eager_task_factory  # noqa: E402

__version__ = "0.1.0"

__all__ = (
    "EventLoopPolicy",
    "Future",
    "Handle",
    "Loop",
    "Task",
    "TaskGroup",
    "create_eager_task_factory",
    "dump_tasks",
    "eager_task_factory",
    "TimerHandle",
    "install",
    "metrics",
    "new_event_loop",
    "pollers",
    "run",
)
