"""inspect.signature() works on every public method of pyasync's C types
(tools such as pytest-asyncio, mock's autospec and IDEs call it), and the
parameters are named as asyncio names them."""
import asyncio
import inspect

import pytest

import pyasync

LOOP_METHODS = ["call_soon", "call_soon_threadsafe", "call_later", "call_at", "create_future",
                "create_task", "set_task_factory", "get_task_factory", "add_reader",
                "add_writer", "remove_reader", "remove_writer", "run_forever", "stop",
                "is_running", "is_closed", "get_debug", "time"]


def names(sig):
    return [p.name for p in sig.parameters.values()]


@pytest.mark.parametrize("name", LOOP_METHODS)
def test_loop_method_signatures(name):
    ref, ours = asyncio.new_event_loop(), pyasync.new_event_loop()
    try:
        assert names(inspect.signature(getattr(ours, name))) == \
            names(inspect.signature(getattr(ref, name)))
    finally:
        ref.close()
        ours.close()


@pytest.mark.parametrize("cls", [pyasync.Future, pyasync.Task, pyasync.TaskGroup,
                                 pyasync.Handle, pyasync.TimerHandle])
def test_every_public_method_has_a_signature(cls):
    for name in dir(cls):
        attr = getattr(cls, name)
        if name.startswith("__") or not callable(attr) or isinstance(attr, type):
            continue
        inspect.signature(attr)  # raises ValueError without a text signature


def test_future_and_task_signatures_match_asyncio():
    for ref, ours in [(asyncio.Future, pyasync.Future), (asyncio.Task, pyasync.Task)]:
        for name in ["set_result", "set_exception", "remove_done_callback", "cancel",
                     "result", "exception", "done", "cancelled", "get_loop"]:
            assert names(inspect.signature(getattr(ours, name))) == \
                names(inspect.signature(getattr(ref, name))), name
    for name in ["get_coro", "get_name", "set_name", "get_stack", "print_stack",
                 "cancelling", "uncancel"]:
        assert names(inspect.signature(getattr(pyasync.Task, name))) == \
            names(inspect.signature(getattr(asyncio.Task, name))), name
