"""uvicorn serving an ASGI application on each loop, queried with httpx.

Two ways to put uvicorn on a loop: ``uvicorn.Server(config).serve()``
awaited inside a running loop, and ``Config(loop=...)``, which since uvicorn
0.36 takes an import string of a loop factory (``--loop
pyasync:new_event_loop`` on the command line) that ``Server.run()`` hands to
asyncio.run(); the command line itself runs too, in a subprocess.
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import _ecosystem as eco  # noqa: E402

import pyasync  # noqa: E402

# uvicorn's --loop value naming each kind of loop: its own "asyncio", and
# pyasync's factory by import string.
UVICORN_LOOP = {"asyncio": "asyncio", "pyasync": "pyasync:new_event_loop"}


class App:
    """A plain ASGI application: lifespan, JSON, a streamed body, an echo
    and a websocket echo."""

    def __init__(self):
        self.lifespan = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await self.websocket(receive, send)
        elif scope["path"] == "/stream":
            await self.start(send, b"text/plain")
            for i in range(5):
                await send({"type": "http.response.body", "body": b"part %d\n" % i,
                            "more_body": True})
                await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})
        elif scope["path"] == "/echo":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await self.start(send, b"application/octet-stream")
            await send({"type": "http.response.body", "body": body[::-1]})
        else:
            loop = asyncio.get_running_loop()
            info = {"loop": type(loop).__module__.split(".")[0],
                    "client_port": scope["client"][1]}
            await self.start(send, b"application/json")
            await send({"type": "http.response.body", "body": json.dumps(info).encode()})

    @staticmethod
    async def start(send, content_type):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type)]})

    @staticmethod
    async def websocket(receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message["text"].upper()})


# For the uvicorn command line: "test_uvicorn_httpx:app".
app = App()


def config(app, **options):
    return uvicorn.Config(app, lifespan="on", log_level="warning", **options)


async def query(port):
    """What a client sees of the application: several requests on one kept
    alive connection, a streamed body, an uploaded body."""
    base = f"http://{eco.LOCALHOST}:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        first = (await client.get("/")).json()
        second = (await client.get("/")).json()
        async with client.stream("GET", "/stream") as response:
            streamed = [line async for line in response.aiter_lines()]
        upload = bytes(range(256)) * 4096
        echoed = (await client.post("/echo", content=upload)).content
    return {
        "loop": first["loop"],
        "kept_alive": first["client_port"] == second["client_port"],
        "streamed": streamed,
        "echoed": echoed == upload[::-1],
    }


def expected(loop_kind):
    return {"loop": loop_kind, "kept_alive": True,
            "streamed": [f"part {i}" for i in range(5)], "echoed": True}


@pytest.mark.parametrize("http_impl", ["h11", "httptools"])
def test_server_serve_inside_the_running_loop(run, loop_kind, http_impl):
    if http_impl == "httptools":
        pytest.importorskip("httptools")
    app = App()

    async def main():
        sock, port = eco.bound_socket()
        with sock:
            server = uvicorn.Server(config(app, http=http_impl))
            serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    await asyncio.sleep(0.005)
                seen = await query(port)
            finally:
                server.should_exit = True
                await serving
        return seen

    assert run(main) == expected(loop_kind)
    assert app.lifespan == ["lifespan.startup", "lifespan.shutdown"]


def test_config_loop_factory_in_a_thread(run, loop_kind):
    # Server.run() makes its own loop from Config(loop=...): with
    # "pyasync:new_event_loop" the application runs on pyasync.
    app = App()
    sock, port = eco.bound_socket()
    server = uvicorn.Server(config(app, loop=UVICORN_LOOP[loop_kind]))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + eco.TIMEOUT
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.started
        seen = run(query, port)
    finally:
        server.should_exit = True
        thread.join(eco.TIMEOUT)
        sock.close()
    assert not thread.is_alive()
    assert seen == expected(loop_kind)
    assert app.lifespan == ["lifespan.startup", "lifespan.shutdown"]


def test_command_line_loop_option(run, loop_kind):
    # uvicorn --loop pyasync:new_event_loop, serving on a socket it inherits.
    sock, port = eco.bound_socket()
    sock.listen()  # so that requests wait in its backlog until uvicorn has started
    here = os.path.dirname(os.path.abspath(__file__))
    pyasync_root = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pyasync_root, env.get("PYTHONPATH")]))
    with sock:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--loop", UVICORN_LOOP[loop_kind],
             "--fd", str(sock.fileno()), "--app-dir", here, "--log-level", "warning",
             "test_uvicorn_httpx:app"],
            pass_fds=[sock.fileno()], env=env, cwd=here,  # not the source tree (tests/_child.py)
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = run(query, port)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output = server.communicate(timeout=eco.TIMEOUT)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            output = server.communicate()[0]
    assert seen == expected(loop_kind), output
    assert server.returncode == 0, output


def test_websocket_through_uvicorn(run, loop_kind):
    websockets_client = pytest.importorskip("websockets.asyncio.client")

    async def main():
        sock, port = eco.bound_socket()
        with sock:
            server = uvicorn.Server(config(App(), ws="websockets-sansio"))
            serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    await asyncio.sleep(0.005)
                async with websockets_client.connect(f"ws://{eco.LOCALHOST}:{port}/ws") as ws:
                    replies = []
                    for word in ("one", "two"):
                        await ws.send(word)
                        replies.append(await ws.recv())
            finally:
                server.should_exit = True
                await serving
        return replies

    assert run(main) == ["ONE", "TWO"]


def test_idle_connection_closed_after_keep_alive_timeout(run):
    async def main():
        sock, port = eco.bound_socket()
        with sock:
            server = uvicorn.Server(config(App(), timeout_keep_alive=0.05))
            serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    await asyncio.sleep(0.005)
                reader, writer = await asyncio.open_connection(eco.LOCALHOST, port)
                writer.write(b"GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
                status = await reader.readline()
                started = time.monotonic()
                await asyncio.wait_for(reader.read(), 2)  # the rest, until the server closes
                idle = time.monotonic() - started
                writer.close()
                await writer.wait_closed()
            finally:
                server.should_exit = True
                await serving
        return status, idle >= 0.04

    assert run(main) == (b"HTTP/1.1 200 OK\r\n", True)
