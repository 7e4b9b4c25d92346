"""Transports used the wrong way from Python: made by T.__new__(T) without
__init__, initialised twice, used after _call_connection_lost() was called
by hand. asyncio's transports are Python objects that fail with an
AttributeError there; ours are C objects that must raise (or do nothing),
never crash or touch a file descriptor that is no longer theirs.

Each check runs in a child process, so that a crash fails the test instead
of ending the test run; the child prints what it saw as JSON.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import pyasync
from _child import CHILD_CWD

PYASYNC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))


def run_child(code, *args):
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PYASYNC_ROOT + (os.pathsep + path if path else "")
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code),
                           *args], cwd=CHILD_CWD, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


TRANSPORT_CLASSES = [
    "pyasync._transports.SocketTransport",
    "pyasync._core.StreamTransportBase",
    "pyasync._transports.DatagramTransport",
    "pyasync._core.DatagramTransportBase",
]

UNINITIALISED = r'''
    import asyncio, importlib, json, os, socket, sys
    import pyasync

    module, _, name = sys.argv[1].rpartition(".")
    cls = getattr(importlib.import_module(module), name)

    # fd 0 is a socket whose peer we hold: an uninitialised transport has
    # fd 0 in its struct, and must not send on it or shut it down.
    zero, peer = socket.socketpair()
    os.dup2(zero.fileno(), 0)
    zero.close()

    stream = issubclass(cls, pyasync._core.StreamTransportBase)
    calls = {
        "write": (b"data",), "writelines": ([b"data"],), "write_eof": (),
        "_make_empty_waiter": (),
    } if stream else {"sendto": (b"data", None)}
    calls |= {
        "close": (), "abort": (), "pause_reading": (),
        "resume_reading": (), "_start_reading": (), "set_protocol": (asyncio.Protocol(),),
        "set_write_buffer_limits": (1, 0), "_force_close": (None,),
        "_fatal_error": (ValueError("x"),), "_call_connection_lost": (None,),
        "_read_ready": (), "_write_ready" if stream else "_sendto_ready": (),
    }
    transport = cls.__new__(cls)
    outcome = {}
    for method, args in calls.items():
        try:
            getattr(transport, method)(*args)
            outcome[method] = "returned"
        except RuntimeError as exc:
            outcome[method] = str(exc)
    state = [transport.is_closing(), transport.get_write_buffer_size(),
             transport.get_protocol()]
    # fd 0 is untouched: nothing was sent on it, and it can still send.
    peer.setblocking(False)
    try:
        stray = peer.recv(100)
    except BlockingIOError:
        stray = b""
    os.write(0, b"still open")
    print(json.dumps({"outcome": outcome, "state": state, "stray": stray.decode(),
                      "fd0": peer.recv(100).decode()}))
'''


@pytest.mark.parametrize("cls", TRANSPORT_CLASSES)
def test_uninitialised_transport_refuses_every_method(cls):
    got = run_child(UNINITIALISED, cls)
    name = cls.rpartition(".")[2]
    expected = f"{name} object is not initialized"
    assert got["outcome"], got
    assert {m: r for m, r in got["outcome"].items() if not r.endswith(expected)} == {}
    assert got["state"] == [False, 0, None]
    assert (got["stray"], got["fd0"]) == ("", "still open")


SECOND_INIT = r'''
    import asyncio, json, socket, pyasync

    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        c, d = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        try:
            type(transport).__init__(transport, loop, c, asyncio.Protocol())
            error = None
        except RuntimeError as exc:
            error = str(exc)
        transport.write(b"to b")
        b.setblocking(False)
        await asyncio.sleep(0.01)
        got = b.recv(100)
        transport.close()
        await asyncio.sleep(0)
        for s in (b, c, d):
            s.close()
        return {"error": error, "got": got.decode()}

    print(json.dumps(pyasync.run(main())))
'''


def test_second_init_is_refused():
    got = run_child(SECOND_INIT)
    assert got == {"error": "SocketTransport object is already initialized", "got": "to b"}


AFTER_LOST = r'''
    import asyncio, json, socket, sys, pyasync

    dgram = sys.argv[1] == "datagram"

    async def main():
        loop = asyncio.get_running_loop()
        kind = socket.SOCK_DGRAM if dgram else socket.SOCK_STREAM
        a, b = socket.socketpair(socket.AF_UNIX, kind)
        lost = []
        class Proto(asyncio.DatagramProtocol if dgram else asyncio.Protocol):
            def connection_lost(self, exc):
                lost.append(exc)
        if dgram:
            transport, _ = await loop.create_datagram_endpoint(Proto, sock=a)
        else:
            transport, _ = await loop.connect_accepted_socket(Proto, a)
        await asyncio.sleep(0)
        fd = transport.get_extra_info("socket").fileno()
        # Called by hand, not scheduled by close(): the socket closes and its
        # fd number goes to the next socket made.
        transport._call_connection_lost(None)
        c, d = socket.socketpair(socket.AF_UNIX, kind)
        if c.fileno() != fd:
            c, d = d, c
        reused = c.fileno() == fd
        watched_by_other = []
        loop.add_reader(c, lambda: None)
        if dgram:
            calls = [("sendto", b"x"), ("_sendto_ready",)]
        else:
            calls = [("write", b"x"), ("writelines", [b"x"]), ("_write_ready",),
                     ("write_eof",)]
        calls += [("pause_reading",), ("resume_reading",), ("_start_reading",),
                  ("_read_ready",), ("set_write_buffer_limits", 0, 0), ("abort",),
                  ("close",)]
        errors = {}
        for name, *args in calls:
            try:
                getattr(transport, name)(*args)
            except Exception as exc:
                errors[name] = repr(exc)
        await asyncio.sleep(0.01)
        d.setblocking(False)
        try:
            stray = d.recv(100)
        except BlockingIOError:
            stray = b""
        c.send(b"c still works")
        state = {"reused": reused, "errors": errors, "stray": stray.decode(),
                 "c": d.recv(100).decode(), "reader kept": loop._is_watching_read(fd),
                 "lost": len(lost), "closing": transport.is_closing()}
        loop.remove_reader(c)
        for s in (b, c, d):
            s.close()
        return state

    print(json.dumps(pyasync.run(main())))
'''


@pytest.mark.parametrize("kind", ["stream", "datagram"])
def test_connection_lost_by_hand_leaves_the_fd_alone(kind):
    got = run_child(AFTER_LOST, kind)
    if not got["reused"]:  # pragma: no cover - depends on the fd allocator
        pytest.skip("the fd number was not reused")
    assert got == {"reused": True, "errors": {}, "stray": "", "c": "c still works",
                   "reader kept": True, "lost": 1, "closing": True}
