"""aiohttp on each loop: client and server, keep-alive, websockets,
sendfile (web.FileResponse), and the same under blockbuster, which fails any
blocking call (os.stat, os.sendfile, os.unlink, ...) made from the event
loop's thread outside asyncio's own modules."""
import asyncio
import hashlib
import os
import time
from unittest import mock

import pytest

aiohttp = pytest.importorskip("aiohttp")

from aiohttp import web  # noqa: E402

import _ecosystem as eco  # noqa: E402

pytest_plugins = ["_net_helpers"]  # TLS fixtures: server_ctx, client_ctx

FILE_SIZE = 1024 * 1024 + 17


@pytest.fixture(scope="module")
def served_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("aiohttp") / "payload.bin"
    path.write_bytes(os.urandom(FILE_SIZE))
    return path


def make_app(served_file=None):
    async def hello(request):
        return web.Response(text=f"hello {request.query.get('name', 'world')}")

    async def echo_json(request):
        return web.json_response({"got": await request.json()})

    async def peer(request):
        # The client's address: the same for requests on one kept-alive connection.
        return web.Response(text=str(request.transport.get_extra_info("peername")[1]))

    async def stream(request):
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(5):
            await response.write(b"chunk %d\n" % i)
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    async def slow(request):
        await asyncio.sleep(1)
        return web.Response(text="too late")

    async def send_file(request):
        return web.FileResponse(served_file)

    async def ws_echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "close":
                    await ws.close(code=4000, message=b"asked to")
                else:
                    await ws.send_str(msg.data.upper())
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/json", echo_json)
    app.router.add_get("/peer", peer)
    app.router.add_get("/stream", stream)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", ws_echo)
    if served_file is not None:
        app.router.add_get("/file", send_file)
    return app


class Served:
    """An aiohttp AppRunner serving make_app() on an ephemeral port of
    127.0.0.1 (and, given unix_path, on that Unix socket too)."""

    def __init__(self, served_file=None, unix_path=None, ssl_context=None, **runner_options):
        self.app = make_app(served_file)
        self.unix_path = unix_path
        self.ssl_context = ssl_context
        self.runner_options = runner_options

    async def __aenter__(self):
        self.runner = web.AppRunner(self.app, **self.runner_options)
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, eco.LOCALHOST, 0, ssl_context=self.ssl_context).start()
            if self.unix_path is not None:
                await web.UnixSite(self.runner, self.unix_path).start()
        except BaseException:
            await self.runner.cleanup()
            raise
        self.port = self.runner.addresses[0][1]
        return self

    def url(self, path):
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://{eco.LOCALHOST}:{self.port}{path}"

    async def __aexit__(self, *exc_info):
        await self.runner.cleanup()


def test_client_and_server(run):
    async def main():
        async with Served() as served, aiohttp.ClientSession() as session:
            async with session.get(served.url("/"), params={"name": "pyasync"}) as r:
                hello = (r.status, await r.text())
            async with session.post(served.url("/json"), json={"a": [1, 2]}) as r:
                echoed = await r.json()
            async with session.get(served.url("/stream")) as r:
                lines = [line async for line in r.content]
            async with session.get(served.url("/missing")) as r:
                missing = r.status
        return hello, echoed, lines, missing

    assert run(main) == (
        (200, "hello pyasync"), {"got": {"a": [1, 2]}},
        [b"chunk %d\n" % i for i in range(5)], 404)


def test_https_and_wss(run, server_ctx, client_ctx):
    async def main():
        async with Served(ssl_context=server_ctx) as served, aiohttp.ClientSession() as session:
            ports = []
            for _ in range(3):
                async with session.get(served.url("/peer"), ssl=client_ctx) as r:
                    ports.append(await r.text())
            async with session.ws_connect(served.url("/ws"), ssl=client_ctx) as ws:
                await ws.send_bytes(b"tls" * 100000)
                echoed = await ws.receive_bytes()
        return len(set(ports)), echoed == b"slt" * 100000

    assert run(main) == (1, True)  # one kept-alive TLS connection


def test_client_timeout(run):
    async def main():
        timeout = aiohttp.ClientTimeout(total=0.05)
        # The server gives the slow handler 0.1 s to finish when it closes.
        async with Served(shutdown_timeout=0.1) as served, \
                aiohttp.ClientSession(timeout=timeout) as session:
            with pytest.raises(asyncio.TimeoutError):
                async with session.get(served.url("/slow")) as r:
                    await r.text()
            async with session.get(served.url("/")) as r:
                return await r.text()

    assert run(main) == "hello world"


def test_keep_alive_reuses_the_connection(run):
    async def main():
        async with Served() as served, aiohttp.ClientSession() as session:
            ports = []
            for _ in range(5):
                async with session.get(served.url("/peer")) as r:
                    ports.append(await r.text())
            async with session.get(served.url("/peer"), headers={"Connection": "close"}) as r:
                ports.append(await r.text())
            async with session.get(served.url("/peer")) as r:
                ports.append(await r.text())
        return ports

    ports = run(main)
    assert len(set(ports[:6])) == 1  # one connection, closed after the 6th
    assert ports[6] != ports[0]


def test_idle_connections_leave_the_client_pool(run):
    # The connector drops a pooled connection idle for longer than its
    # keepalive_timeout (a timer of the loop's, in real time here).
    async def main():
        connector = aiohttp.TCPConnector(keepalive_timeout=0.1)
        async with Served() as served, aiohttp.ClientSession(connector=connector) as session:
            ports = []
            for pause in (0, 0, 0.4):
                await asyncio.sleep(pause)
                async with session.get(served.url("/peer")) as r:
                    ports.append(await r.text())
        return ports[0] == ports[1], ports[1] == ports[2]

    assert run(main) == (True, False)


def test_keep_alive_timeout_follows_a_patched_loop_time(run):
    # A test that fast-forwards time by patching loop.time (as fake-clock
    # helpers do) expects the server's keep-alive timer, scheduled with
    # loop.call_at(loop.time() + keepalive_timeout), to come due: asyncio's
    # loop reads self.time() to decide which timers are due. A loop that
    # keeps its own clock and ignores the override never fires it.
    async def main():
        loop = asyncio.get_running_loop()
        async with Served(keepalive_timeout=5) as served:
            reader, writer = await asyncio.open_connection(eco.LOCALHOST, served.port)
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(len("hello world"))
                real_time = loop.time
                # 6 s later, by the loop's clock (run()'s bound, 10 s, is
                # still ahead). No timer can bound the wait (timers follow
                # the patched clock): poll, for at most 1 s of real time.
                with mock.patch.object(loop, "time", lambda: real_time() + 6):
                    deadline = time.monotonic() + 1
                    while not reader.at_eof() and time.monotonic() < deadline:
                        await asyncio.sleep(0)
                closed_by_server = reader.at_eof()
            finally:
                writer.close()
                await writer.wait_closed()
        return head.split(b"\r\n")[0], closed_by_server

    assert run(main) == (b"HTTP/1.1 200 OK", True)


def test_websockets(run):
    async def main():
        async with Served() as served, aiohttp.ClientSession() as session:
            async with session.ws_connect(served.url("/ws")) as ws:
                await ws.send_str("hello")
                text = await ws.receive_str()
                await ws.send_bytes(b"abc" * 50000)
                binary = await ws.receive_bytes()
                await ws.send_str("close")
                closing = await ws.receive()
            return text, binary == b"cba" * 50000, closing.type, ws.close_code

    assert run(main) == ("HELLO", True, aiohttp.WSMsgType.CLOSE, 4000)


def test_file_response_with_sendfile(run, served_file):
    async def main():
        async with Served(served_file) as served, aiohttp.ClientSession() as session:
            async with session.get(served.url("/file")) as r:
                whole = await r.read()
            async with session.get(served.url("/file"), headers={"Range": "bytes=1000-1999"}) as r:
                part = (r.status, await r.read())
        return whole, part

    whole, part = run(main)
    content = served_file.read_bytes()
    assert hashlib.sha256(whole).digest() == hashlib.sha256(content).digest()
    assert part == (206, content[1000:2000])


# ------------------------------------------------------------ under blockbuster

@pytest.fixture
def blockbuster():
    blockbuster = pytest.importorskip("blockbuster")
    with blockbuster.blockbuster_ctx() as bb:
        yield bb


def test_under_blockbuster(run, served_file, blockbuster):
    # aiohttp serves files with loop.sendfile(), which must not call
    # os.sendfile() from Python code outside asyncio (blockbuster only lets
    # asyncio's own base_events/unix_events call it).
    async def main():
        async with Served(served_file) as served, aiohttp.ClientSession() as session:
            async with session.get(served.url("/")) as r:
                hello = await r.text()
            async with session.get(served.url("/file")) as r:
                size = len(await r.read())
            async with session.ws_connect(served.url("/ws")) as ws:
                await ws.send_str("hi")
                echoed = await ws.receive_str()
        return hello, size, echoed

    assert run(main) == ("hello world", FILE_SIZE, "HI")


def test_unix_site_under_blockbuster(run, tmp_path, blockbuster):
    # web.UnixSite: create_unix_server() looks at (os.stat) and removes
    # (os.unlink) a stale socket file, and closing the server removes its
    # file: blockbuster allows that in asyncio's unix_events only.
    path = str(tmp_path / "aiohttp.sock")

    async def main():
        async with Served(unix_path=path):
            connector = aiohttp.UnixConnector(path=path)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get("http://localhost/") as r:
                    return await r.text()

    assert run(main) == "hello world"
