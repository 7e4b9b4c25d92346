"""pyasync.metrics(): the loop's counters, its current sizes, and the time
accounting that the first call turns on. (asyncio has no such thing: a
standard loop is refused with TypeError.)"""
import asyncio
import socket
import time

import pytest

import pyasync


@pytest.fixture
def ploop():
    loop = pyasync.new_event_loop()
    yield loop
    loop.close()


def delta(before, after, *keys):
    return {k: after[k] - before[k] for k in keys}


def test_counters_count_what_the_loop_did(ploop):
    async def quick(i):
        return i

    def noop():
        pass

    async def main():
        before = pyasync.metrics()
        tasks = [asyncio.create_task(quick(i)) for i in range(3)]
        assert await asyncio.gather(*tasks) == [0, 1, 2]
        for _ in range(5):
            ploop.call_soon(noop)
        keep = ploop.call_later(3600, noop)
        dropped = ploop.call_later(3600, noop)
        dropped.cancel()
        queued = pyasync.metrics()
        await asyncio.sleep(0)
        after = pyasync.metrics()
        keep.cancel()
        return before, queued, after

    before, queued, after = ploop.run_until_complete(main())
    assert delta(before, after, "tasks_created", "tasks_finished", "timers_scheduled",
                 "timers_cancelled") == {"tasks_created": 3, "tasks_finished": 3,
                                         "timers_scheduled": 2, "timers_cancelled": 1}
    # The five callbacks were queued at the time of the second snapshot (with
    # the main task's own wakeup after it), and ran before the third.
    assert queued["ready"] == before["ready"] + 5
    assert after["callbacks"] - before["callbacks"] >= 5
    assert after["task_steps"] > before["task_steps"]
    assert after["iterations"] > before["iterations"]
    assert queued["timers"] == before["timers"] + 1


def test_watched_fds_and_io_events(ploop):
    a, b = socket.socketpair()
    try:
        got = []
        base = ploop.run_until_complete(_metrics_now())
        ploop.add_reader(a, lambda: got.append(a.recv(10)))
        watching = ploop.run_until_complete(_metrics_now())
        assert watching["fds"] == base["fds"] + 1
        b.send(b"x")
        ploop.run_until_complete(asyncio.sleep(0.05))
        assert got == [b"x"]
        ploop.remove_reader(a)
        after = ploop.run_until_complete(_metrics_now())
        assert after["fds"] == base["fds"]
        assert after["io_events"] > watching["io_events"]
    finally:
        a.close()
        b.close()


async def _metrics_now():
    return pyasync.metrics()


def test_timing_starts_with_the_first_call(ploop):
    first = ploop.run_until_complete(_metrics_now())
    assert first["timing"] is False
    assert first["seconds"] == first["seconds_in_poll"] == first["utilisation"] == 0.0
    assert first["slow_callbacks"] == 0 and first["slowest"] == []
    ploop.run_until_complete(asyncio.sleep(0.2))  # blocked in poll
    second = ploop.run_until_complete(_metrics_now())
    assert second["timing"] is True
    assert second["seconds"] >= 0.2
    assert 0.15 <= second["seconds_in_poll"] <= second["seconds"]
    assert second["seconds_running"] == pytest.approx(second["seconds"] - second["seconds_in_poll"])
    assert second["utilisation"] < 0.5


def _busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_slow_callbacks_are_named_longest_first(ploop):
    ploop.slow_callback_duration = 0.05
    ploop.run_until_complete(_metrics_now())  # timing on

    def slow_callback():
        _busy(0.06)

    async def slow_task_step():
        _busy(0.12)

    async def main():
        ploop.call_soon(slow_callback)
        await asyncio.create_task(slow_task_step(), name="the-slow-one")
        for _ in range(10):
            ploop.call_soon(lambda: None)  # fast ones are not kept
        await asyncio.sleep(0)
        return pyasync.metrics()

    m = ploop.run_until_complete(main())
    assert m["slow_callbacks"] == 2
    assert m["slow_callback_duration"] == 0.05
    (t1, what1), (t2, what2) = m["slowest"]
    assert t1 >= 0.12 and 0.06 <= t2 < t1
    assert "the-slow-one" in what1 and "slow_task_step" in what1
    assert "slow_callback" in what2
    assert not ploop.get_debug()


def test_only_the_five_slowest_are_kept(ploop):
    ploop.slow_callback_duration = 0.001
    ploop.run_until_complete(_metrics_now())
    for i in range(8):
        ploop.call_soon(_busy, 0.002 * (i + 1))
    m = ploop.run_until_complete(_metrics_now())
    assert m["slow_callbacks"] == 8
    times = [t for t, _ in m["slowest"]]
    assert len(times) == 5 and times == sorted(times, reverse=True)
    assert times[-1] >= 0.008


def test_metrics_of_a_loop_given_and_refusals(ploop):
    assert pyasync.metrics(ploop)["iterations"] == 0
    with pytest.raises(RuntimeError, match="no running event loop"):
        pyasync.metrics()
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError, match="needs a pyasync loop, not _UnixSelectorEventLoop"):
            pyasync.metrics(other)
    finally:
        other.close()
