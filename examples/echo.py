"""An echo server and its clients on pyasync: a Protocol server, stream
clients, TCP and a Unix socket, all in one process.

Run it (with pyasync installed, or with PYTHONPATH=. from a source checkout
where the extension has been built):

    python examples/echo.py

The server echoes every byte back; each client sends lines, reads the same
lines back, then half-closes (write_eof) and waits for the server to close.
"""
import asyncio
import os
import tempfile

import pyasync


class EchoProtocol(asyncio.Protocol):
    """Server side: a transport, a data_received and nothing else."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        self.transport.close()  # the client said it is done


async def client(reader, writer, name, count):
    for i in range(count):
        writer.write(f"{name} line {i}\n".encode())
    await writer.drain()
    lines = [await reader.readline() for _ in range(count)]
    writer.write_eof()
    rest = await reader.read()  # b"" once the server closes
    writer.close()
    await writer.wait_closed()
    return all(line == f"{name} line {i}\n".encode() for i, line in enumerate(lines)) and not rest


async def main(directory):
    loop = asyncio.get_running_loop()
    tcp = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    path = os.path.join(directory, "echo.sock")
    unix = await loop.create_unix_server(EchoProtocol, path)

    async def tcp_client(n):
        return await client(*await asyncio.open_connection("127.0.0.1", port), f"tcp{n}", 100)

    async def unix_client(n):
        return await client(*await asyncio.open_unix_connection(path), f"unix{n}", 100)

    results = await asyncio.gather(*(tcp_client(n) for n in range(10)),
                                   *(unix_client(n) for n in range(10)))
    print(f"event loop: pyasync ({type(loop).__name__})")
    print(f"TCP clients echoed intact: {sum(results[:10])} of 10")
    print(f"Unix clients echoed intact: {sum(results[10:])} of 10")
    for server in (tcp, unix):
        server.close()
        await server.wait_closed()
    print("servers closed")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        pyasync.run(main(directory))
