"""add_reader, add_writer, remove_reader, remove_writer."""
import errno
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import pyasync
from _child import CHILD_CWD


def run_until(loop, predicate, timeout=5.0):
    deadline = loop.time() + timeout

    def check():
        if predicate() or loop.time() > deadline:
            loop.stop()
        else:
            loop.call_later(0.001, check)
    loop.call_soon(check)
    loop.run_forever()
    assert predicate(), "condition not reached in time"


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_reader_called_when_readable(loop, pair):
    a, b = pair
    got = []

    def on_readable(sock):
        got.append(sock.recv(100))
    assert loop.add_reader(a.fileno(), on_readable, a) is None
    b.send(b"hello")
    run_until(loop, lambda: got)
    assert got == [b"hello"]
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a.fileno()) is False


def test_reader_with_file_object(loop, pair):
    a, b = pair
    got = []
    loop.add_reader(a, lambda: got.append(a.recv(10)))
    b.send(b"x")
    run_until(loop, lambda: got)
    assert got == [b"x"]
    assert loop.remove_reader(a) is True


def test_reader_is_level_triggered(loop, pair):
    a, b = pair
    calls = []

    def on_readable():
        calls.append(1)
        if len(calls) == 3:
            a.recv(10)
            loop.remove_reader(a)
    loop.add_reader(a, on_readable)
    b.send(b"data")
    run_until(loop, lambda: len(calls) >= 3)
    assert len(calls) == 3


def test_writer_called_when_writable(loop, pair):
    a, b = pair
    calls = []
    assert loop.add_writer(a.fileno(), lambda: calls.append("w")) is None
    run_until(loop, lambda: calls)
    assert loop.remove_writer(a.fileno()) is True
    assert loop.remove_writer(a.fileno()) is False


def test_reader_and_writer_on_same_fd(loop, pair):
    a, b = pair
    events = []
    loop.add_writer(a, lambda: (events.append("w"), loop.remove_writer(a)))
    loop.add_reader(a, lambda: (events.append(a.recv(10)), loop.remove_reader(a)))
    b.send(b"r")
    run_until(loop, lambda: len(events) == 2)
    assert sorted(map(str, events)) == sorted(["w", str(b"r")])
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False


def test_replacing_reader_cancels_old_one(loop, pair):
    a, b = pair
    got = []
    loop.add_reader(a, lambda: got.append("old"))
    loop.add_reader(a, lambda: (got.append("new"), a.recv(10), loop.remove_reader(a)))
    b.send(b"x")
    run_until(loop, lambda: got)
    assert got == ["new"]


def test_remove_writer_keeps_reader(loop, pair):
    a, b = pair
    got = []
    loop.add_reader(a, lambda: (got.append(a.recv(10)), loop.remove_reader(a)))
    loop.add_writer(a, lambda: None)
    assert loop.remove_writer(a) is True
    b.send(b"still")
    run_until(loop, lambda: got)
    assert got == [b"still"]


def test_invalid_file_objects(loop):
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(object(), print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.remove_reader("not a file")
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_reader(-1, print)
    with pytest.raises(ValueError):
        loop.add_writer(-5, print)


# Run in a child process whose address space is a few hundred megabytes
# above what it uses at the start, and bounded in time: a watcher table grown
# for a number before the number is checked cannot fit (10**8 watchers take
# gigabytes), and growth whose arithmetic overflows never ends.
BOGUS_FD_PROBE = textwrap.dedent("""
    import asyncio, os, resource, sys
    import pyasync

    def vm_size():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    with open("/proc/self/maps") as f:
        under_asan = "libasan" in f.read()  # its shadow memory needs the room
    if not under_asan:
        limit = vm_size() + 512 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    loop = asyncio.new_event_loop() if sys.argv[1] == "asyncio" else pyasync.new_event_loop()
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    fds = {"negative": -1, "very negative": -2**70, "huge": 10**8, "largest int": 2**31 - 1,
           "past int": 2**31, "past long": 2**64, "closed": r}
    for name, fd in fds.items():
        for method in ("add_reader", "add_writer", "remove_reader", "remove_writer"):
            args = (fd, print) if method.startswith("add") else (fd,)
            try:
                outcome = repr(getattr(loop, method)(*args))
            except Exception as exc:
                outcome = f"{type(exc).__name__} {getattr(exc, 'errno', None)} {exc}"
            print(f"{name}|{method}|{outcome}")
    loop.close()
""")


def test_bogus_fds(loop_kind):
    # asyncio's selector checks the number (ValueError when negative), then
    # the kernel refuses to register what is not an open fd (EBADF) and the
    # conversion to a C int fails past INT_MAX; removal finds nothing.
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = subprocess.run([sys.executable, "-c", BOGUS_FD_PROBE, loop_kind], cwd=CHILD_CWD,
                         capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    got = {}
    for line in out.stdout.splitlines():
        name, method, outcome = line.split("|")
        got[name, method] = outcome
    ebadf = f"OSError {errno.EBADF} [Errno {errno.EBADF}] {os.strerror(errno.EBADF)}"
    too_large = "OverflowError None Python int too large to convert to C int"
    expected = {
        "negative": ("ValueError None Invalid file descriptor: -1",) * 2,
        "very negative": (f"ValueError None Invalid file descriptor: {-2**70}",) * 2,
        "huge": (ebadf, "False"),
        "largest int": (ebadf, "False"),
        "past int": (too_large, "False"),
        "past long": (too_large, "False"),
        "closed": (ebadf, "False"),
    }
    for name, (on_add, on_remove) in expected.items():
        for direction in ("reader", "writer"):
            assert got[name, "add_" + direction] == on_add, name
            assert got[name, "remove_" + direction] == on_remove, name


def test_closed_loop(loop, pair):
    a, _ = pair
    loop.add_reader(a, print)
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.add_reader(a, print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.add_writer(a, print)
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False


def test_exception_in_reader_goes_to_handler(loop, pair):
    a, b = pair
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        a.recv(10)
        loop.remove_reader(a)
        raise OSError("reader failed")
    loop.add_reader(a, bad)
    b.send(b"x")
    run_until(loop, lambda: contexts)
    assert isinstance(contexts[0]["exception"], OSError)


def test_pipe_reader_sees_eof(loop):
    r, w = os.pipe()
    os.set_blocking(r, False)
    chunks = []

    def on_readable():
        data = os.read(r, 100)
        chunks.append(data)
        if not data:
            loop.remove_reader(r)
    loop.add_reader(r, on_readable)
    os.write(w, b"abc")
    os.close(w)
    try:
        run_until(loop, lambda: chunks and chunks[-1] == b"")
    finally:
        os.close(r)
    assert b"".join(chunks) == b"abc"


def test_many_fds(loop):
    pairs = [socket.socketpair() for _ in range(200)]
    got = set()
    try:
        for i, (a, b) in enumerate(pairs):
            a.setblocking(False)
            loop.add_reader(a, lambda i=i, a=a: (got.add(i), a.recv(1), loop.remove_reader(a)))
        for _, b in pairs:
            b.send(b"z")
        run_until(loop, lambda: len(got) == len(pairs))
    finally:
        for a, b in pairs:
            a.close()
            b.close()


NOT_OPEN_CHILD = r"""
import asyncio, sys
import pyasync

kind, fd = sys.argv[1], int(sys.argv[2])
loop = asyncio.new_event_loop() if kind == "asyncio" else pyasync.new_event_loop()
errors = []
for add in (loop.add_reader, loop.add_writer):
    try:
        add(fd, lambda: None)
    except OSError as exc:
        errors.append(type(exc).__name__)
print(errors, loop.remove_reader(fd), loop.remove_writer(fd))
loop.close()
"""


@pytest.mark.parametrize("fd", [2 ** 31 - 1, 2 ** 20 + 3])
def test_watching_an_fd_that_is_not_open(loop_kind, fd):
    # Far past any open fd: epoll refuses it (EBADF), and so must a table
    # indexed by fd, rather than grow towards it (without end for 2**31-1:
    # in a child process, so that a hang fails only this test).
    import pyasync
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", NOT_OPEN_CHILD, loop_kind, str(fd)], cwd=CHILD_CWD,
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["['OSError',", "'OSError']", "False", "False"]
