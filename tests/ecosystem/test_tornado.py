"""tornado on each loop: its IOLoop wraps the running asyncio loop, so an
HTTP server and client, websockets, TCP streams and ``gen.coroutine`` all run
on the loop under test.

tornado checks futures with ``isinstance(x, asyncio.Future)``
(tornado.concurrent.is_future, asserted by IOLoop.add_future()), so it
needs the loop's futures and tasks to pass that check.
"""
import asyncio
import concurrent.futures
import datetime

import pytest

tornado = pytest.importorskip("tornado")

from tornado import gen, httpclient, httpserver, iostream, netutil, tcpclient  # noqa: E402
from tornado import tcpserver, web, websocket  # noqa: E402
from tornado.concurrent import is_future  # noqa: E402
from tornado.ioloop import IOLoop, PeriodicCallback  # noqa: E402

import _ecosystem as eco  # noqa: E402

pytest_plugins = ["_net_helpers"]  # TLS fixtures: server_ctx, client_ctx


class HelloHandler(web.RequestHandler):
    def get(self):
        self.write("hello")


class SleepHandler(web.RequestHandler):
    async def get(self):
        await gen.sleep(0.01)
        self.write({"slept": True})


class GenCoroutineHandler(web.RequestHandler):
    """The pre-async/await style: a generator whose yields go through
    tornado's gen module."""

    @gen.coroutine
    def get(self):
        loop = asyncio.get_running_loop()
        yield gen.sleep(0.01)
        in_thread = yield IOLoop.current().run_in_executor(None, lambda: 6 * 7)
        future = loop.create_future()
        loop.call_soon(future.set_result, "from a loop future")
        from_loop = yield future
        self.write(f"{in_thread} {from_loop}")


class EchoHandler(web.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "application/octet-stream")
        self.write(self.request.body[::-1])


class EchoWebSocket(websocket.WebSocketHandler):
    def on_message(self, message):
        return self.write_message(message, binary=isinstance(message, bytes))


def make_app():
    return web.Application([
        (r"/", HelloHandler),
        (r"/sleep", SleepHandler),
        (r"/gen", GenCoroutineHandler),
        (r"/echo", EchoHandler),
        (r"/ws", EchoWebSocket),
    ])


class Served:
    """tornado's HTTPServer on an ephemeral port of 127.0.0.1."""

    def __init__(self, ssl_options=None):
        self.ssl_options = ssl_options

    async def __aenter__(self):
        sockets = netutil.bind_sockets(0, eco.LOCALHOST)
        self.port = sockets[0].getsockname()[1]
        self.server = httpserver.HTTPServer(make_app(), ssl_options=self.ssl_options)
        self.server.add_sockets(sockets)
        return self

    def url(self, path, scheme="http"):
        return f"{scheme}://{eco.LOCALHOST}:{self.port}{path}"

    async def __aexit__(self, *exc_info):
        self.server.stop()
        await self.server.close_all_connections()


def test_http_server_and_client(run):
    # On a loop whose futures fail isinstance(f, asyncio.Future), the first
    # fetch dies in IOLoop.add_future(): `assert is_future(future)`.
    async def main():
        async with Served() as served:
            client = httpclient.AsyncHTTPClient(force_instance=True)
            try:
                hello = await client.fetch(served.url("/"))
                slept = await client.fetch(served.url("/sleep"))
                old_style = await client.fetch(served.url("/gen"))
                body = bytes(range(256)) * 1000
                echoed = await client.fetch(
                    served.url("/echo"), method="POST", body=body,
                    headers={"Content-Type": "application/octet-stream"})
                with pytest.raises(httpclient.HTTPClientError) as missing:
                    await client.fetch(served.url("/missing"))
            finally:
                client.close()
        assert (hello.code, hello.body) == (200, b"hello")
        assert slept.body == b'{"slept": true}'
        assert old_style.body == b"42 from a loop future"
        assert echoed.body == body[::-1]
        assert missing.value.code == 404

    run(main)


def test_https(run, server_ctx, client_ctx):
    async def main():
        async with Served(ssl_options=server_ctx) as served:
            client = httpclient.AsyncHTTPClient(force_instance=True)
            try:
                response = await client.fetch(served.url("/", scheme="https"),
                                              ssl_options=client_ctx)
            finally:
                client.close()
        return response.code, response.body

    assert run(main) == (200, b"hello")


def test_concurrent_fetches(run):
    async def main():
        async with Served() as served:
            client = httpclient.AsyncHTTPClient(force_instance=True, max_clients=4)
            try:
                responses = await asyncio.gather(
                    *(client.fetch(served.url("/sleep")) for _ in range(10)))
            finally:
                client.close()
        assert [r.code for r in responses] == [200] * 10

    run(main)


def test_loop_futures_are_tornado_futures(run):
    async def main():
        loop = asyncio.get_running_loop()
        task = loop.create_task(asyncio.sleep(0))
        checks = (is_future(loop.create_future()), is_future(task))
        await task
        return checks

    assert run(main) == (True, True)


def test_gen_coroutine(run):
    # gen.coroutine chains the futures it is handed (loop futures, tasks,
    # lists of them, executor futures) through IOLoop.add_future().
    @gen.coroutine
    def add_later(a, b):
        yield gen.sleep(0.001)
        return a + b

    @gen.coroutine
    def compute():
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.call_later(0.001, ready.set_result, 1)
        one = yield ready
        two, three = yield [add_later(1, 1), loop.create_task(asyncio.sleep(0, 3))]
        # tornado's deadlines are IOLoop.time() (time.time()) or timedeltas.
        four = yield gen.with_timeout(IOLoop.current().time() + 5, add_later(2, 2))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            five = yield pool.submit(lambda: 5)
        never = loop.create_future()
        with pytest.raises(gen.TimeoutError):
            yield gen.with_timeout(datetime.timedelta(seconds=0.01), never)
        return [one, two, three, four, five, never.cancelled()]

    async def main():
        return await compute()

    # gen.with_timeout() leaves the future it gave up on alone (not cancelled).
    assert run(main) == [1, 2, 3, 4, 5, False]


def test_ioloop_timers_and_periodic_callback(run):
    async def main():
        io_loop = IOLoop.current()
        fired = []
        done = asyncio.get_running_loop().create_future()

        def tick():
            fired.append("tick")
            if fired.count("tick") == 3:
                periodic.stop()
                done.set_result(None)

        periodic = PeriodicCallback(tick, 5)
        periodic.start()
        io_loop.call_later(0.001, fired.append, "later")
        cancelled = io_loop.call_later(0.001, fired.append, "cancelled")
        io_loop.remove_timeout(cancelled)
        io_loop.add_callback(fired.append, "callback")
        await done
        return fired

    fired = run(main)
    assert fired[0] == "callback"
    assert sorted(fired) == ["callback", "later", "tick", "tick", "tick"]


def test_websocket(run):
    async def main():
        async with Served() as served:
            conn = await websocket.websocket_connect(served.url("/ws", scheme="ws"))
            try:
                await conn.write_message("text")
                text = await conn.read_message()
                await conn.write_message(b"\x00binary" * 10000, binary=True)
                binary = await conn.read_message()
            finally:
                conn.close()
            return text, binary

    assert run(main) == ("text", b"\x00binary" * 10000)


class LineEchoServer(tcpserver.TCPServer):
    async def handle_stream(self, stream, address):
        try:
            while True:
                line = await stream.read_until(b"\n")
                await stream.write(line.upper())
        except iostream.StreamClosedError:
            pass


def test_tcp_server_and_client_streams(run):
    async def main():
        sockets = netutil.bind_sockets(0, eco.LOCALHOST)
        port = sockets[0].getsockname()[1]
        server = LineEchoServer()
        server.add_sockets(sockets)
        try:
            stream = await tcpclient.TCPClient().connect(eco.LOCALHOST, port)
            try:
                replies = []
                for line in (b"one\n", b"two\n", b"x" * 100000 + b"\n"):
                    await stream.write(line)
                    replies.append(await stream.read_until(b"\n", max_bytes=200000))
            finally:
                stream.close()
        finally:
            server.stop()
        return replies

    assert run(main) == [b"ONE\n", b"TWO\n", b"X" * 100000 + b"\n"]
