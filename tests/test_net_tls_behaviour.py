"""The behaviour of asyncio's TLS layer (Lib/asyncio/sslproto.py) seen
through public loop APIs, pinned down so that a reimplementation can be
checked against it: how a connection ends (with and without close_notify,
shutdown timeouts, abort), start_tls() in the middle of a conversation,
misuse of the TLS transport, errors raised by the application protocol,
set_protocol() and failed server-side handshakes.

tests/test_net_tls.py covers the basics (round trip, large transfer, extra
info, handshake timeouts, start_tls(), streams), tests/test_net_tls_flow.py
flow control and BufferedProtocol applications; this file does not repeat
them. Every test runs on stdlib asyncio (the reference) and on pyasync.

Where a test needs a peer that misbehaves (closes TCP without close_notify,
never answers close_notify, tells how the stream ended), the peer is a
RawTLS: an ssl.SSLObject over memory BIOs on a plain socket, moved by hand.
"""
import asyncio
import logging
import ssl
import sys

import pytest

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run, tls_pair
from _tls_helpers import (
    KiB, SILENT_WRITES, EOF_WARNING, CLOSED_WARNING, close_server, asyncio_records, RawTLS,
    raw_server_pair, BufRecorder)

# fixtures: endpoint, tcp, unix, closer, ...; raw_server_ctx, raw_client_ctx
pytest_plugins = ["_net_helpers", "_tls_helpers"]


# ---------------------------------------------------------------------------
# 1. The peer closes TCP without close_notify
# ---------------------------------------------------------------------------

def test_peer_closes_tcp_without_close_notify(loop, endpoint, server_ctx, raw_client_ctx, closer):
    # asyncio takes a TCP EOF without close_notify like a clean close:
    # eof_received(), then connection_lost(None); no error is reported.
    async def main():
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
        sf = ServerFactory(loop, echo=True)
        server = await endpoint.create_server(loop, sf, ssl=server_ctx)
        peer = await RawTLS.connect(loop, endpoint, endpoint.address(server), raw_client_ctx)
        closer(peer)
        sproto = await sf.next()
        await peer.send(b"hello")
        # Reading the echo also reads what came before it (TLS 1.3 session
        # tickets): nothing is left unread, so closing sends a FIN, not a RST.
        assert await peer.recv(5) == b"hello"
        peer.close()  # no close_notify
        exc = await sproto.lost
        await close_server(server)
        return exc, sproto.calls, bytes(sproto.data), reported
    exc, calls, data, reported = run(loop, main())
    assert exc is None
    assert calls == ["made", "data", "eof", "lost"]
    assert data == b"hello"
    assert reported == []


def test_peer_resets_tcp(loop, tcp, server_ctx, raw_client_ctx, closer):
    # A RST instead of a FIN: connection_lost() gets the error, with no
    # eof_received() before it.
    async def main():
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
        sf = ServerFactory(loop, echo=True)
        server = await tcp.create_server(loop, sf, ssl=server_ctx)
        peer = await RawTLS.connect(loop, tcp, tcp.address(server), raw_client_ctx)
        closer(peer)
        sproto = await sf.next()
        await peer.send(b"hello")
        assert await peer.recv(5) == b"hello"
        nh.linger_reset(peer.sock)
        peer.close()
        exc = await sproto.lost
        await close_server(server)
        return exc, sproto.calls, reported
    exc, calls, reported = run(loop, main())
    assert isinstance(exc, ConnectionResetError), exc
    assert calls == ["made", "data", "lost"]
    assert reported == []


def test_peer_transport_abort_is_seen_as_eof(loop, endpoint, server_ctx, client_ctx):
    # The server's TLS transport abort()s: no close_notify reaches the
    # client, whose protocol gets eof_received() then connection_lost(None).
    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        sproto.transport.write(b"last words")
        await client.received(10)
        sproto.transport.abort()
        results = await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return results, client.calls, sproto.calls
    results, ccalls, scalls = run(loop, main())
    assert results == [None, None]
    assert ccalls == ["made", "data", "eof", "lost"]
    assert scalls == ["made", "lost"]


# ---------------------------------------------------------------------------
# 2. Clean close with close_notify
# ---------------------------------------------------------------------------

def test_clean_close_callbacks_on_both_sides(loop, endpoint, server_ctx, client_ctx):
    # The peer of close() gets eof_received() then connection_lost(None). So
    # does the side that called close(): its eof_received() is called when
    # the peer's close_notify answers its own.
    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        client.transport.write(b"bye")
        client.transport.close()
        results = await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return results, client.calls, sproto.calls, bytes(sproto.data)
    results, ccalls, scalls, data = run(loop, main())
    assert results == [None, None]
    assert scalls == ["made", "data", "eof", "lost"]
    assert ccalls == ["made", "eof", "lost"]
    assert data == b"bye"


def test_close_sends_close_notify(loop, endpoint, server_ctx, raw_client_ctx, closer):
    # What a hand-driven peer sees of close(): the data, then close_notify.
    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf, ssl=server_ctx)
        peer = await RawTLS.connect(loop, endpoint, endpoint.address(server), raw_client_ctx)
        closer(peer)
        sproto = await sf.next()
        sproto.transport.write(b"goodbye")
        sproto.transport.close()
        got = await peer.read_until_end()
        peer.obj.unwrap()      # answer the close_notify
        await peer._flush()
        exc = await sproto.lost
        await close_server(server)
        return got, exc, sproto.calls
    got, exc, calls = run(loop, main())
    assert got == (b"goodbye", "close_notify")
    assert exc is None
    assert calls == ["made", "eof", "lost"]


def test_eof_received_returning_true_warns(loop, tcp, server_ctx, client_ctx, caplog):
    caplog.set_level(logging.WARNING, logger="asyncio")

    async def main():
        server, client, sproto = await tls_pair(
            loop, tcp, server_ctx, client_ctx, server_kw={"keep_open": True})
        client.transport.close()
        # The connection is closed all the same.
        results = await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return results, sproto.calls
    results, calls = run(loop, main())
    assert results == [None, None]
    assert calls == ["made", "eof", "lost"]
    assert len(asyncio_records(caplog, EOF_WARNING)) == 1
    assert asyncio_records(caplog, EOF_WARNING)[0].levelno == logging.WARNING


# ---------------------------------------------------------------------------
# 3. start_tls() in the middle of a conversation, server side from within
#    its protocol
# ---------------------------------------------------------------------------

class StartTLSServer(Recorder):
    """Answers b'plain:' + line in plain text; on b'STARTTLS\\n' answers
    b'GO\\n' and upgrades its own connection with loop.start_tls(
    server_side=True) from a task; then answers b'tls:' + data."""

    def __init__(self, loop, ctx, **kw):
        super().__init__(loop, **kw)
        self.ctx = ctx
        self.plain = None
        self.upgraded = loop.create_future()
        self.task = None

    def data_received(self, data):
        super().data_received(data)
        if self.plain is not None:
            self.transport.write(b"tls:" + data)
        elif data == b"STARTTLS\n":
            self.plain = self.transport
            # Nothing more is read in plain text: the ClientHello is for the
            # TLS layer.
            self.plain.pause_reading()
            self.plain.write(b"GO\n")
            self.task = self.loop.create_task(self._upgrade())
        else:
            self.transport.write(b"plain:" + data)

    async def _upgrade(self):
        try:
            tls = await self.loop.start_tls(self.plain, self, self.ctx, server_side=True)
        except BaseException as exc:
            self.upgraded.set_exception(exc)
            raise
        self.transport = tls
        self.upgraded.set_result(tls)


def test_start_tls_mid_conversation(loop, endpoint, server_ctx, client_ctx):
    async def main():
        sf = ServerFactory(loop, cls=StartTLSServer, ctx=server_ctx)
        server = await endpoint.create_server(loop, sf)
        addr = endpoint.address(server)
        plain_c, client = await endpoint.create_connection(
            loop, lambda: Recorder(loop), addr)
        sproto = await sf.next()
        plain_s = sproto.transport
        plain_c.write(b"hello\n")
        assert await client.received(12) == b"plain:hello\n"
        plain_c.write(b"STARTTLS\n")
        assert await client.received(15) == b"plain:hello\nGO\n"
        tls_c = await loop.start_tls(plain_c, client, client_ctx,
                                     server_hostname="localhost")
        tls_s = await sproto.upgraded
        client.transport = tls_c
        open_after_upgrade = (plain_c.is_closing(), plain_s.is_closing())
        tls_c.write(b"secret")
        got = await client.received(25)
        c_info = {k: tls_c.get_extra_info(k) for k in (
            "sslcontext", "ssl_object", "peercert", "cipher", "compression",
            "peername", "sockname", "socket")}
        s_info = {k: tls_s.get_extra_info(k) for k in (
            "sslcontext", "ssl_object", "peercert", "peername", "socket")}
        plain_info = {
            "c_peername": plain_c.get_extra_info("peername"),
            "c_sockname": plain_c.get_extra_info("sockname"),
            "s_peername": plain_s.get_extra_info("peername"),
            "c_fd": plain_c.get_extra_info("socket").fileno(),
            "s_fd": plain_s.get_extra_info("socket").fileno()}
        c_fd = c_info["socket"].fileno()
        s_fd = s_info["socket"].fileno()
        tls_c.close()
        results = await asyncio.gather(client.lost, sproto.lost)
        closed_after = (plain_c.is_closing(), plain_s.is_closing())
        await close_server(server)
        return (got, open_after_upgrade, closed_after, results, c_info, s_info,
                plain_info, c_fd, s_fd, client.calls, sproto.calls,
                bytes(sproto.data), addr)
    (got, open_after, closed_after, results, c, s, plain_info, c_fd, s_fd,
     ccalls, scalls, sdata, addr) = run(loop, main())
    assert got == b"plain:hello\nGO\ntls:secret"
    assert sdata == b"hello\nSTARTTLS\nsecret"
    assert open_after == (False, False)     # the upgrade closes nothing
    assert closed_after == (True, True)     # closing the TLS transport does
    assert results == [None, None]
    # connection_made() is not called again by start_tls().
    assert ccalls == ["made", "data", "eof", "lost"]
    assert scalls == ["made", "data", "eof", "lost"]
    assert c["sslcontext"] is client_ctx and s["sslcontext"] is server_ctx
    assert isinstance(c["ssl_object"], ssl.SSLObject)
    assert c["ssl_object"].server_side is False and s["ssl_object"].server_side is True
    assert c["peercert"]["subject"] == ((("commonName", "localhost"),),)
    assert s["peercert"] is None
    assert isinstance(c["cipher"], tuple) and len(c["cipher"]) == 3
    assert c["cipher"] == c["ssl_object"].cipher()
    assert c["compression"] == c["ssl_object"].compression()
    # The rest comes from the plain transport underneath.
    assert c["peername"] == plain_info["c_peername"] == addr
    assert c["sockname"] == plain_info["c_sockname"]
    assert s["peername"] == plain_info["s_peername"]
    assert c_fd == plain_info["c_fd"] and s_fd == plain_info["s_fd"]
    assert c["socket"].family == endpoint.family


# ---------------------------------------------------------------------------
# 4. Shutdown timeout
# ---------------------------------------------------------------------------

def test_shutdown_timeout_when_peer_never_answers(loop, tcp, raw_server_ctx, client_ctx, closer):
    timeout = 0.3

    async def main():
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
        tr, client, peer = await raw_server_pair(loop, tcp, raw_server_ctx, client_ctx,
                                                 closer, ssl_shutdown_timeout=timeout)
        t0 = loop.time()
        tr.close()   # close_notify goes out; the peer never reads nor answers
        exc = await client.lost
        elapsed = loop.time() - t0
        seen_by_peer = await peer.read_until_end()
        return exc, elapsed, client.calls, seen_by_peer, reported
    exc, elapsed, calls, seen_by_peer, reported = run(loop, main())
    assert type(exc) is TimeoutError and str(exc) == "SSL shutdown timed out"
    assert timeout - 0.05 <= elapsed < 5
    assert calls == ["made", "data", "lost"]
    assert seen_by_peer == (b"", "close_notify")
    assert reported == []


# ---------------------------------------------------------------------------
# 5. Misuse of the TLS transport
# ---------------------------------------------------------------------------

def test_write_rejects_non_bytes_and_ignores_empty(loop, tcp, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        messages = []
        for bad in ("text", 42, None):
            with pytest.raises(TypeError) as info:
                tr.write(bad)
            messages.append(str(info.value))
        for empty in (b"", bytearray(), memoryview(b"")):
            tr.write(empty)
        size = tr.get_write_buffer_size()
        tr.write(b"ok")   # the connection is unharmed
        got = await sproto.received(2)
        await nh.close_all(server, client, sproto)
        return messages, size, got, client.calls
    messages, size, got, calls = run(loop, main())
    assert messages == ["data: expecting a bytes-like instance, got str",
                        "data: expecting a bytes-like instance, got int",
                        "data: expecting a bytes-like instance, got NoneType"]
    assert size == 0
    assert got == b"ok"
    assert calls == ["made", "eof", "lost"]


def test_write_eof_not_implemented(loop, tcp, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        assert tr.can_write_eof() is False
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        closing = tr.is_closing()
        tr.write(b"still open")
        got = await sproto.received(10)
        await nh.close_all(server, client, sproto)
        return closing, got, sproto.calls
    assert run(loop, main()) == (False, b"still open", ["made", "data", "eof", "lost"])


def test_writes_after_close_are_dropped_then_warned(loop, tcp, server_ctx, client_ctx, caplog):
    caplog.set_level(logging.WARNING, logger="asyncio")

    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        tr.write(b"before")
        tr.close()
        counts = []
        for _ in range(SILENT_WRITES + 2):
            tr.write(b"after")
            counts.append(len(asyncio_records(caplog, CLOSED_WARNING)))
        results = await asyncio.gather(client.lost, sproto.lost)
        await close_server(server)
        return counts, results, bytes(sproto.data), tr.is_closing()
    counts, results, data, closing = run(loop, main())
    assert counts == [0] * SILENT_WRITES + [1, 2]
    assert results == [None, None]
    assert data == b"before"
    assert closing is True


def test_writes_after_connection_lost_are_dropped_then_warned(
        loop, tcp, server_ctx, client_ctx, caplog):
    # After connection_lost() the count goes on from the close: asyncio counts
    # the lost connection itself as one dropped write, so the warning comes
    # one write sooner.
    caplog.set_level(logging.WARNING, logger="asyncio")

    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        tr.close()
        await asyncio.gather(client.lost, sproto.lost)
        counts = []
        for _ in range(SILENT_WRITES + 1):
            tr.write(b"late")
            counts.append(len(asyncio_records(caplog, CLOSED_WARNING)))
        await nh.spin()
        await close_server(server)
        return counts, client.lost_count, bytes(sproto.data)
    counts, lost_count, data = run(loop, main())
    assert counts == [0] * (SILENT_WRITES - 1) + [1, 2]
    assert lost_count == 1
    assert data == b""


def test_abort_skips_close_notify(loop, tcp, raw_server_ctx, client_ctx, closer):
    # abort() with a peer that never reads: connection_lost(None) comes at
    # once (close() would wait for close_notify to be answered), without
    # eof_received(), and the peer sees TCP closed without close_notify.
    async def main():
        tr, client, peer = await raw_server_pair(loop, tcp, raw_server_ctx, client_ctx,
                                                 closer)
        tr.abort()
        closing = tr.is_closing()
        exc = await asyncio.wait_for(client.lost, 2)
        tr.abort()  # again: harmless
        tr.close()  # and close() after abort() too
        await nh.spin()
        seen_by_peer = await peer.read_until_end()
        return closing, exc, client.calls, client.lost_count, seen_by_peer
    closing, exc, calls, lost_count, seen_by_peer = run(loop, main())
    assert closing is True
    assert exc is None
    assert calls == ["made", "data", "lost"] and lost_count == 1
    assert seen_by_peer == (b"", "eof")


def test_force_close(loop, loop_kind, tcp, raw_server_ctx, client_ctx, closer):
    # What an outer TLS layer calls: the connection ends at once, without
    # close_notify. 3.13 passes the exception on to connection_lost();
    # 3.11/3.12 abort (asyncio's own raises TypeError there, so this runs
    # on pyasync only before 3.13: docs/differences.md).
    if loop_kind == "asyncio" and sys.version_info < (3, 13):
        pytest.skip("asyncio 3.11/3.12: _force_close() of the TLS transport raises TypeError")
    err = ConnectionError("forced")

    async def main():
        tr, client, peer = await raw_server_pair(loop, tcp, raw_server_ctx, client_ctx,
                                                 closer)
        tr._force_close(err)
        closing = tr.is_closing()
        exc = await asyncio.wait_for(client.lost, 2)
        seen_by_peer = await peer.read_until_end()
        return closing, exc, client.calls, seen_by_peer
    closing, exc, calls, seen_by_peer = run(loop, main())
    assert closing is True
    assert exc is (err if sys.version_info >= (3, 13) else None)
    assert calls == ["made", "data", "lost"]
    assert seen_by_peer == (b"", "eof")


def test_abort_during_shutdown(loop, tcp, raw_server_ctx, client_ctx, closer):
    # close() waits for the peer's close_notify (for 30 s by default); abort()
    # ends that wait at once with connection_lost(None).
    async def main():
        tr, client, peer = await raw_server_pair(loop, tcp, raw_server_ctx, client_ctx,
                                                 closer)
        tr.close()
        await nh.spin()
        lost_before_abort = client.lost.done()
        tr.abort()
        exc = await asyncio.wait_for(client.lost, 2)
        seen_by_peer = await peer.read_until_end()
        return lost_before_abort, exc, client.calls, seen_by_peer
    lost_before_abort, exc, calls, seen_by_peer = run(loop, main())
    assert lost_before_abort is False
    assert exc is None
    assert calls == ["made", "data", "lost"]
    assert seen_by_peer == (b"", "close_notify")


def test_close_twice(loop, endpoint, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        tr = client.transport
        before = tr.is_closing()
        tr.close()
        after = tr.is_closing()
        tr.close()
        results = await asyncio.gather(client.lost, sproto.lost)
        await nh.spin()
        await close_server(server)
        return (before, after, tr.is_closing(), results, client.lost_count,
                client.calls, sproto.calls)
    assert run(loop, main()) == (
        False, True, True, [None, None], 1,
        ["made", "eof", "lost"], ["made", "eof", "lost"])


# ---------------------------------------------------------------------------
# 6. An exception raised by the application protocol
# ---------------------------------------------------------------------------

class Exploding(Recorder):
    """Raises self.error from data_received() when b'boom' arrives."""
    error = None

    def data_received(self, data):
        super().data_received(data)
        if b"boom" in data:
            raise self.error


@pytest.mark.parametrize("error", [RuntimeError("app bug"), ConnectionAbortedError("app gave up")],
                         ids=["RuntimeError", "OSError"])
def test_exception_in_data_received(loop, tcp, server_ctx, client_ctx, error):
    # The error closes the connection without close_notify and is given to
    # the application's connection_lost(). It goes to the loop's exception
    # handler ('Fatal error on SSL protocol') unless it is an OSError.
    async def main():
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
        sf = ServerFactory(loop, cls=type("E", (Exploding,), {"error": error}))
        server = await tcp.create_server(loop, sf, ssl=server_ctx)
        _, client = await tcp.create_connection(
            loop, lambda: Recorder(loop), tcp.address(server),
            ssl=client_ctx, server_hostname="localhost")
        sproto = await sf.next()
        client.transport.write(b"boom")
        results = await asyncio.gather(sproto.lost, client.lost)
        # The loop goes on, and so does the server.
        _, other = await tcp.create_connection(
            loop, lambda: Recorder(loop), tcp.address(server),
            ssl=client_ctx, server_hostname="localhost")
        second = await sf.next()
        second.transport.write(b"fine")
        got = await other.received(4)
        await nh.close_all(server, other, second)
        return results, sproto.calls, client.calls, reported, got
    results, scalls, ccalls, reported, got = run(loop, main())
    assert results[0] is error and results[1] is None
    assert scalls == ["made", "data", "lost"]
    assert ccalls == ["made", "eof", "lost"]
    assert got == b"fine"
    if isinstance(error, OSError):
        assert reported == []
    else:
        assert len(reported) == 1
        ctx = reported[0]
        assert ctx["message"] == "Fatal error on SSL protocol"
        assert ctx["exception"] is error
        assert set(ctx) == {"message", "exception", "transport", "protocol"}


# ---------------------------------------------------------------------------
# 7. writelines()
# ---------------------------------------------------------------------------

def test_writelines_over_tls(loop, endpoint, server_ctx, client_ctx):
    big = nh.payload(200 * KiB, seed=10)

    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        tr = client.transport
        tr.writelines([b"ab", bytearray(b"cd"), memoryview(b"ef")])
        tr.writelines([])
        tr.writelines(bytes([c]) for c in b"gh")   # any iterable
        tr.writelines([b"", big, b"end"])
        expected = b"abcdefgh" + big + b"end"
        got = await sproto.received(len(expected))
        size = tr.get_write_buffer_size()
        await nh.close_all(server, client, sproto)
        return got == expected, len(got), size
    assert run(loop, main()) == (True, 8 + 200 * KiB + 3, 0)


# ---------------------------------------------------------------------------
# 8. set_protocol()
# ---------------------------------------------------------------------------

def test_set_protocol_switches_receiver(loop, endpoint, server_ctx, client_ctx):
    async def main():
        server, first, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        tr = first.transport
        sproto.transport.write(b"one")
        await first.received(3)
        second = Recorder(loop)
        tr.set_protocol(second)
        current = tr.get_protocol()
        sproto.transport.write(b"two")
        await second.received(3)
        sproto.transport.close()
        results = await asyncio.gather(second.lost, sproto.lost)
        await nh.spin()
        await close_server(server)
        return (current is second, bytes(first.data), first.calls,
                bytes(second.data), second.calls, results)
    assert run(loop, main()) == (
        True, b"one", ["made", "data"], b"two", ["data", "eof", "lost"], [None, None])


def test_set_protocol_to_buffered_protocol(loop, tcp, server_ctx, client_ctx):
    data = nh.payload(50 * KiB, seed=11)

    async def main():
        server, first, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = first.transport
        buffered = BufRecorder(loop, 500)
        tr.set_protocol(buffered)
        current = tr.get_protocol()
        sproto.transport.write(data)
        got = await buffered.received(len(data))
        tr.close()
        results = await asyncio.gather(buffered.lost, sproto.lost)
        await close_server(server)
        return current is buffered, got, buffered, first.calls, results
    is_current, got, buffered, first_calls, results = run(loop, main())
    assert is_current
    assert got == data
    assert max(buffered.updates) <= 500
    assert buffered.calls == ["data", "eof", "lost"]
    assert first_calls == ["made"]
    assert results == [None, None]


# ---------------------------------------------------------------------------
# 9. A failed handshake on the server side
# ---------------------------------------------------------------------------

NOT_TLS = {
    "plain-text": b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
    # A handshake record whose ClientHello is empty.
    "bad-hello": b"\x16\x03\x01\x00\x04\x01\x00\x00\x00",
}


@pytest.mark.parametrize("debug", [False, True, "after_accept"],
                         ids=["nodebug", "debug", "debug_after_accept"])
@pytest.mark.parametrize("garbage", list(NOT_TLS), ids=list(NOT_TLS))
def test_server_handshake_failure(loop, tcp, server_ctx, client_ctx, closer, garbage, debug):
    # The server's protocol is made but hears nothing; the socket is closed.
    # An SSLError is an OSError: the exception handler is told only in debug
    # mode, and then only of the failed set-up of the connection. Debug mode
    # counts when the handshake fails, not when the connection was accepted.
    async def main():
        loop.set_debug(debug is True)
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
        sf = ServerFactory(loop)
        server = await tcp.create_server(loop, sf, ssl=server_ctx)
        sock = tcp.socket()
        closer(sock)
        await loop.sock_connect(sock, tcp.address(server))
        if debug == "after_accept":
            for _ in range(1000):
                if sf.protocols:
                    break
                await asyncio.sleep(0.001)
            assert sf.protocols, "the server did not accept"
            loop.set_debug(True)
        await loop.sock_sendall(sock, NOT_TLS[garbage])
        try:
            answer = await loop.sock_recv(sock, 1000)
        except ConnectionResetError:
            answer = b""
        # The server is still serving.
        _, client = await tcp.create_connection(
            loop, lambda: Recorder(loop), tcp.address(server),
            ssl=client_ctx, server_hostname="localhost")
        sproto = await sf.next()
        await nh.close_all(server, client, sproto)
        loop.set_debug(False)
        return answer, sf.protocols, reported
    answer, protocols, reported = run(loop, main())
    assert answer == b""
    # The protocol factory was called before the handshake.
    assert [p.calls for p in protocols] == [[], ["made", "eof", "lost"]]
    if not debug:
        assert reported == []
    else:
        assert len(reported) == 1
        ctx = reported[0]
        assert ctx["message"] == "Error on transport creation for incoming connection"
        assert isinstance(ctx["exception"], ssl.SSLError)
        assert set(ctx) == {"message", "exception", "protocol", "transport"}
        assert ctx["protocol"] is protocols[0]
        assert isinstance(ctx["transport"], asyncio.Transport)
