"""asyncio streams (open_connection / start_server and their Unix
variants) running on the loop under test."""
import asyncio

import pytest

import _net_helpers as nh
from _net_helpers import run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...


async def echo_lines(reader, writer):
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


def sender(blob):
    """A handler that sends blob and closes."""
    async def handle(reader, writer):
        writer.write(blob)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    return handle


async def with_server(endpoint, handler, client, **kw):
    """Start a stream server, connect to it, run client(reader, writer),
    close everything."""
    server = await endpoint.start_server(handler, **kw)
    async with server:
        reader, writer = await endpoint.open_connection(endpoint.address(server))
        try:
            return await client(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()


def test_echo(loop, endpoint):
    async def client(reader, writer):
        answers = []
        for word in (b"one\n", b"two\n", b"three\n"):
            writer.write(word)
            answers.append(await reader.readline())
        return answers
    assert run(loop, with_server(endpoint, echo_lines, client)) == [
        b"one\n", b"two\n", b"three\n"]


def test_many_clients(loop, endpoint):
    async def main():
        server = await endpoint.start_server(echo_lines)
        async with server:
            async def one(i):
                reader, writer = await endpoint.open_connection(endpoint.address(server))
                writer.write(b"%d\n" % i)
                line = await reader.readline()
                writer.close()
                await writer.wait_closed()
                return line
            return await asyncio.gather(*(one(i) for i in range(50)))
    assert run(loop, main()) == [b"%d\n" % i for i in range(50)]


def test_read_methods(loop, endpoint):
    blob = b"line1\nABCDEFpart1\r\npart2--END--tail"

    async def client(reader, writer):
        return [
            await reader.readline(),
            await reader.readexactly(6),
            await reader.readuntil(b"\r\n"),
            await reader.readuntil(b"--END--"),
            await reader.read(),
            reader.at_eof(),
            await reader.read(),
            await reader.readline(),
        ]
    assert run(loop, with_server(endpoint, sender(blob), client)) == [
        b"line1\n", b"ABCDEF", b"part1\r\n", b"part2--END--", b"tail", True, b"", b""]


def test_read_n(loop, endpoint):
    async def client(reader, writer):
        got = []
        while chunk := await reader.read(3):
            got.append(chunk)
        return b"".join(got), max(map(len, got))
    assert run(loop, with_server(endpoint, sender(b"0123456789"), client)) == (b"0123456789", 3)


def test_readexactly_at_eof(loop, endpoint):
    async def client(reader, writer):
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(10)
        return info.value.partial, info.value.expected
    assert run(loop, with_server(endpoint, sender(b"short"), client)) == (b"short", 10)


def test_readuntil_at_eof(loop, endpoint):
    async def client(reader, writer):
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readuntil(b"!")
        return info.value.partial
    assert run(loop, with_server(endpoint, sender(b"no mark"), client)) == b"no mark"


def test_readline_at_eof_returns_partial_line(loop, endpoint):
    async def client(reader, writer):
        return await reader.readline(), await reader.readline()
    assert run(loop, with_server(endpoint, sender(b"unfinished"), client)) == (b"unfinished", b"")


def test_limit_overrun(loop, endpoint):
    async def main():
        server = await endpoint.start_server(sender(b"x" * 100 + b"\n"))
        async with server:
            reader, writer = await endpoint.open_connection(endpoint.address(server), limit=16)
            try:
                with pytest.raises(asyncio.LimitOverrunError):
                    await reader.readuntil(b"\n")
                with pytest.raises(ValueError):
                    await reader.readline()
            finally:
                writer.close()
                await writer.wait_closed()
    run(loop, main())


def test_drain_waits_for_slow_reader(loop, endpoint):
    size = 16 * nh.MiB

    async def main():
        go = asyncio.Event()
        received = loop.create_future()

        async def slow(reader, writer):
            await go.wait()
            received.set_result(len(await reader.readexactly(size)))
            writer.close()
            await writer.wait_closed()

        server = await endpoint.start_server(slow)
        async with server:
            reader, writer = await endpoint.open_connection(endpoint.address(server))
            writer.write(b"d" * size)
            drain = asyncio.ensure_future(writer.drain())
            await nh.spin()
            waited = not drain.done()
            buffered = writer.transport.get_write_buffer_size()
            go.set()
            await drain
            n = await received
            writer.close()
            await writer.wait_closed()
            return waited, buffered > 0, n
    assert run(loop, main()) == (True, True, size)


def test_close_and_wait_closed(loop, endpoint):
    async def main():
        eof = loop.create_future()

        async def handle(reader, writer):
            data = await reader.read()
            eof.set_result((data, reader.at_eof()))
            writer.close()
            await writer.wait_closed()

        server = await endpoint.start_server(handle)
        async with server:
            reader, writer = await endpoint.open_connection(endpoint.address(server))
            writer.write(b"last words")
            writer.close()
            closing = writer.is_closing()
            await writer.wait_closed()
            await writer.wait_closed()  # again: returns at once
            return closing, await eof
    assert run(loop, main()) == (True, (b"last words", True))


def test_reader_at_eof(loop, endpoint):
    async def client(reader, writer):
        before = reader.at_eof()
        data = await reader.readexactly(4)
        rest = await reader.read()
        return data, rest, before, reader.at_eof()
    assert run(loop, with_server(endpoint, sender(b"data"), client)) == (b"data", b"", False, True)


def test_write_eof_half_close(loop, endpoint):
    async def handle(reader, writer):
        request = await reader.read()           # until the client's EOF
        writer.write(b"got " + request)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def client(reader, writer):
        assert writer.can_write_eof()
        writer.writelines([b"re", b"quest"])
        writer.write_eof()
        return await reader.read()
    assert run(loop, with_server(endpoint, handle, client)) == b"got request"


def test_writer_extra_info_and_transport(loop, endpoint):
    async def main():
        server = await endpoint.start_server(echo_lines)
        async with server:
            addr = endpoint.address(server)
            reader, writer = await endpoint.open_connection(addr)
            info = (writer.get_extra_info("peername"),
                    isinstance(writer.transport, asyncio.Transport),
                    writer.get_extra_info("socket") is not None)
            writer.close()
            await writer.wait_closed()
            return addr, info
    addr, info = run(loop, main())
    assert info == (addr, True, True)


def test_plain_function_callback(loop, tcp):
    seen = []

    def on_client(reader, writer):
        seen.append(writer.get_extra_info("peername"))
        writer.write(b"hello from a plain function\n")
        writer.close()

    async def client(reader, writer):
        return await reader.readline(), writer.get_extra_info("sockname")
    line, sockname = run(loop, with_server(tcp, on_client, client))
    assert line == b"hello from a plain function\n"
    assert seen == [sockname]
