"""Name resolution: loop.getaddrinfo, loop.getnameinfo and connecting by name.
Nothing here needs a DNS server: only numeric hosts and 'localhost'."""
import asyncio
import logging
import socket

import pytest

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...

S = socket.SOCK_STREAM
D = socket.SOCK_DGRAM

NUMERIC_QUERIES = [
    (("127.0.0.1", 80), {}),
    (("127.0.0.1", 80), {"type": S}),
    (("127.0.0.1", "80"), {"type": S}),
    (("127.0.0.1", None), {"type": D}),
    (("127.0.0.1", 0), {"family": socket.AF_INET, "type": D, "proto": socket.IPPROTO_UDP}),
    ((b"127.0.0.1", 443), {"type": S}),
    (("127.0.0.1", 443), {"type": S, "flags": socket.AI_NUMERICHOST}),
    ((None, 8080), {"type": S, "flags": socket.AI_PASSIVE}),
    ((None, 8080), {"type": S}),
    (("0.0.0.0", 1), {"family": socket.AF_INET, "type": S}),
]
if nh.HAS_IPV6:
    NUMERIC_QUERIES += [
        (("::1", 80), {"type": S}),
        (("::1", 80), {"family": socket.AF_INET6}),
        (("fe80::1%1", 80), {"type": S, "flags": socket.AI_NUMERICHOST}),
    ]


@pytest.mark.parametrize("args, kw", NUMERIC_QUERIES, ids=repr)
def test_getaddrinfo_numeric_matches_socket_module(loop, args, kw):
    # Whatever fast path the loop takes for numeric hosts, the answer is the
    # one socket.getaddrinfo() gives.
    try:
        expected = socket.getaddrinfo(*args, **kw)
    except socket.gaierror as exc:  # pragma: no cover - depends on the host
        pytest.skip(f"socket.getaddrinfo{args} fails here: {exc}")
    assert run(loop, loop.getaddrinfo(*args, **kw)) == expected


@pytest.mark.parametrize("kw", [{}, {"type": S}, {"family": socket.AF_INET, "type": D}])
def test_getaddrinfo_localhost(loop, kw):
    expected = socket.getaddrinfo("localhost", 80, **kw)
    got = run(loop, loop.getaddrinfo("localhost", 80, **kw))
    assert got == expected
    assert any(info[4][0] in ("127.0.0.1", "::1") for info in got)


def test_getaddrinfo_in_debug_mode(loop):
    loop.set_debug(True)
    assert run(loop, loop.getaddrinfo("localhost", 80, type=S)) == \
        socket.getaddrinfo("localhost", 80, type=S)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_getaddrinfo_is_logged_in_debug_mode(loop, host, caplog):
    """As asyncio: what is asked and what came back, with the time it took,
    numeric hosts too."""
    loop.set_debug(True)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        infos = run(loop, loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM))
    what = f"{host}:80, type=<SocketKind.SOCK_STREAM: 1>"
    logged = [r.getMessage() for r in caplog.records if "address info" in r.getMessage()]
    assert len(logged) == 2
    assert logged[0] == f"Get address info {what}"
    assert logged[1].startswith(f"Getting address info {what} took ")
    assert logged[1].endswith(f"ms: {infos!r}")


def test_getaddrinfo_unknown_service(loop):
    with pytest.raises(socket.gaierror):
        run(loop, loop.getaddrinfo("127.0.0.1", "no-such-service-name", type=S))


def test_getaddrinfo_bad_port_type(loop):
    with pytest.raises(OSError):
        run(loop, loop.getaddrinfo("127.0.0.1", 1.5))


def test_getaddrinfo_many_at_once(loop):
    async def main():
        return await asyncio.gather(*(loop.getaddrinfo("localhost", p, type=S)
                                      for p in range(1000, 1020)))
    infos = run(loop, main())
    assert [i[0][4][1] for i in infos] == list(range(1000, 1020))


@pytest.mark.parametrize("addr, flags", [
    (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", 80), socket.NI_NUMERICSERV),
    (("127.0.0.1", 80), 0),
    (("127.0.0.1", 53), socket.NI_DGRAM | socket.NI_NUMERICHOST),
], ids=repr)
def test_getnameinfo_matches_socket_module(loop, addr, flags):
    assert run(loop, loop.getnameinfo(addr, flags)) == socket.getnameinfo(addr, flags)


def test_getnameinfo_numeric(loop):
    assert run(loop, loop.getnameinfo(
        ("127.0.0.1", 8080), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)) == \
        ("127.0.0.1", "8080")


def test_getnameinfo_default_flags(loop):
    assert run(loop, loop.getnameinfo(("127.0.0.1", 80))) == \
        socket.getnameinfo(("127.0.0.1", 80), 0)


def test_getnameinfo_bad_address(loop):
    with pytest.raises(TypeError):
        run(loop, loop.getnameinfo("127.0.0.1"))


@pytest.mark.parametrize("family", [socket.AF_UNSPEC, socket.AF_INET])
def test_create_connection_to_localhost(loop, family):
    async def main():
        server = await loop.create_server(ServerFactory(loop, echo=True), "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            tr, p = await loop.create_connection(
                lambda: Recorder(loop), "localhost", port, family=family)
            tr.write(b"by name")
            got = await p.received(7)
            peer = tr.get_extra_info("peername")
            tr.close()
            await p.lost
            return got, peer
    got, peer = run(loop, main())
    assert got == b"by name" and peer[0] == "127.0.0.1"


def test_create_server_on_localhost(loop):
    async def main():
        server = await loop.create_server(ServerFactory(loop, echo=True), "localhost", 0)
        async with server:
            names = [s.getsockname()[0] for s in server.sockets]
        return names
    expected = {info[4][0] for info in socket.getaddrinfo(
        "localhost", 0, type=S, flags=socket.AI_PASSIVE)}
    assert set(run(loop, main())) == expected
