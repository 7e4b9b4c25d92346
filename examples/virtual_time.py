"""Virtual time: testing code that waits for hours, in milliseconds.

A client with a retry policy (back-off doubling from one minute) talks to a
flaky service over a real socket; the service answers only after its
warm-up of two hours. On a loop of pyasync.testing, every sleep and timeout
passes at once, in deadline order, with the outcome a real clock would give.

Run it (with pyasync installed, or with PYTHONPATH=. from a source checkout
where the extension has been built):

    python examples/virtual_time.py
"""
import asyncio
import time

import pyasync.testing

WARM_UP = 2 * 3600.0


async def flaky_service(reader, writer):
    loop = asyncio.get_running_loop()
    await reader.readline()
    if loop.time() < WARM_UP:
        await asyncio.sleep(3600)  # hangs for an hour: the client times out
    writer.write(b"ready\n")
    await writer.drain()
    writer.close()


async def ask(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"status?\n")
        async with asyncio.timeout(30):
            return (await reader.readline()).decode().strip()
    finally:
        writer.close()


async def main():
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(flaky_service, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    delay = 60.0
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = await ask(port)
            break
        except TimeoutError:
            print(f"attempt {attempt} timed out at {loop.time() / 60:.1f} min; retry in {delay / 60:.0f} min")
            await asyncio.sleep(delay)
            delay *= 2
    print(f"attempt {attempt}: {answer!r} at {loop.time() / 3600:.2f} h of virtual time")
    server.close()
    await server.wait_closed()


started = time.perf_counter()
with asyncio.Runner(loop_factory=pyasync.testing.new_event_loop) as runner:
    runner.run(main())
print("real time under a second:", time.perf_counter() - started < 1.0)
