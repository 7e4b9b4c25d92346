"""Protocol methods that raise. The error goes to the exception handler with
asyncio's message and context, the loop keeps running (a timer set before
still fires, another connection still works), and the transport ends as in
asyncio: closed with connection_lost(exc) when reading failed (data_received,
eof_received, get_buffer, buffer_updated), left open when a notification
failed (connection_made, pause_writing, resume_writing), and closed anyway
when connection_lost itself raised."""
import asyncio
import socket

import pytest

from ._support import run


class Boom(Exception):
    pass


class Fragile(asyncio.Protocol):
    def __init__(self, loop, where):
        self.where = where
        self.events = []
        self.lost = loop.create_future()
        self.raised = None

    def _event(self, name):
        if not self.events or self.events[-1] != name:
            self.events.append(name)
        if name == self.where:
            self.raised = Boom(name)
            raise self.raised

    def connection_made(self, transport):
        self.transport = transport
        self._event("connection_made")

    def data_received(self, data):
        self._event("data_received")

    def eof_received(self):
        self._event("eof_received")

    def pause_writing(self):
        self._event("pause_writing")

    def resume_writing(self):
        self._event("resume_writing")

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)
        self.events.append(("lost", exc))
        if self.where == "connection_lost":
            self.raised = Boom("connection_lost")
            raise self.raised


class FragileBuffered(Fragile, asyncio.BufferedProtocol):
    def get_buffer(self, sizehint):
        self._event("get_buffer")
        if self.where == "empty buffer":
            return bytearray()
        return bytearray(4096)

    def buffer_updated(self, nbytes):
        self._event("buffer_updated")


WRITE_SIZE = 1024 * 1024   # more than the socket buffers take at once
IN_CALLBACK = "Exception in callback"
FATAL = {
    "data_received": "Fatal error: protocol.data_received() call failed.",
    "eof_received": "Fatal error: protocol.eof_received() call failed.",
    "get_buffer": "Fatal error: protocol.get_buffer() call failed.",
    "buffer_updated": "Fatal error: protocol.buffer_updated() call failed.",
    "empty buffer": "Fatal error: protocol.get_buffer() call failed.",
}
NOTIFY = {
    "pause_writing": "protocol.pause_writing() failed",
    "resume_writing": "protocol.resume_writing() failed",
}
PLACES = ["connection_made", "connection_lost", *FATAL, *NOTIFY]


async def exercise(loop, where, accepted):
    """Connect a Fragile protocol (over create_connection(sock=...) or as a
    server's accepted connection), then send data, make it pause and resume
    writing, send EOF and close; returns the protocol and the peer's bytes."""
    cls = FragileBuffered if where in ("get_buffer", "buffer_updated", "empty buffer") \
        else Fragile
    proto = cls(loop, where)
    server = None
    if accepted:
        server = await loop.create_server(lambda: proto, "127.0.0.1", 0)
        peer = socket.socket()
        peer.setblocking(False)
        await loop.sock_connect(peer, server.sockets[0].getsockname())
        while not proto.events:
            await asyncio.sleep(0.001)
    else:
        a, peer = socket.socketpair()
        a.setblocking(False)
        peer.setblocking(False)
        await loop.create_connection(lambda: proto, sock=a)
    timer = loop.create_future()
    loop.call_later(0.05, timer.set_result, "fired")
    try:
        await asyncio.sleep(0.01)
        await loop.sock_sendall(peer, b"hello")
        await asyncio.sleep(0.01)
        received = 0
        if not proto.transport.is_closing():
            proto.transport.set_write_buffer_limits(high=1024)
            proto.transport.write(b"w" * WRITE_SIZE)
            while received < WRITE_SIZE:
                data = await asyncio.wait_for(loop.sock_recv(peer, 65536), 5)
                if not data:
                    break
                received += len(data)
        await asyncio.sleep(0.01)
        open_before_close = not proto.transport.is_closing()
        try:
            peer.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        await asyncio.sleep(0.01)
        proto.transport.close()
        await asyncio.wait_for(asyncio.shield(proto.lost), 5)
        # The peer sees the socket closed, even if connection_lost() raised
        # (reset, where the transport closed with unread data).
        try:
            tail = await asyncio.wait_for(loop.sock_recv(peer, 65536), 5)
        except ConnectionResetError:
            tail = b""
        assert await timer == "fired", "the loop stopped running timers"
        return proto, open_before_close, received, tail
    finally:
        peer.close()
        if server is not None:
            server.close()


# Accepted connections too for the paths where a server's transport is set
# up differently (connection_made) or reads; the write-side notifications are
# the same code once connected.
CASES = [(where, False) for where in PLACES] + \
    [(where, True) for where in PLACES if where not in NOTIFY]


@pytest.mark.parametrize("where, accepted", CASES,
                         ids=[f"{w}-{'accepted' if a else 'connection'}" for w, a in CASES])
def test_protocol_method_raises(loop, where, accepted):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    proto, open_before_close, received, tail = run(loop, exercise(loop, where, accepted))
    assert len(reports) == 1, reports
    report = reports[0]
    lost = proto.events[-1]
    if where == "empty buffer":
        assert isinstance(report["exception"], RuntimeError)
        assert str(report["exception"]) == "get_buffer() returned an empty buffer"
        assert lost == ("lost", report["exception"])
    else:
        assert proto.raised is not None, f"{where} was never called"
        assert report["exception"] is proto.raised
    assert tail == b""
    if where in FATAL:
        assert report["message"] == FATAL[where]
        assert report["protocol"] is proto and report["transport"] is proto.transport
        if where != "empty buffer":
            assert lost == ("lost", proto.raised)
        # Closed by the failure (eof_received fails only once the peer's
        # EOF arrived, after the check).
        assert not open_before_close or where == "eof_received"
    elif where in NOTIFY:
        assert report["message"] == NOTIFY[where]
        assert report["protocol"] is proto and report["transport"] is proto.transport
        assert open_before_close and received == WRITE_SIZE
        assert lost == ("lost", None)
    else:
        assert report["message"].startswith(IN_CALLBACK)
        assert "handle" in report
        assert open_before_close and received == WRITE_SIZE
        assert lost == ("lost", None)


def test_loop_serves_others_after_protocol_errors(loop):
    # Many connections whose protocols raise in turn, then a healthy one.
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    async def main():
        for where in PLACES * 2:
            await exercise(loop, where, accepted=False)
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)

        class Echo(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                self.transport.write(data)
        transport, _ = await loop.create_connection(Echo, sock=a)
        await loop.sock_sendall(b, b"still fine")
        got = await asyncio.wait_for(loop.sock_recv(b, 100), 5)
        transport.close()
        b.close()
        return got
    assert run(loop, main()) == b"still fine"
    assert len(reports) == len(PLACES) * 2
