"""Closing things from inside their own callbacks: the loop from a callback it
runs, a transport from its protocol's methods, a server from the protocol of
a connection it just accepted. Each must behave as in asyncio: the loop
refuses to close while running (the error goes to the exception handler,
the loop survives), a transport delivers nothing more after close(),
flushes what was written before it and calls connection_lost() once, and a
server stops accepting while the connection that closed it lives on."""
import asyncio
import socket

import pytest

from ._support import run


def collect_reports(loop):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    return reports


def test_stop_and_close_from_callback(loop):
    reports = collect_reports(loop)
    after = []

    def stop_and_close():
        loop.stop()
        loop.close()
        after.append("not reached")
    loop.call_soon(stop_and_close)
    loop.call_soon(after.append, "next callback ran")
    loop.run_forever()
    # close() raised inside the callback: reported, and the loop went on to
    # the end of the iteration, then stopped.
    assert [type(ctx.get("exception")) for ctx in reports] == [RuntimeError]
    assert str(reports[0]["exception"]) == "Cannot close a running event loop"
    assert reports[0]["message"].startswith("Exception in callback")
    assert after == ["next callback ran"]
    assert not loop.is_closed()
    assert not loop.is_running()
    # The loop still works, and closes once it is no longer running.
    assert run(loop, asyncio.sleep(0, "alive")) == "alive"
    loop.close()
    assert loop.is_closed()


@pytest.mark.parametrize("call, message", [
    ("close", "Cannot close a running event loop"),
    ("run_forever", "This event loop is already running"),
    ("run_until_complete", "This event loop is already running"),
])
def test_close_or_rerun_from_a_coroutine(loop, call, message):
    # One call per loop: on 3.13.0, asyncio's failed nested run_forever()
    # marks the running loop as not running (its cleanup runs even though
    # the setup refused), so nothing after it would be asyncio's intent.
    coro = asyncio.sleep(0)
    args = (coro,) if call == "run_until_complete" else ()

    async def main():
        try:
            getattr(loop, call)(*args)
        except RuntimeError as exc:
            return str(exc)
        return "no error"
    try:
        assert run(loop, main()) == message
    finally:
        coro.close()
    assert not loop.is_closed()


class Closer(asyncio.Protocol):
    """Closes its transport in the method named `where`, after writing a
    reply there (which close() must still flush)."""

    def __init__(self, loop, where):
        self.where = where
        self.events = []
        self.lost = loop.create_future()

    def _maybe_close(self, where):
        if where == self.where:
            self.transport.write(b"reply from " + where.encode())
            self.transport.close()
            self.transport.close()  # twice: harmless
            self.events.append("closed")

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self._maybe_close("connection_made")

    def data_received(self, data):
        self.events.append(("data", bytes(data)))
        self._maybe_close("data_received")

    def eof_received(self):
        self.events.append("eof")
        self._maybe_close("eof_received")
        return True  # keep open, unless closed above

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(None)


@pytest.mark.parametrize("where", ["connection_made", "data_received", "eof_received"])
def test_transport_close_inside_protocol_method(loop, where):
    reports = collect_reports(loop)

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        proto = Closer(loop, where)
        await loop.create_connection(lambda: proto, sock=a)
        try:
            if where != "connection_made":
                await loop.sock_sendall(b, b"first")
                await asyncio.sleep(0.01)
            if where == "eof_received":
                b.shutdown(socket.SHUT_WR)
            # More data after the close: never delivered.
            try:
                await loop.sock_sendall(b, b"second")
            except OSError:
                pass
            await asyncio.wait_for(asyncio.shield(proto.lost), 5)
            await asyncio.sleep(0.01)
            got = b""
            while True:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(b, 1024), 5)
                except OSError:
                    break
                if not data:
                    break
                got += data
            return proto.events, got
        finally:
            b.close()

    events, got = run(loop, main())
    before = {"connection_made": ["made"],
              "data_received": ["made", ("data", b"first")],
              "eof_received": ["made", ("data", b"first"), "eof"]}[where]
    assert events == before + ["closed", ("lost", None)]
    assert got == b"reply from " + where.encode(), "close() dropped what was written before it"
    assert reports == []


def test_server_close_inside_connection_made(loop):
    reports = collect_reports(loop)

    async def main():
        holder = {}

        class CloseServer(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                holder["server"].close()
                holder["serving_after_close"] = holder["server"].is_serving()
                holder.setdefault("made", []).append(self)

            def data_received(self, data):
                self.transport.write(data.upper())

        server = await loop.create_server(CloseServer, "127.0.0.1", 0)
        holder["server"] = server
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        # The connection that closed the server lives on.
        writer.write(b"still here")
        assert await reader.readexactly(10) == b"STILL HERE"
        refused = False
        try:
            _, w2 = await asyncio.open_connection(*addr)
            w2.close()
        except ConnectionRefusedError:
            refused = True
        writer.close()
        await writer.wait_closed()
        for proto in holder["made"]:
            proto.transport.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return holder, refused

    holder, refused = run(loop, main())
    assert len(holder["made"]) == 1
    assert holder["serving_after_close"] is False
    assert refused, "the closed server still accepted a connection"
    assert reports == []
