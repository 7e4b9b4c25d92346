"""The loop's low-level socket methods: sock_recv, sock_recv_into,
sock_recvfrom, sock_recvfrom_into, sock_sendall, sock_sendto, sock_connect,
sock_accept and sock_sendfile."""
import asyncio
import gc
import io
import os
import socket
import ssl

import pytest

import _net_helpers as nh
from _net_helpers import run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...


@pytest.fixture
def udp_pair():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    yield a, b
    a.close()
    b.close()


# -- receiving ---------------------------------------------------------------

def test_sock_recv_waits_for_data(loop, sock_pair):
    a, b = sock_pair

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(a, 100))
        await nh.spin()
        assert not task.done()
        b.send(b"hello")
        return await task
    assert run(loop, main()) == b"hello"


def test_sock_recv_returns_empty_bytes_at_eof(loop, sock_pair):
    a, b = sock_pair
    b.shutdown(socket.SHUT_WR)
    assert run(loop, loop.sock_recv(a, 100)) == b""


def test_sock_recv_into(loop, sock_pair):
    a, b = sock_pair
    buf = bytearray(16)

    async def main():
        task = asyncio.ensure_future(loop.sock_recv_into(a, buf))
        await nh.spin()
        b.send(b"abcdef")
        return await task
    n = run(loop, main())
    assert (n, bytes(buf[:n])) == (6, b"abcdef")


def test_sock_recv_into_memoryview_slice(loop, sock_pair):
    a, b = sock_pair
    buf = bytearray(b"." * 8)
    b.send(b"xyz")
    n = run(loop, loop.sock_recv_into(a, memoryview(buf)[2:]))
    assert (n, bytes(buf)) == (3, b"..xyz...")


def test_sock_recvfrom(loop, udp_pair):
    a, b = udp_pair

    async def main():
        task = asyncio.ensure_future(loop.sock_recvfrom(a, 100))
        await nh.spin()
        b.sendto(b"dgram", a.getsockname())
        return await task
    assert run(loop, main()) == (b"dgram", b.getsockname())


def test_sock_recvfrom_into(loop, udp_pair):
    a, b = udp_pair
    buf = bytearray(32)

    async def main():
        task = asyncio.ensure_future(loop.sock_recvfrom_into(a, buf))
        await nh.spin()
        b.sendto(b"dgram", a.getsockname())
        return await task
    n, addr = run(loop, main())
    assert (bytes(buf[:n]), addr) == (b"dgram", b.getsockname())


def test_sock_recvfrom_into_nbytes_truncates(loop, udp_pair):
    a, b = udp_pair
    buf = bytearray(32)
    b.sendto(b"0123456789", a.getsockname())
    nh.wait_readable(a)
    n, _ = run(loop, loop.sock_recvfrom_into(a, buf, 4))
    assert bytes(buf[:n]) == b"0123"


# -- sending -----------------------------------------------------------------

def test_sock_sendall_small(loop, sock_pair):
    a, b = sock_pair

    async def main():
        assert await loop.sock_sendall(a, b"ping") is None
        return await loop.sock_recv(b, 100)
    assert run(loop, main()) == b"ping"


def test_sock_sendall_large_payload_to_slow_reader(loop, sock_pair):
    a, b = sock_pair
    nh.set_small_buffers(a)
    nh.set_small_buffers(b)
    data = nh.payload(6 * nh.MiB)

    async def main():
        sender = asyncio.ensure_future(loop.sock_sendall(a, data))
        await nh.spin()
        # Far more than the kernel buffers hold: it must wait for the reader.
        assert not sender.done()
        got = bytearray()
        while len(got) < len(data):
            chunk = await loop.sock_recv(b, 64 * 1024)
            assert chunk, "unexpected EOF"
            got += chunk
        await sender
        return bytes(got)
    assert run(loop, main()) == data


def test_sock_sendall_accepts_bytes_like(loop, sock_pair):
    a, b = sock_pair

    async def main():
        await loop.sock_sendall(a, bytearray(b"ab"))
        await loop.sock_sendall(a, memoryview(b"cdef")[1:3])
        got = b""
        while len(got) < 4:
            got += await loop.sock_recv(b, 100)
        return got
    assert run(loop, main()) == b"abde"


def test_sock_sendto(loop, udp_pair):
    a, b = udp_pair

    async def main():
        sent = await loop.sock_sendto(a, b"to-b", b.getsockname())
        data, addr = await loop.sock_recvfrom(b, 100)
        return sent, data, addr
    assert run(loop, main()) == (4, b"to-b", a.getsockname())


# -- connecting and accepting -----------------------------------------------

def test_sock_connect(loop, endpoint, closer):
    lsock, addr = endpoint.listener()
    closer(lsock)
    c = endpoint.socket()
    closer(c)
    assert run(loop, loop.sock_connect(c, addr)) is None
    assert c.getpeername() == addr


def test_sock_connect_resolves_localhost(loop, closer):
    lsock = socket.create_server(("127.0.0.1", 0))
    closer(lsock)
    c = socket.socket()
    closer(c)
    c.setblocking(False)
    port = lsock.getsockname()[1]
    run(loop, loop.sock_connect(c, ("localhost", port)))
    assert c.getpeername() == ("127.0.0.1", port)


def test_sock_connect_refused(loop, closer):
    # Bound but not listening: a connection to it is refused.
    target = socket.socket()
    closer(target)
    target.bind(("127.0.0.1", 0))
    c = socket.socket()
    closer(c)
    c.setblocking(False)
    with pytest.raises(ConnectionRefusedError):
        run(loop, loop.sock_connect(c, target.getsockname()))


def test_sock_connect_unix_missing_path(loop, short_tmp, closer):
    c = socket.socket(socket.AF_UNIX)
    closer(c)
    c.setblocking(False)
    with pytest.raises(FileNotFoundError):
        run(loop, loop.sock_connect(c, short_tmp + "/nobody-here"))


def test_sock_accept(loop, endpoint, closer):
    lsock, addr = endpoint.listener()
    closer(lsock)

    async def main():
        task = asyncio.ensure_future(loop.sock_accept(lsock))
        await nh.spin()
        assert not task.done()
        c = endpoint.socket()
        closer(c)
        await loop.sock_connect(c, addr)
        conn, peer = await task
        closer(conn)
        await loop.sock_sendall(c, b"hi")
        return c, conn, peer, await loop.sock_recv(conn, 10)
    c, conn, peer, data = run(loop, main())
    assert data == b"hi"
    assert conn.gettimeout() == 0  # the accepted socket is non-blocking
    assert conn.getsockname() == addr
    if endpoint.kind == "tcp":
        assert peer == c.getsockname()


# -- cancellation ------------------------------------------------------------

def test_cancelled_sock_recv_leaves_socket_usable(loop, sock_pair):
    a, b = sock_pair

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(a, 100))
        await nh.spin()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        b.send(b"after")
        return await loop.sock_recv(a, 100)
    assert run(loop, main()) == b"after"


def test_cancelled_sock_recv_into_loses_no_data(loop, sock_pair):
    a, b = sock_pair
    buf = bytearray(10)

    async def main():
        task = asyncio.ensure_future(loop.sock_recv_into(a, buf))
        await nh.spin()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        b.send(b"kept")
        n = await loop.sock_recv_into(a, buf)
        return bytes(buf[:n])
    assert run(loop, main()) == b"kept"


def test_cancelled_sock_accept_leaves_socket_usable(loop, endpoint, closer):
    lsock, addr = endpoint.listener()
    closer(lsock)

    async def main():
        task = asyncio.ensure_future(loop.sock_accept(lsock))
        await nh.spin()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        c = endpoint.socket()
        closer(c)
        await loop.sock_connect(c, addr)
        conn, _ = await loop.sock_accept(lsock)
        closer(conn)
        return conn
    assert run(loop, main()).fileno() >= 0


def test_cancelled_sock_sendall_stops_writing(loop, sock_pair):
    # The caller cannot know how much went out, but the loop must stop
    # writing the cancelled data and the socket must stay usable.
    a, b = sock_pair
    nh.set_small_buffers(a)
    nh.set_small_buffers(b)
    size = 4 * nh.MiB

    async def main():
        task = asyncio.ensure_future(loop.sock_sendall(a, b"x" * size))
        await nh.spin()
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reader = asyncio.ensure_future(_recv_all(loop, b, size + 100))
        await loop.sock_sendall(a, b"after")
        a.shutdown(socket.SHUT_WR)
        return await reader
    got = run(loop, main())
    assert got.endswith(b"after")
    assert got[:-5] == b"x" * (len(got) - 5)
    assert len(got) - 5 < size


# -- sock_sendfile -----------------------------------------------------------

@pytest.fixture
def data_file(tmp_path):
    data = nh.payload(300_000, seed=7)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


async def _recv_all(loop, sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(sock, 1 << 16)
        if not chunk:
            break
        got += chunk
    return bytes(got)


def test_sock_sendfile(loop, sock_pair, data_file):
    a, b = sock_pair
    f, data = data_file

    async def main():
        sender = asyncio.ensure_future(loop.sock_sendfile(a, f))
        got = await _recv_all(loop, b, len(data))
        return await sender, got
    sent, got = run(loop, main())
    assert (sent, got) == (len(data), data)
    assert f.tell() == len(data)


def test_sock_sendfile_offset_and_count(loop, sock_pair, data_file):
    a, b = sock_pair
    f, data = data_file

    async def main():
        sent = await loop.sock_sendfile(a, f, 1000, 5000)
        return sent, await _recv_all(loop, b, 5000)
    assert run(loop, main()) == (5000, data[1000:6000])
    assert f.tell() == 6000


@pytest.mark.parametrize("fallback", [True, False])
def test_sock_sendfile_regular_file_any_fallback(loop, sock_pair, data_file, fallback):
    a, b = sock_pair
    f, data = data_file

    async def main():
        sender = asyncio.ensure_future(
            loop.sock_sendfile(a, f, 0, 100_000, fallback=fallback))
        got = await _recv_all(loop, b, 100_000)
        return await sender, got
    assert run(loop, main()) == (100_000, data[:100_000])


def test_sock_sendfile_falls_back_for_non_regular_file(loop, sock_pair):
    a, b = sock_pair
    f = io.BytesIO(b"in-memory file" * 1000)

    async def main():
        sender = asyncio.ensure_future(loop.sock_sendfile(a, f))
        got = await _recv_all(loop, b, 14_000)
        return await sender, got
    assert run(loop, main()) == (14_000, b"in-memory file" * 1000)
    assert f.tell() == 14_000


def test_sock_sendfile_no_fallback_raises(loop, sock_pair):
    a, _ = sock_pair
    f = io.BytesIO(b"data")
    with pytest.raises(asyncio.SendfileNotAvailableError):
        run(loop, loop.sock_sendfile(a, f, fallback=False))
    assert f.tell() == 0


@pytest.mark.parametrize("kwargs, exc", [
    ({"offset": -1}, ValueError),
    ({"offset": 1.5}, TypeError),
    ({"count": 0}, ValueError),
    ({"count": "10"}, TypeError),
])
def test_sock_sendfile_bad_arguments(loop, sock_pair, data_file, kwargs, exc):
    a, _ = sock_pair
    f, _ = data_file
    with pytest.raises(exc):
        run(loop, loop.sock_sendfile(a, f, **kwargs))


def test_sock_sendfile_text_file_rejected(loop, sock_pair, tmp_path):
    a, _ = sock_pair
    p = tmp_path / "t.txt"
    p.write_text("text")
    with open(p) as f, pytest.raises(ValueError, match="binary mode"):
        run(loop, loop.sock_sendfile(a, f))


def test_sock_sendfile_datagram_socket_rejected(loop, udp_pair, data_file):
    a, _ = udp_pair
    f, _ = data_file
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        run(loop, loop.sock_sendfile(a, f))


@pytest.fixture
def pipe_file(closer):
    """The read end of a pipe holding 20 bytes, as a binary file object: it
    has a fileno() that sendfile(2) cannot read from."""
    r, w = os.pipe()
    os.write(w, b"0123456789" * 2)
    os.close(w)
    f = os.fdopen(r, "rb", buffering=0)
    closer(f)
    return f


def test_sock_sendfile_unsendable_file_without_fallback(loop, sock_pair, pipe_file):
    # The first sendfile() fails before sending anything.
    a, _ = sock_pair
    with pytest.raises(asyncio.SendfileNotAvailableError, match="os.sendfile call failed"):
        run(loop, loop.sock_sendfile(a, pipe_file, 0, 5, fallback=False))


def test_sock_sendfile_file_of_size_zero_sends_nothing(loop, sock_pair, pipe_file):
    # Without a count the native path sends up to the size fstat() gives:
    # nothing for a pipe, which is not read at all.
    a, _ = sock_pair
    assert run(loop, loop.sock_sendfile(a, pipe_file)) == 0
    assert pipe_file.read() == b"0123456789" * 2


def test_sock_sendfile_cancelled_while_waiting(loop, tcp, tmp_path, closer):
    a, b = tcp.pair()
    closer(a)
    closer(b)
    nh.set_small_buffers(a)
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (8 * nh.MiB))

    async def main():
        with open(path, "rb") as f:
            sender = asyncio.ensure_future(loop.sock_sendfile(a, f))
            await nh.spin()  # the peer reads nothing: the sender waits
            assert not sender.done()
            sender.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sender
            await nh.spin()
            # The writer is gone and, as asyncio does, the file position is
            # left where it was.
            return loop.remove_writer(a.fileno()), f.tell()
    assert run(loop, main()) == (False, 0)


def test_sock_sendfile_operation_freed_without_collector(pyloop, sock_pair, data_file):
    # The C operation holds a bound method of its own while it waits; it
    # lets it go when it ends, so reference counting frees it.
    a, b = sock_pair
    f, data = data_file
    nh.set_small_buffers(a)

    def operations():
        return sum(type(o).__name__ == "SendfileOperation" for o in gc.get_objects())
    gc.collect()
    gc.disable()
    try:
        async def main():
            sender = asyncio.ensure_future(pyloop.sock_sendfile(a, f))
            await nh.spin(2)
            waiting = operations()
            got = await _recv_all(pyloop, b, len(data))
            return waiting, await sender, got
        waiting, sent, got = run(pyloop, main())
        assert (waiting, sent, got) == (1, len(data), data)
        assert operations() == 0
    finally:
        gc.enable()


# -- misuse ------------------------------------------------------------------

SOCK_CALLS = {
    "sock_recv": lambda lp, s, peer: lp.sock_recv(s, 10),
    "sock_recv_into": lambda lp, s, peer: lp.sock_recv_into(s, bytearray(10)),
    "sock_recvfrom": lambda lp, s, peer: lp.sock_recvfrom(s, 10),
    "sock_recvfrom_into": lambda lp, s, peer: lp.sock_recvfrom_into(s, bytearray(10)),
    "sock_sendall": lambda lp, s, peer: lp.sock_sendall(s, b"x"),
    "sock_sendto": lambda lp, s, peer: lp.sock_sendto(s, b"x", peer),
    "sock_connect": lambda lp, s, peer: lp.sock_connect(s, peer),
    "sock_accept": lambda lp, s, peer: lp.sock_accept(s),
}


@pytest.mark.parametrize("method", sorted(SOCK_CALLS))
def test_blocking_socket_rejected_in_debug_mode(loop, method, closer):
    # asyncio checks this only in debug mode; it must raise before touching
    # the socket (a blocking socket would block the whole loop).
    loop.set_debug(True)
    s = socket.socket()
    closer(s)
    assert s.gettimeout() is None
    with pytest.raises(ValueError, match=nh.BLOCKING_SOCKET_MESSAGE):
        run(loop, SOCK_CALLS[method](loop, s, ("127.0.0.1", 9)))


def test_blocking_socket_works_outside_debug_mode(loop, closer):
    # asyncio checks for a blocking socket only in debug mode: outside it,
    # a call that would not block returns as on a non-blocking socket, and
    # programs that pass a blocking socket rely on that.
    loop.set_debug(False)
    a, b = socket.socketpair()
    closer(a)
    closer(b)
    assert a.gettimeout() is None
    b.sendall(b"hello")
    assert run(loop, loop.sock_recv(a, 10)) == b"hello"
    b.sendall(b"abc")
    buf = bytearray(10)
    assert run(loop, loop.sock_recv_into(a, buf)) == 3
    assert buf[:3] == b"abc"
    assert run(loop, loop.sock_sendall(a, b"xyz")) is None
    assert b.recv(10) == b"xyz"

    listener = socket.socket()
    closer(listener)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.socket()
    closer(client)
    assert run(loop, loop.sock_connect(client, listener.getsockname())) is None
    conn, address = run(loop, loop.sock_accept(listener))
    closer(conn)
    assert address == client.getsockname()
    assert conn.gettimeout() == 0  # handed over non-blocking, as always

    u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for u in (u1, u2):
        closer(u)
        u.bind(("127.0.0.1", 0))
    assert run(loop, loop.sock_sendto(u1, b"d1", u2.getsockname())) == 2
    assert run(loop, loop.sock_recvfrom(u2, 10)) == (b"d1", u1.getsockname())
    u1.sendto(b"d2", u2.getsockname())
    assert run(loop, loop.sock_recvfrom_into(u2, buf)) == (2, u1.getsockname())
    assert buf[:2] == b"d2"


def test_sock_sendfile_blocking_socket_rejected_in_debug_mode(loop, data_file, closer):
    loop.set_debug(True)
    s = socket.socket()
    closer(s)
    f, _ = data_file
    with pytest.raises(ValueError, match=nh.BLOCKING_SOCKET_MESSAGE):
        run(loop, loop.sock_sendfile(s, f))


@pytest.mark.parametrize("method", sorted(SOCK_CALLS))
def test_ssl_socket_rejected(loop, method, closer):
    ctx = ssl.create_default_context()
    s = ctx.wrap_socket(socket.socket(), server_hostname="localhost",
                        do_handshake_on_connect=False)
    closer(s)
    s.setblocking(False)
    with pytest.raises(TypeError, match="SSLSocket"):
        run(loop, SOCK_CALLS[method](loop, s, ("127.0.0.1", 9)))


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into", "sock_accept"])
def test_closed_loop_raises_runtime_error(loop, method, endpoint, closer):
    if method == "sock_accept":
        s, _ = endpoint.listener()
    else:
        s, peer = endpoint.pair()
        closer(peer)
    closer(s)
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        nh.step(SOCK_CALLS[method](loop, s, None))


def test_closed_loop_sock_recvfrom_raises_runtime_error(loop, udp_pair):
    a, _ = udp_pair
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        nh.step(loop.sock_recvfrom(a, 10))
