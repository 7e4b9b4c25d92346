"""pyasync.testing: loops of virtual time. A program's waits pass at once,
in deadline order, and its outcome is the one it has on a real clock
(checked against asyncio's loop running the same program scaled down)."""
import asyncio
import selectors
import socket
import sys
import threading
import time
import unittest

import pytest

import pyasync
import pyasync.testing as vt

DAY = 24 * 3600.0


async def _program(unit):
    """Timers, timeouts, wait_for, shields, a call_later chain, retries with
    back-off and a keep-alive timer, at multiples of `unit` seconds; returns
    the trace of what happened, with times in units."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    trace = []

    def note(what):
        trace.append((what, round((loop.time() - start) / unit)))

    async def sleeper(name, units):
        await asyncio.sleep(units * unit)
        note(name)

    async def retry():
        for attempt, takes in enumerate((2.5, 2.0, 1.5, 0.2)):  # too slow until the 4th
            try:
                async with asyncio.timeout(1 * unit):
                    await asyncio.sleep(takes * unit)
                note(f"retry ok after {attempt}")
                return
            except TimeoutError:
                note(f"retry {attempt} timed out")
                await asyncio.sleep(2 ** attempt * unit)

    async def keepalive():
        deadline = [None]
        expired = asyncio.Event()

        def expire():
            note("keep-alive expired")
            expired.set()

        def touch():
            if deadline[0] is not None:
                deadline[0].cancel()
            deadline[0] = loop.call_later(10 * unit, expire)
        touch()
        for _ in range(3):
            await asyncio.sleep(4 * unit)
            touch()
        await expired.wait()

    def chain(n):
        note(f"chain {n}")
        if n < 3:
            loop.call_later(7 * unit, chain, n + 1)

    loop.call_later(7 * unit, chain, 1)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(sleeper("a", 30))
        tg.create_task(sleeper("b", 4))
        tg.create_task(retry())
        tg.create_task(keepalive())
        try:
            await asyncio.wait_for(asyncio.sleep(100 * unit), 12 * unit)
        except TimeoutError:
            note("wait_for timed out")
        inner = asyncio.ensure_future(sleeper("shielded", 16))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(inner), 1 * unit)
        note("shield timed out")
        await inner
    note("end")
    return trace


class _IdealClockSelector:
    """A selector for asyncio's loop whose waits take no real time: a wait
    with nothing ready moves the loop's clock by the timeout instead."""

    def __init__(self, clock):
        self._inner = selectors.DefaultSelector()
        self._clock = clock

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def select(self, timeout=None):
        events = self._inner.select(0 if timeout is not None else None)
        if not events and timeout:
            self._clock[0] += timeout
        return events


class _IdealClockLoop(asyncio.SelectorEventLoop):
    """asyncio's own loop on a clock that passes only while it waits: the
    real clock's outcome without the latency of a busy machine."""

    def __init__(self):
        self._ideal_now = [0.0]
        super().__init__(selector=_IdealClockSelector(self._ideal_now))

    def time(self):
        return self._ideal_now[0]


def test_a_simulated_day_runs_at_once_with_the_real_clocks_outcome():
    # The reference: asyncio's loop, on a clock that does not drift with the
    # machine's load (a real clock did: 'chain 3' came a unit late in CI).
    unit = DAY / 96
    reference = _IdealClockLoop()
    try:
        expected = reference.run_until_complete(_program(unit))
    finally:
        reference.close()
    assert expected[-1] == ("end", 30)
    # The same program in units of 15 minutes: 96 units make a day.
    loop = vt.new_event_loop()
    try:
        started = time.perf_counter()
        got = loop.run_until_complete(_program(unit))
        real = time.perf_counter() - started
        assert loop.time() >= 30 * unit
        days = loop.run_until_complete(_days_of_sleep(loop))
    finally:
        loop.close()
    assert got == expected
    assert days == 1.0
    assert real < 1.0


async def _days_of_sleep(loop):
    start = loop.time()
    for _ in range(96):
        await asyncio.sleep(DAY / 96)
    return (loop.time() - start) / DAY


def test_time_starts_where_asked_and_only_jumps_forward():
    loop = vt.new_event_loop(start=1000.0)
    try:
        assert loop.time() == 1000.0
        loop.run_until_complete(asyncio.sleep(0))
        assert loop.time() == 1000.0  # nothing to wait for: no jump
        loop.run_until_complete(asyncio.sleep(5))
        assert loop.time() == 1005.0
        with pytest.raises(ValueError, match="cannot go back"):
            loop._use_virtual_clock(10.0)
    finally:
        loop.close()


def test_the_clock_cannot_be_made_virtual_once_timers_exist():
    loop = pyasync.new_event_loop()
    try:
        handle = loop.call_later(10, lambda: None)
        with pytest.raises(RuntimeError, match="before any timer is scheduled"):
            loop._use_virtual_clock(0.0)
        handle.cancel()
    finally:
        loop.close()


def test_bad_arguments():
    with pytest.raises(ValueError, match="autojump_threshold"):
        vt.new_event_loop(autojump_threshold=-1)
    with pytest.raises(ValueError, match="finite"):
        vt.new_event_loop(start=float("inf"))
    real = pyasync.new_event_loop()
    try:
        with pytest.raises(TypeError, match="needs a loop of pyasync.testing, not Loop"):
            vt.advance(real, 1)
    finally:
        real.close()
    loop = vt.new_event_loop(autojump=False)
    try:
        with pytest.raises(ValueError, match="cannot advance by -1"):
            vt.advance(loop, -1)
    finally:
        loop.close()


def test_manual_time_moves_only_with_advance():
    loop = vt.new_event_loop(autojump=False)
    try:
        fired = []

        def at(n):
            fired.append((n, loop.time()))
            if n == 1:
                loop.call_later(1, at, 2)  # at its own deadline, 1 s later

        loop.call_later(1, at, 1)
        loop.call_later(7, at, 7)
        loop.run_until_complete(asyncio.sleep(0))
        assert fired == [] and loop.time() == 0.0
        assert vt.advance(loop, 5) is None  # not running: runs the loop until then
        assert fired == [(1, 1.0), (2, 2.0)]
        assert loop.time() == 5.0

        async def inside():
            await vt.advance(loop, 2)  # from a coroutine on the loop: awaited
            return loop.time()
        assert loop.run_until_complete(inside()) == 7.0
        assert fired == [(1, 1.0), (2, 2.0), (7, 7.0)]
    finally:
        loop.close()


def test_executor_jobs_are_waited_for_not_jumped_over():
    loop = vt.new_event_loop()
    try:
        async def main():
            # A timeout longer than the job: the job's result comes first.
            result = await asyncio.wait_for(asyncio.to_thread(_slow_result, 0.2), timeout=5)
            after_job = loop.time()
            # A timeout shorter than the job: it fires, at its own deadline.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.run_in_executor(None, _slow_result, 0.5), 0.1)
            return result, after_job, loop.time() - after_job
        result, after_job, timed_out_after = loop.run_until_complete(main())
    finally:
        loop.close()
    assert result == 42
    assert 0.15 <= after_job < 5
    assert timed_out_after == pytest.approx(0.1, abs=0.01)
    assert loop._virtual_threads_busy == 0


def _slow_result(seconds):
    time.sleep(seconds)
    return 42


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_io_from_a_thread_within_the_threshold_comes_before_a_jump(threshold):
    # A thread the loop does not know writes after 50 ms real time; a timer
    # is 10 virtual seconds away. With no threshold the clock jumps to the
    # timer first; with 1 s the data is waited for.
    loop = vt.new_event_loop(autojump_threshold=threshold)
    a, b = socket.socketpair()
    try:
        order = []
        done = asyncio.Event()

        def readable():
            order.append(("data", loop.time()))
            a.recv(10)
            loop.remove_reader(a)
            done.set()

        async def main():
            loop.add_reader(a, readable)
            loop.call_later(10, lambda: order.append(("timer", loop.time())))
            threading.Timer(0.05, b.send, (b"x",)).start()
            await done.wait()
            await asyncio.sleep(11)

        loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
        loop.close()
    if threshold:
        assert order == [("data", 0.0), ("timer", 10.0)]
    else:
        assert order == [("timer", 10.0), ("data", 10.0)]


def test_real_sockets_work_and_their_waits_are_jumped():
    loop = vt.new_event_loop()
    try:
        async def main():
            async def echo(reader, writer):
                data = await reader.read(100)
                await asyncio.sleep(60)  # a slow server
                writer.write(data.upper())
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello")
            async with asyncio.timeout(120):
                reply = await reader.read(100)
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
            return reply, loop.time()
        started = time.perf_counter()
        reply, now = loop.run_until_complete(main())
    finally:
        loop.close()
    assert reply == b"HELLO"
    assert 60 <= now < 61
    assert time.perf_counter() - started < 5


def test_runner_and_policy_make_virtual_loops():
    with asyncio.Runner(loop_factory=vt.new_event_loop) as runner:
        assert runner.run(_sleep_and_tell(3600)) == 3600.0
    old = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(vt.EventLoopPolicy(start=10.0))
    try:
        assert asyncio.run(_sleep_and_tell(5)) == 15.0
    finally:
        asyncio.set_event_loop_policy(old)


async def _sleep_and_tell(seconds):
    await asyncio.sleep(seconds)
    return asyncio.get_running_loop().time()


def test_isolated_asyncio_test_case():
    outcome = []

    class Case(unittest.IsolatedAsyncioTestCase):
        if sys.version_info >= (3, 13):
            loop_factory = staticmethod(vt.new_event_loop)

        async def test_hour(self):
            await asyncio.sleep(3600)
            outcome.append(asyncio.get_running_loop().time())

    old = asyncio.get_event_loop_policy()
    if sys.version_info < (3, 13):
        asyncio.set_event_loop_policy(vt.EventLoopPolicy())
    try:
        result = unittest.TestResult()
        started = time.perf_counter()
        Case("test_hour").run(result)
    finally:
        asyncio.set_event_loop_policy(old)
    assert result.wasSuccessful(), result.errors + result.failures
    assert outcome == [3600.0]
    assert time.perf_counter() - started < 2


def test_threads_sockets_and_timeouts_together():
    # A server that answers after a job in the executor (0.1 s of real
    # time) and then 30 s of virtual time; the client waits with a timeout
    # of 60 s, and a second request with a timeout of 10 s times out. All
    # in one loop: the thread is waited for, the sleeps are jumped.
    loop = vt.new_event_loop()
    try:
        async def main():
            async def handle(reader, writer):
                line = await reader.readline()
                work = await asyncio.to_thread(_slow_upper, line, 0.1)
                await asyncio.sleep(30)
                writer.write(work)
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]

            async def request(text, timeout):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    writer.write(text)
                    async with asyncio.timeout(timeout):
                        return await reader.readline()
                finally:
                    writer.close()

            start = loop.time()
            first = await request(b"ping\n", 60)
            took = loop.time() - start
            start = loop.time()
            with pytest.raises(TimeoutError):
                await request(b"late\n", 10)
            timed_out_after = loop.time() - start
            server.close()
            await asyncio.sleep(60)  # let the second handler finish
            await server.wait_closed()
            return first, took, timed_out_after

        started = time.perf_counter()
        first, took, timed_out_after = loop.run_until_complete(main())
    finally:
        loop.close()
    assert first == b"PING\n"
    assert 30.09 <= took < 35  # 30 s of sleep, and the thread's real time
    assert 10 <= timed_out_after < 10.2
    assert time.perf_counter() - started < 5


def _slow_upper(data, seconds):
    time.sleep(seconds)
    return data.upper()


def test_a_signal_during_an_executor_job_does_not_jump_the_clock():
    # While a job runs in the executor the clock follows real time. A signal
    # that cuts the loop's wait short (EINTR) must move it only by the real
    # time that passed, not to the timer: the 5 s timeout must not fire
    # before the 0.3 s job is done.
    import os
    import signal

    loop = vt.new_event_loop()
    old = signal.signal(signal.SIGUSR1, lambda *args: None)
    try:
        async def main():
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
            return await asyncio.wait_for(asyncio.to_thread(_slow_result, 0.3), timeout=5)
        assert loop.run_until_complete(main()) == 42
        assert 0.25 <= loop.time() < 5
    finally:
        signal.signal(signal.SIGUSR1, old)
        loop.close()
