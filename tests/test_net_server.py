"""Servers (create_server, create_unix_server, Server objects) and the less
common ways of making connections: connect_accepted_socket,
create_connection(sock=, local_addr=, happy_eyeballs_delay=, interleave=,
all_errors=)."""
import asyncio
import errno
import gc
import os
import socket
import stat
import sys
import warnings

import pytest

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...

P = asyncio.Protocol


def _accepting(server):
    return [s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 0
            for s in server.sockets]


async def _round_trip(loop, endpoint, addr, data=b"hello"):
    """Connect to an echo server at addr, send data, return the answer."""
    tr, p = await endpoint.create_connection(loop, lambda: Recorder(loop), addr)
    try:
        tr.write(data)
        return await p.received(len(data))
    finally:
        tr.close()
        await p.lost


async def _tcp_round_trip(loop, host, port, **kw):
    tr, p = await loop.create_connection(lambda: Recorder(loop), host, port, **kw)
    try:
        tr.write(b"hi")
        return await p.received(2), tr.get_extra_info("peername")
    finally:
        tr.close()
        await p.lost


# -- hosts and families ------------------------------------------------------

@nh.needs_ipv6
def test_create_server_several_hosts(loop):
    async def main():
        sf = ServerFactory(loop, echo=True)
        server = await loop.create_server(sf, ["127.0.0.1", "::1"], 0)
        async with server:
            families = sorted(s.family for s in server.sockets)
            answers = [await _tcp_round_trip(loop, *s.getsockname()[:2])
                       for s in server.sockets]
        return families, [a for a, _ in answers]
    families, answers = run(loop, main())
    assert families == sorted([socket.AF_INET, socket.AF_INET6])
    assert answers == [b"hi", b"hi"]


@pytest.mark.parametrize("host", ["", None])
def test_create_server_empty_host_is_every_interface(loop, host):
    """host='' listens on every interface, as host=None does (asyncio's rule;
    aiosmtpd's Controller passes ''): not a name to look up."""
    async def main():
        server = await loop.create_server(ServerFactory(loop, echo=True), host, 0,
                                          family=socket.AF_INET)
        async with server:
            (sock,) = server.sockets
            addr, port = sock.getsockname()
            answer, _ = await _tcp_round_trip(loop, "127.0.0.1", port)
            return addr, answer
    assert run(loop, main()) == ("0.0.0.0", b"hi")


def test_create_server_family_inet(loop):
    async def main():
        server = await loop.create_server(P, "localhost", 0, family=socket.AF_INET)
        async with server:
            return [s.family for s in server.sockets]
    families = run(loop, main())
    assert families and set(families) == {socket.AF_INET}


@nh.needs_ipv6
def test_ipv6_server_socket_is_v6only(loop):
    async def main():
        server = await loop.create_server(P, "::1", 0)
        async with server:
            s = server.sockets[0]
            return s.family, s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    assert run(loop, main()) == (socket.AF_INET6, 1)


def test_create_server_address_in_use(loop, closer):
    busy = socket.create_server(("127.0.0.1", 0))
    closer(busy)
    with pytest.raises(OSError) as info:
        run(loop, loop.create_server(P, "127.0.0.1", busy.getsockname()[1]))
    assert info.value.errno == errno.EADDRINUSE


# -- socket options ----------------------------------------------------------

@pytest.mark.parametrize("reuse, expected", [(None, True), (True, True), (False, False)])
def test_reuse_address(loop, reuse, expected):
    async def main():
        server = await loop.create_server(P, "127.0.0.1", 0, reuse_address=reuse)
        async with server:
            return server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    assert bool(run(loop, main())) is expected


@pytest.mark.skipif(not nh.HAS_REUSE_PORT, reason="no SO_REUSEPORT")
def test_reuse_port(loop):
    async def main():
        first = await loop.create_server(P, "127.0.0.1", 0, reuse_port=True)
        port = first.sockets[0].getsockname()[1]
        second = await loop.create_server(P, "127.0.0.1", port, reuse_port=True)
        async with first, second:
            return [(s.getsockname()[1], s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))
                    for s in first.sockets + second.sockets]
    (p1, o1), (p2, o2) = run(loop, main())
    assert p1 == p2 and o1 and o2


@pytest.mark.skipif(not nh.HAS_REUSE_PORT, reason="no SO_REUSEPORT")
def test_reuse_port_not_set_by_default(loop):
    async def main():
        server = await loop.create_server(P, "127.0.0.1", 0)
        async with server:
            return server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    assert run(loop, main()) == 0


def test_backlog(loop, endpoint):
    # A tiny backlog still serves clients that come one after the other.
    async def main():
        server = await endpoint.create_server(loop, ServerFactory(loop, echo=True), backlog=1)
        async with server:
            return [await _round_trip(loop, endpoint, endpoint.address(server), b"%d" % i)
                    for i in range(5)]
    assert run(loop, main()) == [b"0", b"1", b"2", b"3", b"4"]


# -- serving -----------------------------------------------------------------

def test_start_serving_false(loop, endpoint):
    async def main():
        sf = ServerFactory(loop, echo=True)
        server = await endpoint.create_server(loop, sf, start_serving=False)
        async with server:
            addr = endpoint.address(server)
            before = (server.is_serving(), _accepting(server))
            with pytest.raises(ConnectionRefusedError):
                await endpoint.create_connection(loop, P, addr)
            await server.start_serving()
            await server.start_serving()  # a second call changes nothing
            after = (server.is_serving(), _accepting(server))
            answer = await _round_trip(loop, endpoint, addr)
        return before, after, answer, len(sf.protocols)
    assert run(loop, main()) == ((False, [False]), (True, [True]), b"hello", 1)


def test_serve_forever_cancelled_closes_server(loop, endpoint):
    async def main():
        server = await endpoint.create_server(loop, ServerFactory(loop, echo=True),
                                              start_serving=False)
        addr = endpoint.address(server)
        task = asyncio.ensure_future(server.serve_forever())
        await nh.spin()
        serving = server.is_serving()
        answer = await _round_trip(loop, endpoint, addr)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return serving, answer, server.is_serving(), server.sockets
    assert run(loop, main()) == (True, b"hello", False, ())


def test_serve_forever_twice_and_on_closed_server(loop, endpoint):
    async def main():
        server = await endpoint.create_server(loop, P)
        task = asyncio.ensure_future(server.serve_forever())
        await nh.spin()
        with pytest.raises(RuntimeError):
            await server.serve_forever()
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await task     # close() ends serve_forever() by cancelling it
        await server.wait_closed()
        with pytest.raises(RuntimeError):
            await server.serve_forever()
    run(loop, main())


def test_async_with_server(loop, endpoint):
    async def main():
        server = await endpoint.create_server(loop, P)
        async with server as entered:
            inside = (entered is server, server.is_serving(), len(server.sockets))
        return inside, server.is_serving(), server.sockets
    assert run(loop, main()) == ((True, True, 1), False, ())


def test_server_attributes(loop, endpoint):
    async def main():
        server = await endpoint.create_server(loop, P)
        sockets = server.sockets
        same_loop = server.get_loop() is loop
        server.close()
        server.close()  # idempotent
        await server.wait_closed()
        return sockets, same_loop, server.sockets, server.is_serving()
    sockets, same_loop, after, serving = run(loop, main())
    assert isinstance(sockets, tuple) and len(sockets) == 1
    assert (sockets[0].family, sockets[0].type) == (endpoint.family, socket.SOCK_STREAM)
    assert same_loop and after == () and serving is False


def test_server_is_abstract_server(loop, endpoint):
    async def main():
        server = await endpoint.create_server(loop, P)
        async with server:
            return isinstance(server, asyncio.AbstractServer)
    assert run(loop, main()) is True


def test_create_server_with_sock(loop, endpoint, closer):
    sock = endpoint.socket()
    sock.bind(("127.0.0.1", 0) if endpoint.kind == "tcp" else endpoint.new_path())

    async def main():
        if endpoint.kind == "tcp":
            server = await loop.create_server(ServerFactory(loop, echo=True), sock=sock)
        else:
            server = await loop.create_unix_server(ServerFactory(loop, echo=True), sock=sock)
        async with server:
            assert server.sockets[0].fileno() == sock.fileno()
            return await _round_trip(loop, endpoint, sock.getsockname())
    assert run(loop, main()) == b"hello"
    assert sock.fileno() == -1  # the server owned the socket and closed it


def test_wait_closed_after_a_connection_is_collected(loop, loop_kind):
    # A connection dropped without close() is collected after the server
    # was closed: the server no longer waits for it. pyasync detaches it on
    # every version.
    if loop_kind == "asyncio" and not nh.COLLECTED_TRANSPORT_DETACHES:
        pytest.skip("asyncio detaches a collected transport from its server from 3.13 on")

    async def main():
        accepted = loop.create_future()

        class Dropping(asyncio.Protocol):
            def connection_made(self, transport):
                # Paused, the transport is held by nothing but this frame.
                transport.pause_reading()
                accepted.set_result(None)
        server = await loop.create_server(Dropping, "127.0.0.1", 0)
        client = socket.create_connection(server.sockets[0].getsockname())
        try:
            await accepted
            await nh.spin()
            server.close()  # the connection is still there
            with pytest.warns(ResourceWarning, match="unclosed transport"):
                gc.collect()
            await asyncio.wait_for(server.wait_closed(), 2.0)
        finally:
            client.close()
    run(loop, main())


def test_a_connection_collected_after_its_loop_closed_is_let_go_quietly(
        loop, loop_kind, monkeypatch):
    # The server is closed and wait_closed() still waits for a connection
    # when the loop is closed; the connection is collected afterwards.
    # asyncio before 3.13 does not detach it (nothing is reported); 3.13's
    # detaches it and wakes the waiter on the closed loop: RuntimeError,
    # reported as unraisable from the finaliser. pyasync lets the server go
    # without waking anything: a closed loop cannot run the waiter.
    if sys.version_info < (3, 12):
        pytest.skip("before 3.12, Server.wait_closed() does not wait for connections")
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        client = socket.create_connection(server.sockets[0].getsockname())
        await nh.spin()  # accepted: the server has one connection
        server.close()
        waiting = asyncio.ensure_future(server.wait_closed())
        await nh.spin()
        return server, waiting, client
    server, waiting, client = run(loop, main())
    assert not waiting.done()
    loop.close()  # the server side's transport is now held by nothing
    waiting._log_destroy_pending = False
    del waiting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
        gc.collect()
    errors = [f"{type(r.exc_value).__name__}: {r.exc_value}" for r in reported]
    if loop_kind == "asyncio" and nh.COLLECTED_TRANSPORT_DETACHES:
        assert errors == ["RuntimeError: Event loop is closed"]
    else:
        assert errors == []
    client.close()
    del server


# -- Unix socket files ---------------------------------------------------------

def test_unix_server_replaces_stale_socket_file(loop, unix):
    path = unix.new_path()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    assert stat.S_ISSOCK(os.stat(path).st_mode)

    async def main():
        server = await loop.create_unix_server(ServerFactory(loop, echo=True), path)
        async with server:
            return await _round_trip(loop, unix, path)
    assert run(loop, main()) == b"hello"


def test_unix_server_refuses_to_replace_regular_file(loop, unix):
    path = unix.new_path()
    with open(path, "w") as f:
        f.write("keep me")
    with pytest.raises(OSError) as info:
        run(loop, loop.create_unix_server(P, path))
    assert info.value.errno == errno.EADDRINUSE
    with open(path) as f:
        assert f.read() == "keep me"


def test_unix_server_socket_file_on_close(loop, unix):
    path = unix.new_path()

    async def main():
        server = await loop.create_unix_server(P, path)
        present = os.path.exists(path)
        server.close()
        await server.wait_closed()
        return present, os.path.exists(path)
    # 3.13+ removes the file on close; earlier versions leave it behind.
    assert run(loop, main()) == (True, not nh.UNIX_SERVER_CLEANUP)


@pytest.mark.skipif(not nh.UNIX_SERVER_CLEANUP, reason="cleanup_socket is 3.13+")
def test_unix_server_cleanup_socket_false_keeps_file(loop, unix):
    path = unix.new_path()

    async def main():
        server = await loop.create_unix_server(P, path, cleanup_socket=False)
        server.close()
        await server.wait_closed()
        return os.path.exists(path)
    assert run(loop, main()) is True


@pytest.mark.skipif(not nh.UNIX_SERVER_CLEANUP, reason="cleanup_socket is 3.13+")
def test_unix_server_does_not_remove_a_replaced_file(loop, unix):
    path = unix.new_path()

    async def main():
        server = await loop.create_unix_server(P, path)
        os.unlink(path)
        with open(path, "w") as f:
            f.write("someone else's")
        server.close()
        await server.wait_closed()
        return os.path.exists(path)
    assert run(loop, main()) is True


def test_unix_server_path_like(loop, unix):
    import pathlib
    path = pathlib.Path(unix.new_path())

    async def main():
        server = await loop.create_unix_server(ServerFactory(loop, echo=True), path)
        async with server:
            return await _round_trip(loop, unix, str(path))
    assert run(loop, main()) == b"hello"


def test_unix_server_abstract_address(loop):
    # No file to remove before bind() or on close (3.13's cleanup_socket
    # must not stat() the name either).
    name = f"\0pyasync-test-{os.getpid()}-{id(loop)}"

    async def main():
        server = await loop.create_unix_server(ServerFactory(loop, echo=True), name)
        async with server:
            address = server.sockets[0].getsockname()
            return address, await _round_trip(loop, nh.Endpoint("unix", None), address)
    assert run(loop, main()) == (name.encode(), b"hello")


# -- a failed create_unix_server() or create_server() keeps no socket open ------

def _fds_after_failure(loop, make):
    """(open fds before, open fds after) a make() that fails, counted while
    the exception (and so its traceback's frames) is still alive."""
    before = nh.open_fd_count()
    caught = []

    async def main():
        try:
            await make()
        except BaseException as exc:
            caught.append(exc)
    run(loop, main())
    assert caught, "it did not fail"
    return before, nh.open_fd_count()


@pytest.mark.parametrize("where", ["missing directory", "too long", "regular file"])
def test_failed_unix_server_bind_closes_socket(loop, unix, where):
    path = unix.new_path()
    if where == "missing directory":
        path += "/no/such/dir"
    elif where == "too long":
        path += "x" * 200
    else:
        with open(path, "w"):
            pass
    before, after = _fds_after_failure(loop, lambda: loop.create_unix_server(P, path))
    assert after == before


# asyncio leaves the socket to the garbage collector when listen() fails, when
# the path cannot be checked, or when the caller is cancelled while the server
# starts.

def test_failed_unix_server_listen_closes_socket(pyloop, unix):
    path = unix.new_path()
    before, after = _fds_after_failure(
        pyloop, lambda: pyloop.create_unix_server(P, path, backlog="many"))
    assert after == before
    # Closed like a server: 3.13+ removes the file, earlier versions keep it.
    assert os.path.exists(path) is not nh.UNIX_SERVER_CLEANUP


def test_failed_unix_server_bad_path_closes_socket(pyloop, unix):
    path = unix.new_path() + "\0and more"
    before, after = _fds_after_failure(pyloop, lambda: pyloop.create_unix_server(P, path))
    assert after == before


def test_unix_server_cancelled_while_starting_closes_socket(pyloop, unix):
    path = unix.new_path()

    async def make():
        task = asyncio.ensure_future(pyloop.create_unix_server(P, path))
        # Its first step binds, listens and yields once; then it is cancelled.
        pyloop.call_soon(task.cancel)
        await task
    before, after = _fds_after_failure(pyloop, make)
    assert after == before


def test_failed_server_listen_closes_sockets(pyloop):
    before, after = _fds_after_failure(
        pyloop, lambda: pyloop.create_server(P, "127.0.0.1", 0, backlog="many"))
    assert after == before


# -- other ways to get a connection -------------------------------------------

def test_connect_accepted_socket(loop, endpoint, closer):
    lsock, addr = endpoint.listener()
    closer(lsock)
    client = endpoint.socket(blocking=True)
    closer(client)
    client.settimeout(5)
    client.connect(addr)
    lsock.settimeout(5)
    conn, _ = lsock.accept()

    async def main():
        tr, proto = await loop.connect_accepted_socket(
            lambda: Recorder(loop, echo=True), conn)
        client.sendall(b"accepted")
        await proto.received(8)
        nh.wait_readable(client)
        answer = client.recv(100)
        tr.close()
        await proto.lost
        return answer, isinstance(tr, asyncio.Transport)
    assert run(loop, main()) == (b"accepted", True)


def test_connect_accepted_socket_rejects_datagram_socket(loop, closer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closer(s)
    with pytest.raises(ValueError):
        run(loop, loop.connect_accepted_socket(P, s))


def test_create_connection_with_sock(loop, endpoint, closer):
    async def main():
        server = await endpoint.create_server(loop, ServerFactory(loop, echo=True))
        async with server:
            sock = endpoint.socket(blocking=True)
            closer(sock)
            sock.connect(endpoint.address(server))
            tr, proto = await loop.create_connection(lambda: Recorder(loop), sock=sock)
            same = tr.get_extra_info("socket").fileno() == sock.fileno()
            nonblocking = sock.gettimeout() == 0
            tr.write(b"via sock")
            answer = await proto.received(8)
            tr.close()
            await proto.lost
            return same, nonblocking, answer
    assert run(loop, main()) == (True, True, b"via sock")


def test_create_unix_connection_with_sock(loop, unix, closer):
    async def main():
        server = await unix.create_server(loop, ServerFactory(loop, echo=True))
        async with server:
            sock = unix.socket(blocking=True)
            closer(sock)
            sock.connect(unix.address(server))
            tr, proto = await loop.create_unix_connection(lambda: Recorder(loop), sock=sock)
            tr.write(b"unix sock")
            answer = await proto.received(9)
            tr.close()
            await proto.lost
            return answer
    assert run(loop, main()) == b"unix sock"


def test_create_connection_local_addr(loop, tcp):
    port = nh.free_tcp_port()

    async def main():
        server = await tcp.create_server(loop, ServerFactory(loop))
        async with server:
            host, sport = tcp.address(server)
            tr, proto = await loop.create_connection(
                lambda: Recorder(loop), host, sport, local_addr=("127.0.0.1", port))
            sockname = tr.get_extra_info("sockname")
            tr.close()
            await proto.lost
            return sockname
    assert run(loop, main()) == ("127.0.0.1", port)


def test_create_connection_local_addr_in_use(loop, tcp, closer):
    busy = socket.create_server(("127.0.0.1", 0))
    closer(busy)

    async def main():
        server = await tcp.create_server(loop, P)
        async with server:
            with pytest.raises(OSError) as info:
                await loop.create_connection(
                    P, *tcp.address(server), local_addr=busy.getsockname())
            return info.value.errno
    assert run(loop, main()) == errno.EADDRINUSE


@nh.needs_ipv6
@pytest.mark.parametrize("delay, interleave", [
    (None, None), (0.25, None), (0.25, 1), (None, 1), (0.25, 2)])
def test_create_connection_falls_back_over_addresses(loop, tcp, delay, interleave):
    # host=None resolves to ::1 and 127.0.0.1; only 127.0.0.1 listens, so
    # the first attempt is refused and the next address must be tried.
    async def main():
        server = await tcp.create_server(loop, ServerFactory(loop, echo=True))
        async with server:
            port = tcp.address(server)[1]
            infos = await loop.getaddrinfo(None, port, type=socket.SOCK_STREAM)
            families = [i[0] for i in infos]
            answer, peer = await _tcp_round_trip(
                loop, None, port, happy_eyeballs_delay=delay, interleave=interleave)
            return families, answer, peer
    families, answer, peer = run(loop, main())
    assert socket.AF_INET6 in families and socket.AF_INET in families
    assert answer == b"hi" and peer[0] == "127.0.0.1"


def test_create_connection_happy_eyeballs_to_localhost(loop, tcp):
    async def main():
        server = await tcp.create_server(loop, ServerFactory(loop, echo=True))
        async with server:
            return await _tcp_round_trip(loop, "localhost", tcp.address(server)[1],
                                         happy_eyeballs_delay=0.1)
    answer, peer = run(loop, main())
    assert answer == b"hi"


def test_create_connection_refused_single_error(loop, closer):
    target = socket.socket()
    closer(target)
    target.bind(("127.0.0.1", 0))
    with pytest.raises(ConnectionRefusedError):
        run(loop, loop.create_connection(P, *target.getsockname()))


@pytest.mark.skipif(not nh.HAS_ALL_ERRORS, reason="all_errors is 3.12+")
def test_create_connection_all_errors(loop, closer):
    target = socket.socket()
    closer(target)
    target.bind(("127.0.0.1", 0))
    with pytest.raises(ExceptionGroup) as info:
        run(loop, loop.create_connection(P, *target.getsockname(), all_errors=True))
    assert [type(e) for e in info.value.exceptions] == [ConnectionRefusedError]


@nh.needs_ipv6
@pytest.mark.skipif(not nh.HAS_ALL_ERRORS, reason="all_errors is 3.12+")
def test_create_connection_all_errors_every_address(loop):
    # Nothing listens on either loopback address.
    port = nh.free_tcp_port()
    with pytest.raises(ExceptionGroup) as info:
        run(loop, loop.create_connection(P, None, port, all_errors=True))
    assert len(info.value.exceptions) == 2
    assert all(isinstance(e, ConnectionRefusedError) for e in info.value.exceptions)


@nh.needs_ipv6
def test_create_connection_every_address_refused(loop):
    port = nh.free_tcp_port()
    with pytest.raises(OSError, match="Multiple exceptions"):
        run(loop, loop.create_connection(P, None, port))
