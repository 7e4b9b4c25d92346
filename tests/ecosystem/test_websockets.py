"""The websockets library (its asyncio implementation) on each loop: a
server and clients exchanging messages, pings, keepalive, broadcast, closing
handshakes and plain HTTP answers."""
import asyncio
import http

import pytest

websockets = pytest.importorskip("websockets")

from websockets.asyncio.client import connect, unix_connect  # noqa: E402
from websockets.asyncio.server import broadcast, serve, unix_serve  # noqa: E402
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK  # noqa: E402

import _ecosystem as eco  # noqa: E402

pytest_plugins = ["_net_helpers"]  # TLS fixtures: server_ctx, client_ctx


async def echo(connection):
    async for message in connection:
        if message == "bye":
            await connection.close(code=1000, reason="bye to you")
        else:
            await connection.send(message)


def health_check(connection, request):
    if request.path == "/health":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


def uri(server, path="/", scheme="ws"):
    port = server.sockets[0].getsockname()[1]
    return f"{scheme}://{eco.LOCALHOST}:{port}{path}"


def test_echo_text_binary_and_large_messages(run):
    async def main():
        async with serve(echo, eco.LOCALHOST, 0, max_size=2 ** 22) as server:
            async with connect(uri(server), max_size=2 ** 22) as ws:
                await ws.send("hello")
                text = await ws.recv()
                await ws.send(b"\x00\xff" * 10)
                binary = await ws.recv()
                big = bytes(range(256)) * 8192  # 2 MiB
                await ws.send(big)
                echoed_big = await ws.recv()
                await ws.send(["frag", "mented"])  # one message in two frames
                fragmented = await ws.recv()
        return text, binary, echoed_big == big, fragmented

    assert run(main) == ("hello", b"\x00\xff" * 10, True, "fragmented")


def test_over_tls(run, server_ctx, client_ctx):
    async def main():
        async with serve(echo, eco.LOCALHOST, 0, ssl=server_ctx) as server:
            async with connect(uri(server, scheme="wss"), ssl=client_ctx) as ws:
                replies = []
                for message in ("secure", b"\x01" * 100000):
                    await ws.send(message)
                    replies.append(await ws.recv())
        return replies

    assert run(main) == ["secure", b"\x01" * 100000]


def test_over_a_unix_socket(run, tmp_path):
    path = str(tmp_path / "ws.sock")

    async def main():
        async with unix_serve(echo, path):
            async with unix_connect(path) as ws:
                await ws.send("local")
                return await ws.recv()

    assert run(main) == "local"


def test_ping_pong_and_keepalive(run):
    async def main():
        async with serve(echo, eco.LOCALHOST, 0, ping_interval=0.02) as server:
            async with connect(uri(server), ping_interval=0.02, ping_timeout=1) as ws:
                latency = await ws.ping()
                await asyncio.wait_for(latency, 2)
                # Several keepalive rounds pass while the connection idles.
                await asyncio.sleep(0.1)
                await ws.send("still here")
                return await ws.recv(), ws.latency > 0

    assert run(main) == ("still here", True)


def test_closing_handshake(run):
    async def main():
        async with serve(echo, eco.LOCALHOST, 0) as server:
            async with connect(uri(server)) as ws:
                await ws.send("bye")
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()
                return ws.close_code, ws.close_reason

    assert run(main) == (1000, "bye to you")


def test_server_shutdown_closes_clients(run):
    async def main():
        server = await serve(echo, eco.LOCALHOST, 0)
        clients = [await connect(uri(server)) for _ in range(3)]
        server.close()  # a 1001 "going away" close for every client
        await server.wait_closed()
        codes = []
        for ws in clients:
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            codes.append(ws.close_code)
        return codes

    assert run(main) == [1001] * 3


def test_broadcast(run):
    async def main():
        joined = []
        everyone_joined = asyncio.Event()

        async def handler(connection):
            joined.append(connection)
            if len(joined) == 5:
                everyone_joined.set()
            await connection.wait_closed()

        async with serve(handler, eco.LOCALHOST, 0) as server:
            clients = [await connect(uri(server)) for _ in range(5)]
            await everyone_joined.wait()
            broadcast(joined, "news")
            received = [await ws.recv() for ws in clients]
            for ws in clients:
                await ws.close()
        return received

    assert run(main) == ["news"] * 5


def test_plain_http_request_and_abrupt_disconnect(run):
    async def main():
        async with serve(echo, eco.LOCALHOST, 0, process_request=health_check) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(eco.LOCALHOST, port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            response = await reader.read()
            writer.close()
            await writer.wait_closed()

            ws = await connect(uri(server))
            ws.transport.abort()  # no closing handshake
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            # The server goes on serving.
            async with connect(uri(server)) as ws:
                await ws.send("after")
                after = await ws.recv()
        return response.split(b"\r\n")[0], response.endswith(b"OK\n"), after

    assert run(main) == (b"HTTP/1.1 200 OK", True, "after")
