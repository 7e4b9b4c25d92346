"""Hello, pyasync: run a coroutine on pyasync's event loop with pyasync.run().

Run it (with pyasync installed, or with PYTHONPATH=. from a source checkout
where the extension has been built):

    python examples/hello.py

pyasync.run() is asyncio.run() on a pyasync loop: it makes the loop, runs
main() to the end, cleans up and closes the loop. Everything inside main() is
ordinary asyncio.
"""
import asyncio

import pyasync


async def greet(name, delay):
    await asyncio.sleep(delay)
    print(f"Hello, {name}!")
    return name


async def main():
    loop = asyncio.get_running_loop()
    print(f"event loop: {type(loop).__module__.split('.')[0]} ({type(loop).__name__})")
    # Three greetings at once: they finish in order of their delays, and
    # gather() returns their results in the order they were passed.
    names = await asyncio.gather(
        greet("world", 0.2),
        greet("pyasync", 0.1),
        greet("asyncio", 0.3),
    )
    print("gathered:", ", ".join(names))


if __name__ == "__main__":
    pyasync.run(main())
