"""HTTP server on a chosen event loop, for bench/httpbench.py.

    python bench/http_server.py --loop {asyncio,uvloop,pyasync}
                                --server {protocol,uvicorn} --addr HOST:PORT

Servers:

  protocol  a minimal asyncio.Protocol: finds the end of each request's head
            and writes a fixed "Hello, world!" response; a request with
            "Connection: close" gets a response saying so and the transport
            is closed after it (loop.create_server)
  uvicorn   uvicorn with httptools serving an ASGI app that answers
            "Hello, world!" (lifespan off, no access log), on the loop given
            (uvicorn's loop="none": it runs on whatever loop is current)

Prints "READY" on stdout once listening and serves until SIGTERM or SIGINT.
"""

import argparse
import asyncio
import os
import signal
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import workloads  # noqa: E402  (bench/ is sys.path[0] when run as a script)
from echo_server import _split_addr, run_server  # noqa: E402

SERVERS = ("protocol", "uvicorn")
BODY = b"Hello, world!"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(BODY)
KEEP_ALIVE_RESPONSE = HEAD + b"\r\n" + BODY
CLOSE_RESPONSE = HEAD + b"Connection: close\r\n\r\n" + BODY


class HttpProtocol(asyncio.Protocol):
    """Requests without a body (wrk sends GETs), pipelined or not."""

    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        buf = self.pending + data if self.pending else data
        start = 0
        while True:
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                break
            head = buf[start:end]
            start = end + 4
            if b"onnection: close" in head or b"onnection: Close" in head:
                self.transport.write(CLOSE_RESPONSE)
                self.transport.close()
                return
            self.transport.write(KEEP_ALIVE_RESPONSE)
        self.pending = buf[start:]


async def hello_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": BODY})


async def serve_protocol(loop, host, port):
    stop = loop.create_future()
    for signo in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signo, lambda: stop.done() or stop.set_result(None))
    server = await loop.create_server(HttpProtocol, host, port, backlog=1024)
    print("READY", flush=True)
    try:
        await stop
    finally:
        server.close()


async def serve_uvicorn(host, port):
    import uvicorn
    config = uvicorn.Config(hello_app, host=host, port=port, loop="none", http="httptools",
                            lifespan="off", access_log=False, log_level="warning",
                            backlog=1024)
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped it
            raise SystemExit("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    print("READY", flush=True)
    await serving  # uvicorn handles SIGTERM/SIGINT itself


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=list(workloads.LOOP_KINDS), required=True)
    parser.add_argument("--server", choices=SERVERS, default="protocol")
    parser.add_argument("--addr", required=True, help="HOST:PORT")
    args = parser.parse_args(argv)
    host, port = _split_addr(args.addr)
    if args.server == "protocol":
        run_server(args.loop, lambda loop: serve_protocol(loop, host, port))
    else:
        run_server(args.loop, lambda loop: serve_uvicorn(host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
