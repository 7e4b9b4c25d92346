"""Libraries' own timeouts on a loop of virtual time (pyasync.testing): they
expire at once, at their deadline in virtual time, with the outcome they have
on a real clock, while real sockets carry the data."""
import asyncio
import socket
import time

import pytest

import pyasync.testing as vt

anyio = pytest.importorskip("anyio")
aiohttp = pytest.importorskip("aiohttp")


def _run_virtual(coro_fn):
    with asyncio.Runner(loop_factory=vt.new_event_loop) as runner:
        started = time.perf_counter()
        result = runner.run(coro_fn())
        return result, time.perf_counter() - started


def test_anyio_fail_after_and_move_on_after():
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(3600):
                await anyio.sleep(7200)
        failed_at = loop.time()
        with anyio.move_on_after(60) as scope:
            await anyio.Event().wait()
        moved_at = loop.time()
        with anyio.fail_after(10):
            await anyio.sleep(5)  # in time: no error
        return failed_at, scope.cancelled_caught, moved_at, loop.time()

    (failed_at, caught, moved_at, end), real = _run_virtual(main)
    assert (failed_at, caught, moved_at, end) == (3600.0, True, 3660.0, 3665.0)
    assert real < 2


def test_aiohttp_client_timeout_against_a_silent_server():
    # A real listening socket that accepts and never answers: aiohttp's
    # total timeout of 30 s expires at virtual 30 s, at once.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    async def main():
        loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            start = loop.time()
            with pytest.raises(asyncio.TimeoutError):
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    await response.read()
            return loop.time() - start

    try:
        waited, real = _run_virtual(main)
    finally:
        listener.close()
    assert waited == pytest.approx(30, abs=0.01)
    assert real < 2


def test_aiohttp_server_and_client_with_a_slow_handler():
    from aiohttp import web

    async def slow(request):
        await asyncio.sleep(45)
        return web.Response(text="late but fine")

    async def main():
        loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_get("/", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            start = loop.time()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    text = await response.text()
            return text, loop.time() - start
        finally:
            await runner.cleanup()

    (text, waited), real = _run_virtual(main)
    assert text == "late but fine"
    assert 45 <= waited < 46
    assert real < 3
