"""A plain asyncio program that never mentions pyasync: run it on pyasync
unchanged with `python -m pyasync`.

Run it from the examples/ directory, with pyasync installed (`python -m` puts
the current directory first on sys.path, and at the repository root that is
pyasync's source tree, which has no compiled extension):

    python -m pyasync run_unchanged.py
    python -m pyasync run_unchanged.py spam eggs
    python run_unchanged.py              # the same, on asyncio's loop

`python -m pyasync` makes pyasync the loop of asyncio.run() and then runs the
program as python would: same sys.argv, same __main__, same exit status.
"""
import asyncio
import sys


async def fetch(name, delay):
    """Stands in for some I/O that takes `delay` seconds."""
    await asyncio.sleep(delay)
    return name.upper()


async def main(names):
    loop = asyncio.get_running_loop()
    print(f"event loop: {type(loop).__module__.split('.')[0]} ({type(loop).__name__})")

    # A TaskGroup waits for all its tasks; the later names finish first.
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(fetch(name, 0.03 * (len(names) - i)))
                 for i, name in enumerate(names)]
    print("results:", ", ".join(task.result() for task in tasks))

    # as_completed gives them in the order they finish.
    finished = [await f for f in asyncio.as_completed(
        [fetch(name, 0.03 * (len(names) - i)) for i, name in enumerate(names)])]
    print("finished first to last:", ", ".join(finished))

    # The exit status of the program is the number of names given twice.
    return len(names) - len(set(names))


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:] or ["alpha", "beta", "gamma"])))
