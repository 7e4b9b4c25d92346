"""What a transport cannot write at once waits in its write queue: writes of
every type and size, queued behind a reader that does not read, arrive
whole and in order, over sockets and pipes, on both loops; the queue lets go
of what it held once it is written or dropped."""
import asyncio
import os
import sys

import pytest

import _net_helpers as nh
from _net_helpers import Recorder, run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, ...


def mixed_writes():
    """(method, argument) pairs of every kind a transport is given: small
    and large bytes (either side of any size a loop may treat differently),
    bytearrays, memoryviews of bytes and bytearrays, and writelines()."""
    big = nh.payload(nh.MiB, seed=1)
    writes = [
        ("write", b"head,"),
        ("write", nh.payload(100 * 1024, seed=2)),
        ("write", bytearray(nh.payload(5000, seed=3))),
        ("write", memoryview(big)[1:70_001]),
        ("write", nh.payload(4096, seed=4)),
        ("write", nh.payload(4095, seed=5)),
        ("write", big),
        ("write", memoryview(bytearray(nh.payload(20_000, seed=6)))[3:]),
    ]
    writes += [("write", b"%06d" % i) for i in range(300)]
    writes += [
        ("writelines", [nh.payload(300_000, seed=7), b"x", bytearray(b"y" * 9000),
                        memoryview(b"z" * 50_000)]),
        ("write", nh.payload(16 * 1024, seed=8)),
        ("write", nh.payload(16 * 1024 + 1, seed=9)),
        ("write", b"tail"),
    ]
    expected = b"".join(bytes(x) if m == "write" else b"".join(bytes(p) for p in x)
                        for m, x in writes)
    return writes, expected


async def pipe_pair(loop):
    """A write pipe transport and, reading the other end, a read pipe
    transport that starts paused: (write transport, writer protocol,
    reader protocol)."""
    r, w = os.pipe()
    _, reader = await loop.connect_read_pipe(
        lambda: Recorder(loop, pause_on_made=True), os.fdopen(r, "rb", buffering=0))
    tr, writer = await loop.connect_write_pipe(
        lambda: Recorder(loop), os.fdopen(w, "wb", buffering=0))
    return tr, writer, reader


def test_mixed_writes_behind_a_slow_reader_arrive_whole_and_in_order(loop, endpoint):
    writes, expected = mixed_writes()

    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"pause_on_made": True})
        tr = client.transport
        # Small socket buffers: the kernel takes little, the queue the rest.
        nh.set_small_buffers(tr.get_extra_info("socket"))
        nh.set_small_buffers(sproto.transport.get_extra_info("socket"))
        for method, arg in writes:
            getattr(tr, method)(arg)
        queued = tr.get_write_buffer_size()
        sproto.transport.resume_reading()
        tr.write_eof()
        await sproto.eof
        drained = tr.get_write_buffer_size()
        await nh.close_all(server, client, sproto)
        return queued, drained, bytes(sproto.data)
    queued, drained, got = run(loop, main(), timeout=30)
    assert 0 < queued < len(expected)  # most of it waited in the queue
    assert drained == 0
    assert len(got) == len(expected) and got == expected


def test_mixed_writes_to_a_pipe_behind_a_slow_reader_arrive_whole_and_in_order(loop):
    writes, expected = mixed_writes()

    async def main():
        tr, writer, reader = await pipe_pair(loop)
        for method, arg in writes:
            getattr(tr, method)(arg)
        queued = tr.get_write_buffer_size()
        reader.transport.resume_reading()
        tr.close()  # flushes the queue first, then the reader sees EOF
        await reader.eof
        await writer.lost
        await reader.lost
        return queued, bytes(reader.data)
    queued, got = run(loop, main(), timeout=30)
    assert 0 < queued < len(expected)
    assert len(got) == len(expected) and got == expected


def test_a_mutable_buffer_changed_after_write_to_a_pipe_is_sent_as_it_was(loop):
    # asyncio's pipe transport copies what it cannot write at once.
    async def main():
        tr, writer, reader = await pipe_pair(loop)
        tr.write(b"f" * (256 * 1024))  # fills the pipe: what follows waits
        data = bytearray(b"a" * 100_000)
        tr.write(data)
        data[:] = b"b" * 100_000
        reader.transport.resume_reading()
        tr.close()
        await reader.eof
        await reader.lost
        return bytes(reader.data)
    got = run(loop, main())
    assert got == b"f" * (256 * 1024) + b"a" * 100_000


def test_a_mutable_buffer_changed_after_write_to_a_socket(loop, loop_kind, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"pause_on_made": True})
        tr = client.transport
        tr.write(b"f" * (4 * nh.MiB))  # more than the socket buffers take
        data = bytearray(b"a" * 100_000)
        tr.write(data)
        data[:] = b"b" * 100_000
        sproto.transport.resume_reading()
        tr.write_eof()
        await sproto.eof
        await nh.close_all(server, client, sproto)
        return bytes(sproto.data[4 * nh.MiB:])
    got = run(loop, main(), timeout=30)
    if loop_kind == "asyncio" and sys.version_info >= (3, 12):
        # asyncio 3.12+ queues the bytearray itself and sends what it holds
        # when the socket takes it (docs/differences.md).
        assert got == b"b" * 100_000
    else:
        assert got == b"a" * 100_000


@pytest.mark.parametrize("how", ["drained", "aborted"])
def test_queued_bytes_are_let_go_once_written_or_dropped(loop, endpoint, how):
    big = nh.payload(4 * nh.MiB, seed=11)
    before = sys.getrefcount(big)

    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"pause_on_made": True})
        tr = client.transport
        tr.write(big)
        tr.writelines([big, b"x"])
        queued = tr.get_write_buffer_size()
        if how == "drained":
            sproto.transport.resume_reading()
            tr.write_eof()
            await sproto.eof
        else:
            tr.abort()
            await client.lost
        await nh.close_all(server, client, sproto)
        return queued
    assert run(loop, main(), timeout=30) > 0
    assert sys.getrefcount(big) == before
