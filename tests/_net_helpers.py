"""Shared helpers of the networking tests (tests/test_net_*.py).

Imported as ``import _net_helpers`` (pytest puts tests/ on sys.path). Test
modules also name it in ``pytest_plugins`` so that pytest finds the fixtures
defined here (``endpoint``, ``tcp``, ``unix``, ``closer``, ``tls_files``, ...)
without touching conftest.py. (PYTEST_DONT_REWRITE: the test modules import
it before pytest loads it as a plugin, too late for assertion rewriting.)

Every test drives its coroutine through ``run(loop, coro)``, which bounds it
with asyncio.wait_for(), so a broken loop fails a test instead of hanging it.
"""
import asyncio
import contextlib
import inspect
import os
import random
import resource
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

import pytest

# ---------------------------------------------------------------------------
# Differences between Python versions. All are read from the running
# interpreter's asyncio (the reference); the tests only use these names.
# ---------------------------------------------------------------------------
PY = sys.version_info

# Server.wait_closed() waits until the server is closed *and* its client
# connections are gone (3.12.1+). Before that, on a closed server it returned
# at once even with clients still connected.
WAIT_CLOSED_WAITS_FOR_CLIENTS = PY >= (3, 12, 1)

# Server.wait_closed() on an open server waits for close() (all versions but
# 3.12.0, whose wait_closed() returned at once when no client was connected).
WAIT_CLOSED_WAITS_WHILE_OPEN = PY[:3] != (3, 12, 0)

# Server.close_clients() and Server.abort_clients() (3.13+).
HAS_CLOSE_CLIENTS = hasattr(asyncio.base_events.Server, "close_clients")

# create_unix_server(cleanup_socket=True) unlinks the socket file when the
# server is closed (3.13+); before, the file stays behind.
UNIX_SERVER_CLEANUP = "cleanup_socket" in inspect.signature(
    asyncio.unix_events._UnixSelectorEventLoop.create_unix_server).parameters

# create_connection(all_errors=True) raises an ExceptionGroup (3.12+).
HAS_ALL_ERRORS = "all_errors" in inspect.signature(
    asyncio.base_events.BaseEventLoop.create_connection).parameters


def _udp_drops_empty_datagrams():
    # DatagramTransport.sendto(b"") was a silent no-op before 3.13; 3.13
    # sends an empty datagram.
    try:
        src = inspect.getsource(
            asyncio.selector_events._SelectorDatagramTransport.sendto)
    except (OSError, TypeError):  # pragma: no cover - no source available
        return PY < (3, 13)
    return "if not data:" in src


UDP_SENDS_EMPTY_DATAGRAM = not _udp_drops_empty_datagrams()


def _udp_buffer_size_leaks():
    # asyncio 3.13 before CPython gh-135444 was fixed counts a queued
    # datagram as its length plus 8 header bytes, but takes away only its
    # length when it is sent: the write buffer size never returns to 0.
    cls = asyncio.selector_events._SelectorDatagramTransport
    try:
        queue, drain = inspect.getsource(cls.sendto), inspect.getsource(cls._sendto_ready)
    except (OSError, TypeError):  # pragma: no cover - no source available
        return PY[:2] == (3, 13)
    return "+ 8" in queue and "_header_size" not in drain


UDP_BUFFER_SIZE_LEAKS = _udp_buffer_size_leaks()


def _collected_transport_detaches():
    # The finaliser of a transport never closed detaches it from its server
    # from 3.13 on; before, Server.wait_closed() waited for it forever.
    try:
        src = inspect.getsource(asyncio.selector_events._SelectorTransport.__del__)
    except (OSError, TypeError):  # pragma: no cover - no source available
        return PY >= (3, 13)
    return "_detach" in src


COLLECTED_TRANSPORT_DETACHES = _collected_transport_detaches()

# asyncio's UDP transport derives from asyncio.DatagramTransport (3.12+; in
# 3.11 it is only a BaseTransport).
UDP_TRANSPORT_IS_DATAGRAM_TRANSPORT = issubclass(
    asyncio.selector_events._SelectorDatagramTransport, asyncio.DatagramTransport)

# asyncio checks that a socket passed to the loop's sock_*() methods is
# non-blocking only in debug mode (all supported versions).
BLOCKING_SOCKET_MESSAGE = "the socket must be non-blocking"

# ---------------------------------------------------------------------------
# Platform facts
# ---------------------------------------------------------------------------


def _ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
HAS_REUSE_PORT = hasattr(socket, "SO_REUSEPORT")

DEFAULT_TIMEOUT = 10.0
MiB = 1 << 20

# ---------------------------------------------------------------------------
# Running coroutines
# ---------------------------------------------------------------------------


def run(loop, coro, timeout=DEFAULT_TIMEOUT):
    """Run coro on loop, failing with TimeoutError after timeout seconds."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def spin(n=10):
    """Let the loop go round n times (to show that something did NOT
    happen; never used to wait for something to happen)."""
    for _ in range(n):
        await asyncio.sleep(0)


def step(aw):
    """Advance an awaitable once by hand, for calls on a closed loop (which
    cannot run anything). Raises what the first step raises."""
    it = aw.__await__()
    try:
        it.send(None)
    finally:
        if hasattr(aw, "close"):
            aw.close()


def wait_readable(sock, timeout=5.0):
    """Block until the kernel has data (or EOF) for sock."""
    r, _, _ = select.select([sock.fileno()], [], [], timeout)
    assert r, "socket did not become readable in time"


def payload(n, seed=0):
    return random.Random(seed).randbytes(n)


def open_fd_count():
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def nofile_limit(needed):
    """Raise the soft RLIMIT_NOFILE to at least needed (if the hard limit
    allows) for the duration; skip the test when it cannot be done."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def free_tcp_port():
    """A port nothing listens on (bound briefly, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_small_buffers(sock, size=32 * 1024):
    """Shrink a socket's kernel buffers so that writers block sooner."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def linger_reset(sock):
    """Make close() of sock send a RST (SO_LINGER with a zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder))


# ---------------------------------------------------------------------------
# Fixtures (import them by name into a test module to use them)
# ---------------------------------------------------------------------------


@pytest.fixture
def short_tmp():
    """A short directory under /tmp for AF_UNIX paths (108-byte limit)."""
    d = tempfile.mkdtemp(prefix="pan-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Endpoint:
    """A stream address family under test: 'tcp' (127.0.0.1, any port) or
    'unix' (a fresh path in a short temporary directory)."""

    def __init__(self, kind, tmpdir):
        self.kind = kind
        self.tmpdir = tmpdir
        self._count = 0
        self.family = socket.AF_INET if kind == "tcp" else socket.AF_UNIX

    def __repr__(self):
        return f"<Endpoint {self.kind}>"

    def new_path(self):
        self._count += 1
        return os.path.join(self.tmpdir, f"s{self._count}")

    @staticmethod
    def address(server):
        """The address a client connects to for server (an asyncio.Server)."""
        return server.sockets[0].getsockname()

    # -- protocols and transports
    async def create_server(self, loop, factory, **kw):
        if self.kind == "tcp":
            return await loop.create_server(factory, "127.0.0.1", 0, **kw)
        return await loop.create_unix_server(factory, self.new_path(), **kw)

    async def create_connection(self, loop, factory, addr, **kw):
        if self.kind == "tcp":
            return await loop.create_connection(factory, addr[0], addr[1], **kw)
        return await loop.create_unix_connection(factory, addr, **kw)

    # -- streams
    async def start_server(self, cb, **kw):
        if self.kind == "tcp":
            return await asyncio.start_server(cb, "127.0.0.1", 0, **kw)
        return await asyncio.start_unix_server(cb, self.new_path(), **kw)

    async def open_connection(self, addr, **kw):
        if self.kind == "tcp":
            return await asyncio.open_connection(addr[0], addr[1], **kw)
        return await asyncio.open_unix_connection(addr, **kw)

    # -- plain sockets
    def socket(self, blocking=False):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.setblocking(blocking)
        return s

    def listener(self, backlog=16):
        """A plain non-blocking listening socket; returns (sock, address)."""
        s = socket.socket(self.family, socket.SOCK_STREAM)
        if self.kind == "tcp":
            s.bind(("127.0.0.1", 0))
        else:
            s.bind(self.new_path())
        s.listen(backlog)
        s.setblocking(False)
        return s, s.getsockname()

    def pair(self):
        """Two connected non-blocking plain sockets."""
        if self.kind == "unix":
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            with socket.create_server(("127.0.0.1", 0)) as lsock:
                a = socket.create_connection(lsock.getsockname())
                b, _ = lsock.accept()
        a.setblocking(False)
        b.setblocking(False)
        return a, b


@pytest.fixture(params=["tcp", "unix"])
def endpoint(request, short_tmp):
    return Endpoint(request.param, short_tmp)


@pytest.fixture
def tcp(short_tmp):
    return Endpoint("tcp", short_tmp)


@pytest.fixture
def unix(short_tmp):
    return Endpoint("unix", short_tmp)


@pytest.fixture
def sock_pair(endpoint):
    a, b = endpoint.pair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def closer():
    """Collects objects with close() (sockets, transports, servers, files)
    and closes them at the end of the test, whatever happened."""
    things = []
    yield things.append
    for obj in reversed(things):
        with contextlib.suppress(Exception):
            obj.close()


# ---------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------


class Recorder(asyncio.Protocol):
    """A protocol that records everything its transport tells it.

    echo: send back what arrives; keep_open: eof_received() returns True;
    pause_on_made: pause_reading() in connection_made (a reader that is
    slow until resumed)."""

    def __init__(self, loop, *, echo=False, keep_open=False,
                 pause_on_made=False, on_made=None):
        self.loop = loop
        self.echo = echo
        self.keep_open = keep_open
        self.pause_on_made = pause_on_made
        self.on_made = on_made
        self.transport = None
        self.data = bytearray()
        self.calls = []
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.lost_count = 0
        self.pauses = []    # write buffer size at each pause_writing()
        self.resumes = []   # write buffer size at each resume_writing()
        self.writable = asyncio.Event()
        self.writable.set()
        self._wanted = []   # (nbytes, future)

    # asyncio.Protocol
    def connection_made(self, transport):
        self.calls.append("made")
        self.transport = transport
        if self.pause_on_made:
            transport.pause_reading()
        self.made.set_result(transport)
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data):
        if not self.calls or self.calls[-1] != "data":
            self.calls.append("data")
        self.data += data
        if self.echo:
            self.transport.write(data)
        self._check_wanted()

    def eof_received(self):
        self.calls.append("eof")
        if not self.eof.done():
            self.eof.set_result(None)
        self._check_wanted()
        return True if self.keep_open else None

    def connection_lost(self, exc):
        self.calls.append("lost")
        self.lost_count += 1
        if not self.lost.done():
            self.lost.set_result(exc)
        self.writable.set()
        self._check_wanted()

    def pause_writing(self):
        self.pauses.append(self.transport.get_write_buffer_size())
        self.writable.clear()

    def resume_writing(self):
        self.resumes.append(self.transport.get_write_buffer_size())
        self.writable.set()

    # helpers
    def _check_wanted(self):
        ended = self.eof.done() or self.lost.done()
        for item in list(self._wanted):
            n, fut = item
            if fut.done():
                self._wanted.remove(item)
            elif len(self.data) >= n or ended:
                self._wanted.remove(item)
                fut.set_result(bytes(self.data))

    async def received(self, n):
        """Wait until at least n bytes arrived (or the stream ended);
        returns all the data received so far."""
        if len(self.data) >= n or self.eof.done() or self.lost.done():
            return bytes(self.data)
        fut = self.loop.create_future()
        self._wanted.append((n, fut))
        return await fut

    async def send_flow_controlled(self, chunks):
        """Write chunks, waiting whenever the transport paused writing."""
        for chunk in chunks:
            await self.writable.wait()
            if self.transport.is_closing():
                raise ConnectionError("transport closed while sending")
            self.transport.write(chunk)


class ServerFactory:
    """Protocol factory for servers: makes Recorder(loop, **kw) protocols and
    hands each one out (connected) through ``await factory.next()``."""

    def __init__(self, loop, cls=Recorder, **kw):
        self.loop = loop
        self.cls = cls
        self.kw = kw
        self.protocols = []
        self._queue = asyncio.Queue()

    def __call__(self):
        proto = self.cls(self.loop, on_made=self._queue.put_nowait, **self.kw)
        self.protocols.append(proto)
        return proto

    async def next(self):
        return await self._queue.get()


async def connect_pair(loop, endpoint, server_kw=None, client_kw=None,
                       create_kw=None):
    """Start a server of endpoint's kind and connect one client to it.
    Returns (server, client_protocol, server_protocol)."""
    sf = ServerFactory(loop, **(server_kw or {}))
    server = await endpoint.create_server(loop, sf)
    try:
        _, client = await endpoint.create_connection(
            loop, lambda: Recorder(loop, **(client_kw or {})),
            endpoint.address(server), **(create_kw or {}))
        sproto = await sf.next()
    except BaseException:
        server.close()
        raise
    return server, client, sproto


async def close_all(server, *protocols):
    """Close transports and the server, waiting for connection_lost()."""
    for p in protocols:
        if p.transport is not None and not p.lost.done():
            p.transport.close()
    for p in protocols:
        if p.transport is not None:
            await p.lost
    server.close()
    await server.wait_closed()


# ---------------------------------------------------------------------------
# TLS material
# ---------------------------------------------------------------------------


def _make_self_signed(dirname):
    cert = os.path.join(dirname, "cert.pem")
    key = os.path.join(dirname, "key.pem")
    try:
        from cryptography import x509  # noqa: F401
    except ImportError:
        x509 = None
    if x509 is not None:  # pragma: no cover - depends on the environment
        _make_with_cryptography(cert, key)
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither the cryptography package nor openssl is available")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def _make_with_cryptography(cert_path, key_path):  # pragma: no cover
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .sign(key, hashes.SHA256()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


@pytest.fixture(scope="session")
def tls_files():
    """(certfile, keyfile) of a self-signed certificate for 'localhost' and
    127.0.0.1, made once per test session."""
    d = tempfile.mkdtemp(prefix="pan-tls-", dir="/tmp")
    try:
        yield _make_self_signed(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server_ctx(tls_files):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls_files)
    return ctx


@pytest.fixture
def client_ctx(tls_files):
    return ssl.create_default_context(cafile=tls_files[0])


async def tls_pair(loop, endpoint, server_ctx, client_ctx, server_kw=None,
                   client_kw=None, client_factory=None, server_factory=None,
                   **kw):
    """A TLS server of endpoint's kind and one TLS client connected to it.
    Returns (server, client_protocol, server_protocol)."""
    sf = server_factory or ServerFactory(loop, **(server_kw or {}))
    server = await endpoint.create_server(loop, sf, ssl=server_ctx)
    try:
        factory = client_factory or (lambda: Recorder(loop, **(client_kw or {})))
        _, client = await endpoint.create_connection(
            loop, factory, endpoint.address(server),
            ssl=client_ctx, server_hostname="localhost", **kw)
        sproto = await sf.next()
    except BaseException:
        server.close()
        raise
    return server, client, sproto
