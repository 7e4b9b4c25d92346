"""What a StreamReader reads over a socket or a pipe is what was written,
whatever the sizes of the reads the transport makes: large and small
writes in turn, so that the transport switches between reading into new
objects and into its scratch buffer (csrc/transport.c, pa_tr_read_bytes)."""
import asyncio
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
