"""call_soon_threadsafe() from 8 threads at once, at a high rate, while the
loop alternates between running callbacks and blocking in poll: every
callback runs exactly once, those of one thread in the order that thread
scheduled them, and the loop never sleeps through a wakeup (the last
callback of a burst must wake it: nothing else would)."""
import threading
import time

N_THREADS = 8
PER_THREAD = 10_000
BURST = 500          # calls between pauses, so that the loop goes idle
LOST_WAKEUP_LIMIT = 30.0


def test_eight_threads_flood_call_soon_threadsafe(loop):
    seen = [[] for _ in range(N_THREADS)]
    total = N_THREADS * PER_THREAD
    count = 0
    start = threading.Barrier(N_THREADS + 1)

    def callback(k, i):
        nonlocal count
        seen[k].append(i)
        count += 1
        if count == total:
            loop.stop()

    def worker(k):
        start.wait()
        for i in range(PER_THREAD):
            loop.call_soon_threadsafe(callback, k, i)
            if i % BURST == BURST - 1:
                time.sleep(0.001)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_THREADS)]
    for t in threads:
        t.start()
    lost = []

    def lost_wakeup():
        lost.append(count)
        loop.stop()
    # The only other timer: a loop that sleeps through the last wakeup is
    # stopped by it and the test fails, instead of hanging.
    failsafe = loop.call_later(LOST_WAKEUP_LIMIT, lost_wakeup)
    loop.call_soon(start.wait)
    try:
        loop.run_forever()
    finally:
        for t in threads:
            t.join()
    failsafe.cancel()
    assert not lost, f"the loop slept with {total - lost[0]} callbacks pending"
    assert count == total
    for k in range(N_THREADS):
        assert seen[k] == list(range(PER_THREAD)), (
            f"thread {k}: callbacks lost, repeated or reordered")
