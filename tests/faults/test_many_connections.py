"""2,000 connections open at once on one loop: each client connects, sends a
message and gets it back while all the others are still open, then all are
closed. Needs about 4,100 descriptors (both ends live in this process): the
soft RLIMIT_NOFILE is raised to that if the hard limit allows."""
import asyncio

import _net_helpers as nh
from ._support import run

N = 2000
BATCH = 250   # connects in flight at once: under the listen backlog


class Echo(asyncio.Protocol):
    live = 0
    peak = 0

    def connection_made(self, transport):
        self.transport = transport
        Echo.live += 1
        Echo.peak = max(Echo.peak, Echo.live)

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        Echo.live -= 1


class Client(asyncio.Protocol):
    def __init__(self, loop, n):
        self.message = b"client %d" % n
        self.data = b""
        self.echoed = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data
        if len(self.data) >= len(self.message) and not self.echoed.done():
            self.echoed.set_result(self.data)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_two_thousand_concurrent_connections(loop):
    Echo.live = Echo.peak = 0

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=N)
        host, port = server.sockets[0].getsockname()
        clients = []
        try:
            for start in range(0, N, BATCH):
                made = await asyncio.gather(*(
                    loop.create_connection(lambda n=n: Client(loop, n), host, port)
                    for n in range(start, min(N, start + BATCH))))
                clients += [proto for _, proto in made]
            # Every client talks while all the others are connected.
            for proto in clients:
                proto.transport.write(proto.message)
            echoes = await asyncio.gather(*(proto.echoed for proto in clients))
            while Echo.live < N:   # the server's side of the last ones
                await asyncio.sleep(0.01)
            peak = Echo.peak
            wrong = [i for i, (proto, got) in enumerate(zip(clients, echoes))
                     if got != proto.message]
        finally:
            for proto in clients:
                proto.transport.close()
            await asyncio.gather(*(proto.lost for proto in clients))
            server.close()
            await server.wait_closed()
        while Echo.live > 0:
            await asyncio.sleep(0.01)
        return peak, wrong

    with nh.nofile_limit(2 * N + 200):
        peak, wrong = run(loop, main(), timeout=60)
    assert wrong == []
    assert peak == N
