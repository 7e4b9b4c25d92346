"""Benchmark workloads: one timed measurement per process.

Usage (normally driven by bench/run.py, which alternates loop kinds and
aggregates the results):

    python bench/workloads.py NAME LOOPKIND [--quick]
    python bench/workloads.py --probe LOOPKIND
    python bench/workloads.py --list

A run creates a fresh loop of the requested kind, runs the workload once at a
reduced size to warm up (imports, caches, allocator pools, specialisation),
then runs it --repeat times at full size and prints ONE JSON line on stdout:

    {"name": ..., "loop": ..., "metric": "seconds", "value": ..., "ops": N, ...}

For the default metric, "seconds", `value` covers only the timed section
chosen by the workload, measured with time.perf_counter(), and is the best
of the repeats (`values` lists them all); interpreter start-up and imports
are never included. A workload registered with another
metric (see METRICS) returns that quantity instead, e.g. "kib" for a memory
increase. Lower is better for every metric.

Adding a benchmark: write `def name(loop, n) -> float` that performs `n`
operations on `loop` and returns the seconds its timed section took, and
decorate it with @benchmark(n=..., quick_n=...).  It should check that all `n`
operations really happened (raise WorkloadError otherwise) so that a broken
loop cannot look fast.
"""

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import random
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable

perf_counter = time.perf_counter


class WorkloadError(Exception):
    """The loop under test did not do what the workload asked."""


# --------------------------------------------------------------------------
# Loop kinds
# --------------------------------------------------------------------------

def _asyncio_loop():
    return asyncio.new_event_loop(), "stdlib " + platform.python_version(), asyncio.__file__


def _uvloop_loop():
    import uvloop
    return uvloop.new_event_loop(), uvloop.__version__, uvloop.__file__


def _pyasync_loop():
    import pyasync
    # A namespace package (no __init__.py yet) imports fine but has no API;
    # say where it came from so the error is actionable.
    if not hasattr(pyasync, "new_event_loop"):
        raise ImportError("pyasync (from %s) has no new_event_loop()"
                          % list(getattr(pyasync, "__path__", [])))
    version = getattr(pyasync, "__version__", "tree")
    where = getattr(pyasync, "__file__", None) or list(pyasync.__path__)
    return pyasync.new_event_loop(), version, str(where)


# Order matters: it is the default alternation order of the harness.
LOOP_KINDS = {
    "asyncio": _asyncio_loop,
    "uvloop": _uvloop_loop,
    "pyasync": _pyasync_loop,
}


def make_loop(kind):
    """Return (loop, version string, module location) for a loop kind."""
    try:
        factory = LOOP_KINDS[kind]
    except KeyError:
        raise SystemExit("unknown loop kind %r (known: %s)" % (kind, ", ".join(LOOP_KINDS)))
    return factory()


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """What a workload's return value measures. Lower is better for all."""
    unit: str      # unit of the value the workload returns
    per_op: str    # unit of the per-operation figure shown in the table
    scale: float   # per-operation figure = value * scale / ops
    what: str      # for the report's legend


METRICS = {
    "seconds": Metric("s", "ns/op", 1e9, "time"),      # duration of the timed section
    "kib": Metric("KiB", "B/op", 1024, "memory"),      # RSS increase
}


@dataclass(frozen=True)
class Benchmark:
    name: str
    func: Callable  # (loop, n) -> value of the metric (seconds of the timed section)
    n: int          # operations in a normal run
    quick_n: int    # operations in a --quick run
    doc: str
    metric: str     # key of METRICS


BENCHMARKS = {}  # name -> Benchmark, in definition order


def benchmark(n, quick_n=None, metric="seconds"):
    if metric not in METRICS:
        raise ValueError("unknown metric %r (known: %s)" % (metric, ", ".join(METRICS)))

    def register(func):
        doc = (func.__doc__ or "").strip().splitlines()
        BENCHMARKS[func.__name__] = Benchmark(
            func.__name__, func, n, quick_n or max(n // 10, 1), doc[0] if doc else "", metric)
        return func
    return register


def _expect(what, got, want):
    if got != want:
        raise WorkloadError("%s: expected %d, got %d" % (what, want, got))


# --------------------------------------------------------------------------
# Workloads
#
# Callbacks are `itertools.count().__next__`: a C callable that costs almost
# nothing, so the measurement is dominated by the loop's own overhead, and
# whose final value proves how many callbacks actually ran.
# Loops are driven with run_forever()/stop() where possible: it is the
# smallest API surface, so a loop under development can be measured early.
# --------------------------------------------------------------------------

@benchmark(n=200_000, quick_n=20_000)
def call_soon(loop, n):
    """call_soon throughput: batches of 1000 callbacks queued from a callback."""
    batch = 1000
    tick = itertools.count().__next__
    schedule = loop.call_soon
    left = n

    def driver():
        # FIFO order means every callback of the previous batch has run by
        # the time the driver runs again.
        nonlocal left
        if left == 0:
            loop.stop()
            return
        k = min(batch, left)
        left -= k
        for _ in range(k):
            schedule(tick)
        schedule(driver)

    schedule(driver)
    t0 = perf_counter()
    loop.run_forever()
    elapsed = perf_counter() - t0
    _expect("callbacks run", tick(), n)
    return elapsed


@benchmark(n=100_000, quick_n=10_000)
def call_soon_chain(loop, n):
    """One callback re-scheduling itself: one callback per loop iteration."""
    schedule = loop.call_soon
    left = n

    def step():
        nonlocal left
        left -= 1
        if left:
            schedule(step)
        else:
            loop.stop()

    schedule(step)
    t0 = perf_counter()
    loop.run_forever()
    elapsed = perf_counter() - t0
    _expect("steps left", left, 0)
    return elapsed


@benchmark(n=100_000, quick_n=10_000)
def timers(loop, n):
    """call_at with shuffled deadlines already due: heap insert + pop + run."""
    tick = itertools.count().__next__
    # Every deadline is in the past, so nothing ever sleeps: the time is
    # scheduling plus firing. Shuffled so a heap does real reordering work;
    # the fixed seed keeps the order identical across processes and loops.
    now = loop.time()
    rng = random.Random(1234)
    deadlines = [now - 0.02 + 0.01 * rng.random() for _ in range(n)]
    call_at = loop.call_at

    t0 = perf_counter()
    for when in deadlines:
        call_at(when, tick)
    # Later than every deadline above (yet still due), so it fires last.
    call_at(now, loop.stop)
    loop.run_forever()
    elapsed = perf_counter() - t0
    _expect("timers fired", tick(), n)
    return elapsed


@benchmark(n=200_000, quick_n=20_000)
def timers_cancel(loop, n):
    """Cancel n far-future call_later timers, then one iteration (heap cleanup)."""
    tick = itertools.count().__next__
    call_later = loop.call_later
    # Scheduling is measured by `timers`; here only cancellation and the
    # first iteration afterwards, which is where a loop purges dead timers.
    handles = [call_later(10.0, tick) for _ in range(n)]
    t0 = perf_counter()
    for h in handles:
        h.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    elapsed = perf_counter() - t0
    _expect("cancelled timers that fired", tick(), 0)
    if not all(h.cancelled() for h in handles):
        raise WorkloadError("a handle does not report cancelled() after cancel()")
    return elapsed


async def _sleeper(k):
    for _ in range(k):
        await asyncio.sleep(0)
    return k


@benchmark(n=100_000, quick_n=10_000)
def sleep0(loop, n):
    """One task awaiting asyncio.sleep(0) n times (task step + call_soon)."""
    t0 = perf_counter()
    done = loop.run_until_complete(_sleeper(n))
    elapsed = perf_counter() - t0
    _expect("sleeps", done, n)
    return elapsed


@benchmark(n=100_000, quick_n=10_000)
def sleep0_tasks(loop, n):
    """10 concurrent tasks, n sleep(0) in total: ready queue holds 10 steps."""
    ntasks = 10

    async def main():
        tasks = [loop.create_task(_sleeper(n // ntasks + (i < n % ntasks)))
                 for i in range(ntasks)]
        total = 0
        for t in tasks:
            total += await t
        return total

    t0 = perf_counter()
    done = loop.run_until_complete(main())
    elapsed = perf_counter() - t0
    _expect("sleeps", done, n)
    return elapsed


# --------------------------------------------------------------------------
# Task-level workloads
#
# These go through asyncio's public API only (loop.create_task,
# loop.create_future, gather, TaskGroup, Queue, Lock, Event), so they measure
# whatever Task and Future classes the loop provides: today the standard
# library's C ones in all three loops, later pyasync's own.
# --------------------------------------------------------------------------

def _split(n, parts):
    """n operations over `parts` workers: a list of per-worker counts summing to n."""
    q, r = divmod(n, parts)
    return [q + (i < r) for i in range(parts)]


async def _one():
    return 1


@benchmark(n=100_000, quick_n=10_000)
def spawn(loop, n):
    """gather() of n coroutines that return at once: task create + step + done."""
    async def main():
        return await asyncio.gather(*[_one() for _ in range(n)])

    t0 = perf_counter()
    results = loop.run_until_complete(main())
    elapsed = perf_counter() - t0
    _expect("tasks completed", sum(results), n)
    return elapsed


if sys.version_info >= (3, 12):  # eager tasks are new in 3.12
    @benchmark(n=100_000, quick_n=10_000)
    def spawn_eager(loop, n):
        """spawn with each loop's eager task factory (pyasync.eager_task_factory on
        pyasync, asyncio.eager_task_factory elsewhere): tasks finish inside create_task."""
        factory = asyncio.eager_task_factory
        if type(loop).__module__.startswith("pyasync"):
            import pyasync
            factory = pyasync.eager_task_factory
        loop.set_task_factory(factory)
        try:
            return spawn(loop, n)
        finally:
            loop.set_task_factory(None)


@benchmark(n=200_000, quick_n=20_000)
def pingpong(loop, n):
    """1000 tasks taking turns with sleep(0), n switches in total."""
    async def main():
        tasks = [loop.create_task(_sleeper(k)) for k in _split(n, min(1000, n))]
        return sum(await asyncio.gather(*tasks))

    t0 = perf_counter()
    done = loop.run_until_complete(main())
    elapsed = perf_counter() - t0
    _expect("sleeps", done, n)
    return elapsed


def _run_taskgroup(loop, n, group_class):
    finished = 0

    async def child():
        nonlocal finished
        await asyncio.sleep(0)
        finished += 1

    async def main():
        async with group_class() as tg:
            for _ in range(n):
                tg.create_task(child())

    t0 = perf_counter()
    loop.run_until_complete(main())
    elapsed = perf_counter() - t0
    _expect("tasks finished", finished, n)
    return elapsed


@benchmark(n=50_000, quick_n=5_000)
def taskgroup(loop, n):
    """asyncio.TaskGroup spawning n tasks that each await sleep(0) once."""
    return _run_taskgroup(loop, n, asyncio.TaskGroup)

@benchmark(n=50_000, quick_n=5_000)
def taskgroup_native(loop, n):
    """Like taskgroup, with each loop's own TaskGroup: pyasync.TaskGroup on
    pyasync, asyncio.TaskGroup elsewhere."""
    group_class = asyncio.TaskGroup
    if type(loop).__module__.startswith("pyasync"):
        import pyasync
        group_class = pyasync.TaskGroup
    return _run_taskgroup(loop, n, group_class)


@benchmark(n=100_000, quick_n=10_000)
def queue(loop, n):
    """n items from a producer task to a consumer task through Queue(maxsize=1)."""
    async def producer(q):
        for i in range(n):
            await q.put(i)

    async def consumer(q):
        got = 0
        for _ in range(n):
            await q.get()
            got += 1
        return got

    async def main():
        # maxsize=1: the producer blocks on a full queue and the consumer on
        # an empty one, so every item costs Future round trips both ways.
        q = asyncio.Queue(maxsize=1)
        prod = loop.create_task(producer(q))
        got = await loop.create_task(consumer(q))
        await prod
        return got

    t0 = perf_counter()
    got = loop.run_until_complete(main())
    elapsed = perf_counter() - t0
    _expect("items received", got, n)
    return elapsed


@benchmark(n=100_000, quick_n=10_000)
def lock(loop, n):
    """100 tasks contending for one Lock, sleep(0) while holding it; n acquisitions."""
    acquired = 0

    async def worker(lk, k):
        nonlocal acquired
        for _ in range(k):
            async with lk:
                acquired += 1
                await asyncio.sleep(0)  # hold it across a switch: the others queue up

    async def main():
        lk = asyncio.Lock()
        await asyncio.gather(*[loop.create_task(worker(lk, k))
                               for k in _split(n, min(100, n))])

    t0 = perf_counter()
    loop.run_until_complete(main())
    elapsed = perf_counter() - t0
    _expect("acquisitions", acquired, n)
    return elapsed


@benchmark(n=200_000, quick_n=20_000)
def event(loop, n):
    """1000 tasks waiting on one Event, set() and clear()ed each round; n wakeups."""
    counts = _split(n, min(1000, n))  # waiter i wakes counts[i] times
    # targets[r]: total wakeups once round r is over.
    targets = list(itertools.accumulate(sum(k > r for k in counts) for r in range(counts[0])))
    woken = 0
    target = 0
    round_done = None

    async def waiter(ev, k):
        nonlocal woken
        for _ in range(k):
            await ev.wait()
            woken += 1
            if woken == target:
                # The last one of the round: every other waiter has already
                # gone back to ev.wait(), and this one does before the setter
                # runs again, since set_result() only schedules its wakeup.
                round_done.set_result(None)

    async def main():
        nonlocal target, round_done
        ev = asyncio.Event()
        tasks = [loop.create_task(waiter(ev, k)) for k in counts]
        await asyncio.sleep(0)  # let every waiter reach ev.wait()
        for target in targets:
            round_done = loop.create_future()
            ev.set()
            ev.clear()  # the waiters woken by set() still return True
            await round_done
        await asyncio.gather(*tasks)

    t0 = perf_counter()
    loop.run_until_complete(main())
    elapsed = perf_counter() - t0
    _expect("wakeups", woken, n)
    return elapsed


_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _rss_kib():
    """Resident set size from /proc/self/statm (Linux), after a full collection."""
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_KIB


@benchmark(n=100_000, quick_n=10_000, metric="kib")
def mem_tasks(loop, n):
    """RSS increase for n pending tasks, each awaiting its own loop.create_future()."""
    started = 0

    async def waiter(fut):
        nonlocal started
        started += 1
        return await fut

    async def main():
        before = _rss_kib()
        futures = [loop.create_future() for _ in range(n)]
        tasks = [loop.create_task(waiter(f)) for f in futures]
        await asyncio.sleep(0)  # every task runs its first step and waits
        grown = _rss_kib() - before
        _expect("tasks started", started, n)
        if any(t.done() for t in tasks):
            raise WorkloadError("a task finished before its future had a result")
        for f in futures:
            f.set_result(1)
        done = sum([await t for t in tasks])
        _expect("tasks completed", done, n)
        return grown

    return loop.run_until_complete(main())


# --------------------------------------------------------------------------
# Child processes and pipes. Sizes in MiB: ns/op is nanoseconds per MiB (or
# per child for spawn_children).
# --------------------------------------------------------------------------

MIB = 1 << 20


@benchmark(n=300, quick_n=30)
def spawn_children(loop, n):
    """n children of `true` through create_subprocess_exec, 30 at a time."""
    async def one(limit):
        async with limit:
            proc = await asyncio.create_subprocess_exec("true")
            return await proc.wait()

    async def main():
        limit = asyncio.Semaphore(30)
        t0 = perf_counter()
        codes = await asyncio.gather(*(one(limit) for _ in range(n)))
        elapsed = perf_counter() - t0
        _expect("children that exited 0", codes.count(0), n)
        return elapsed

    return loop.run_until_complete(main())


@benchmark(n=256, quick_n=32)
def pipe_read(loop, n):
    """n MiB from `head -c` read with proc.stdout.read(256 KiB)."""
    async def main():
        t0 = perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "head", "-c", str(n * MIB), "/dev/zero", stdout=asyncio.subprocess.PIPE)
        total = 0
        while True:
            chunk = await proc.stdout.read(256 * 1024)
            if not chunk:
                break
            total += len(chunk)
        await proc.wait()
        elapsed = perf_counter() - t0
        _expect("bytes read", total, n * MIB)
        return elapsed

    return loop.run_until_complete(main())


@benchmark(n=64, quick_n=8)
def communicate(loop, n):
    """n MiB through `cat` with proc.communicate(), checked."""
    data = random.Random(1).randbytes(n * MIB)

    async def main():
        t0 = perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(data)
        elapsed = perf_counter() - t0
        if out != data:
            raise WorkloadError("cat gave back %d bytes, not the %d sent" % (len(out), len(data)))
        return elapsed

    return loop.run_until_complete(main())


def _stream_through(loop, over, n, chunk_size):
    """n MiB in chunk_size writes (StreamWriter, drain() after each) to a
    StreamReader reading 256 KiB at a time, over a Unix socket pair or a
    pipe; the seconds it took."""
    chunk = b"x" * chunk_size

    async def main():
        a_writer = None
        if over == "unix":
            a, b = socket.socketpair()
            # a's writer is kept: a collected StreamWriter closes its socket.
            reader, a_writer = await asyncio.open_connection(sock=a, limit=1 << 20)
            _, writer = await asyncio.open_connection(sock=b)
        else:
            r, w = os.pipe()
            reader = asyncio.StreamReader(limit=1 << 20)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                         os.fdopen(r, "rb", buffering=0))
            wtransport, wprotocol = await loop.connect_write_pipe(
                lambda: asyncio.streams.FlowControlMixin(loop=loop),
                os.fdopen(w, "wb", buffering=0))
            writer = asyncio.StreamWriter(wtransport, wprotocol, None, loop)

        async def produce():
            for _ in range(n * MIB // chunk_size):
                writer.write(chunk)
                await writer.drain()
            writer.close()

        t0 = perf_counter()
        producer = asyncio.ensure_future(produce())
        total = 0
        while True:
            got = await reader.read(256 * 1024)
            if not got:
                break
            total += len(got)
        await producer
        elapsed = perf_counter() - t0
        if a_writer is not None:
            a_writer.close()
        _expect("bytes through the %s" % over, total, n * MIB)
        return elapsed

    return loop.run_until_complete(main())


@benchmark(n=256, quick_n=32)
def pipes(loop, n):
    """n MiB through connect_write_pipe/connect_read_pipe (StreamWriter, StreamReader)."""
    return _stream_through(loop, "pipe", n, 256 * 1024)


@benchmark(n=100_000, quick_n=10_000)
def sock_ready(loop, n):
    """n sock_sendall() + sock_recv() pairs of 1 KiB on a socket pair, always ready."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    chunk = b"x" * 1024

    async def main():
        got = 0
        for _ in range(n):
            await loop.sock_sendall(b, chunk)
            got += len(await loop.sock_recv(a, 1024))
        return got

    try:
        t0 = perf_counter()
        got = loop.run_until_complete(main())
        elapsed = perf_counter() - t0
    finally:
        a.close()
        b.close()
    _expect("bytes", got, n * 1024)
    return elapsed


@benchmark(n=30_000, quick_n=3_000)
def sock_wait(loop, n):
    """n round trips of 64 bytes between two tasks with sock_recv()/sock_sendall(): each waits."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    msg = b"y" * 64

    async def echo():
        for _ in range(n):
            data = await loop.sock_recv(a, 64)
            await loop.sock_sendall(a, data)

    async def main():
        server = loop.create_task(echo())
        done = 0
        for _ in range(n):
            await loop.sock_sendall(b, msg)
            data = await loop.sock_recv(b, 64)
            done += len(data) == 64
        await server
        return done

    try:
        t0 = perf_counter()
        done = loop.run_until_complete(main())
        elapsed = perf_counter() - t0
    finally:
        a.close()
        b.close()
    _expect("round trips", done, n)
    return elapsed


def _bulk(over, chunk_size, mib):
    """Register bulk_<over>_<size>: the write queue at one write size."""
    def bulk(loop, n):
        return _stream_through(loop, over, n, chunk_size)

    bulk.__name__ = "bulk_%s_%s" % (over, _size_name(chunk_size))
    bulk.__doc__ = ("n MiB in %s writes (StreamWriter, drain) through a %s, read 256 KiB at a time."
                    % (_size_name(chunk_size), "Unix socket pair" if over == "unix" else "pipe"))
    benchmark(n=mib, quick_n=max(mib // 8, 1))(bulk)


def _size_name(size):
    return "%dm" % (size // MIB) if size >= MIB else "%dk" % (size // 1024)


# Write sizes from small (copied into the queue) to large (kept by reference).
for _over in ("unix", "pipe"):
    for _size, _mib in ((1024, 16), (16 * 1024, 64), (256 * 1024, 128), (MIB, 128)):
        _bulk(_over, _size, _mib)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

DEFAULT_REPEATS = 5


def run_one(name, kind, quick=False, repeats=DEFAULT_REPEATS):
    bench = BENCHMARKS[name]
    n = bench.quick_n if quick else bench.n
    # A time is the best of `repeats` full-size runs in this process: the
    # machines we measure on have bursts of interference (other tenants,
    # frequency changes) lasting from milliseconds to about a second, which
    # only ever add time. A memory figure is taken once, from the first run,
    # since later runs reuse what the first one allocated.
    if bench.metric != "seconds":
        repeats = 1
    loop, version, _ = make_loop(kind)
    values = []
    try:
        bench.func(loop, max(n // 10, 1))  # warm-up, same loop
        for _ in range(repeats):
            # Start each timed run from a clean heap; GC stays enabled
            # because collections triggered by the loop's own allocations
            # are part of its real cost.
            gc.collect()
            values.append(bench.func(loop, n))
    finally:
        loop.close()
    return {"name": name, "loop": kind, "metric": bench.metric, "value": min(values),
            "values": values, "ops": n, "version": version,
            "python": platform.python_version()}


def probe(kind):
    """Check a loop kind can be imported, created, run and closed."""
    loop, version, where = make_loop(kind)
    try:
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    return {"loop": kind, "version": version, "where": where,
            "python": platform.python_version()}


def run_interleaved(name, kinds, quick=False, rounds=15):
    """Time one workload on several loops in one process, in turn: round r
    runs it once on each loop, the order rotating from round to round. A
    slow spell of the machine then hits the loops of one round alike, and
    the process's own state (placement, caches) is the same for all; the
    price is that the loops share one interpreter (imports, GC state).
    Returns {kind: [seconds per round]}."""
    bench = BENCHMARKS[name]
    if bench.metric != "seconds":
        raise SystemExit("%s measures %s: run it alone" % (name, bench.metric))
    n = bench.quick_n if quick else bench.n
    loops = {kind: make_loop(kind)[0] for kind in kinds}
    times = {kind: [] for kind in kinds}
    try:
        for kind in kinds:
            bench.func(loops[kind], max(n // 10, 1))  # warm-up
        for r in range(rounds):
            for i in range(len(kinds)):
                kind = kinds[(r + i) % len(kinds)]
                gc.collect()
                times[kind].append(bench.func(loops[kind], n))
    finally:
        for loop in loops.values():
            loop.close()
    return {"name": name, "ops": n, "times": times, "python": platform.python_version()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="benchmark name")
    parser.add_argument("loop", nargs="?", help="loop kind: " + ", ".join(LOOP_KINDS))
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEATS,
                        help="timed runs in the process; the best is reported "
                        "(default %(default)s)")
    parser.add_argument("--probe", metavar="LOOPKIND", help="only check the loop kind works")
    parser.add_argument("--interleave", metavar="KINDS",
                        help="comma-separated loop kinds timed in turn in this process "
                        "(see run_interleaved); --repeat is the number of rounds")
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    args = parser.parse_args(argv)

    if args.list:
        for b in BENCHMARKS.values():
            unit = "" if b.metric == "seconds" else " [%s]" % METRICS[b.metric].per_op
            print("%-16s n=%-8d quick_n=%-7d %s%s" % (b.name, b.n, b.quick_n, b.doc, unit))
        return 0
    if args.probe:
        print(json.dumps(probe(args.probe)))
        return 0
    if args.interleave:
        if args.name not in BENCHMARKS:
            parser.error("need a benchmark name (%s)" % ", ".join(BENCHMARKS))
        try:
            result = run_interleaved(args.name, args.interleave.split(","), args.quick,
                                     max(args.repeat, 1))
        except WorkloadError as exc:
            print("%s: WRONG RESULT: %s" % (args.name, exc), file=sys.stderr)
            return 3
        print(json.dumps(result))
        return 0
    if args.name not in BENCHMARKS or args.loop is None:
        parser.error("need a benchmark name (%s) and a loop kind" % ", ".join(BENCHMARKS))
    try:
        result = run_one(args.name, args.loop, args.quick, max(args.repeat, 1))
    except WorkloadError as exc:
        print("%s on %s: WRONG RESULT: %s" % (args.name, args.loop, exc), file=sys.stderr)
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
