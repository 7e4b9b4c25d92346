"""The behaviour of asyncio's TLS layer (Lib/asyncio/sslproto.py) seen
through public loop APIs, pinned down so that a reimplementation can be
checked against it: how a connection ends (with and without close_notify,
shutdown timeouts, abort), start_tls() in the middle of a conversation,
BufferedProtocol applications, read and write flow control, misuse of the
TLS transport, errors raised by the application protocol, set_protocol()
and failed server-side handshakes.

tests/test_net_tls.py covers the basics (round trip, large transfer, extra
info, handshake timeouts, start_tls(), streams); this file does not repeat
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

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...

KiB = 1024

# asyncio's defaults (asyncio.constants), as (low, high).
DEFAULT_WRITE_LIMITS = (128 * KiB, 512 * KiB)  # FLOW_CONTROL_HIGH_WATER_SSL_WRITE
DEFAULT_READ_LIMITS = (64 * KiB, 256 * KiB)    # FLOW_CONTROL_HIGH_WATER_SSL_READ
# Writes after close() that are dropped silently before the warning
# (LOG_THRESHOLD_FOR_CONNLOST_WRITES).
SILENT_WRITES = 5

EOF_WARNING = "returning true from eof_received() has no effect when using ssl"
CLOSED_WARNING = "SSL connection is closed"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

async def until(predicate):
    """Let the loop run until predicate() is true (the caller's run() bounds
    the wait). For states that no callback announces, such as bytes piling up
    in a paused transport's read buffer."""
    while not predicate():
        await asyncio.sleep(0)


async def close_server(server):
    server.close()
    await server.wait_closed()


def asyncio_records(caplog, message):
    return [r for r in caplog.records
            if r.name == "asyncio" and r.getMessage() == message]


def _strict_eof(ctx):
    # Tell a TCP EOF without close_notify from a clean close whatever the
    # interpreter's default (some 3.10/3.11 builds set
    # OP_IGNORE_UNEXPECTED_EOF, under which both read as a clean close).
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


@pytest.fixture
def raw_server_ctx(tls_files):
    """The server context of a RawTLS peer (its own, not the loop's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls_files)
    return _strict_eof(ctx)


@pytest.fixture
def raw_client_ctx(tls_files):
    """The client context of a RawTLS peer (its own, not the loop's)."""
    return _strict_eof(ssl.create_default_context(cafile=tls_files[0]))


class RawTLS:
    """One end of a TLS connection driven by hand: an ssl.SSLObject over
    memory BIOs, on a plain non-blocking socket moved with the loop's
    sock_recv()/sock_sendall(). It does only what the test tells it to: it
    reads nothing unless asked, and closes TCP without close_notify unless
    told to unwrap."""

    def __init__(self, loop, sock, ctx, *, server_side, server_hostname=None):
        self.loop = loop
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing,
                                server_side=server_side,
                                server_hostname=server_hostname)

    @classmethod
    async def connect(cls, loop, endpoint, addr, ctx):
        sock = endpoint.socket()
        try:
            await loop.sock_connect(sock, addr)
            peer = cls(loop, sock, ctx, server_side=False, server_hostname="localhost")
            await peer.handshake()
        except BaseException:
            sock.close()
            raise
        return peer

    async def _flush(self):
        data = self.outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def _fill(self):
        data = await self.loop.sock_recv(self.sock, 65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    async def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
        await self._flush()

    async def send(self, data):
        self.obj.write(data)
        await self._flush()

    async def recv(self, n):
        """Read exactly n bytes of application data."""
        buf = bytearray()
        while len(buf) < n:
            try:
                buf += self.obj.read(n - len(buf))
            except ssl.SSLWantReadError:
                await self._fill()
        return bytes(buf)

    async def read_until_end(self):
        """Read until the stream ends. Returns (data, end): end is
        'close_notify' (a clean TLS close), 'eof' (TCP closed without
        close_notify) or 'reset'."""
        buf = bytearray()
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                try:
                    await self._fill()
                except ConnectionResetError:
                    return bytes(buf), "reset"
                continue
            except ssl.SSLEOFError:
                return bytes(buf), "eof"
            except ssl.SSLError as exc:
                # Some 3.11 builds report OpenSSL 3's unexpected EOF as a
                # plain SSLError.
                if exc.reason != "UNEXPECTED_EOF_WHILE_READING":
                    raise
                return bytes(buf), "eof"
            if not chunk:
                return bytes(buf), "close_notify"
            buf += chunk

    def close(self):
        self.sock.close()


async def raw_server_pair(loop, tcp, raw_server_ctx, client_ctx, closer, **kw):
    """A TLS client connection (create_connection(ssl=..., **kw)) to a
    RawTLS server. The server sends b'hi' once the handshake is done and the
    client waits for it, so that the client has read everything the server
    sent (TLS 1.3 session tickets come after the handshake): when the client
    closes its socket, the server sees a FIN, not a RST.
    Returns (client_transport, client_protocol, raw_server)."""
    lsock, addr = tcp.listener()
    closer(lsock)

    async def raw_server():
        conn, _ = await loop.sock_accept(lsock)
        closer(conn)
        peer = RawTLS(loop, conn, raw_server_ctx, server_side=True)
        await peer.handshake()
        await peer.send(b"hi")
        return peer

    (tr, client), peer = await asyncio.gather(
        loop.create_connection(lambda: Recorder(loop), *addr, ssl=client_ctx,
                               server_hostname="localhost", **kw),
        raw_server())
    closer(tr)
    assert await client.received(2) == b"hi"
    return tr, client, peer


class FlowRecorder(Recorder):
    """A Recorder whose first pause_writing() resolves a future."""

    def __init__(self, loop, **kw):
        super().__init__(loop, **kw)
        self.paused = loop.create_future()

    def pause_writing(self):
        super().pause_writing()
        if not self.paused.done():
            self.paused.set_result(self.pauses[-1])


class BufRecorder(asyncio.BufferedProtocol):
    """A BufferedProtocol that always lends the same buffer of bufsize
    bytes and records every call."""

    def __init__(self, loop, bufsize, on_made=None):
        self.loop = loop
        self.buf = bytearray(bufsize)
        self.view = memoryview(self.buf)
        self.on_made = on_made
        self.transport = None
        self.data = bytearray()
        self.calls = []
        self.hints = []
        self.updates = []
        self.lost = loop.create_future()
        self._wanted = []

    def connection_made(self, transport):
        self.calls.append("made")
        self.transport = transport
        if self.on_made is not None:
            self.on_made(self)

    def get_buffer(self, sizehint):
        self.hints.append(sizehint)
        # A memoryview: asyncio's TLS layer loses data when a record fills
        # a bytearray only in part (it reads the rest into buf[offset:],
        # which is a copy for a bytearray; pyasync does not, see
        # test_buffered_protocol_bytearray_buffer).
        return self.view

    def buffer_updated(self, nbytes):
        if not self.calls or self.calls[-1] != "data":
            self.calls.append("data")
        self.updates.append(nbytes)
        self.data += self.buf[:nbytes]
        self._check()

    def eof_received(self):
        self.calls.append("eof")

    def connection_lost(self, exc):
        self.calls.append("lost")
        self.lost.set_result(exc)
        self._check()

    def _check(self):
        for item in list(self._wanted):
            n, fut = item
            if len(self.data) >= n or self.lost.done():
                self._wanted.remove(item)
                if not fut.done():
                    fut.set_result(bytes(self.data))

    async def received(self, n):
        if len(self.data) >= n or self.lost.done():
            return bytes(self.data)
        fut = self.loop.create_future()
        self._wanted.append((n, fut))
        return await fut


class BufServerFactory(ServerFactory):
    def __init__(self, loop, bufsize):
        super().__init__(loop)
        self.bufsize = bufsize

    def __call__(self):
        proto = BufRecorder(self.loop, self.bufsize, on_made=self._queue.put_nowait)
        self.protocols.append(proto)
        return proto


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
# 4. A BufferedProtocol application over TLS
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


# ---------------------------------------------------------------------------
# 5. Write flow control
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
# 6. Read flow control
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


# ---------------------------------------------------------------------------
# 7. Shutdown timeout
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
# 8. Misuse of the TLS transport
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
# 9. An exception raised by the application protocol
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
# 10. writelines()
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
# 11. set_protocol()
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
# 12. A failed handshake on the server side
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
