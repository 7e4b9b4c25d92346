"""A peer that resets the connection while the transport reads or writes.
TCP peers close with SO_LINGER 0 (the kernel sends a RST); Unix peers close
with data they never read, which is a reset for AF_UNIX streams too. The
transport must call connection_lost() once, with the error asyncio gives
(ConnectionResetError, or BrokenPipeError where the first failing call is a
send on a Unix socket), deliver every byte that arrived before the reset,
report nothing to the exception handler (an OSError on a socket is not a
bug: asyncio logs it only in debug mode), empty its write buffer, and take
later write() calls quietly, warning from the fifth on like asyncio."""
import asyncio
import logging

import pytest

import _net_helpers as nh
from ._support import run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, short_tmp

CHUNK = 64 * 1024


class Peer(asyncio.Protocol):
    def __init__(self, loop):
        self.data = bytearray()
        self.events = []
        self.paused = 0
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        self.data += data

    def eof_received(self):
        self.events.append("eof")

    def pause_writing(self):
        self.paused += 1

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        if not self.lost.done():
            self.lost.set_result(exc)


# (mode, endpoint kind) -> what connection_lost() gets, as asyncio on Linux.
EXPECTED = {
    ("mid-read", "tcp"): "ConnectionResetError",
    ("mid-read", "unix"): "ConnectionResetError",
    ("data-in-flight", "tcp"): "ConnectionResetError",
    ("data-in-flight", "unix"): None,   # a Unix peer that read all it was sent: EOF
    ("mid-write", "tcp"): "ConnectionResetError",
    ("mid-write", "unix"): "ConnectionResetError",
    ("mid-write-not-reading", "tcp"): "ConnectionResetError",
    ("mid-write-not-reading", "unix"): "BrokenPipeError",
    ("write-after-reset", "tcp"): "ConnectionResetError",
    ("write-after-reset", "unix"): "BrokenPipeError",
}


async def reset_scenario(loop, endpoint, mode):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    lsock, addr = endpoint.listener()
    client = endpoint.socket()
    try:
        await loop.sock_connect(client, addr)
        conn, _ = await loop.sock_accept(lsock)
        nh.set_small_buffers(client)
        proto = Peer(loop)
        transport, _ = await loop.connect_accepted_socket(lambda: proto, conn)
        sent = 0
        if mode == "mid-read":
            # The peer sends a message, then resets before it reads the
            # reply (for Unix, unread data makes the close a reset).
            transport.write(b"reply")
            await loop.sock_sendall(client, b"m" * 100_000)
            sent = 100_000
            while len(proto.data) < sent:
                await asyncio.sleep(0.001)
        elif mode == "data-in-flight":
            await loop.sock_sendall(client, b"f" * 50_000)
            sent = 50_000
        elif mode in ("mid-write", "mid-write-not-reading"):
            if mode == "mid-write-not-reading":
                transport.pause_reading()
            for _ in range(64):
                transport.write(b"w" * CHUNK)
            await asyncio.sleep(0.02)
            assert proto.paused == 1
            assert transport.get_write_buffer_size() > 0
        if endpoint.kind == "tcp":
            nh.linger_reset(client)
        client.close()
        if mode == "write-after-reset":
            # Before the loop has seen the reset: write() tries to send now.
            transport.write(b"too late")
        await asyncio.wait_for(asyncio.shield(proto.lost), 5)
        # Let anything that would come after connection_lost() show.
        await nh.spin(5)
        return proto, transport, sent, reports
    finally:
        client.close()
        lsock.close()


@pytest.mark.parametrize("mode", ["mid-read", "data-in-flight", "mid-write",
                                  "mid-write-not-reading", "write-after-reset"])
def test_peer_reset(loop, endpoint, mode, caplog):
    proto, transport, sent, reports = run(loop, reset_scenario(loop, endpoint, mode))
    expected = EXPECTED[mode, endpoint.kind]
    lost = [e for e in proto.events if e != "eof"]
    assert lost == ["made", ("lost", expected)]
    assert len(proto.data) == sent, "data that arrived before the reset was lost"
    assert reports == [], "a reset is not an error to report"
    assert transport.is_closing()
    assert transport.get_write_buffer_size() == 0
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        for _ in range(6):
            transport.write(b"ignored")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["socket.send() raised exception."] * 2


def test_stream_reader_and_writer_see_reset(loop, tcp):
    # The streams API over the same transports: read() raises the reset,
    # and so does drain() once the connection is lost.
    async def main():
        accepted = loop.create_future()
        server = await asyncio.start_server(
            lambda r, w: accepted.set_result((r, w)), "127.0.0.1", 0)
        reader_c, writer_c = await asyncio.open_connection(*server.sockets[0].getsockname())
        reader, writer = await accepted
        writer_c.write(b"partial message")
        assert await reader.readexactly(7) == b"partial"
        nh.linger_reset(writer_c.get_extra_info("socket"))
        writer_c.transport.abort()
        outcome = []
        try:
            while await reader.read(1024):
                pass
            outcome.append("eof")
        except ConnectionResetError:
            outcome.append("reset")
        try:
            writer.write(b"x" * CHUNK)
            await writer.drain()
            outcome.append("drained")
        except ConnectionResetError:
            outcome.append("reset")
        writer.close()
        server.close()
        await server.wait_closed()
        return outcome
    assert run(loop, main()) == ["reset", "reset"]
