"""The accept path (csrc/accept.c): connections accepted and set up in C,
with their socket object made only when asked for. Every test runs on
asyncio's loop too, which gives the expected behaviour."""
import asyncio
import gc
import socket
import sys
import weakref

import pytest

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...


def _client(endpoint, addr):
    """A blocking client socket connected to addr."""
    sock = endpoint.socket(blocking=True)
    sock.connect(addr)
    return sock


def _describe(sock):
    return (sock.family, sock.type, sock.proto, sock.gettimeout())


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "unix"])
def test_extra_info_of_an_accepted_connection(loop, short_tmp, host):
    """peername, sockname and the socket are those asyncio gives, whether
    asked in connection_made(), later, or (sockname, peername) in
    connection_lost()."""
    async def main():
        sf = ServerFactory(loop)
        if host == "unix":
            path = f"{short_tmp}/s.sock"
            server = await loop.create_unix_server(sf, path)
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
        else:
            server = await loop.create_server(sf, host, 0)
            port = server.sockets[0].getsockname()[1]
            client = socket.create_connection(("127.0.0.1", port))
        try:
            proto = await sf.next()
            tr = proto.transport
            first = {k: tr.get_extra_info(k) for k in ("peername", "sockname")}
            tsock = tr.get_extra_info("socket")
            seen = {
                "peername": first["peername"] == (client.getsockname() if host != "unix"
                                                  else ""),
                "sockname": first["sockname"] == client.getpeername(),
                "socket": isinstance(tsock, asyncio.trsock.TransportSocket),
                "kind": _describe(tsock) == (server.sockets[0].family, socket.SOCK_STREAM,
                                             server.sockets[0].proto, 0.0),
                "fileno": tsock.fileno() == tr._sock_fd,
                "socket_sockname": tsock.getsockname() == first["sockname"],
                "same_socket": tr.get_extra_info("socket") is tsock,
                "default": tr.get_extra_info("nothing", 42) == 42,
                "keyword": tr.get_extra_info(name="nothing", default=7) == 7,
            }
            client.close()
            await proto.lost
            seen["after_close"] = {k: tr.get_extra_info(k) for k in ("peername", "sockname")} \
                == first
        finally:
            client.close()
            server.close()
            await server.wait_closed()
        return seen
    seen = run(loop, main())
    assert all(seen.values()), seen


def _asking_in_connection_lost(got, names):
    """A protocol class that asks for nothing until connection_lost(), where
    it sets the future `got` to (transport, {name: get_extra_info(name)})."""
    class Late(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def connection_lost(self, exc):
            got.set_result((self.transport,
                            {k: self.transport.get_extra_info(k) for k in names}))
    return Late


def test_extra_info_asked_only_in_connection_lost(loop, endpoint):
    """A protocol that asks for nothing until connection_lost() still gets
    the socket's addresses there."""
    async def main():
        got = loop.create_future()
        server = await endpoint.create_server(
            loop, _asking_in_connection_lost(got, ("sockname", "peername")))
        addr = endpoint.address(server)
        client = _client(endpoint, addr)
        client.close()
        _, info = await got
        server.close()
        await server.wait_closed()
        return info, addr
    info, addr = run(loop, main())
    assert info["sockname"] == addr


@pytest.mark.parametrize("family", [
    socket.AF_INET, pytest.param(socket.AF_INET6, marks=nh.needs_ipv6)])
def test_peername_asked_first_after_close(loop, family):
    """An accepted TCP connection's peer address, asked for the first time
    only after the connection closed (in connection_lost() and later), is
    still the client's address, in the family's tuple form."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"

    async def main():
        got = loop.create_future()
        server = await loop.create_server(_asking_in_connection_lost(got, ("peername",)),
                                          host, 0)
        client = socket.socket(family)
        try:
            client.connect(server.sockets[0].getsockname()[:2])
            expected = client.getsockname()
            client.close()
            transport, info = await got
            in_lost = info["peername"]
            await asyncio.sleep(0)
            later = transport.get_extra_info("peername")
        finally:
            client.close()
            server.close()
            await server.wait_closed()
        return in_lost, later, expected
    in_lost, later, expected = run(loop, main())
    assert in_lost == expected
    assert later == expected
    assert len(expected) == (4 if family == socket.AF_INET6 else 2)


def test_tcp_nodelay_on_accepted_connections(loop, tcp):
    async def main():
        sf = ServerFactory(loop)
        server = await tcp.create_server(loop, sf)
        client = _client(tcp, tcp.address(server))
        proto = await sf.next()
        sock = proto.transport.get_extra_info("socket")
        nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.close()
        await proto.lost
        server.close()
        await server.wait_closed()
        return nodelay
    assert run(loop, main()) != 0


def test_fd_of_an_accepted_connection_is_the_transports(loop, endpoint):
    """add_reader() and the sock_*() methods refuse the fd of a transport,
    until it is closed."""
    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf)
        client = _client(endpoint, endpoint.address(server))
        proto = await sf.next()
        fd = proto.transport.get_extra_info("socket").fileno()
        errors = []
        for call in (lambda: loop.add_reader(fd, print), lambda: loop.remove_writer(fd)):
            try:
                call()
            except RuntimeError as exc:
                errors.append("is used by transport" in str(exc))
        proto.transport.close()
        await proto.lost
        client.close()
        server.close()
        await server.wait_closed()
        return errors
    assert run(loop, main()) == [True, True]


def test_a_batch_of_waiting_connections_is_served(loop, endpoint):
    """Clients that connected before the loop looked are all accepted, in
    one readiness event or several, and each is served."""
    n = 40

    async def main():
        sf = ServerFactory(loop, echo=True)
        server = await endpoint.create_server(loop, sf, backlog=n)
        addr = endpoint.address(server)
        clients = [_client(endpoint, addr) for _ in range(n)]
        for i, c in enumerate(clients):
            c.sendall(b"%d;" % i)
        for _ in range(n):
            await sf.next()
        answers = []
        for i, c in enumerate(clients):
            c.setblocking(True)
            c.settimeout(5)
            want = b"%d;" % i
            got = b""
            while len(got) < len(want):
                got += await loop.run_in_executor(None, c.recv, 16)
            answers.append(got == want)
            c.close()
        for p in sf.protocols:
            await p.lost
        server.close()
        await server.wait_closed()
        return answers
    assert run(loop, main()) == [True] * n


def test_a_client_that_resets_before_accept(loop, endpoint):
    """A connection reset while it waits to be accepted: no error reaches
    the exception handler, and the server goes on serving."""
    async def main():
        reports = []
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        sf = ServerFactory(loop, echo=True)
        server = await endpoint.create_server(loop, sf)
        addr = endpoint.address(server)
        # All before the loop looks again: both wait in the accept queue.
        gone = _client(endpoint, addr)
        nh.linger_reset(gone)
        gone.close()
        client = _client(endpoint, addr)
        client.sendall(b"ping")
        client.settimeout(5)
        protos = []
        while True:
            p = await sf.next()
            protos.append(p)
            if p.data or await _has_data(p):
                break
        got = await loop.run_in_executor(None, client.recv, 4)
        client.close()
        for p in protos:
            await p.lost
        server.close()
        await server.wait_closed()
        return got, reports
    got, reports = run(loop, main())
    assert got == b"ping"
    assert reports == []


async def _has_data(proto):
    """Whether proto gets data (or the end of its stream) soon: it is then
    the live client, not the reset one."""
    try:
        await asyncio.wait_for(asyncio.shield(proto.received(1)), 0.5)
    except asyncio.TimeoutError:
        return False
    return bool(proto.data)


@pytest.mark.parametrize("debug", [False, True])
def test_protocol_factory_that_fails(loop, endpoint, debug):
    """A failing protocol_factory() closes that connection; the failure is
    reported in debug mode only, and the server goes on serving."""
    async def main():
        loop.set_debug(debug)
        reports = []
        # Only the names: asyncio closes the connection when the last
        # reference to its socket (held by the traceback) goes.
        loop.set_exception_handler(
            lambda lp, ctx: reports.append(type(ctx.get("exception")).__name__))
        sf = ServerFactory(loop, echo=True)
        calls = []

        def factory():
            calls.append(None)
            if len(calls) == 1:
                raise ZeroDivisionError("no protocol")
            return sf()
        server = await endpoint.create_server(loop, factory)
        addr = endpoint.address(server)
        first = _client(endpoint, addr)
        first.settimeout(5)
        await asyncio.sleep(0.05)
        # asyncio's debug report keeps a cycle (frame, context, exception)
        # that holds the socket until collected; pyasync closes it at once.
        gc.collect()
        eof = await loop.run_in_executor(None, first.recv, 1)
        first.close()
        second = _client(endpoint, addr)
        proto = await sf.next()
        second.close()
        await proto.lost
        server.close()
        await server.wait_closed()
        loop.set_debug(False)
        return eof, reports
    eof, reported = run(loop, main())
    assert eof == b""
    assert reported == (["ZeroDivisionError"] if debug else [])


def test_server_waits_for_accepted_connections(loop, endpoint):
    """Server.wait_closed() waits until every accepted connection is gone
    (the server counts them as they come and go); 3.11's returned at
    once."""
    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf)
        client = _client(endpoint, endpoint.address(server))
        proto = await sf.next()
        server.close()
        waiter = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.05)
        waiting = not waiter.done()
        proto.transport.close()
        await asyncio.wait_for(waiter, 5)
        client.close()
        return waiting
    assert run(loop, main()) is (sys.version_info >= (3, 12))


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Server.close_clients() is new in 3.13")
@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_server_closes_accepted_clients(loop, endpoint, how):
    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf)
        clients = [_client(endpoint, endpoint.address(server)) for _ in range(3)]
        protos = [await sf.next() for _ in clients]
        server.close()
        getattr(server, how)()
        lost = [await asyncio.wait_for(p.lost, 5) for p in protos]
        await asyncio.wait_for(server.wait_closed(), 5)
        for c in clients:
            c.close()
        return lost
    assert run(loop, main()) == [None, None, None]


def test_socket_object_made_late_behaves(loop, endpoint):
    """The socket object made for get_extra_info('socket') is the
    connection's: data written through the transport arrives, and the
    object is closed with the transport."""
    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf)
        client = _client(endpoint, endpoint.address(server))
        proto = await sf.next()
        tsock = proto.transport.get_extra_info("socket")
        proto.transport.write(b"through the transport")
        client.settimeout(5)
        got = await loop.run_in_executor(None, client.recv, 100)
        proto.transport.close()
        await proto.lost
        client.close()
        server.close()
        await server.wait_closed()
        return got, tsock.fileno()
    got, fileno = run(loop, main())
    assert got == b"through the transport"
    assert fileno == -1


def test_accepted_transports_leave_no_fd_or_object(loop, endpoint):
    """Hundreds of connections opened and closed: the process holds the
    same number of fds afterwards and no transport stays alive."""
    async def main():
        refs = []

        class P(asyncio.Protocol):
            def connection_made(self, transport):
                refs.append(weakref.ref(transport))
                self.transport = transport

            def data_received(self, data):
                self.transport.write(data)
        server = await endpoint.create_server(loop, P)
        addr = endpoint.address(server)
        before = nh.open_fd_count()
        for _ in range(300):
            c = _client(endpoint, addr)
            c.sendall(b"x")
            c.settimeout(5)
            await loop.run_in_executor(None, c.recv, 1)
            c.close()
        for _ in range(100):
            await asyncio.sleep(0.01)
            gc.collect()
            if all(r() is None for r in refs) and nh.open_fd_count() <= before:
                break
        after = nh.open_fd_count()
        alive = sum(r() is not None for r in refs)
        server.close()
        await server.wait_closed()
        return len(refs), before, after, alive
    n, before, after, alive = run(loop, main())
    assert n == 300
    assert after <= before
    assert alive == 0


def test_accepted_transport_repr(loop, endpoint):
    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf)
        client = _client(endpoint, endpoint.address(server))
        proto = await sf.next()
        tr = proto.transport
        live, fd = repr(tr), tr._sock_fd
        tr.close()
        await proto.lost
        closed = repr(tr)
        server.close()
        client.close()
        await server.wait_closed()
        return live, fd, closed
    live, fd, closed = run(loop, main())
    assert f"fd={fd} read=polling write=<idle, bufsize=0>>" in live
    assert "closed" in closed


@pytest.mark.parametrize("kind", ["client", "datagram"])
def test_fd_of_other_transports_is_theirs_too(loop, kind):
    """The same refusal for a connection made by create_connection() and for
    a datagram endpoint; a closed transport's fd is free again."""
    async def main():
        if kind == "client":
            server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
            tr, _ = await loop.create_connection(asyncio.Protocol,
                                                 *server.sockets[0].getsockname())
        else:
            server = None
            tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        local_addr=("127.0.0.1", 0))
        sock = tr.get_extra_info("socket")
        refused = []
        for call in (lambda: loop.add_writer(sock, print), lambda: loop.remove_reader(sock)):
            try:
                call()
            except RuntimeError:
                refused.append(True)
        tr.close()
        allowed = loop.remove_reader(sock.fileno()) is False
        await asyncio.sleep(0)
        if server is not None:
            server.close()
            await server.wait_closed()
        return refused, allowed
    refused, allowed = run(loop, main())
    assert refused == [True, True]
    assert allowed


@pytest.mark.parametrize("kind", ["accepted", "client", "datagram"])
def test_finished_transports_are_freed_without_the_collector(loop, loop_kind, kind):
    """A closed transport is freed as soon as nothing uses it, as asyncio's
    is from 3.12: no reference cycle (such as the transport and the bound
    methods the loop calls for readiness) keeps it for the garbage
    collector. asyncio 3.11's stream transports still wait for it."""
    async def main():
        refs = []

        class P(asyncio.Protocol):
            def connection_made(self, transport):
                refs.append(weakref.ref(transport))
                self.transport = transport

            def data_received(self, data):
                self.transport.write(data)
        server = await loop.create_server(P, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        gc.disable()
        try:
            for _ in range(3):
                if kind == "accepted":
                    c = socket.socket()
                    c.setblocking(False)
                    await loop.sock_connect(c, addr)
                    await loop.sock_sendall(c, b"x")
                    await loop.sock_recv(c, 1)
                    c.close()
                elif kind == "client":
                    tr, _ = await loop.create_connection(P, *addr)
                    tr.close()
                    del tr
                else:
                    tr, _ = await loop.create_datagram_endpoint(
                        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
                    refs.append(weakref.ref(tr))
                    tr.close()
                    del tr
                for _ in range(5):
                    await asyncio.sleep(0)
            await asyncio.sleep(0.05)
            alive = sum(r() is not None for r in refs)
        finally:
            gc.enable()
        server.close()
        await server.wait_closed()
        return len(refs), alive
    n, alive = run(loop, main())
    assert n >= 3
    if loop_kind == "asyncio" and sys.version_info < (3, 12) and kind != "datagram":
        assert alive > 0  # the reference's own cycle, gone in 3.12
    else:
        assert alive == 0


def test_misuse_of_the_acceptor(pyloop):
    """What Python code may do to the accept callback's object."""
    from pyasync import _core
    from pyasync._transports import SocketTransport
    blank = _core.Acceptor.__new__(_core.Acceptor)
    with pytest.raises(RuntimeError):
        blank()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    args = dict(loop=pyloop, sock=listener, protocol_factory=asyncio.Protocol, server=None,
                backlog=10, transport_type=SocketTransport, on_connection=print,
                on_resource_error=print, plain=True)
    with pytest.raises(TypeError):
        _core.Acceptor(**dict(args, loop=object()))
    with pytest.raises(TypeError):
        _core.Acceptor(**dict(args, transport_type=int))
    acceptor = _core.Acceptor(**args)
    with pytest.raises(TypeError):
        acceptor(1)
    assert acceptor() is None      # nothing to accept
    listener.close()
    with pytest.raises(OSError):   # closed behind its back: as sock.accept() fails
        acceptor()
    with pytest.raises(ValueError):
        _core.Acceptor(**args)     # a closed listening socket
