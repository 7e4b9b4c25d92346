"""Blocking work in threads while pyasync's loop stays responsive:
loop.run_in_executor() and asyncio.to_thread().

Run it (with pyasync installed, or with PYTHONPATH=. from a source checkout
where the extension has been built):

    python examples/executor.py

A heartbeat coroutine keeps ticking on the loop while blocking calls (which
would freeze the loop if called directly) run in the default thread pool.
"""
import asyncio
import hashlib
import time

import pyasync


def blocking_digest(data, rounds):
    """Blocking work: a sleep (like a blocking call) and some hashing."""
    time.sleep(0.1)
    digest = data
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:16]


async def heartbeat(beats):
    while True:
        await asyncio.sleep(0.01)
        beats.append(time.monotonic())


async def main():
    loop = asyncio.get_running_loop()
    beats = []
    beating = asyncio.create_task(heartbeat(beats))

    results = await asyncio.gather(
        loop.run_in_executor(None, blocking_digest, b"pyasync", 1000),
        loop.run_in_executor(None, blocking_digest, b"asyncio", 1000),
        asyncio.to_thread(blocking_digest, b"threads", 1000),
    )
    beating.cancel()
    for name, digest in zip(("pyasync", "asyncio", "threads"), results):
        print(f"sha256^1000({name}) = {digest}")
    # The loop was free while the threads worked.
    print("heartbeat went on while the threads worked:", len(beats) >= 3)


if __name__ == "__main__":
    pyasync.run(main())
