"""Producers and consumers sharing a bounded asyncio.Queue, on pyasync.

Run it (with pyasync installed, or with PYTHONPATH=. from a source checkout
where the extension has been built):

    python examples/producer_consumer.py
    python examples/producer_consumer.py --producers 5 --consumers 2 --items 100

Producers wait when the queue is full, consumers when it is empty;
queue.join() waits until every item has been handled, then the consumers are
cancelled.
"""
import argparse
import asyncio

import pyasync

QUEUE_SIZE = 5


async def producer(queue, pid, items):
    for i in range(items):
        await queue.put((pid, i))  # waits while the queue is full
        await asyncio.sleep(0.001 * (i % 3))


async def consumer(queue, handled, peak):
    while True:
        item = await queue.get()  # waits while the queue is empty
        peak[0] = max(peak[0], queue.qsize() + 1)
        await asyncio.sleep(0.002)  # "process" the item
        handled.append(item)
        queue.task_done()


async def main(producers, consumers, items):
    queue = asyncio.Queue(maxsize=QUEUE_SIZE)
    handled = []
    peak = [0]
    workers = [asyncio.create_task(consumer(queue, handled, peak))
               for _ in range(consumers)]
    await asyncio.gather(*(producer(queue, pid, items) for pid in range(producers)))
    await queue.join()
    for worker in workers:
        worker.cancel()
    results = await asyncio.gather(*workers, return_exceptions=True)

    expected = {(pid, i) for pid in range(producers) for i in range(items)}
    print(f"produced {len(expected)} items with {producers} producers")
    print(f"consumed {len(handled)} items with {consumers} consumers")
    print("every item handled exactly once:",
          len(handled) == len(set(handled)) and set(handled) == expected)
    for pid in range(producers):
        mine = sum(1 for p, _ in handled if p == pid)
        print(f"producer {pid}: {mine} items handled")
    print(f"queue never held more than {QUEUE_SIZE} items:", peak[0] <= QUEUE_SIZE)
    print("consumers cancelled:",
          all(isinstance(r, asyncio.CancelledError) for r in results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()
    pyasync.run(main(args.producers, args.consumers, args.items))
