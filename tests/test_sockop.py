"""What loop.sock_*() returns: asyncio gives coroutines; pyasync gives C
awaitables (csrc/sockop.c) that must be usable wherever a coroutine is:
create_task(), ensure_future(), gather(), wait_for(), awaited once, thrown
into and closed. Every test also runs on asyncio's loop."""
import asyncio
import socket

import pytest

import _net_helpers as nh
from _net_helpers import run

pytest_plugins = ["_net_helpers"]  # fixtures: sock_pair, ...


def test_what_sock_recv_returns_is_a_coroutine(loop, sock_pair):
    a, b = sock_pair
    b.send(b"x")

    async def main():
        op = loop.sock_recv(a, 10)
        kinds = (asyncio.iscoroutine(op), hasattr(op, "__await__"))
        task = loop.create_task(op)
        return kinds, await task
    assert run(loop, main()) == ((True, True), b"x")


@pytest.mark.parametrize("wrap", ["create_task", "ensure_future", "gather", "wait_for"])
def test_sock_recv_under_every_wrapper(loop, sock_pair, wrap):
    a, b = sock_pair

    async def main():
        op = loop.sock_recv(a, 10)
        if wrap == "create_task":
            aw = asyncio.create_task(op)
        elif wrap == "ensure_future":
            aw = asyncio.ensure_future(op)
        elif wrap == "gather":
            aw = asyncio.gather(op)
        else:
            aw = asyncio.ensure_future(asyncio.wait_for(op, 5))
        await nh.spin()
        b.send(b"data")
        return await aw
    got = run(loop, main())
    assert got == ([b"data"] if wrap == "gather" else b"data")


def test_awaited_twice(loop, sock_pair):
    a, b = sock_pair
    b.send(b"x")

    async def main():
        op = loop.sock_recv(a, 10)
        first = await op
        try:
            await op
        except RuntimeError as exc:
            return first, "await" in str(exc)
        return first, False
    assert run(loop, main()) == (b"x", True)


def test_keyword_arguments(loop, sock_pair):
    a, b = sock_pair

    async def main():
        await loop.sock_sendall(sock=b, data=b"kw")
        got = await loop.sock_recv(sock=a, n=10)
        buf = bytearray(4)
        b.send(b"into")
        n = await loop.sock_recv_into(sock=a, buf=buf)
        return got, n, bytes(buf)
    assert run(loop, main()) == (b"kw", 4, b"into")


def test_bad_arguments(loop, sock_pair):
    a, b = sock_pair
    for call in (lambda: loop.sock_recv(a), lambda: loop.sock_recv(a, 1, 2),
                 lambda: loop.sock_recv(a, m=1), lambda: loop.sock_sendall(a)):
        with pytest.raises(TypeError):
            call()


@pytest.mark.parametrize("op,args,missing", [
    ("sock_accept", (), "fileno"),
    ("sock_recv", (10,), "recv"),
    ("sock_recv_into", (bytearray(4),), "recv_into"),
    ("sock_sendall", (b"x",), "send"),
    ("sock_connect", (("127.0.0.1", 1),), "family"),
    ("sock_recvfrom", (10,), "recvfrom"),
    ("sock_recvfrom_into", (bytearray(4),), "recvfrom_into"),
    ("sock_sendto", (b"x", ("127.0.0.1", 1)), "sendto"),
])
@pytest.mark.parametrize("bad", [None, 5])
def test_something_not_a_socket_names_the_attribute_asyncio_names(loop, op, args, missing, bad):
    """The AttributeError from the await names the first thing asyncio asks
    of the socket: for sock_accept() that is fileno(), before accept()."""
    with pytest.raises(AttributeError, match=f"has no attribute '{missing}'"):
        run(loop, getattr(loop, op)(bad, *args))


def test_a_bad_buffer_for_sock_recvfrom_into_raises_when_awaited(loop):
    """asyncio works out `nbytes or len(buf)` inside its coroutine: the
    call returns an awaitable, and the TypeError comes from the await."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.setblocking(False)
    try:
        for nbytes in (0, None):
            op = loop.sock_recvfrom_into(a, None, nbytes)
            with pytest.raises(TypeError, match="has no len"):
                run(loop, op)

        async def nbytes_given():
            a.bind(("127.0.0.1", 0))
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with b:
                b.sendto(b"hello", a.getsockname())
                buf = bytearray(8)
                n, _ = await loop.sock_recvfrom_into(a, buf, 3)
            return n, bytes(buf)
        assert run(loop, nbytes_given()) == (3, b"hel" + bytes(5))
    finally:
        a.close()


def test_throw_while_waiting_leaves_the_socket_usable(loop, sock_pair):
    """An exception thrown into a waiting sock_recv() ends it, and what
    arrives afterwards goes to the next sock_recv()."""
    a, b = sock_pair

    async def main():
        op = loop.sock_recv(a, 10)
        it = op.__await__()
        fut = it.send(None)  # would block: the future it waits for
        try:
            it.throw(ZeroDivisionError("stop"))
        except ZeroDivisionError:
            thrown = True
        else:
            thrown = False
        await nh.spin()
        b.send(b"after")
        got = await loop.sock_recv(a, 10)
        return thrown, fut.cancelled() or fut.done(), got
    thrown, settled, got = run(loop, main())
    assert thrown
    assert got == b"after"


def test_closed_while_waiting_leaves_the_socket_usable(loop, sock_pair):
    a, b = sock_pair

    async def main():
        op = loop.sock_recv(a, 10)
        it = op.__await__()
        it.send(None)
        it.close()
        await nh.spin()
        b.send(b"after close")
        return await loop.sock_recv(a, 20)
    assert run(loop, main()) == b"after close"


def test_a_socket_subclass_is_called(loop, sock_pair):
    """The socket's own methods are called, as asyncio calls them."""
    a, b = sock_pair
    calls = []

    class Counting(socket.socket):
        def recv(self, n, *args):
            calls.append(n)
            return super().recv(n, *args)
    c = Counting(fileno=a.detach())
    c.setblocking(False)
    try:
        b.send(b"sub")
        got = run(loop, loop.sock_recv(c, 7))
    finally:
        c.close()
    assert (got, calls) == (b"sub", [7])


def test_sock_sendall_of_every_buffer_kind(loop, sock_pair):
    a, b = sock_pair
    payloads = [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"),
                memoryview(b"0123456789")[2:7], b"x" * 300_000]

    async def read(want):
        got = b""
        while len(got) < want:
            got += await loop.sock_recv(a, 65536)
        return got

    async def main():
        out = []
        for p in payloads:
            want = bytes(memoryview(p).cast("B"))
            _, got = await asyncio.gather(loop.sock_sendall(b, p), read(len(want)))
            out.append(got == want)
        return out
    assert run(loop, main()) == [True] * 5


def test_sock_recv_refuses_a_transports_fd_when_it_must_wait(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(asyncio.Protocol,
                                             *server.sockets[0].getsockname())
        sock = tr.get_extra_info("socket")
        raw = socket.socket(fileno=sock.fileno())
        try:
            raw.setblocking(False)
            try:
                await loop.sock_recv(raw, 10)
            except RuntimeError as exc:
                return "is used by transport" in str(exc)
            return False
        finally:
            raw.detach()
            tr.close()
            server.close()
            await server.wait_closed()
    assert run(loop, main()) is True


def test_misuse_of_the_operation_object(pyloop, sock_pair):
    """What Python code may do to the object pyasync returns: call it, step
    it by hand, throw bad arguments, make another, print it. Nothing
    crashes, nothing is left watching, the socket still works."""
    from pyasync import _core
    a, b = sock_pair
    op = pyloop.sock_recv(a, 10)
    assert "sock_recv" in repr(op)
    with pytest.raises(TypeError):
        op(1, 2)
    with pytest.raises(TypeError):
        op(x=1)
    assert op() is None          # a readiness call before it waits: nothing
    assert op(None) is None      # a done callback before it waits: nothing
    with pytest.raises(TypeError):
        op.throw()
    with pytest.raises(TypeError):
        op.throw(1)
    with pytest.raises(TypeError):
        _core.SockOp()
    op.close()
    with pytest.raises(RuntimeError):
        op.send(None)            # closed: like a closed coroutine, done
    assert not pyloop._is_watching_read(a.fileno())

    op2 = pyloop.sock_recv(a, 10)
    it = op2.__await__()
    fut = it.send(None)          # waits
    assert pyloop._is_watching_read(a.fileno())
    with pytest.raises(RuntimeError):
        it.send(None)            # stepped again before its future is done
    op2()                        # a spurious readiness call: recv would block, keeps waiting
    assert not fut.done()
    b.send(b"now")
    op2()                        # ready: settles the future
    assert fut.result() == b"now"
    with pytest.raises(StopIteration) as stop:
        it.send(None)
    assert stop.value.value == b"now"
    pyloop.run_until_complete(asyncio.sleep(0))  # the done callback stops the watch
    assert not pyloop._is_watching_read(a.fileno())
