"""What a StreamReader reads over a socket or a pipe is what was written,
whatever the sizes of the reads the transport makes: large and small
writes in turn, so that the transport switches between reading into new
objects and into its scratch buffer (csrc/transport.c, pa_tr_read_bytes)."""
import asyncio
import fcntl
import hashlib
import os
import socket

import pytest

import _net_helpers as nh
from _net_helpers import run

pytest_plugins = ["_net_helpers"]  # fixtures: loop, ...


def pieces():
    sizes = [100, 70_000, 5, 300_000, 16 * 1024, 16 * 1024 - 1, 1, 2 * nh.MiB, 3, 65_536, 17]
    return [nh.payload(n, seed=i) for i, n in enumerate(sizes)]


async def pump(writer, chunks):
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0)  # let the reader catch up: its next read is small
    writer.close()


async def read_all(reader, n):
    got = bytearray()
    while True:
        data = await reader.read(n)
        if not data:
            return bytes(got)
        got += data


def assert_same(got, chunks):
    expected = b"".join(chunks)
    assert len(got) == len(expected)
    assert hashlib.sha256(got).digest() == hashlib.sha256(expected).digest()


@pytest.mark.parametrize("read_n", [1000, 64 * 1024, -1])
def test_a_stream_reader_over_a_socket_gets_every_byte(loop, read_n):
    chunks = pieces()

    async def main():
        a, b = socket.socketpair()
        # Both writers are kept: a collected StreamWriter closes its socket.
        reader, a_writer = await asyncio.open_connection(sock=a, limit=1 << 22)
        _, writer = await asyncio.open_connection(sock=b)
        producer = asyncio.ensure_future(pump(writer, chunks))
        got = await read_all(reader, read_n)
        await producer
        a_writer.close()
        return got
    assert_same(run(loop, main(), timeout=30), chunks)


@pytest.mark.parametrize("read_n", [1000, 64 * 1024, -1])
def test_a_stream_reader_over_a_pipe_gets_every_byte(loop, read_n):
    chunks = pieces()

    async def main():
        r, w = os.pipe()
        reader = asyncio.StreamReader(limit=1 << 22)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", buffering=0))
        wtransport, wprotocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop), os.fdopen(w, "wb", buffering=0))
        writer = asyncio.StreamWriter(wtransport, wprotocol, None, loop)
        producer = asyncio.ensure_future(pump(writer, chunks))
        got = await read_all(reader, read_n)
        await producer
        read_transport.close()
        return got
    assert_same(run(loop, main(), timeout=30), chunks)


class ChunkRecorder(nh.Recorder):
    """A Recorder that also records the size of every data_received() call."""

    def __init__(self, loop):
        super().__init__(loop)
        self.sizes = []

    def data_received(self, data):
        self.sizes.append(len(data))
        super().data_received(data)


def test_a_protocol_gets_at_most_256_kib_per_call_and_every_byte(loop):
    # asyncio reads a socket max_size (256 KiB) at a time; so does pyasync at
    # most, however much is waiting.
    data = nh.payload(3 * nh.MiB + 17)

    async def main():
        a, b = socket.socketpair()
        transport, protocol = await loop.create_connection(lambda: ChunkRecorder(loop), sock=a)
        b.setblocking(False)
        await loop.sock_sendall(b, data)
        return await receive_until_lost(transport, protocol, data, b.close)
    assert_every_byte_in_chunks_of_at_most_256_kib(run(loop, main(), timeout=30), data)


async def receive_until_lost(transport, protocol, data, close_sender):
    """Waits for all of data, closes the sender, waits for the end: the
    protocol."""
    await protocol.received(len(data))
    close_sender()
    await protocol.lost
    transport.close()
    return protocol


def assert_every_byte_in_chunks_of_at_most_256_kib(protocol, data):
    assert bytes(protocol.data) == data
    assert max(protocol.sizes) <= 256 * 1024


class RecordingStreamReaderProtocol(asyncio.StreamReaderProtocol):
    """Records the size of every chunk the transport hands to the reader."""

    def __init__(self, reader):
        super().__init__(reader)
        self.sizes = []

    def data_received(self, data):
        self.sizes.append(len(data))
        super().data_received(data)


async def chunks_per_message(transport, protocol, messages, write, consume):
    """Writes each message whole while the transport is paused, then lets it
    read until consume(message) returns: the sizes of the chunks that
    protocol got, message by message."""
    transport.pause_reading()
    got = []
    for i, size in enumerate(messages):
        message = nh.payload(size, seed=i)
        assert write(message) == size  # whole in the socket's or pipe's buffer
        before = len(protocol.sizes)
        transport.resume_reading()
        await consume(message)
        transport.pause_reading()
        got.append(protocol.sizes[before:])
    return got


async def pipe_chunks_per_message(transport, protocol, w, messages, consume):
    """chunks_per_message() through a pipe whose writing end is w, which is
    closed after, with the transport."""
    got = await chunks_per_message(
        transport, protocol, messages, lambda data: os.write(w, data), consume)
    os.close(w)
    transport.close()
    return got


def grow_pipe(fd, size):
    assert fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size) >= size


def test_a_stream_reader_protocols_reads_follow_the_flow(pyloop):
    # pyasync-only (asyncio always asks for 256 KiB): for an asyncio
    # StreamReader the transport asks for 64 KiB, for 256 KiB after a read
    # that filled what it asked for (more is waiting), and for 64 KiB again
    # after one that did not.
    KiB = 1024
    messages = [160 * KiB, 1 * KiB, 100 * KiB, 300 * KiB, 70 * KiB]
    expected = [[64 * KiB, 96 * KiB], [1 * KiB], [64 * KiB, 36 * KiB],
                [64 * KiB, 236 * KiB], [64 * KiB, 6 * KiB]]

    async def main():
        a, b = socket.socketpair()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        b.setblocking(False)
        reader = asyncio.StreamReader(limit=4 << 20)
        transport, protocol = await pyloop.create_connection(
            lambda: RecordingStreamReaderProtocol(reader), sock=a)

        async def consume(message):
            assert await reader.readexactly(len(message)) == message
        got = await chunks_per_message(transport, protocol, messages, b.send, consume)
        b.close()
        transport.close()
        return got
    assert run(pyloop, main(), timeout=30) == expected


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs F_SETPIPE_SZ (Linux)")
def test_a_stream_reader_protocols_reads_over_a_pipe_grow_while_full(pyloop):
    # pyasync-only, as above, through a pipe large enough to hold a message
    # that takes more than one 256 KiB read.
    KiB = 1024
    messages = [600 * KiB, 70 * KiB, 5 * KiB]
    expected = [[64 * KiB, 256 * KiB, 256 * KiB, 24 * KiB], [64 * KiB, 6 * KiB], [5 * KiB]]

    async def main():
        r, w = os.pipe()
        os.set_blocking(w, False)
        grow_pipe(w, 1 << 20)
        reader = asyncio.StreamReader(limit=4 << 20)
        transport, protocol = await pyloop.connect_read_pipe(
            lambda: RecordingStreamReaderProtocol(reader), os.fdopen(r, "rb", buffering=0))

        async def consume(message):
            assert await reader.readexactly(len(message)) == message
        return await pipe_chunks_per_message(transport, protocol, w, messages, consume)
    assert run(pyloop, main(), timeout=30) == expected


def test_a_plain_protocol_is_read_256_kib_at_a_time(pyloop):
    # pyasync-only: as asyncio, whatever the earlier reads were.
    KiB = 1024
    messages = [1 * KiB, 100 * KiB, 300 * KiB, 70 * KiB]
    expected = [[1 * KiB], [100 * KiB], [256 * KiB, 44 * KiB], [70 * KiB]]

    async def main():
        a, b = socket.socketpair()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        b.setblocking(False)
        transport, protocol = await pyloop.create_connection(
            lambda: ChunkRecorder(pyloop), sock=a)

        async def consume(message):
            await protocol.received(len(protocol.data) + len(message))
        got = await chunks_per_message(transport, protocol, messages, b.send, consume)
        b.close()
        transport.close()
        return got
    assert run(pyloop, main(), timeout=30) == expected


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs F_SETPIPE_SZ (Linux)")
def test_a_pipe_is_read_at_most_its_capacity_at_a_time(pyloop):
    # pyasync-only (asyncio asks for 256 KiB): no read brings more than the
    # pipe holds, so a read pipe asks for its capacity when connected, and
    # keeps to it if the writer grows the pipe later.
    KiB = 1024
    messages = [1 * KiB, 100 * KiB, 300 * KiB]
    expected = [[1 * KiB], [64 * KiB, 36 * KiB], [64 * KiB] * 4 + [44 * KiB]]

    async def main():
        r, w = os.pipe()
        os.set_blocking(w, False)
        grow_pipe(w, 64 * KiB)
        transport, protocol = await pyloop.connect_read_pipe(
            lambda: ChunkRecorder(pyloop), os.fdopen(r, "rb", buffering=0))
        grow_pipe(w, 1 << 20)

        async def consume(message):
            await protocol.received(len(protocol.data) + len(message))
        return await pipe_chunks_per_message(transport, protocol, w, messages, consume)
    assert run(pyloop, main(), timeout=30) == expected


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs F_SETPIPE_SZ (Linux)")
@pytest.mark.parametrize("grown", [16 * 1024, 1 << 20])
def test_a_pipe_resized_after_connect_loses_no_byte(loop, grown):
    # Both loops: the pipe shrinks below or grows past the size it had when
    # it was connected.
    data = nh.payload(3 * nh.MiB + 17)

    async def main():
        r, w = os.pipe()
        transport, protocol = await loop.connect_read_pipe(
            lambda: ChunkRecorder(loop), os.fdopen(r, "rb", buffering=0))
        grow_pipe(w, grown)
        wtransport, _ = await loop.connect_write_pipe(
            lambda: nh.Recorder(loop), os.fdopen(w, "wb", buffering=0))
        wtransport.write(data)
        return await receive_until_lost(transport, protocol, data, wtransport.close)
    assert_every_byte_in_chunks_of_at_most_256_kib(run(loop, main(), timeout=30), data)
