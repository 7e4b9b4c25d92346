"""Arguments of the network methods, on both loops: the special values, the
checks and their order, and the errors asyncio of the running version gives
(base_events.py), each outcome compared with asyncio's loop running the
same code. Found by reading pyasync's argument handling against CPython's
3.11, 3.12 and 3.13, after aiosmtpd's suite found create_server(host='')
(tests/test_net_server.py)."""
import asyncio
import errno
import os
import socket
import ssl
import sys
import warnings

import pytest

import _net_helpers as nh
from _net_helpers import run

PY313 = sys.version_info >= (3, 13)


def outcome(loop_factory, scenario):
    """('ok', value) or (exception type, message) of scenario(loop) on a
    new loop from loop_factory, with the RuntimeWarnings it gave."""
    loop = loop_factory()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            try:
                result = ("ok", run(loop, scenario(loop)))
            except Exception as exc:
                result = (type(exc).__name__, str(exc))
        return result, [str(w.message) for w in caught if w.category is RuntimeWarning]
    finally:
        loop.close()


def as_asyncio(loop_factory, scenario):
    """The outcome on the loop under test, checked equal to asyncio's."""
    got = outcome(loop_factory, scenario)
    assert got == outcome(asyncio.new_event_loop, scenario)
    return got[0]


@pytest.fixture
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_bind_failure_message(loop_factory, busy_port):
    async def server(loop):
        await loop.create_server(asyncio.Protocol, "127.0.0.1", busy_port)

    async def local_addr(loop):
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", busy_port,
                                     local_addr=("127.0.0.1", busy_port))
    detail = "[errno 98] address already in use" if PY313 else "address already in use"
    for scenario in (server, local_addr):
        kind, message = as_asyncio(loop_factory, scenario)
        assert kind == "OSError"
        assert message == (f"[Errno {errno.EADDRINUSE}] error while attempting to bind on "
                           f"address ('127.0.0.1', {busy_port}): {detail}")


def test_server_address_the_host_lacks(loop_factory):
    """3.13 skips an address that cannot be assigned; earlier versions fail."""
    async def scenario(loop):
        server = await loop.create_server(asyncio.Protocol, ["127.0.0.1", "192.0.2.1"], 0)
        hosts = [s.getsockname()[0] for s in server.sockets]
        server.close()
        await server.wait_closed()
        return hosts
    kind, detail = as_asyncio(loop_factory, scenario)
    if PY313:
        assert (kind, detail) == ("ok", ["127.0.0.1"])
    else:
        assert kind == "OSError" and "('192.0.2.1', 0): cannot assign requested address" in detail


def test_datagram_socket_types(loop_factory):
    def with_sock(sock_type):
        async def scenario(loop):
            sock = socket.socket(socket.AF_UNIX, sock_type)
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, sock=sock)
            except BaseException:
                sock.close()
                raise
            transport.close()
            await asyncio.sleep(0)
            return "created"
        return scenario
    stream = as_asyncio(loop_factory, with_sock(socket.SOCK_STREAM))
    seqpacket = as_asyncio(loop_factory, with_sock(socket.SOCK_SEQPACKET))
    if PY313:
        assert stream[0] == "ValueError" and "A datagram socket was expected" in stream[1]
        assert seqpacket == ("ok", "created")
    else:
        assert stream[0] == seqpacket[0] == "ValueError"
        assert "A UDP Socket was expected" in stream[1]


@pytest.mark.parametrize("port_type", [float, str])
def test_numeric_host_with_a_port_int_takes(loop_factory, port_type):
    async def scenario(loop):
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", port_type(0))
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port_type(port))
        tr.close()
        sock = socket.socket()
        sock.setblocking(False)
        with sock:
            await loop.sock_connect(sock, ("127.0.0.1", port_type(port)))
        server.close()
        await server.wait_closed()
        return "connected"
    assert as_asyncio(loop_factory, scenario) == ("ok", "connected")


def test_numeric_host_protocol_follows_the_socket_type(loop_factory):
    async def scenario(loop):
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port,
                                             proto=socket.IPPROTO_UDP)
        stream_proto = tr.get_extra_info("socket").proto
        tr.close()
        dgram, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), proto=socket.IPPROTO_TCP)
        dgram_proto = dgram.get_extra_info("socket").proto
        dgram.close()
        server.close()
        await server.wait_closed()
        return stream_proto, dgram_proto
    assert as_asyncio(loop_factory, scenario) == ("ok", (socket.IPPROTO_TCP, socket.IPPROTO_UDP))


def test_server_hosts_are_looked_up_together(loop_factory):
    """create_server() with several names looks them up at once, and one
    that fails leaves no lookup never awaited; an empty answer is an error."""
    def scenario_for(answers):
        async def scenario(loop):
            in_flight = most = 0

            async def getaddrinfo(host, port, **kw):
                nonlocal in_flight, most
                in_flight += 1
                most = max(most, in_flight)
                await asyncio.sleep(0.01)
                in_flight -= 1
                answer = answers[host]
                if isinstance(answer, Exception):
                    raise answer
                return answer
            loop.getaddrinfo = getaddrinfo
            server = await loop.create_server(asyncio.Protocol, list(answers), 0)
            count = len(server.sockets)
            server.close()
            await server.wait_closed()
            return most, count
        return scenario
    lo = [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 0))]
    three = {"a.test": lo, "b.test": lo, "c.test": lo}
    assert as_asyncio(loop_factory, scenario_for(three)) == ("ok", (3, 1))
    failing = {"a.test": socket.gaierror(-2, "Name or service not known"), "b.test": lo}
    assert as_asyncio(loop_factory, scenario_for(failing)) == (
        "gaierror", "[Errno -2] Name or service not known")
    empty = {"a.test": []}
    assert as_asyncio(loop_factory, scenario_for(empty)) == (
        "OSError", "getaddrinfo('a.test') returned empty list")


def test_no_local_address_of_the_family(loop_factory):
    async def scenario(loop):
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", 9,
                                     local_addr=("::1", 0))
    assert as_asyncio(loop_factory, scenario) == (
        "OSError", "no matching local address with family=<AddressFamily.AF_INET: 2> found")


def test_sock_sendfile_checks_blocking_before_tls_in_debug(loop_factory, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")

    async def scenario(loop):
        loop.set_debug(True)
        sock = ssl.create_default_context().wrap_socket(
            socket.socket(), server_hostname="localhost", do_handshake_on_connect=False)
        with sock, open(path, "rb") as f:
            await loop.sock_sendfile(sock, f)
    assert as_asyncio(loop_factory, scenario) == (
        "ValueError", "the socket must be non-blocking")


@pytest.mark.parametrize("timeout", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_create_server_timeouts_need_ssl_to_be_none_to_fail(loop_factory, timeout):
    """create_server() asks whether ssl is None (create_connection() whether
    it is true): a false ssl with a TLS timeout serves plain."""
    async def scenario(loop):
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=0,
                                          **{timeout: 1.0})
        server.close()
        await server.wait_closed()
        return "serving"
    assert as_asyncio(loop_factory, scenario) == ("ok", "serving")

    async def none(loop):
        await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, **{timeout: 1.0})
    assert as_asyncio(loop_factory, none) == ("ValueError", f"{timeout} is only meaningful with ssl")


def test_unix_connection_server_hostname_must_be_a_string(loop_factory, short_tmp):
    async def scenario(loop):
        await loop.create_unix_connection(asyncio.Protocol, os.path.join(short_tmp, "none"),
                                          ssl=ssl.create_default_context(), server_hostname=123)
    assert as_asyncio(loop_factory, scenario)[0] == "AssertionError"


def test_sock_connect_refuses_an_address_that_is_no_tuple(loop_factory):
    async def scenario(loop):
        sock = socket.socket()
        sock.setblocking(False)
        with sock:
            await loop.sock_connect(sock, "127.0.0.1:80")
    # (the message names the function that took the extra items)
    assert outcome(loop_factory, scenario)[0][0] == "TypeError"


short_tmp = nh.short_tmp
