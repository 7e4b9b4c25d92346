"""What the TLS behaviour tests share (tests/test_net_tls_behaviour.py,
tests/test_net_tls_flow.py): asyncio's TLS constants, RawTLS (a peer driven
by hand, which can misbehave), its contexts as fixtures, and recording
protocols for flow control and BufferedProtocol applications."""
import asyncio
import ssl

import pytest

from _net_helpers import Recorder, ServerFactory

KiB = 1024

# asyncio's defaults (asyncio.constants), as (low, high).
DEFAULT_WRITE_LIMITS = (128 * KiB, 512 * KiB)  # FLOW_CONTROL_HIGH_WATER_SSL_WRITE
DEFAULT_READ_LIMITS = (64 * KiB, 256 * KiB)    # FLOW_CONTROL_HIGH_WATER_SSL_READ
# Writes after close() that are dropped silently before the warning
# (LOG_THRESHOLD_FOR_CONNLOST_WRITES).
SILENT_WRITES = 5

EOF_WARNING = "returning true from eof_received() has no effect when using ssl"
CLOSED_WARNING = "SSL connection is closed"


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
