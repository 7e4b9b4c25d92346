"""Stream transports and protocols over TCP and Unix sockets:
create_connection / create_server / create_unix_* with asyncio.Protocol and
asyncio.BufferedProtocol, and every method of the transport."""
import asyncio
import gc
import hashlib
import os
import socket
import ssl
import subprocess
import sys

import pytest

import pyasync

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run
from _child import CHILD_CWD

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...


def test_echo_round_trip(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"echo": True})
        client.transport.write(b"ping")
        got = await client.received(4)
        await nh.close_all(server, client, sproto)
        return got
    assert run(loop, main()) == b"ping"


def test_transport_isinstance_of_transport(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        kinds = [isinstance(p.transport, asyncio.Transport) for p in (client, sproto)]
        await nh.close_all(server, client, sproto)
        return kinds
    assert run(loop, main()) == [True, True]


def test_protocol_callbacks_in_order(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        sproto.transport.write(b"hi")
        sproto.transport.close()
        exc = await client.lost
        await sproto.lost
        server.close()
        await server.wait_closed()
        return exc, client.calls, sproto.calls, bytes(client.data)
    exc, ccalls, scalls, data = run(loop, main())
    assert exc is None
    assert ccalls == ["made", "data", "eof", "lost"]
    assert scalls == ["made", "lost"]
    assert data == b"hi"


def test_writelines(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        client.transport.writelines([b"ab", bytearray(b"cd"), memoryview(b"ef")])
        client.transport.writelines([])
        got = await sproto.received(6)
        await nh.close_all(server, client, sproto)
        return got
    assert run(loop, main()) == b"abcdef"


@pytest.mark.parametrize("method", ["write", "writelines"])
def test_write_rejects_str(loop, endpoint, method):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        try:
            arg = "text" if method == "write" else ["text"]
            with pytest.raises(TypeError):
                getattr(client.transport, method)(arg)
        finally:
            await nh.close_all(server, client, sproto)
    run(loop, main())


def test_write_eof_half_close(loop, endpoint):
    # The client closes its sending side; the server sees eof_received(),
    # keeps its side open and still answers.
    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"keep_open": True})
        tr = client.transport
        assert tr.can_write_eof() is True
        tr.write(b"request")
        tr.write_eof()
        assert not tr.is_closing()
        with pytest.raises(RuntimeError):
            tr.write(b"more")
        await sproto.eof
        request = bytes(sproto.data)
        sproto.transport.write(b"response")
        sproto.transport.close()
        exc = await client.lost
        await sproto.lost
        server.close()
        await server.wait_closed()
        return request, bytes(client.data), exc, client.calls
    request, response, exc, calls = run(loop, main())
    assert (request, response, exc) == (b"request", b"response", None)
    assert calls == ["made", "data", "eof", "lost"]


def test_eof_received_returning_false_closes_transport(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        client.transport.write_eof()
        exc = await sproto.lost  # the transport closes itself after eof_received()
        await client.eof
        client.transport.close()
        await client.lost
        server.close()
        await server.wait_closed()
        return exc, sproto.calls
    assert run(loop, main()) == (None, ["made", "eof", "lost"])


def test_close_flushes_buffered_data(loop, endpoint):
    data = nh.payload(16 * nh.MiB)

    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        tr = client.transport
        tr.write(data)
        buffered = tr.get_write_buffer_size()
        tr.close()
        closing = tr.is_closing()
        exc = await client.lost
        await sproto.eof
        await sproto.lost
        server.close()
        await server.wait_closed()
        return buffered, closing, exc, bytes(sproto.data)
    buffered, closing, exc, got = run(loop, main())
    assert buffered > 0 and closing and exc is None
    assert len(got) == len(data) and got == data


def test_abort_drops_buffered_data(loop, endpoint):
    data = b"z" * (32 * nh.MiB)

    async def main():
        # The server does not read until told to: the client's data piles up.
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"pause_on_made": True})
        tr = client.transport
        tr.write(data)
        buffered = tr.get_write_buffer_size()
        tr.abort()
        closing = tr.is_closing()
        exc = await client.lost
        sproto.transport.resume_reading()
        await sproto.lost
        await nh.spin()
        server.close()
        await server.wait_closed()
        return buffered, closing, exc, client.lost_count, len(sproto.data)
    buffered, closing, exc, lost_count, received = run(loop, main())
    assert buffered > 0 and closing
    assert (exc, lost_count) == (None, 1)
    assert received < len(data)


def test_is_closing_and_is_reading_after_close(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        tr = client.transport
        before = (tr.is_closing(), tr.is_reading())
        tr.close()
        right_after = (tr.is_closing(), tr.is_reading())
        await client.lost
        after_lost = (tr.is_closing(), tr.is_reading())
        tr.close()  # a second close() is harmless
        await nh.close_all(server, sproto)
        return before, right_after, after_lost
    assert run(loop, main()) == ((False, True), (True, False), (True, False))


def test_pause_and_resume_reading(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        tr = client.transport
        tr.pause_reading()
        tr.pause_reading()  # idempotent
        paused = tr.is_reading()
        sproto.transport.write(b"data")
        nh.wait_readable(tr.get_extra_info("socket"))
        await nh.spin()
        while_paused = bytes(client.data)
        tr.resume_reading()
        tr.resume_reading()  # idempotent
        resumed = tr.is_reading()
        got = await client.received(4)
        await nh.close_all(server, client, sproto)
        return paused, while_paused, resumed, got
    assert run(loop, main()) == (False, b"", True, b"data")


def test_write_buffer_limits(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        tr = client.transport
        seen = [tr.get_write_buffer_limits()]
        tr.set_write_buffer_limits(high=1000)
        seen.append(tr.get_write_buffer_limits())
        tr.set_write_buffer_limits(high=100, low=10)
        seen.append(tr.get_write_buffer_limits())
        tr.set_write_buffer_limits(low=100)
        seen.append(tr.get_write_buffer_limits())
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=10, low=100)
        tr.set_write_buffer_limits()
        seen.append(tr.get_write_buffer_limits())
        await nh.close_all(server, client, sproto)
        return seen
    assert run(loop, main()) == [
        (16 * 1024, 64 * 1024), (250, 1000), (10, 100), (100, 400),
        (16 * 1024, 64 * 1024)]


def test_write_buffer_limits_take_any_number(loop, endpoint):
    """asyncio works the limits out with Python's arithmetic: floats, ints
    too large for a C size and infinity are taken; NaN and non-numbers fail
    its `high >= low >= 0` check or its arithmetic."""
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        tr = client.transport
        for high, low in ((1.5, None), (None, 0.5), (2 ** 70, None), (float("inf"), 1),
                          (2 ** 70, 2 ** 69)):
            tr.set_write_buffer_limits(high, low)
        tr.write(b"after")  # the limits are in force, and no pause follows
        errors = []
        for high, low in ((float("nan"), None), (None, float("nan")), (1.0, 2.0),
                          ("x", None), (None, "x"), (-1, None)):
            with pytest.raises((ValueError, TypeError)) as info:
                tr.set_write_buffer_limits(high, low)
            errors.append((info.type, str(info.value)))
        got = await sproto.received(5)
        await nh.close_all(server, client, sproto)
        return client.pauses, errors, got
    pauses, errors, got = run(loop, main())
    assert pauses == [] and got == b"after"
    assert errors[:4] == [
        (ValueError, "high (nan) must be >= low (nan) must be >= 0"),
        (ValueError, "high (nan) must be >= low (nan) must be >= 0"),
        (ValueError, "high (1.0) must be >= low (2.0) must be >= 0"),
        (TypeError, "unsupported operand type(s) for //: 'str' and 'int'")]
    assert errors[4][0] is TypeError and "'>=' not supported" in errors[4][1]
    assert errors[5] == (ValueError, "high (-1) must be >= low (-1) must be >= 0")


def test_writelines_of_bad_arguments(loop, endpoint):
    """From 3.12 asyncio's writelines() returns at once for a false argument
    and names a bad piece in memoryview()'s words; 3.11's joins the pieces
    with b"".join() first. Either way the data written before is intact."""
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        tr = client.transport
        tr.writelines([b"be", b"fore"])
        outcomes = []
        for arg in (None, 0, 5, [b"a", "b"], iter([b"ok", b"!"])):
            try:
                tr.writelines(arg)
                outcomes.append(None)
            except TypeError as exc:
                outcomes.append(str(exc))
        got = await sproto.received(len(b"beforeok!"))
        tr.write_eof()
        with pytest.raises(RuntimeError) as after_eof:
            tr.writelines([b"late"])
        outcomes.append(str(after_eof.value))
        await nh.close_all(server, client, sproto)
        return outcomes, got
    outcomes, got = run(loop, main())
    assert got == b"beforeok!"
    late = outcomes.pop()
    assert late == ("Cannot call writelines() after write_eof()" if sys.version_info >= (3, 12)
                    else "Cannot call write() after write_eof()")
    if sys.version_info >= (3, 12):
        assert outcomes == [None, None, "'int' object is not iterable",
                            "memoryview: a bytes-like object is required, not 'str'", None]
    else:
        assert outcomes == ["can only join an iterable", "can only join an iterable",
                            "can only join an iterable",
                            "sequence item 1: expected a bytes-like object, str found", None]


def test_get_write_buffer_size(loop, endpoint):
    size = 32 * nh.MiB  # more than the kernel buffers of a paused reader hold

    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"pause_on_made": True})
        tr = client.transport
        idle = tr.get_write_buffer_size()
        tr.write(b"q" * size)
        full = tr.get_write_buffer_size()
        sproto.transport.resume_reading()
        await sproto.received(size)
        drained = tr.get_write_buffer_size()
        await nh.close_all(server, client, sproto)
        return idle, full, drained
    idle, full, drained = run(loop, main())
    assert idle == 0 and 0 < full <= size and drained == 0


@pytest.mark.parametrize("high, low", [(64 * 1024, 16 * 1024), (65536.5, 16384.5)],
                         ids=["ints", "floats"])
def test_pause_writing_and_resume_writing(loop, endpoint, high, low):
    chunk = b"w" * 16 * 1024

    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"pause_on_made": True})
        tr = client.transport
        tr.set_write_buffer_limits(high=high, low=low)
        sent = 0
        while not client.pauses and sent < 64 * nh.MiB:
            tr.write(chunk)   # pause_writing() is called from inside write()
            sent += len(chunk)
        assert client.pauses, "pause_writing() never called"
        assert not client.resumes
        sproto.transport.resume_reading()
        await client.writable.wait()
        got = await sproto.received(sent)
        await nh.close_all(server, client, sproto)
        return client.pauses, client.resumes, len(got), sent
    pauses, resumes, received, sent = run(loop, main())
    assert len(pauses) == 1 and pauses[0] > high
    assert len(resumes) == 1 and resumes[0] <= low
    assert received == sent


def test_get_extra_info(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        addr = endpoint.address(server)
        c, s = client.transport, sproto.transport
        info = {
            "csock": c.get_extra_info("socket"),
            "csockname": c.get_extra_info("sockname"),
            "cpeername": c.get_extra_info("peername"),
            "ssockname": s.get_extra_info("sockname"),
            "speername": s.get_extra_info("peername"),
            "missing": c.get_extra_info("no-such-key", "dflt"),
            "missing_none": c.get_extra_info("no-such-key"),
        }
        info["real_sockname"] = info["csock"].getsockname()
        await nh.close_all(server, client, sproto)
        return addr, info
    addr, info = run(loop, main())
    sock = info["csock"]
    assert (sock.family, sock.type) == (endpoint.family, socket.SOCK_STREAM)
    assert info["csockname"] == info["real_sockname"]
    assert info["cpeername"] == addr
    assert info["ssockname"] == addr
    if endpoint.kind == "tcp":
        assert info["speername"] == info["csockname"]
    assert (info["missing"], info["missing_none"]) == ("dflt", None)


def test_tcp_nodelay_is_set(loop, tcp):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, tcp)
        flags = [p.transport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY) for p in (client, sproto)]
        await nh.close_all(server, client, sproto)
        return flags
    assert all(run(loop, main()))


class BufRecorder(asyncio.BufferedProtocol):
    def __init__(self, loop, size=1000):
        self.buf = bytearray(size)
        self.data = bytearray()
        self.updates = []
        self.calls = []
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.calls.append("made")
        self.transport = transport

    def get_buffer(self, sizehint):
        return memoryview(self.buf)

    def buffer_updated(self, nbytes):
        self.updates.append(nbytes)
        self.data += self.buf[:nbytes]

    def eof_received(self):
        self.calls.append("eof")

    def connection_lost(self, exc):
        self.calls.append("lost")
        self.lost.set_result(exc)


def test_buffered_protocol_receives_intact_data(loop, endpoint):
    data = nh.payload(1 * nh.MiB, seed=3)

    async def main():
        sf = ServerFactory(loop)
        server = await endpoint.create_server(loop, sf)
        tr, proto = await endpoint.create_connection(
            loop, lambda: BufRecorder(loop), endpoint.address(server))
        sproto = await sf.next()
        sproto.transport.write(data)
        sproto.transport.close()
        exc = await proto.lost
        await sproto.lost
        server.close()
        await server.wait_closed()
        return exc, proto
    exc, proto = run(loop, main())
    assert exc is None
    assert proto.calls == ["made", "eof", "lost"]
    assert max(proto.updates) <= 1000
    assert bytes(proto.data) == data


def test_connection_lost_called_once_with_none(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        client.transport.close()
        client.transport.close()
        results = (await client.lost, await sproto.lost)
        await nh.spin()
        server.close()
        await server.wait_closed()
        return results, client.lost_count, sproto.lost_count
    assert run(loop, main()) == ((None, None), 1, 1)


def test_connection_lost_gets_error_when_peer_resets(loop, endpoint, closer):
    # The peer goes away (TCP: SO_LINGER 0, a RST) while our writes are
    # still buffered: connection_lost() gets the error, once.
    lsock, addr = endpoint.listener()
    closer(lsock)

    async def main():
        tr, proto = await endpoint.create_connection(
            loop, lambda: Recorder(loop), addr)
        closer(tr)
        lsock.settimeout(5)
        conn, _ = lsock.accept()
        closer(conn)
        conn.send(b"unread")  # unread data on our side: no flush on close
        tr.write(b"x" * (8 * nh.MiB))
        assert tr.get_write_buffer_size() > 0
        if endpoint.kind == "tcp":
            nh.linger_reset(conn)
        conn.close()
        exc = await proto.lost
        await nh.spin()
        return exc, proto.lost_count
    exc, count = run(loop, main())
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), exc
    assert count == 1


def test_many_small_writes_arrive_in_order(loop, endpoint):
    pieces = [b"%05d," % i for i in range(10_000)]
    expected = b"".join(pieces)

    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        for p in pieces:
            client.transport.write(p)
        client.transport.write_eof()
        await sproto.eof
        await nh.close_all(server, client, sproto)
        return bytes(sproto.data)
    assert run(loop, main()) == expected


class HashSink(asyncio.Protocol):
    def __init__(self, loop, on_made=None):
        self.hash = hashlib.sha256()
        self.count = 0
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.hash.update(data)
        self.count += len(data)

    def eof_received(self):
        self.done.set_result((self.count, self.hash.hexdigest()))


def test_64mib_transfer_checksum(loop, endpoint):
    base = nh.payload(nh.MiB, seed=64)
    chunks = [i.to_bytes(4, "big") + base[4:] for i in range(64)]
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()

    async def main():
        sink = HashSink(loop)
        server = await endpoint.create_server(loop, lambda: sink)
        tr, client = await endpoint.create_connection(
            loop, lambda: Recorder(loop), endpoint.address(server))
        await client.send_flow_controlled(chunks)
        tr.write_eof()
        result = await sink.done
        tr.close()
        await client.lost
        server.close()
        await server.wait_closed()
        return result
    assert run(loop, main(), timeout=30) == (64 * nh.MiB, expected)


def test_thousand_concurrent_connections(loop, endpoint):
    n = 1000
    with nh.nofile_limit(2 * n + 500):
        async def main():
            sf = ServerFactory(loop, echo=True)
            server = await endpoint.create_server(loop, sf, backlog=n)
            addr = endpoint.address(server)
            pairs = await asyncio.gather(*(
                endpoint.create_connection(loop, lambda: Recorder(loop), addr)
                for _ in range(n)))
            sprotos = [await sf.next() for _ in range(n)]
            open_at_once = sum(not p.lost.done() for p in sprotos)
            for i, (tr, _) in enumerate(pairs):
                tr.write(b"%d;" % i)
            answers = await asyncio.gather(*(
                p.received(len(b"%d;" % i)) for i, (_, p) in enumerate(pairs)))
            await nh.close_all(server, *[p for _, p in pairs])
            await asyncio.gather(*(p.lost for p in sprotos))
            return open_at_once, answers
        open_at_once, answers = run(loop, main(), timeout=30)
    assert open_at_once == n
    assert answers == [b"%d;" % i for i in range(n)]


class CloseAtOnce(asyncio.Protocol):
    def connection_made(self, transport):
        transport.close()


def test_ten_thousand_connections_leak_no_fds(loop, endpoint):
    # The server closes first, so that TIME_WAIT stays on its side and the
    # client's ephemeral ports are not used up.
    async def one(addr):
        tr, p = await endpoint.create_connection(loop, lambda: Recorder(loop), addr)
        await p.lost

    async def main():
        server = await endpoint.create_server(loop, CloseAtOnce, backlog=200)
        addr = endpoint.address(server)
        await one(addr)   # warm up: whatever the loop sets up once is made now
        await nh.spin()
        gc.collect()
        before = nh.open_fd_count()
        for _ in range(100):
            await asyncio.gather(*(one(addr) for _ in range(100)))
        await nh.spin()
        gc.collect()
        after = nh.open_fd_count()
        server.close()
        await server.wait_closed()
        return before, after
    before, after = run(loop, main(), timeout=60)
    assert after == before


# -- servers closed with clients connected ----------------------------------

def test_server_close_keeps_existing_connections(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"echo": True})
        addr = endpoint.address(server)
        server.close()
        serving = server.is_serving()
        with pytest.raises(OSError):
            await endpoint.create_connection(loop, asyncio.Protocol, addr)
        client.transport.write(b"still there")
        got = await client.received(11)
        await nh.close_all(server, client, sproto)
        return serving, got
    assert run(loop, main()) == (False, b"still there")


def test_wait_closed_and_connected_clients(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        server.close()
        waiter = asyncio.ensure_future(server.wait_closed())
        await nh.spin()
        done_with_client = waiter.done()
        client.transport.close()
        await waiter
        await client.lost
        await sproto.lost
        return done_with_client
    # 3.12.1+: wait_closed() waits for the clients too; before, it
    # returned as soon as the server was closed.
    assert run(loop, main()) is (not nh.WAIT_CLOSED_WAITS_FOR_CLIENTS)


@pytest.mark.skipif(not nh.WAIT_CLOSED_WAITS_WHILE_OPEN,
                    reason="3.12.0's wait_closed() returned at once")
def test_wait_closed_waits_for_close(loop, endpoint):
    async def main():
        server = await endpoint.create_server(loop, asyncio.Protocol)
        waiter = asyncio.ensure_future(server.wait_closed())
        await nh.spin()
        before = waiter.done()
        server.close()
        await waiter
        return before
    assert run(loop, main()) is False


@pytest.mark.skipif(not nh.HAS_CLOSE_CLIENTS, reason="Server.close_clients() is 3.13+")
@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_server_close_clients(loop, endpoint, how):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        server.close()
        getattr(server, how)()
        sexc = await sproto.lost
        await client.lost
        await server.wait_closed()
        return sexc, sproto.transport.is_closing()
    assert run(loop, main()) == (None, True)


@pytest.mark.skipif(not nh.HAS_CLOSE_CLIENTS, reason="Server.close_clients() is 3.13+")
def test_close_clients_flushes_abort_clients_does_not(loop, endpoint):
    data = b"f" * (8 * nh.MiB)

    async def main():
        results = []
        for how in ("close_clients", "abort_clients"):
            server, client, sproto = await nh.connect_pair(
                loop, endpoint, client_kw={"pause_on_made": True})
            sproto.transport.write(data)
            getattr(server, how)()
            client.transport.resume_reading()
            await client.lost
            results.append(len(client.data))
            server.close()
            await server.wait_closed()
        return results
    flushed, aborted = run(loop, main())
    assert flushed == len(data) and aborted < len(data)


# -- bad arguments -----------------------------------------------------------

def _udp_sock():
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def _tcp_sock():
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def _ssl_sock():
    return ssl.create_default_context().wrap_socket(
        socket.socket(), server_hostname="x", do_handshake_on_connect=False)


P = asyncio.Protocol
A = ("127.0.0.1", 1)  # never reached: the arguments are refused first
X = "/tmp/never-made"
BAD_CONNECTION_CALLS = {
    "host-not-str": (TypeError, lambda lp, s: lp.create_connection(P, 123, 80)),
    "unknown-service": (socket.gaierror,
                        lambda lp, s: lp.create_connection(P, "127.0.0.1", "no-such-service")),
    "nothing": (ValueError, lambda lp, s: lp.create_connection(P)),
    "host-and-sock": (ValueError,
                      lambda lp, s: lp.create_connection(P, *A, sock=s(_tcp_sock()))),
    "server_hostname-without-ssl": (
        ValueError, lambda lp, s: lp.create_connection(P, *A, server_hostname="x")),
    "handshake-timeout-without-ssl": (
        ValueError, lambda lp, s: lp.create_connection(P, *A, ssl_handshake_timeout=1)),
    "shutdown-timeout-without-ssl": (
        ValueError, lambda lp, s: lp.create_connection(P, *A, ssl_shutdown_timeout=1)),
    "ssl-without-host": (
        ValueError, lambda lp, s: lp.create_connection(P, ssl=True, sock=s(_tcp_sock()))),
    "sock-datagram": (ValueError, lambda lp, s: lp.create_connection(P, sock=s(_udp_sock()))),
    "sock-ssl": (TypeError, lambda lp, s: lp.create_connection(P, sock=s(_ssl_sock()))),
    "unix-ssl-without-server_hostname": (
        ValueError, lambda lp, s: lp.create_unix_connection(P, X, ssl=True)),
    "unix-server_hostname-without-ssl": (
        ValueError, lambda lp, s: lp.create_unix_connection(P, X, server_hostname="x")),
    "unix-handshake-timeout-without-ssl": (
        ValueError, lambda lp, s: lp.create_unix_connection(P, X, ssl_handshake_timeout=1)),
    "unix-sock-inet": (
        ValueError, lambda lp, s: lp.create_unix_connection(P, sock=s(_tcp_sock()))),
    "unix-path-and-sock": (
        ValueError, lambda lp, s: lp.create_unix_connection(
            P, X, sock=s(socket.socket(socket.AF_UNIX)))),
    "unix-nothing": (ValueError, lambda lp, s: lp.create_unix_connection(P)),
    "server-sock-datagram": (ValueError, lambda lp, s: lp.create_server(P, sock=s(_udp_sock()))),
    "server-host-and-sock": (
        ValueError, lambda lp, s: lp.create_server(P, "127.0.0.1", 0, sock=s(_tcp_sock()))),
    "server-nothing": (ValueError, lambda lp, s: lp.create_server(P)),
    "server-handshake-timeout-without-ssl": (
        ValueError, lambda lp, s: lp.create_server(P, "127.0.0.1", 0, ssl_handshake_timeout=1)),
    "unix-server-sock-inet": (
        ValueError, lambda lp, s: lp.create_unix_server(P, sock=s(_tcp_sock()))),
    "unix-server-path-and-sock": (
        ValueError, lambda lp, s: lp.create_unix_server(
            P, X, sock=s(socket.socket(socket.AF_UNIX)))),
    "unix-server-nothing": (ValueError, lambda lp, s: lp.create_unix_server(P)),
    "unix-server-handshake-timeout-without-ssl": (
        ValueError, lambda lp, s: lp.create_unix_server(P, X, ssl_handshake_timeout=1)),
}


@pytest.mark.parametrize("case", sorted(BAD_CONNECTION_CALLS))
def test_bad_arguments(loop, case, closer):
    exc, call = BAD_CONNECTION_CALLS[case]

    def keep(sock):
        closer(sock)
        return sock
    with pytest.raises(exc):
        run(loop, call(loop, keep))


def test_create_server_on_closed_loop(loop, closer):
    lsock = socket.create_server(("127.0.0.1", 0))
    closer(lsock)
    loop.close()
    coro = loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(coro)
    coro.close()
    # Stepped by hand (nothing can run on a closed loop), the method
    # itself refuses to start serving.
    with pytest.raises(RuntimeError, match="closed"):
        nh.step(loop.create_server(asyncio.Protocol, sock=lsock))


def test_create_connection_on_closed_loop(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        nh.step(loop.create_connection(asyncio.Protocol, "localhost", 80))


# ---------------------------------------------------------------------------
# A peer gone away is an error of the connection, not a SIGPIPE
# ---------------------------------------------------------------------------

SIGPIPE_CHILD = r'''
import asyncio, signal, socket, sys
import pyasync

# An embedding application need not ignore SIGPIPE as CPython does at
# start-up: the default action kills the process.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
how, family = sys.argv[1], sys.argv[2]


async def main():
    loop = asyncio.get_running_loop()
    if family == "unix":
        ours, peer = socket.socketpair()
    else:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            peer = socket.create_connection(listener.getsockname())
            ours, _ = listener.accept()
    lost = loop.create_future()

    class Proto(asyncio.Protocol):
        def connection_lost(self, exc):
            lost.set_result(exc)
    transport, _ = await loop.connect_accepted_socket(Proto, ours)
    transport.pause_reading()  # the peer's EOF must not end the connection first
    if how == "buffered":
        transport.write(b"x" * (8 << 20))  # more than the socket takes
        assert transport.get_write_buffer_size() > 0
    peer.close()
    while not lost.done():
        if how == "write":
            transport.write(b"x" * 100)
        elif how == "writelines":
            transport.writelines([b"x" * 100, b"y" * 100])
        await asyncio.sleep(0.001)
    print(type(lost.result()).__name__)

pyasync.run(asyncio.wait_for(main(), 10))
'''


@pytest.mark.parametrize("family", ["unix", "tcp"])
@pytest.mark.parametrize("how", ["write", "writelines", "buffered"])
def test_peer_gone_is_a_connection_error_not_sigpipe(how, family):
    # pyasync only: asyncio's socket.send() has no MSG_NOSIGNAL, and with
    # SIGPIPE at its default the process dies (docs/differences.md).
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", SIGPIPE_CHILD, how, family], cwd=CHILD_CWD, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.strip() in ("BrokenPipeError", "ConnectionResetError")
