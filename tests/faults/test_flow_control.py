"""A fast writer against a slow reader. The writer writes as long as its
transport lets it (protocol: until pause_writing(); streams: drain()); the
reader takes small pieces with pauses in between. Memory stays bounded by
flow control: pause_writing() is called, each pause is matched by a
resume_writing(), the write buffer never holds more than the high-water
mark plus one chunk, and every byte arrives in order."""
import asyncio
import hashlib
import random
import socket

import pytest

import _net_helpers as nh
from ._support import run

TOTAL = 3 * 1024 * 1024
CHUNK = 32 * 1024
READ_SIZE = 16 * 1024


async def slow_read(loop, sock, total):
    """Read total bytes in small pieces, resting 1 ms every few reads."""
    digest = hashlib.sha256()
    got = 0
    reads = 0
    while got < total:
        data = await loop.sock_recv(sock, READ_SIZE)
        if not data:
            break
        digest.update(data)
        got += len(data)
        reads += 1
        if reads % 4 == 0:
            await asyncio.sleep(0.001)
    return got, digest.hexdigest()


class FastWriter(asyncio.Protocol):
    def __init__(self, loop):
        self.loop = loop
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.pauses = 0
        self.resumes = 0
        self.max_buffer = 0

    def connection_made(self, transport):
        self.transport = transport

    def pause_writing(self):
        self.pauses += 1
        self.can_write.clear()

    def resume_writing(self):
        self.resumes += 1
        self.can_write.set()

    async def write_all(self, payload):
        for i in range(0, len(payload), CHUNK):
            await self.can_write.wait()
            self.transport.write(payload[i:i + CHUNK])
            self.max_buffer = max(self.max_buffer, self.transport.get_write_buffer_size())


@pytest.mark.parametrize("high", [None, 16 * 1024, 256 * 1024], ids=["default", "16K", "256K"])
def test_protocol_writer_is_held_back(loop, high):
    payload = random.Random(5).randbytes(TOTAL)

    async def main():
        a, b = socket.socketpair()
        nh.set_small_buffers(a)
        nh.set_small_buffers(b)
        a.setblocking(False)
        b.setblocking(False)
        transport, proto = await loop.create_connection(lambda: FastWriter(loop), sock=a)
        try:
            if high is not None:
                transport.set_write_buffer_limits(high=high)
            low, high_mark = transport.get_write_buffer_limits()
            reader = loop.create_task(slow_read(loop, b, TOTAL))
            await proto.write_all(payload)
            got, digest = await reader
            return proto, high_mark, got, digest, transport.get_write_buffer_size()
        finally:
            transport.close()
            b.close()

    proto, high_mark, got, digest, left = run(loop, main())
    assert got == TOTAL and digest == hashlib.sha256(payload).hexdigest()
    assert proto.pauses >= 1, "the writer was never paused"
    assert proto.resumes == proto.pauses
    assert proto.max_buffer <= high_mark + CHUNK, (
        f"write buffer reached {proto.max_buffer} bytes, high-water mark {high_mark}")
    assert left == 0


def test_stream_writer_drain_bounds_the_buffer(loop):
    payload = random.Random(6).randbytes(TOTAL)

    async def main():
        received = loop.create_future()

        async def slow_client(reader, writer):
            digest = hashlib.sha256()
            got = 0
            while got < TOTAL:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                digest.update(data)
                got += len(data)
                if got % (4 * READ_SIZE) == 0:
                    await asyncio.sleep(0.001)
            received.set_result((got, digest.hexdigest()))
            writer.close()

        server = await asyncio.start_server(slow_client, "127.0.0.1", 0, limit=READ_SIZE)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        try:
            transport = writer.transport
            nh.set_small_buffers(transport.get_extra_info("socket"))
            transport.set_write_buffer_limits(high=64 * 1024)
            high_mark = transport.get_write_buffer_limits()[1]
            max_buffer = 0
            for i in range(0, TOTAL, CHUNK):
                writer.write(payload[i:i + CHUNK])
                max_buffer = max(max_buffer, transport.get_write_buffer_size())
                await writer.drain()
            result = await received
            return result, max_buffer, high_mark
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    (got, digest), max_buffer, high_mark = run(loop, main())
    assert got == TOTAL and digest == hashlib.sha256(payload).hexdigest()
    assert max_buffer > high_mark, "the reader was not slow enough to fill the buffer"
    assert max_buffer <= high_mark + CHUNK
