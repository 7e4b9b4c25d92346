"""A transport that pauses reading keeps its poller interest until the
next poll reports the fd with no reader: a reader that comes back first
(the usual flow control of a StreamReader: paused in data_received(),
resumed by the task it woke, which runs after the next poll) costs the
poller nothing, and one that does not is withdrawn before the poll after
(csrc/iowatch.c, fire() and pa_loop_withdraw_unwatched()). No byte is lost
either way, and a loop with a paused transport does not spin."""
import asyncio
import hashlib
import os
import socket
import threading

import pytest

import pyasync
import _net_helpers as nh
from _net_helpers import run

pytest_plugins = ["_net_helpers"]  # fixtures: loop, ...

MESSAGE = 4 * nh.MiB


def send_in_thread(sock, data):
    """Write data from another thread with a blocking socket, so that the
    loop under test only reads."""
    def send():
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_readexactly_past_the_limit_gets_every_byte(loop):
    data = nh.payload(MESSAGE, seed=3)

    async def main():
        a, b = socket.socketpair()
        b.setblocking(True)
        # The limit makes the StreamReader pause its transport at every
        # chunk past 128 KiB and resume it from the waiting task.
        reader, writer = await asyncio.open_connection(sock=a, limit=64 * 1024)
        thread = send_in_thread(b, data)
        try:
            got = await reader.readexactly(MESSAGE)
            assert await reader.read() == b""
        finally:
            await asyncio.to_thread(thread.join)
            writer.close()
            b.close()
        return got

    got = run(loop, main())
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


class PausesEveryChunk(asyncio.Protocol):
    """Pauses in data_received() and resumes from a callback it schedules:
    the resume runs in the next iteration, after its poll."""

    def __init__(self, loop):
        self.loop = loop
        self.chunks = 0
        self.received = bytearray()
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.chunks += 1
        self.received += data
        self.transport.pause_reading()
        self.loop.call_soon(self.transport.resume_reading)

    def eof_received(self):
        self.done.set_result(None)


def test_pausing_and_resuming_between_polls_changes_no_interest(pyloop):
    data = nh.payload(MESSAGE, seed=5)

    async def main():
        a, b = socket.socketpair()
        b.setblocking(True)
        transport, protocol = await pyloop.connect_accepted_socket(
            lambda: PausesEveryChunk(pyloop), a)
        await asyncio.sleep(0)  # reading starts: one interest change
        before = pyasync.metrics()
        thread = send_in_thread(b, data)
        try:
            await protocol.done
        finally:
            await asyncio.to_thread(thread.join)
            transport.close()
            b.close()
        after = pyasync.metrics()
        return protocol, after["interest_changes"] - before["interest_changes"]

    protocol, changes = run(pyloop, main())
    assert protocol.received == data
    assert protocol.chunks >= 16  # it paused and resumed that often
    # At most the odd withdrawal, when the sender fell behind and a poll
    # found the socket empty between a pause and its resume; withdrawing
    # at every pause cost two changes per chunk.
    assert changes <= protocol.chunks // 4, (changes, protocol.chunks)


def test_a_transport_left_paused_with_data_waiting_does_not_spin(pyloop):
    async def main():
        a, b = socket.socketpair()
        transport, protocol = await pyloop.connect_accepted_socket(asyncio.Protocol, a)
        try:
            await asyncio.sleep(0)
            transport.pause_reading()
            b.send(b"x" * 1000)  # readable from now on, and nobody reads
            before = pyasync.metrics()
            await asyncio.sleep(0.2)
            after = pyasync.metrics()
        finally:
            transport.close()
            b.close()
        return after["iterations"] - before["iterations"]

    # The poll after the pause reports the socket with no reader, and the
    # interest goes before the next: a few iterations, not one per poll
    # returning at once for 0.2 s.
    assert run(pyloop, main()) <= 5


def test_a_paused_transport_resumed_later_gets_its_data(loop):
    async def main():
        a, b = socket.socketpair()
        got = []

        class Collects(asyncio.Protocol):
            def data_received(self, data):
                got.append(data)

        transport, _ = await loop.connect_accepted_socket(Collects, a)
        try:
            await asyncio.sleep(0)
            transport.pause_reading()
            b.send(b"first")
            await asyncio.sleep(0.05)  # the interest is withdrawn meanwhile
            assert got == []
            transport.resume_reading()
            await nh.spin()
            while not got:
                await asyncio.sleep(0.01)
            return b"".join(got)
        finally:
            transport.close()
            b.close()

    assert run(loop, main()) == b"first"


def test_a_socket_closed_behind_a_paused_writing_transport(pyloop):
    """The fd of a transport that is paused (its read interest waiting to be
    withdrawn) and writing (its write interest registered) is closed by the
    program between the poll that reported it and the withdrawal: the loop
    forgets the registration the kernel dropped and goes on."""
    errors = []
    pyloop.set_exception_handler(lambda loop, ctx: errors.append(ctx))

    async def main():
        a, b = socket.socketpair()
        nh.set_small_buffers(a)
        nh.set_small_buffers(b)
        transport, _ = await pyloop.connect_accepted_socket(asyncio.Protocol, a)
        await asyncio.sleep(0)
        transport.write(b"y" * (4 * nh.MiB))  # b reads nothing: the writer waits
        assert transport.get_write_buffer_size() > 0
        transport.pause_reading()
        b.send(b"x" * 1000)
        fd = a.fileno()
        closed = []

        def close_fd_behind_its_back():
            os.close(fd)
            closed.append(fd)

        # The next poll reports the fd readable with no reader; the callback
        # runs after it, before the withdrawal.
        pyloop.call_soon(close_fd_behind_its_back)
        await nh.spin(5)
        assert closed == [fd]
        await asyncio.sleep(0.05)  # the loop keeps polling
        a.detach()  # its number is closed already
        transport.abort()
        b.close()

    run(pyloop, main())
    assert [c for c in errors if isinstance(c.get("exception"), OSError)
            and "Bad file descriptor" not in str(c.get("exception"))] == []
