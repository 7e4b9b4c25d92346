"""loop.sendfile(transport, file, offset, count, fallback=): the native path
on plain socket transports, the fallback, and what is refused."""
import asyncio
import io

import pytest

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...

SIZE = 4 * nh.MiB + 12345


@pytest.fixture(scope="module")
def content():
    return nh.payload(SIZE, seed=5)


@pytest.fixture
def data_file(tmp_path, content):
    path = tmp_path / "sendfile.bin"
    path.write_bytes(content)
    with open(path, "rb") as f:
        yield f


async def _send(loop, endpoint, file, *args, before=b"", after=b"", **kw):
    """Connect, write before, sendfile, write after, close; returns
    (sendfile's result, what the server received, transport reading?)."""
    server, client, sproto = await nh.connect_pair(loop, endpoint)
    try:
        tr = client.transport
        if before:
            tr.write(before)
        sent = await loop.sendfile(tr, file, *args, **kw)
        reading = tr.is_reading()
        if after:
            tr.write(after)
        tr.close()
        await sproto.eof
        return sent, bytes(sproto.data), reading
    finally:
        await nh.close_all(server, client, sproto)


@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_whole_file(loop, endpoint, data_file, content, fallback):
    sent, got, reading = run(loop, _send(loop, endpoint, data_file, fallback=fallback))
    assert (sent, len(got)) == (SIZE, SIZE) and got == content
    assert data_file.tell() == SIZE
    assert reading  # reading resumes once sendfile is over


def test_sendfile_offset_and_count(loop, endpoint, data_file, content):
    sent, got, _ = run(loop, _send(loop, endpoint, data_file, 1000, 200_000))
    assert (sent, got) == (200_000, content[1000:201_000])
    assert data_file.tell() == 201_000


def test_sendfile_offset_to_end(loop, endpoint, data_file, content):
    sent, got, _ = run(loop, _send(loop, endpoint, data_file, SIZE - 10))
    assert (sent, got) == (10, content[-10:])


def test_sendfile_count_past_end(loop, endpoint, data_file, content):
    sent, got, _ = run(loop, _send(loop, endpoint, data_file, SIZE - 10, 1000))
    assert (sent, got) == (10, content[-10:])


def test_sendfile_keeps_order_with_writes(loop, endpoint, data_file, content):
    sent, got, _ = run(loop, _send(loop, endpoint, data_file, 0, 50_000,
                                   before=b"HEAD" * 10_000, after=b"TAIL"))
    assert got == b"HEAD" * 10_000 + content[:50_000] + b"TAIL"


def test_sendfile_to_slow_reader(loop, endpoint, data_file, content):
    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"pause_on_made": True})
        task = asyncio.ensure_future(loop.sendfile(client.transport, data_file))
        await nh.spin()
        waiting = not task.done()
        sproto.transport.resume_reading()
        sent = await task
        got = await sproto.received(SIZE)
        await nh.close_all(server, client, sproto)
        return waiting, sent, got
    waiting, sent, got = run(loop, main())
    assert waiting and sent == SIZE and got == content


def test_sendfile_fallback_for_non_regular_file(loop, endpoint):
    blob = b"not a real file " * 5000
    sent, got, _ = run(loop, _send(loop, endpoint, io.BytesIO(blob)))
    assert (sent, got) == (len(blob), blob)


def test_sendfile_non_regular_file_without_fallback(loop, endpoint):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        try:
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sendfile(client.transport, io.BytesIO(b"x"), fallback=False)
        finally:
            await nh.close_all(server, client, sproto)
    run(loop, main())


def test_sendfile_over_tls_falls_back(loop, tcp, data_file, content, server_ctx, client_ctx):
    sent, got = _tls_send(loop, tcp, data_file, server_ctx, client_ctx)
    assert (sent, got) == (300_000, content[:300_000])


def _tls_send(loop, tcp, data_file, server_ctx, client_ctx, fallback=True):
    async def main():
        sf = ServerFactory(loop)
        server = await tcp.create_server(loop, sf, ssl=server_ctx)
        tr, client = await tcp.create_connection(
            loop, lambda: Recorder(loop), tcp.address(server),
            ssl=client_ctx, server_hostname="localhost")
        sproto = await sf.next()
        try:
            sent = await loop.sendfile(tr, data_file, 0, 300_000, fallback=fallback)
            got = await sproto.received(300_000)
            return sent, got
        finally:
            await nh.close_all(server, client, sproto)
    return run(loop, main())


def test_sendfile_over_tls_without_fallback(loop, tcp, data_file, server_ctx, client_ctx):
    with pytest.raises(RuntimeError, match="fallback is disabled"):
        _tls_send(loop, tcp, data_file, server_ctx, client_ctx, fallback=False)
    assert data_file.tell() == 0


def test_sendfile_on_closing_transport(loop, endpoint, data_file):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        client.transport.close()
        try:
            with pytest.raises(RuntimeError):
                await loop.sendfile(client.transport, data_file)
        finally:
            await nh.close_all(server, client, sproto)
    run(loop, main())


def test_sendfile_on_datagram_transport(loop, data_file):
    async def main():
        tr, p = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        try:
            with pytest.raises(RuntimeError):
                await loop.sendfile(tr, data_file)
        finally:
            tr.close()
    run(loop, main())


@pytest.mark.parametrize("kwargs, exc", [
    ({"offset": -1}, ValueError),
    ({"offset": "0"}, TypeError),
    ({"count": 0}, ValueError),
    ({"count": -5}, ValueError),
    ({"count": 2.0}, TypeError),
])
def test_sendfile_bad_arguments(loop, tcp, data_file, kwargs, exc):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, tcp)
        try:
            with pytest.raises(exc):
                await loop.sendfile(client.transport, data_file, **kwargs)
        finally:
            await nh.close_all(server, client, sproto)
    run(loop, main())


def test_sendfile_text_file_rejected(loop, tcp, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("some text")

    async def main():
        server, client, sproto = await nh.connect_pair(loop, tcp)
        try:
            with open(path) as f, pytest.raises(ValueError, match="binary"):
                await loop.sendfile(client.transport, f)
        finally:
            await nh.close_all(server, client, sproto)
    run(loop, main())


def test_transport_usable_after_sendfile(loop, endpoint, data_file):
    async def main():
        server, client, sproto = await nh.connect_pair(
            loop, endpoint, server_kw={"echo": True})
        tr = client.transport
        await loop.sendfile(tr, data_file, 0, 1000)
        await client.received(1000)       # the echo of the file's bytes
        tr.write(b"!")
        got = await client.received(1001)
        await nh.close_all(server, client, sproto)
        return got[-1:]
    assert run(loop, main()) == b"!"
