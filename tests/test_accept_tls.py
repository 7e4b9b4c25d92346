"""The accept path of a TLS server (csrc/accept.c with csrc/sslproto*.c):
connections accepted and set up in C, the SSL protocol around the
application's. Every test runs on asyncio's loop too, which gives the
expected behaviour. The clients are blocking TLS sockets, each run in a
thread of its own."""
import asyncio
import concurrent.futures
import gc
import sys
import weakref

import pytest

import _net_helpers as nh
from _net_helpers import ServerFactory, run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, server_ctx, client_ctx, ...


def _in_thread(loop, func, *args):
    """func(*args) in a thread of its own, joined before this returns: no
    thread is left running for a later test that forks."""
    async def call():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return await loop.run_in_executor(pool, func, *args)
    return call()


def _raw_client(endpoint, addr):
    sock = endpoint.socket(blocking=True)
    sock.connect(addr)
    sock.settimeout(5)
    return sock


def _tls_exchange(endpoint, addr, client_ctx, payload):
    """Connect, send payload over TLS, read as much back, close (with
    close_notify); returns what came back."""
    raw = _raw_client(endpoint, addr)
    with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = tls.recv(len(payload) - len(got))
            if not chunk:
                break
            got += chunk
        return got


def test_tls_client_that_resets_before_accept(loop, endpoint, server_ctx, client_ctx):
    """A connection reset while it waits to be accepted: nothing reaches
    the exception handler, and the server goes on serving TLS."""
    async def main():
        reports = []
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        sf = ServerFactory(loop, echo=True)
        server = await endpoint.create_server(loop, sf, ssl=server_ctx)
        addr = endpoint.address(server)
        gone = _raw_client(endpoint, addr)
        nh.linger_reset(gone)
        gone.close()
        got = await _in_thread(loop, _tls_exchange, endpoint, addr, client_ctx, b"ping")
        server.close()
        await server.wait_closed()
        return got, reports
    got, reports = run(loop, main())
    assert got == b"ping"
    assert reports == []


@pytest.mark.parametrize("debug", [False, True])
def test_tls_protocol_factory_that_fails(loop, endpoint, server_ctx, client_ctx, debug):
    """A failing protocol_factory() closes that connection before any
    handshake; the failure is reported in debug mode only, and the server
    goes on serving."""
    async def main():
        loop.set_debug(debug)
        reports = []
        loop.set_exception_handler(
            lambda lp, ctx: reports.append(type(ctx.get("exception")).__name__))
        sf = ServerFactory(loop, echo=True)
        calls = []

        def factory():
            calls.append(None)
            if len(calls) == 1:
                raise ZeroDivisionError("no protocol")
            return sf()
        server = await endpoint.create_server(loop, factory, ssl=server_ctx)
        addr = endpoint.address(server)
        first = _raw_client(endpoint, addr)
        await asyncio.sleep(0.05)
        # asyncio's debug report keeps a cycle (frame, context, exception)
        # that holds the socket until collected; pyasync closes it at once.
        gc.collect()
        eof = await _in_thread(loop, first.recv, 1)
        first.close()
        got = await _in_thread(loop, _tls_exchange, endpoint, addr, client_ctx, b"pong")
        server.close()
        await server.wait_closed()
        loop.set_debug(False)
        return eof, got, reports
    eof, got, reported = run(loop, main())
    assert eof == b""
    assert got == b"pong"
    assert reported == (["ZeroDivisionError"] if debug else [])


def test_tls_accepted_connections_leave_no_fd_or_object(loop, endpoint, server_ctx,
                                                        client_ctx):
    """A hundred TLS connections opened and closed: the process holds the
    same number of fds afterwards, and no application transport or
    protocol stays alive."""
    async def main():
        refs = []

        class P(asyncio.Protocol):
            def connection_made(self, transport):
                refs.append(weakref.ref(transport))
                refs.append(weakref.ref(self))
                self.transport = transport

            def data_received(self, data):
                self.transport.write(data)
        server = await endpoint.create_server(loop, P, ssl=server_ctx)
        addr = endpoint.address(server)
        before = nh.open_fd_count()
        for _ in range(100):
            got = await _in_thread(loop, _tls_exchange, endpoint, addr, client_ctx, b"x")
            assert got == b"x"
        for _ in range(200):
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
    assert n == 200
    assert after <= before
    assert alive == 0


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Server.close_clients() is new in 3.13")
@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_tls_server_closes_accepted_clients(loop, endpoint, server_ctx, client_ctx, how):
    """3.13's close_clients()/abort_clients() reach TLS connections set up
    in C: the application's protocols lose their connections and the
    server finishes closing."""
    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf, ssl=server_ctx)
        clients = []
        for _ in range(3):
            tr, _ = await endpoint.create_connection(
                loop, asyncio.Protocol, endpoint.address(server), ssl=client_ctx,
                server_hostname="localhost")
            clients.append(tr)
        protos = [await sf.next() for _ in clients]
        server.close()
        getattr(server, how)()
        lost = [await asyncio.wait_for(p.lost, 5) for p in protos]
        await asyncio.wait_for(server.wait_closed(), 5)
        for tr in clients:
            tr.abort()
        await nh.spin()
        return lost
    lost = run(loop, main())
    assert lost == [None, None, None]
