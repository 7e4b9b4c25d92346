"""inspect.signature() works on every public method of pyasync's C types
(tools such as pytest-asyncio, mock's autospec and IDEs call it), and the
parameters are named as asyncio names them."""
import asyncio
import gc
import inspect
import types
import warnings

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


def kinds(sig):
    return [(p.name, p.kind) for p in sig.parameters.values()]


@pytest.mark.parametrize("name", LOOP_METHODS)
def test_loop_parameters_pass_the_same_ways(name):
    # asyncio's loop methods are Python functions: a parameter before *args
    # may be given by keyword. Ours must take it the same ways.
    ref, ours = asyncio.new_event_loop(), pyasync.new_event_loop()
    try:
        assert kinds(inspect.signature(getattr(ours, name))) == \
            kinds(inspect.signature(getattr(ref, name)))
    finally:
        ref.close()
        ours.close()


def test_leading_parameters_by_keyword(loop):
    import contextvars
    import socket

    var = contextvars.ContextVar("var", default="outside")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inside")
    seen = []

    def record(*args):
        seen.append((args, var.get()))

    async def coro():
        return "coro ran"

    a, b = socket.socketpair()
    try:
        loop.call_soon(callback=record)
        loop.call_soon_threadsafe(callback=record)
        loop.call_soon(callback=record, context=ctx)
        loop.call_later(delay=0, callback=record)
        loop.call_later(0, callback=record)
        loop.call_later(callback=record, delay=0, context=ctx)
        loop.call_at(when=loop.time(), callback=record)
        loop.call_at(loop.time(), callback=record, context=ctx)
        task = loop.create_task(coro=coro(), name="by keyword")
        assert task.get_name() == "by keyword"
        loop.set_task_factory(factory=None)
        assert loop.get_task_factory() is None
        loop.add_reader(fd=a, callback=record)
        loop.add_writer(fd=a.fileno(), callback=record)
        b.send(b"x")
        loop.run_until_complete(asyncio.sleep(0.01))
        assert loop.remove_reader(fd=a) is True
        assert loop.remove_writer(fd=a.fileno()) is True
        assert loop.remove_reader(fd=a) is False
        assert task.result() == "coro ran"
        assert seen.count(((), "outside")) >= 7  # 5 scheduled + reader + writer fired
        assert seen.count(((), "inside")) == 3
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("call", [
    lambda loop, f: loop.call_soon(f, callback=f),        # given twice
    lambda loop, f: loop.call_later(0, delay=0, callback=f),
    lambda loop, f: loop.call_later(callback=f),          # delay left out
    lambda loop, f: loop.call_at(callback=f, context=None),
    lambda loop, f: loop.call_soon(cb=f),                 # no such parameter
    lambda loop, f: loop.call_later(0, f, when=0),
    lambda loop, f: loop.create_task(),
    lambda loop, f: loop.set_task_factory(None, factory=None),
    lambda loop, f: loop.set_task_factory(fact=None),
    lambda loop, f: loop.set_task_factory(),
    lambda loop, f: loop.add_reader(0, fd=0, callback=f),
    lambda loop, f: loop.add_reader(fd=0, callback=f, args=()),
    lambda loop, f: loop.remove_reader(),
    lambda loop, f: loop.remove_reader(0, fd=0),
    lambda loop, f: loop.remove_writer(file=0),
])
def test_bad_keywords_raise_type_error(loop, call):
    with pytest.raises(TypeError):
        call(loop, lambda: None)


def public_loop_methods(loop):
    return [name for name in dir(loop)
            if not name.startswith("_") and callable(getattr(loop, name))]


def test_every_public_loop_method_has_asyncios_signature():
    """All of them, with their defaults and the keywords of the running
    version (create_connection's all_errors since 3.12, create_server's
    keep_alive and create_unix_server's cleanup_socket since 3.13):
    libraries read them to see what a loop accepts."""
    ref, ours = asyncio.new_event_loop(), pyasync.new_event_loop()
    try:
        assert set(public_loop_methods(ref)) <= set(public_loop_methods(ours))
        different = {name: (str(inspect.signature(getattr(ref, name))),
                            str(inspect.signature(getattr(ours, name))))
                     for name in public_loop_methods(ref)
                     if inspect.signature(getattr(ref, name)) !=
                     inspect.signature(getattr(ours, name))}
        assert different == {}
    finally:
        ref.close()
        ours.close()


def python_methods(cls):
    return {name: getattr(cls, name) for name in dir(cls)
            if not name.startswith("_") and isinstance(getattr(cls, name), types.FunctionType)}


def test_python_methods_are_named_as_asyncios():
    """Messages and warnings name a function by its qualified name, and
    libraries match them: the loop's Python methods carry asyncio's."""
    ours = python_methods(type(pyasync.new_event_loop()))
    theirs = python_methods(asyncio.SelectorEventLoop)
    assert ours  # the shim's methods are there to compare
    for name, func in ours.items():
        if name in theirs:
            assert func.__qualname__ == theirs[name].__qualname__, name


def test_a_shutdown_asyncgens_never_awaited_is_named_as_asyncios(loop):
    """pytest-asyncio silences this warning of a loop closed before its
    runner by the name `BaseEventLoop.shutdown_asyncgens`."""
    coro = loop.shutdown_asyncgens()
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.run_until_complete(coro)
        del coro
        gc.collect()
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == [
        "coroutine 'BaseEventLoop.shutdown_asyncgens' was never awaited"]


def test_an_unexpected_keyword_is_reported_in_asyncios_words(loop):
    P = asyncio.Protocol
    calls = [(lambda: loop.create_datagram_endpoint(P, bogus=1),
              "BaseEventLoop.create_datagram_endpoint"),
             (lambda: loop.create_connection(P, bogus=1), "BaseEventLoop.create_connection"),
             (lambda: loop.create_server(P, bogus=1), "BaseEventLoop.create_server"),
             (lambda: loop.create_unix_server(P, bogus=1),
              "_UnixSelectorEventLoop.create_unix_server"),
             (lambda: loop.getaddrinfo("localhost", 80, bogus=1), "BaseEventLoop.getaddrinfo"),
             (lambda: loop.shutdown_asyncgens(bogus=1), "BaseEventLoop.shutdown_asyncgens")]
    for call, qualname in calls:
        with pytest.raises(TypeError) as info:
            loop.run_until_complete(call())
        assert str(info.value) == f"{qualname}() got an unexpected keyword argument 'bogus'"
