"""Context variables seen by a server's connections, on both loops: asyncio
sets each accepted connection up in a task of its own, so a connection's
protocol_factory(), connection_made() and data_received() run in copies of
the context the server started serving in. A value set before the server
started is seen by every connection (uvicorn's tests check it), one set by
a protocol_factory() stays with its connection, and nothing a connection
sets reaches the server's code. Plain and TLS, TCP and Unix, in and out of
debug mode (pyasync sets connections up in C outside debug mode)."""
import asyncio
import contextvars

import pytest

from _net_helpers import endpoint, run, short_tmp, tcp, tls_files, unix  # noqa: F401
from _net_helpers import client_ctx, server_ctx  # noqa: F401

var = contextvars.ContextVar("var", default="unset")
made_var = contextvars.ContextVar("made_var", default="unset")


async def trace_connections(loop, endpoint, ssl_server=None, ssl_client=None, n=3):
    """What each of n connections, one after the other, saw at each step."""
    seen = []
    var.set("server")
    count = 0

    class Proto(asyncio.Protocol):
        def __init__(self, index):
            self.index = index
            self.done = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport
            seen.append((self.index, "connection_made", var.get(), made_var.get()))
            made_var.set(f"made {self.index}")

        def data_received(self, data):
            seen.append((self.index, "data_received", var.get(), made_var.get()))

            async def in_a_task():
                seen.append((self.index, "task", var.get(), made_var.get()))
                self.transport.write(b"ok")
            loop.create_task(in_a_task())

        def connection_lost(self, exc):
            seen.append((self.index, "connection_lost", var.get(), made_var.get()))
            self.done.set_result(None)

    protocols = []

    def factory():
        nonlocal count
        count += 1
        seen.append((count, "protocol_factory", var.get(), made_var.get()))
        var.set(f"factory {count}")
        protocols.append(Proto(count))
        return protocols[-1]

    server = await endpoint.create_server(loop, factory, ssl=ssl_server)
    addr = endpoint.address(server)
    for _ in range(n):
        kw = {"ssl": ssl_client} if ssl_client else {}
        if ssl_client and endpoint.kind == "unix":
            kw["server_hostname"] = "localhost"
        # The client in a context of its own: only the server's is looked at.
        reader, writer = await loop.create_task(
            endpoint.open_connection(addr, **kw), context=contextvars.Context())
        writer.write(b"hi")
        assert await reader.readexactly(2) == b"ok"
        writer.close()
        await writer.wait_closed()
        await protocols[-1].done
    server.close()
    await server.wait_closed()
    seen.append((0, "server after", var.get(), made_var.get()))
    return seen


def reference(endpoint, debug, ssl_server=None, ssl_client=None):
    loop = asyncio.new_event_loop()
    loop.set_debug(debug)
    try:
        return run(loop, trace_connections(loop, endpoint, ssl_server, ssl_client))
    finally:
        loop.close()


def run_in_context(loop, coro):
    # Each run starts from an empty context, so that the values set by
    # one run are not seen by the next (the reference's).
    return contextvars.Context().run(run, loop, coro)


@pytest.mark.parametrize("debug", [False, True], ids=["fast", "debug"])
def test_plain_connections_see_the_servers_context(loop, endpoint, debug):
    loop.set_debug(debug)
    got = run_in_context(loop, trace_connections(loop, endpoint))
    assert got == contextvars.Context().run(reference, endpoint, debug)
    # asyncio's own behaviour, spelled out for the first connection.
    first = [entry for entry in got if entry[0] == 1]
    assert first[0] == (1, "protocol_factory", "server", "unset")
    assert (1, "data_received", "factory 1", "unset") in first
    assert got[-1] == (0, "server after", "server", "unset")


@pytest.mark.parametrize("debug", [False, True], ids=["fast", "debug"])
def test_tls_connections_see_the_servers_context(loop, endpoint, debug, server_ctx, client_ctx):
    loop.set_debug(debug)
    got = run_in_context(loop, trace_connections(loop, endpoint, server_ctx, client_ctx))
    expected = contextvars.Context().run(reference, endpoint, debug, server_ctx, client_ctx)
    assert got == expected
    assert got[0] == (1, "protocol_factory", "server", "unset")
    assert got[-1] == (0, "server after", "server", "unset")
