"""Timers on pyasync: call_soon, call_later, call_at, cancelling a timer,
asyncio.sleep, asyncio.timeout, asyncio.wait_for and a periodic callback.

Run it (with pyasync installed, or with PYTHONPATH=. from a source checkout
where the extension has been built):

    python examples/timers.py

The callbacks print in order of their deadlines, whatever the order in which
they were scheduled.
"""
import asyncio

import pyasync


def say(text):
    print(text)


async def scheduled_callbacks(loop):
    loop.call_later(0.30, say, "call_later(0.30)")
    loop.call_later(0.10, say, "call_later(0.10)")
    loop.call_at(loop.time() + 0.20, say, "call_at(loop.time() + 0.20)")
    loop.call_soon(say, "call_soon: before every timer")
    cancelled = loop.call_later(0.15, say, "never printed: this timer is cancelled")
    cancelled.cancel()
    print("scheduled; cancelled one:", cancelled.cancelled())
    await asyncio.sleep(0.35)


async def timeouts():
    try:
        async with asyncio.timeout(0.1):
            await asyncio.sleep(10)
    except TimeoutError:
        print("asyncio.timeout(0.1) expired")

    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.05)
    except TimeoutError:
        print("asyncio.wait_for(..., timeout=0.05) expired")

    # A deadline that is not reached leaves the result alone.
    async with asyncio.timeout(5):
        result = await asyncio.sleep(0.01, result="in time")
    print("asyncio.timeout(5):", result)


async def periodic(loop, interval, count):
    """A callback that schedules itself again, `count` times."""
    done = loop.create_future()
    ticks = 0

    def tick():
        nonlocal ticks
        ticks += 1
        print(f"tick {ticks}")
        if ticks < count:
            loop.call_later(interval, tick)
        else:
            done.set_result(ticks)

    loop.call_later(interval, tick)
    return await done


async def main():
    loop = asyncio.get_running_loop()
    await scheduled_callbacks(loop)
    await timeouts()
    print("periodic callback ran", await periodic(loop, 0.02, 3), "times")


if __name__ == "__main__":
    pyasync.run(main())
