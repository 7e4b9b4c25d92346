"""Echo server on a chosen event loop, for bench/echo.py.

    python bench/echo_server.py --loop {asyncio,uvloop,pyasync}
                                --style {protocol,streams,streams256k,exactly,sock}
                                --transport {tcp,unix} --addr HOST:PORT|PATH
                                [--size BYTES] [--tls CERT:KEY]
    python bench/echo_server.py --probe LOOP

Styles, from the highest-level API to the lowest:

  protocol  an asyncio.Protocol whose data_received() calls transport.write()
            (loop.create_server / loop.create_unix_server)
  streams   asyncio.start_server / start_unix_server; per connection a
            coroutine doing reader.read(65536), writer.write(), await
            writer.drain()
  streams256k  the same with reader.read(262144)
  exactly   the same with reader.readexactly(SIZE), SIZE the client's
            message size (--size)
  sock      loop.sock_accept() on a non-blocking listening socket, one task
            per connection doing loop.sock_recv(conn, 65536) and
            loop.sock_sendall(); TCP_NODELAY is set here by hand (the
            transports of the other two styles set it themselves)

Prints "READY" on stdout once listening and serves until SIGTERM or SIGINT.
Anything that goes wrong before that (e.g. a loop without networking yet:
NotImplementedError) is a traceback on stderr and exit status 1.

The loop is created by bench/workloads.py's make_loop(), like every other
benchmark. The repo root is put first on sys.path so that `pyasync` is the
in-place build of this tree.
"""

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import workloads  # noqa: E402  (bench/ is sys.path[0] when run as a script)

STYLES = ("protocol", "streams", "streams256k", "exactly", "sock")
TRANSPORTS = ("tcp", "unix")
READ_SIZE = 65536
LARGE_READ_SIZE = 262144


# --------------------------------------------------------------------------
# The three styles
# --------------------------------------------------------------------------

class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        if not _nodelay_checked:
            _check_nodelay(transport.get_extra_info("socket"))

    def data_received(self, data):
        self.transport.write(data)


def _streams_echo(read):
    """A start_server() callback echoing what `read(reader)` returns."""
    async def echo(reader, writer):
        if not _nodelay_checked:
            _check_nodelay(writer.get_extra_info("socket"))
        try:
            while True:
                data = await read(reader)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to report
        finally:
            writer.close()
    return echo


def _stream_reader_call(style, size):
    if style == "streams":
        return lambda reader: reader.read(READ_SIZE)
    if style == "streams256k":
        return lambda reader: reader.read(LARGE_READ_SIZE)
    return lambda reader: reader.readexactly(size)


async def _sock_echo(loop, conn):
    with conn:
        try:
            while True:
                data = await loop.sock_recv(conn, READ_SIZE)
                if not data:
                    break
                await loop.sock_sendall(conn, data)
        except ConnectionError:
            pass


async def _sock_serve(loop, listener, tcp):
    tasks = set()  # strong references: the loop keeps only weak ones
    while True:
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        if tcp:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = loop.create_task(_sock_echo(loop, conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


_nodelay_checked = False


def _check_nodelay(sock):
    """Warn once on stderr if a TCP transport left Nagle's algorithm on.

    asyncio and uvloop set TCP_NODELAY on every TCP transport; a loop that
    does not would pay Nagle/delayed-ACK stalls, and the harness shows the
    warning so that the slowdown is explained rather than mysterious.
    """
    global _nodelay_checked
    if _nodelay_checked or sock is None:
        return
    _nodelay_checked = True
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and \
                not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
            print("warning: TCP_NODELAY is not set on the accepted socket",
                  file=sys.stderr, flush=True)
    except (OSError, AttributeError):
        pass


# --------------------------------------------------------------------------
# Listening
# --------------------------------------------------------------------------

def _split_addr(addr):
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit("bad TCP address %r: want HOST:PORT" % addr)
    return host.strip("[]"), int(port)


def _listening_socket(transport, addr):
    """A bound, listening, non-blocking socket (sock style)."""
    if transport == "tcp":
        host, port = _split_addr(addr)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    else:
        if os.path.exists(addr):
            os.unlink(addr)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(addr)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(loop, style, transport, addr, size, ssl=None):
    try:
        await _serve(loop, style, transport, addr, size, ssl)
    finally:
        # Also after a failed start: the socket file may exist already.
        if transport == "unix" and os.path.exists(addr):
            os.unlink(addr)


async def _serve(loop, style, transport, addr, size, ssl):
    stop = loop.create_future()
    _install_signal_handlers(loop, stop)

    server = task = listener = None
    if style == "protocol":
        if transport == "tcp":
            host, port = _split_addr(addr)
            server = await loop.create_server(EchoProtocol, host, port, backlog=1024, ssl=ssl)
        else:
            server = await loop.create_unix_server(EchoProtocol, addr, backlog=1024, ssl=ssl)
    elif style != "sock":
        echo = _streams_echo(_stream_reader_call(style, size))
        if transport == "tcp":
            host, port = _split_addr(addr)
            server = await asyncio.start_server(echo, host, port, backlog=1024, ssl=ssl)
        else:
            server = await asyncio.start_unix_server(echo, addr, backlog=1024, ssl=ssl)
    else:
        listener = _listening_socket(transport, addr)
        task = loop.create_task(_sock_serve(loop, listener, transport == "tcp"))
        await asyncio.sleep(0)  # let it reach its first sock_accept()
        if task.done():
            task.result()  # raises whatever stopped it (e.g. NotImplementedError)

    print("READY", flush=True)
    try:
        if task is not None:
            # Wait for a signal, but fail loudly if the accept loop dies.
            await asyncio.wait([stop, task], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()
        else:
            await stop
    finally:
        if server is not None:
            server.close()
        if task is not None:
            task.cancel()
        if listener is not None:
            listener.close()


def _install_signal_handlers(loop, stop):
    def on_signal():
        if not stop.done():
            stop.set_result(None)
    for signo in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signo, on_signal)
        except (NotImplementedError, AttributeError, RuntimeError, ValueError):
            # A loop without signal support: SIGTERM keeps its default action
            # (the process ends at once) and SIGINT raises KeyboardInterrupt.
            pass


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=list(workloads.LOOP_KINDS))
    parser.add_argument("--style", choices=STYLES, default="protocol")
    parser.add_argument("--transport", choices=TRANSPORTS, default="tcp")
    parser.add_argument("--addr", help="HOST:PORT for tcp, a socket path for unix")
    parser.add_argument("--size", type=int, default=READ_SIZE,
                        help="the client's message size (the exactly style reads that much)")
    parser.add_argument("--tls", metavar="CERT:KEY",
                        help="serve TLS with this certificate and key (protocol, streams)")
    parser.add_argument("--probe", metavar="LOOP",
                        help="print the loop's version and origin as JSON and exit")
    args = parser.parse_args(argv)

    if args.probe:
        loop, version, where = workloads.make_loop(args.probe)
        loop.close()
        print(json.dumps({"loop": args.probe, "version": version, "where": where,
                          "python": platform.python_version()}))
        return 0
    if not args.loop or not args.addr:
        parser.error("--loop and --addr are required")

    ctx = None
    if args.tls:
        if args.style == "sock":
            parser.error("--tls: for the protocol and streams styles")
        import ssl
        cert, _, key = args.tls.partition(":")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    run_server(args.loop, lambda loop: serve(loop, args.style, args.transport, args.addr,
                                             args.size, ctx))
    return 0


def run_server(kind, serve_on):
    """Run the coroutine serve_on(loop) on a new loop of `kind` until it
    ends or SIGINT arrives, then close the loop."""
    loop, _version, _where = workloads.make_loop(kind)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve_on(loop))
    except KeyboardInterrupt:
        pass
    finally:
        asyncio.set_event_loop(None)
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
