"""TLS: create_server(ssl=) / create_connection(ssl=), loop.start_tls(),
streams with ssl=, handshake timeouts and the TLS transport's extra info.
The certificate is self-signed, made once per session (_net_helpers)."""
import asyncio
import asyncio.sslproto
import gc
import socket
import ssl
import warnings
import weakref

import pytest

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run, tls_pair

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...


def test_tls_round_trip(loop, endpoint, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(
            loop, endpoint, server_ctx, client_ctx, {"echo": True})
        client.transport.write(b"secret")
        got = await client.received(6)
        await nh.close_all(server, client, sproto)
        return got, client.lost.result(), sproto.lost.result()
    assert run(loop, main()) == (b"secret", None, None)


def test_tls_large_transfer(loop, endpoint, server_ctx, client_ctx):
    data = nh.payload(2 * nh.MiB, seed=11)

    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        await client.send_flow_controlled([data[i:i + 65536]
                                           for i in range(0, len(data), 65536)])
        got = await sproto.received(len(data))
        await nh.close_all(server, client, sproto)
        return got
    assert run(loop, main()) == data


def test_tls_server_hostname_defaults_to_host(loop, tcp, server_ctx, client_ctx):
    async def main():
        server = await tcp.create_server(loop, ServerFactory(loop, echo=True), ssl=server_ctx)
        async with server:
            port = tcp.address(server)[1]
            tr, p = await loop.create_connection(
                lambda: Recorder(loop), "localhost", port, ssl=client_ctx)
            hostname = tr.get_extra_info("ssl_object").server_hostname
            tr.write(b"x")
            got = await p.received(1)
            tr.close()
            await p.lost
            return hostname, got
    assert run(loop, main()) == ("localhost", b"x")


def test_tls_extra_info(loop, endpoint, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        c, s = client.transport, sproto.transport
        info = {
            "c_ctx": c.get_extra_info("sslcontext"),
            "s_ctx": s.get_extra_info("sslcontext"),
            "c_cert": c.get_extra_info("peercert"),
            "s_cert": s.get_extra_info("peercert"),
            "c_obj": c.get_extra_info("ssl_object"),
            "cipher": c.get_extra_info("cipher"),
            "sock": c.get_extra_info("socket"),
            "peername": c.get_extra_info("peername"),
            "addr": endpoint.address(server),
            "version": c.get_extra_info("ssl_object").version(),
            "missing": c.get_extra_info("no-such-key", 5),
        }
        await nh.close_all(server, client, sproto)
        return info
    info = run(loop, main())
    assert info["c_ctx"] is client_ctx and info["s_ctx"] is server_ctx
    assert ((("commonName", "localhost"),),) == info["c_cert"]["subject"]
    assert info["s_cert"] is None  # the client sent no certificate
    assert isinstance(info["c_obj"], ssl.SSLObject)
    assert info["c_obj"].server_side is False
    assert isinstance(info["cipher"], tuple) and len(info["cipher"]) == 3
    assert info["version"].startswith("TLS")
    assert info["sock"].family == endpoint.family
    assert info["peername"] == info["addr"]
    assert info["missing"] == 5


def test_tls_transport_type_and_no_write_eof(loop, tcp, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        # Programs test for asyncio's TLS transport class by name.
        result = (isinstance(tr, asyncio.Transport),
                  isinstance(tr, asyncio.sslproto._SSLProtocolTransport),
                  isinstance(sproto.transport, asyncio.sslproto._SSLProtocolTransport),
                  tr.can_write_eof())
        await nh.close_all(server, client, sproto)
        return result
    assert run(loop, main()) == (True, True, True, False)


def test_tls_close_is_seen_by_peer(loop, endpoint, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await tls_pair(loop, endpoint, server_ctx, client_ctx)
        client.transport.write(b"bye")
        client.transport.close()
        exc = await sproto.lost
        await client.lost
        server.close()
        await server.wait_closed()
        return bytes(sproto.data), exc, client.lost_count, sproto.lost_count
    assert run(loop, main()) == (b"bye", None, 1, 1)


def test_tls_unknown_certificate_authority(loop, tcp, server_ctx):
    async def main():
        server = await tcp.create_server(loop, asyncio.Protocol, ssl=server_ctx)
        async with server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await loop.create_connection(
                    asyncio.Protocol, *tcp.address(server),
                    ssl=ssl.create_default_context(), server_hostname="localhost")
    run(loop, main())


def test_tls_hostname_mismatch(loop, tcp, server_ctx, client_ctx):
    async def main():
        server = await tcp.create_server(loop, asyncio.Protocol, ssl=server_ctx)
        async with server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await loop.create_connection(
                    asyncio.Protocol, *tcp.address(server), ssl=client_ctx,
                    server_hostname="wrong.example")
    run(loop, main())


def test_tls_with_connected_sock(loop, tcp, server_ctx, client_ctx, closer):
    async def main():
        server = await tcp.create_server(loop, ServerFactory(loop, echo=True), ssl=server_ctx)
        async with server:
            sock = socket.create_connection(tcp.address(server))
            closer(sock)
            tr, p = await loop.create_connection(
                lambda: Recorder(loop), sock=sock, ssl=client_ctx,
                server_hostname="localhost")
            tr.write(b"via sock")
            got = await p.received(8)
            tr.close()
            await p.lost
            return got
    assert run(loop, main()) == b"via sock"


# -- start_tls ---------------------------------------------------------------

def test_start_tls_upgrades_a_plain_connection(loop, endpoint, server_ctx, client_ctx):
    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"echo": True})
        # Some plain text first, then both sides switch to TLS.
        client.transport.write(b"plain;")
        await client.received(6)
        old_c, old_s = client.transport, sproto.transport
        new_s, new_c = await asyncio.gather(
            loop.start_tls(old_s, sproto, server_ctx, server_side=True),
            loop.start_tls(old_c, client, client_ctx, server_hostname="localhost"))
        sproto.transport, client.transport = new_s, new_c
        new_c.write(b"tls;")
        got = await client.received(10)
        info = (isinstance(new_c, asyncio.Transport),
                new_c.get_extra_info("sslcontext") is client_ctx,
                new_s.get_extra_info("sslcontext") is server_ctx,
                new_c.get_extra_info("ssl_object") is not None,
                old_c.get_extra_info("ssl_object"))
        await nh.close_all(server, client, sproto)
        return got, info
    got, info = run(loop, main())
    assert got == b"plain;tls;"
    assert info == (True, True, True, True, None)


def test_start_tls_handshake_timeout(loop, tcp, client_ctx):
    # The peer accepts the plain connection but never answers the TLS hello.
    async def main():
        server, client, sproto = await nh.connect_pair(loop, tcp)
        with pytest.raises(ConnectionAbortedError):
            await loop.start_tls(client.transport, client, client_ctx,
                                 server_hostname="localhost",
                                 ssl_handshake_timeout=0.2)
        await sproto.lost
        server.close()
        await server.wait_closed()
    run(loop, main())


# -- handshake timeouts ------------------------------------------------------

def test_client_handshake_timeout(loop, tcp, client_ctx, closer):
    silent, addr = tcp.listener()   # accepts (in the kernel), never speaks
    closer(silent)

    async def main():
        t0 = loop.time()
        with pytest.raises(ConnectionAbortedError):
            await loop.create_connection(
                asyncio.Protocol, *addr, ssl=client_ctx, server_hostname="localhost",
                ssl_handshake_timeout=0.2)
        return loop.time() - t0
    assert run(loop, main()) < 5


def test_server_handshake_timeout(loop, tcp, server_ctx, closer):
    async def main():
        sf = ServerFactory(loop)
        server = await tcp.create_server(loop, sf, ssl=server_ctx, ssl_handshake_timeout=0.2)
        async with server:
            c = tcp.socket()
            closer(c)
            await loop.sock_connect(c, tcp.address(server))
            # No ClientHello: the server gives up and closes the connection.
            try:
                data = await loop.sock_recv(c, 100)
            except ConnectionResetError:
                data = b""
            return data, [p.calls for p in sf.protocols]
    data, calls = run(loop, main())
    assert data == b""
    assert all("made" not in c for c in calls)  # never connected to the protocol


# -- streams -----------------------------------------------------------------

def test_streams_with_ssl(loop, endpoint, server_ctx, client_ctx):
    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await endpoint.start_server(handle, ssl=server_ctx)
        async with server:
            reader, writer = await endpoint.open_connection(
                endpoint.address(server), ssl=client_ctx, server_hostname="localhost")
            writer.write(b"hello tls\n")
            line = await reader.readline()
            at_eof = await reader.read()
            cert = writer.get_extra_info("peercert")
            writer.close()
            await writer.wait_closed()
            return line, at_eof, cert["subject"]
    assert run(loop, main()) == (b"HELLO TLS\n", b"", ((("commonName", "localhost"),),))


def test_stream_writer_start_tls(loop, tcp, server_ctx, client_ctx):
    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
        line = await reader.readline()
        writer.write(b"secure:" + line)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            reader, writer = await asyncio.open_connection(*tcp.address(server))
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"GO\n"
            await writer.start_tls(client_ctx, server_hostname="localhost")
            upgraded = writer.get_extra_info("ssl_object") is not None
            writer.write(b"ping\n")
            answer = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return upgraded, answer
    assert run(loop, main()) == (True, b"secure:ping\n")


def test_failed_tls_accept_closes_the_socket(loop, loop_kind, server_ctx):
    def refuse():
        raise RuntimeError("no protocol for you")

    async def main():
        server = await loop.create_server(refuse, "127.0.0.1", 0, ssl=server_ctx)
        client = socket.create_connection(server.sockets[0].getsockname())
        client.setblocking(False)
        try:
            got = await loop.sock_recv(client, 100)  # b"" once the server closes its end
        finally:
            client.close()
        server.close()
        await server.wait_closed()
        return got
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert run(loop, main()) == b""
        gc.collect()
    if loop_kind == "pyasync":
        # Closed at once; asyncio leaves the accepted socket to the garbage
        # collector, which warns (docs/differences.md).
        assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


class CountingSSLObject(ssl.SSLObject):
    """An sslobject_class of the application's: its methods must be the
    ones called."""
    reads = 0
    writes = 0

    def read(self, len=1024, buffer=None):
        CountingSSLObject.reads += 1
        return super().read(len, buffer)

    def write(self, data):
        CountingSSLObject.writes += 1
        return super().write(data)


def test_tls_custom_sslobject_class(loop, endpoint, server_ctx, client_ctx):
    data = nh.payload(300 * 1024, seed=13)
    server_ctx.sslobject_class = CountingSSLObject
    client_ctx.sslobject_class = CountingSSLObject
    CountingSSLObject.reads = CountingSSLObject.writes = 0

    async def main():
        server, client, sproto = await tls_pair(
            loop, endpoint, server_ctx, client_ctx, {"echo": True})
        assert isinstance(client.transport.get_extra_info("ssl_object"), CountingSSLObject)
        await client.send_flow_controlled([data[i:i + 65536]
                                           for i in range(0, len(data), 65536)])
        got = await client.received(len(data))
        await nh.close_all(server, client, sproto)
        return got
    assert run(loop, main()) == data
    assert CountingSSLObject.writes >= -(-len(data) // 65536)  # the client's, at least
    assert CountingSSLObject.reads >= 2 * (len(data) // 16384)


def test_tls_transport_weakref_and_attributes(loop, tcp, server_ctx, client_ctx):
    # asyncio's TLS transport is a plain Python class: weak references and
    # attributes of the program's own work on it.
    async def main():
        server, client, sproto = await tls_pair(loop, tcp, server_ctx, client_ctx)
        tr = client.transport
        ref = weakref.ref(tr)
        tr.request_count = 3
        seen = (ref() is tr, tr.request_count, tr.__dict__.get("request_count"))
        await nh.close_all(server, client, sproto)
        return seen
    assert run(loop, main()) == (True, 3, 3)
