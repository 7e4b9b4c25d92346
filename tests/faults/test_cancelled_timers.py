"""1,000,000 timers scheduled and cancelled. The loop must drop them in time
proportional to their number (cancelling and draining take less time than
scheduling did; an O(n) pass per iteration or per cancel would not), never
run one, still run a live timer among them, and give the memory back: once
they are gone, the process holds no more than a tenth of what the timers
took at their peak (asyncio keeps about 1%: its heap is a list rebuilt
without the cancelled timers, and the handles are freed). Measured in a
fresh process, so that nothing else moves the resident set (and not under
AddressSanitizer, whose quarantine holds freed memory)."""
import json
import subprocess

from ._support import TESTS_DIR, child_command, new_loop_source

N = 1_000_000

CHILD = new_loop_source() + r'''
import contextvars, gc, json, os, time

N = %d


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


loop = new_loop()
fired = []


def never():
    fired.append("cancelled timer ran")


# Warm up allocators and code paths on a small scale first.
for handle in [loop.call_later(3600, never) for _ in range(1000)]:
    handle.cancel()
loop.run_until_complete(asyncio.sleep(0))
gc.collect()
base = rss_mib()

# call_at() with one shared context: the timers' own cost (handle, heap
# entry) without a context copy per timer, which only slows the test down.
context = contextvars.copy_context()
call_at = loop.call_at
t0 = time.perf_counter()
far = loop.time() + 3600
handles = [call_at(far + i * 1e-6, never, context=context) for i in range(N)]
loop.call_later(0.01, fired.append, "live")
create_seconds = time.perf_counter() - t0
peak = rss_mib()

t0 = time.perf_counter()
for handle in handles:
    handle.cancel()
del handles
cancel_seconds = time.perf_counter() - t0


async def drain():
    await asyncio.sleep(0.02)
    t0 = time.perf_counter()
    for _ in range(1000):
        await asyncio.sleep(0)
    return time.perf_counter() - t0

t0 = time.perf_counter()
iterations_seconds = loop.run_until_complete(drain())
drain_seconds = time.perf_counter() - t0 - 0.02
gc.collect()
after = rss_mib()
with open("/proc/self/maps") as f:
    # AddressSanitizer's quarantine keeps freed memory: RSS cannot show it
    # coming back there.
    under_asan = "libasan" in f.read()
print(json.dumps({
    "under_asan": under_asan,
    "fired": fired, "scheduled_left": len(loop._scheduled),
    "cancelled_count": loop._timer_cancelled_count,
    "base": base, "peak": peak, "after": after,
    "create": create_seconds, "cancel": cancel_seconds, "drain": drain_seconds,
    "iterations": iterations_seconds,
}))
loop.close()
''' % N


def test_million_cancelled_timers(loop_kind):
    proc = subprocess.run(child_command(CHILD, loop_kind), capture_output=True, text=True,
                          timeout=150, cwd=TESTS_DIR)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.splitlines()[-1])
    summary = (f"RSS base {r['base']:.1f} MiB, peak {r['peak']:.1f}, after {r['after']:.1f}; "
               f"create {r['create']:.2f} s, cancel {r['cancel']:.2f} s, "
               f"drain {r['drain']:.2f} s")
    assert r["fired"] == ["live"], summary
    assert r["scheduled_left"] == 0 and r["cancelled_count"] == 0, summary
    # Time: linear work, a fraction of what scheduling them took.
    assert r["cancel"] + r["drain"] < r["create"], summary
    assert r["iterations"] < 1.0, "empty iterations are slow after the cancellations; " + summary
    # Memory: given back.
    growth = r["peak"] - r["base"]
    retained = r["after"] - r["base"]
    assert growth > 50, "the timers took less memory than expected: " + summary
    assert r["under_asan"] or retained <= 0.1 * growth, (
        f"{retained:.1f} MiB of {growth:.1f} MiB still held after the timers went; " + summary)
