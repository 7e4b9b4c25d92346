"""Leak check of a server's connection churn: rounds of connections opened,
echoed and closed against a pyasync server in this process, with the
process's fd count, RSS, live objects and traced memory after each round.

    python tools/churn_leaks.py [--rounds 6] [--seconds 3] [--tls] [--unix]

Plain connections come from bench/.build/echo_client --churn (built by
bench/echo.py); with --tls, from a Python client process that makes TLS
connections (slower: fewer per round). A leak shows as a figure that grows
with every round; the first round warms caches up and is not compared.
"""
import argparse
import asyncio
import gc
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import pyasync  # noqa: E402

TLS_CLIENT = r'''
import socket, ssl, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
n = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    with socket.create_connection((host, port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                got += s.recv(64)
    n += 1
print(n)
'''


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--unix", action="store_true")
    args = parser.parse_args()

    loop = pyasync.new_event_loop()
    ready = threading.Event()
    state = {}

    async def serve():
        ctx = None
        if args.tls:
            import _net_helpers
            cert_dir = tempfile.mkdtemp()
            cert, key = _net_helpers._make_self_signed(cert_dir)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
        if args.unix:
            path = os.path.join(tempfile.mkdtemp(), "s.sock")
            server = await loop.create_unix_server(Echo, path, ssl=ctx, backlog=128)
            state["addr"] = path
        else:
            server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=ctx, backlog=128)
            state["addr"] = "127.0.0.1:%d" % server.sockets[0].getsockname()[1]
        state["server"] = server
        state["stop"] = loop.create_future()
        ready.set()
        await state["stop"]
        server.close()
        await server.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    ready.wait()
    client = os.path.join(ROOT, "bench", ".build", "echo_client")
    tracemalloc.start()
    total = 0
    print("round  connections  fds   rss_kib  objects  traced_kib")
    try:
        for rnd in range(args.rounds):
            if args.tls:
                host, port = state["addr"].rsplit(":", 1)
                out = subprocess.run([sys.executable, "-c", TLS_CLIENT, host, port,
                                      str(args.seconds)], capture_output=True, text=True,
                                     check=True).stdout
                n = int(out.strip())
            else:
                out = subprocess.run([client, "--transport", "unix" if args.unix else "tcp",
                                      "--addr", state["addr"], "-c", "64", "-s", "64", "-d",
                                      str(args.seconds), "-w", "0", "--churn"],
                                     capture_output=True, text=True, check=True).stdout
                n = json.loads(out.strip().splitlines()[-1])["requests"]
            total += n
            # Let the last connections finish on the server.
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0.2), loop).result()
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] // 1024
            print("%5d  %11d  %3d  %8d  %7d  %10d" % (rnd, total, fd_count(), rss_kib(),
                                                     len(gc.get_objects()), traced))
    finally:
        loop.call_soon_threadsafe(state["stop"].set_result, None)
        thread.join()
        loop.close()


if __name__ == "__main__":
    main()
