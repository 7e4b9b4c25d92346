"""The flow control of asyncio's TLS layer (Lib/asyncio/sslproto.py) and
BufferedProtocol applications over it, seen through public loop APIs:
pause_writing()/resume_writing() at asyncio's TLS write marks and at limits
set by hand, pause_reading() holding decrypted data, the read buffer limits,
and get_buffer()/buffer_updated() with buffers of every size. Every test
runs on stdlib asyncio (the reference) and on pyasync.
"""
import asyncio

import pytest

import _net_helpers as nh
from _net_helpers import ServerFactory, run, tls_pair
from _tls_helpers import (
    KiB, DEFAULT_WRITE_LIMITS, DEFAULT_READ_LIMITS, until, close_server, FlowRecorder,
    BufRecorder, BufServerFactory)

# fixtures: endpoint, tcp, unix, closer, ...
pytest_plugins = ["_net_helpers", "_tls_helpers"]


# ---------------------------------------------------------------------------
# 1. A BufferedProtocol application over TLS
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bufsize", [100, 64 * KiB])
@pytest.mark.parametrize("size", [10, nh.MiB], ids=["small", "1MiB"])
def test_buffered_protocol_over_tls(loop, endpoint, server_ctx, client_ctx, bufsize, size):
    data = nh.payload(size, seed=4)

    async def main():
        server, client, sproto = await tls_pair(
            loop, endpoint, server_ctx, client_ctx,
            server_factory=BufServerFactory(loop, bufsize))
        await client.send_flow_controlled(
            [data[i:i + 64 * KiB] for i in range(0, len(data), 64 * KiB)])
        got = await sproto.received(size)
        client.transport.close()
        results = await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return got, results, sproto
    got, results, proto = run(loop, main())
    assert got == data
    assert results == [None, None]
    assert proto.calls == ["made", "data", "eof", "lost"]
    assert all(0 < n <= bufsize for n in proto.updates)
    assert sum(proto.updates) == size
    assert len(proto.hints) >= len(proto.updates)
    if size > bufsize:
        assert len(proto.updates) >= size // bufsize


def test_client_buffered_protocol_receives_close(loop, tcp, server_ctx, client_ctx):
    # The client side too; the server sends and closes.
    data = nh.payload(300 * KiB, seed=5)

    async def main():
        server, client, sproto = await tls_pair(
            loop, tcp, server_ctx, client_ctx,
            client_factory=lambda: BufRecorder(loop, 1000))
        sproto.transport.write(data)
        sproto.transport.close()
        results = await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return results, client
    results, proto = run(loop, main())
    assert results == [None, None]
    assert bytes(proto.data) == data
    assert proto.calls == ["made", "data", "eof", "lost"]
    assert max(proto.updates) <= 1000


class ByteArrayBufRecorder(BufRecorder):
    """Lends the bytearray itself rather than a memoryview of it."""

    def get_buffer(self, sizehint):
        self.hints.append(sizehint)
        return self.buf


def test_buffered_protocol_bytearray_buffer(loop, loop_kind, tcp, server_ctx, client_ctx):
    # A record that fills a bytearray buffer only in part: the rest of the
    # read goes into the same buffer. asyncio reads it into a copy of the
    # buffer's tail and loses those bytes (docs/differences.md), so this
    # describes pyasync only.
    if loop_kind != "pyasync":
        pytest.skip("asyncio loses the bytes read into buf[offset:] of a bytearray")
    data = nh.payload(200 * KiB, seed=12)

    async def main():
        server, client, sproto = await tls_pair(
            loop, tcp, server_ctx, client_ctx,
            server_factory=ServerFactory(loop, cls=lambda loop, **kw: ByteArrayBufRecorder(
                loop, 50 * KiB, **kw)))
        await client.send_flow_controlled(
            [data[i:i + 64 * KiB] for i in range(0, len(data), 64 * KiB)])
        got = await sproto.received(len(data))
        client.transport.close()
        await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return got
    assert run(loop, main()) == data


# ---------------------------------------------------------------------------
# 2. Write flow control
# ---------------------------------------------------------------------------

def test_write_flow_control_with_default_limits(loop, tcp, server_ctx, client_ctx):
    chunk = nh.payload(64 * KiB, seed=6)
    low, high = DEFAULT_WRITE_LIMITS

    async def main():
        server, client, sproto = await tls_pair(
            loop, tcp, server_ctx, client_ctx,
            server_kw={"pause_on_made": True}, client_factory=lambda: FlowRecorder(loop))
        for p in (client, sproto):
            nh.set_small_buffers(p.transport.get_extra_info("socket"))
        tr = client.transport
        limits = tr.get_write_buffer_limits()
        sent = 0
        while not client.pauses:   # pause_writing() is called from write()
            tr.write(chunk)
            sent += len(chunk)
            assert sent < 64 * nh.MiB, "pause_writing() never called"
        size_at_pause = tr.get_write_buffer_size()
        resumes_while_paused = list(client.resumes)
        sproto.transport.resume_reading()
        await client.writable.wait()
        got = await sproto.received(sent)
        drained = tr.get_write_buffer_size()
        await nh.close_all(server, client, sproto)
        return (limits, client.pauses, size_at_pause, resumes_while_paused,
                client.resumes, got, sent, drained)
    (limits, pauses, size_at_pause, resumes_while_paused, resumes, got, sent,
     drained) = run(loop, main())
    assert limits == (low, high)
    assert len(pauses) == 1 and pauses[0] >= high
    assert size_at_pause >= high
    assert resumes_while_paused == []
    assert len(resumes) == 1 and resumes[0] <= low
    assert got == chunk * (sent // len(chunk))
    assert drained == 0


def test_write_buffer_limits(loop, tcp, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        seen = [tr.get_write_buffer_limits()]
        tr.set_write_buffer_limits(high=1000, low=100)
        seen.append(tr.get_write_buffer_limits())
        tr.set_write_buffer_limits(high=4000)       # low = high // 4
        seen.append(tr.get_write_buffer_limits())
        tr.set_write_buffer_limits(low=300)         # high = 4 * low
        seen.append(tr.get_write_buffer_limits())
        errors = []
        for kw in ({"high": 10, "low": 20}, {"high": -1}, {"low": -4}):
            with pytest.raises(ValueError) as info:
                tr.set_write_buffer_limits(**kw)
            errors.append(str(info.value))
        seen.append(tr.get_write_buffer_limits())   # unchanged by the errors
        tr.set_write_buffer_limits()
        seen.append(tr.get_write_buffer_limits())
        await nh.close_all(server, client, sproto)
        return seen, errors, client.pauses, client.resumes
    seen, errors, pauses, resumes = run(loop, main())
    assert seen == [DEFAULT_WRITE_LIMITS, (100, 1000), (1000, 4000), (300, 1200),
                    (300, 1200), DEFAULT_WRITE_LIMITS]
    assert errors == ["high (10) must be >= low (20) must be >= 0",
                      "high (-1) must be >= low (-1) must be >= 0",
                      "high (-16) must be >= low (-4) must be >= 0"]
    assert pauses == [] and resumes == []


def test_zero_high_water_pauses_at_once(loop, tcp, server_ctx, client_ctx):
    # Unlike a plain transport, asyncio's TLS transport pauses when the
    # buffer size reaches (>=) the high-water mark, and set_write_buffer_limits()
    # applies the new limits at once: high=0 pauses an idle transport, and
    # restoring the defaults resumes it, both from inside the call.
    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        tr.set_write_buffer_limits(high=0)
        after_zero = (list(client.pauses), list(client.resumes), tr.get_write_buffer_limits())
        tr.set_write_buffer_limits()
        after_reset = (list(client.pauses), list(client.resumes))
        await nh.close_all(server, client, sproto)
        return after_zero, after_reset
    after_zero, after_reset = run(loop, main())
    assert after_zero == ([0], [], (0, 0))
    assert after_reset == ([0], [0])


# ---------------------------------------------------------------------------
# 3. Read flow control
# ---------------------------------------------------------------------------

def test_pause_reading_holds_data_and_close(loop, endpoint, server_ctx, client_ctx):
    # While the client's TLS transport is paused, the server's data and its
    # close_notify wait in the transport's read buffer: no data_received(),
    # no eof_received(), the close is not answered. resume_reading()
    # delivers everything, then the close.
    data = nh.payload(100_000, seed=7)

    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        tr = client.transport
        tr.pause_reading()
        tr.pause_reading()  # idempotent
        paused = tr.is_reading()
        sproto.transport.write(data)
        sproto.transport.close()
        await until(lambda: tr.get_read_buffer_size() >= len(data))
        await nh.spin()
        while_paused = (list(client.calls), bytes(client.data), sproto.lost.done())
        tr.resume_reading()
        tr.resume_reading()  # idempotent
        resumed = tr.is_reading()
        results = await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return paused, while_paused, resumed, results, client
    paused, while_paused, resumed, results, client = run(loop, main())
    assert paused is False and resumed is True
    assert while_paused == (["made"], b"", False)
    assert results == [None, None]
    assert bytes(client.data) == data
    assert client.calls == ["made", "data", "eof", "lost"]


def test_paused_reader_with_small_read_limits_loses_nothing(loop, tcp, server_ctx, client_ctx):
    # The client's application reads nothing and its TLS read buffer is
    # small: the TLS layer stops reading the socket, the server's writes
    # pause, and after resume_reading() every byte arrives.
    data = nh.payload(4 * nh.MiB, seed=8)
    high, low = 16 * KiB, 4 * KiB

    async def main():
        server, client, sproto = await tls_pair(
            loop, tcp, server_ctx, client_ctx, server_kw={"cls": FlowRecorder})
        for p in (client, sproto):
            nh.set_small_buffers(p.transport.get_extra_info("socket"))
        tr = client.transport
        tr.pause_reading()
        tr.set_read_buffer_limits(high=high, low=low)
        limits = tr.get_read_buffer_limits()
        sender = loop.create_task(sproto.send_flow_controlled(
            [data[i:i + 64 * KiB] for i in range(0, len(data), 64 * KiB)]))
        await sproto.paused
        await nh.spin()
        while_paused = (bytes(client.data), tr.get_read_buffer_size())
        tr.resume_reading()
        got = await client.received(len(data))
        await sender
        await nh.close_all(server, client, sproto)
        return limits, while_paused, got
    limits, (data_while_paused, buffered), got = run(loop, main())
    assert limits == (low, high)
    assert data_while_paused == b""
    # At most one read of the socket (256 KiB at most) beyond the high-water mark.
    assert buffered < high + 256 * KiB
    assert got == data


def test_read_buffer_limits(loop, tcp, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        seen = [tr.get_read_buffer_limits(), tr.get_read_buffer_size()]
        tr.set_read_buffer_limits(high=1000, low=100)
        seen.append(tr.get_read_buffer_limits())
        tr.set_read_buffer_limits(high=4000)
        seen.append(tr.get_read_buffer_limits())
        tr.set_read_buffer_limits(low=300)
        seen.append(tr.get_read_buffer_limits())
        with pytest.raises(ValueError) as info:
            tr.set_read_buffer_limits(high=10, low=20)
        seen.append(str(info.value))
        seen.append(tr.get_read_buffer_limits())
        tr.set_read_buffer_limits()
        seen.append(tr.get_read_buffer_limits())
        # Still reads with the limits changed back and forth.
        sproto.transport.write(b"still there")
        seen.append(await client.received(11))
        await nh.close_all(server, client, sproto)
        return seen
    assert run(loop, main()) == [
        DEFAULT_READ_LIMITS, 0, (100, 1000), (1000, 4000), (300, 1200),
        "high (10) must be >= low (20) must be >= 0", (300, 1200),
        DEFAULT_READ_LIMITS, b"still there"]
