"""loop.time() is the loop's clock: replacing it (on the instance, in a
subclass, on the class, by assigning __class__) moves every deadline, the
choice of due timers and the poll timeout, as in asyncio. Test helpers and
time-travel fixtures rely on it."""
import asyncio
import logging
import threading
import time
from unittest import mock

import pytest


class VirtualClock:
    """The real monotonic clock shifted by `offset`, which jump() moves."""

    def __init__(self, offset=0.0):
        self.offset = offset
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return time.monotonic() + self.offset

    def jump(self, seconds):
        self.offset += seconds


def run_bounded(loop, limit=5.0, main=None):
    """Run the loop until it stops (or `main` completes), but no longer than
    `limit` real seconds: a watchdog thread stops it, so a loop that waits on
    the wrong clock makes the test fail instead of hanging. Returns the real
    time taken and main's result."""
    stopped_by_watchdog = []

    def watchdog_stop():
        stopped_by_watchdog.append(True)
        loop.stop()
    watchdog = threading.Timer(limit, loop.call_soon_threadsafe, (watchdog_stop,))
    watchdog.start()
    t0 = time.monotonic()
    try:
        result = loop.run_until_complete(main) if main is not None else loop.run_forever()
    finally:
        watchdog.cancel()
    elapsed = time.monotonic() - t0
    assert not stopped_by_watchdog, "the loop did not follow its patched clock"
    return elapsed, result


def test_patched_time_sets_call_later_deadline(loop):
    with mock.patch.object(loop, "time", return_value=1000.0) as fake:
        handle = loop.call_later(10, lambda: None)
        assert handle.when() == 1010.0
        assert fake.call_count == 1
    handle.cancel()
    # Restored: the deadline comes from the real clock again.
    real = time.monotonic()
    handle = loop.call_later(10, lambda: None)
    assert real + 9 < handle.when() < time.monotonic() + 11
    handle.cancel()


def test_timer_fires_when_patched_clock_jumps(loop):
    clock = VirtualClock()
    fired = []
    with mock.patch.object(loop, "time", clock):
        loop.call_later(10, fired.append, "timer")
        loop.call_later(10, loop.stop)
        # Ten virtual seconds pass at once, in the first iteration.
        loop.call_soon(clock.jump, 10)
        elapsed, _ = run_bounded(loop)
    assert fired == ["timer"]
    assert elapsed < 2.0


@pytest.mark.parametrize("offset", [-100.0, 100.0])
def test_poll_timeout_and_due_timers_follow_patched_clock(loop, offset):
    # A clock 100 s behind or ahead of the monotonic one. A loop reading its
    # own clock would run the timer at once (behind) or block 100 s (ahead).
    clock = VirtualClock(offset)
    fired = []
    with mock.patch.object(loop, "time", clock):
        t0 = time.monotonic()
        loop.call_at(loop.time() + 0.3,
                     lambda: (fired.append(time.monotonic() - t0), loop.stop()))
        elapsed, _ = run_bounded(loop)
    assert len(fired) == 1
    assert 0.29 <= fired[0] < 2.0
    assert elapsed < 2.0


def test_loop_blocks_until_virtual_deadline(loop):
    # The clock stands still: the timer half a second ahead is never due,
    # so the loop polls with a timeout of about 0.5 s (not 0, not forever).
    clock = mock.Mock(return_value=time.monotonic() + 1000.0)
    with mock.patch.object(loop, "time", clock):
        loop.call_at(loop.time() + 0.5, pytest.fail, "the clock did not move")
        clock.reset_mock()
        loop.call_soon(threading.Timer(1.2, loop.call_soon_threadsafe, (loop.stop,)).start)
        elapsed, _ = run_bounded(loop)
    assert 1.1 < elapsed < 3.0
    # Each iteration reads the clock twice (timeout, due timers): a loop that
    # spun with timeout 0 would have read it thousands of times.
    assert 4 <= clock.call_count < 20


def test_call_at_with_patched_clock(loop):
    clock = mock.Mock(return_value=50.0)
    fired = []
    with mock.patch.object(loop, "time", clock):
        loop.call_at(49.0, fired.append, "past")
        loop.call_at(50.0, fired.append, "now")
        later = loop.call_at(51.0, fired.append, "later")
        loop.call_soon(loop.stop)
        run_bounded(loop)
        assert fired == ["past", "now"]
        clock.return_value = 51.0
        loop.call_soon(loop.stop)
        run_bounded(loop)
    assert fired == ["past", "now", "later"]
    assert later.when() == 51.0


def test_subclass_overriding_time(loop):
    clock = VirtualClock(offset=1000.0)

    class ClockLoop(type(loop)):
        def time(self):
            return clock()
    sub = ClockLoop()
    try:
        fired = []
        handle = sub.call_later(10, fired.append, "timer")
        assert handle.when() > time.monotonic() + 1000
        sub.call_later(10, sub.stop)
        sub.call_soon(clock.jump, 10)
        elapsed, _ = run_bounded(sub)
        assert fired == ["timer"]
        assert elapsed < 2.0
    finally:
        sub.close()


def test_class_assignment_overriding_time(loop):
    # A time-travel fixture may give a running loop a new class.
    clock = VirtualClock(offset=-1000.0)
    original = type(loop)

    class ClockLoop(original):
        def time(self):
            return clock()
    loop.__class__ = ClockLoop
    try:
        fired = []
        t0 = time.monotonic()
        loop.call_at(loop.time() + 0.2, lambda: (fired.append(True), loop.stop()))
        run_bounded(loop)
        assert fired and time.monotonic() - t0 >= 0.19
    finally:
        loop.__class__ = original
    assert loop.call_later(1, lambda: None).when() > time.monotonic()


def test_class_patched_after_loop_creation(loop):
    fired = []
    with mock.patch.object(type(loop), "time", return_value=20.0):
        assert loop.time() == 20.0
        handle = loop.call_later(1, fired.append, "timer")
        assert handle.when() == 21.0
        loop.call_soon(loop.stop)
        run_bounded(loop)
        assert fired == []
    # The real clock is far past 21: the timer is due now.
    loop.call_soon(loop.stop)
    run_bounded(loop)
    assert fired == ["timer"]


def test_deleting_instance_patch_restores_real_clock(loop):
    loop.time = lambda: 1.0
    assert loop.call_later(1, lambda: None).when() == 2.0
    del loop.time
    assert loop.call_later(1, lambda: None).when() > time.monotonic()


def test_sleep_timeout_and_wait_for_under_patched_clock(loop):
    clock = VirtualClock(offset=500.0)
    events = []

    async def jump_soon(seconds):
        await asyncio.sleep(0)
        clock.jump(seconds)

    async def main():
        assert loop.time() == pytest.approx(time.monotonic() + 500.0, abs=0.5)
        start = loop.time()
        jumper = asyncio.ensure_future(jump_soon(30))
        await asyncio.sleep(30)
        await jumper
        events.append(("slept", round(loop.time() - start)))

        jumper = asyncio.ensure_future(jump_soon(60))
        try:
            async with asyncio.timeout(60) as cm:
                deadline = cm.when()
                await asyncio.sleep(3600)
        except TimeoutError:
            events.append(("timeout", round(deadline - start)))
        await jumper

        jumper = asyncio.ensure_future(jump_soon(5))
        try:
            await asyncio.wait_for(loop.create_future(), 5)
        except TimeoutError:
            events.append(("wait_for", round(loop.time() - start)))
        await jumper
        return loop.time() - start

    with mock.patch.object(loop, "time", clock):
        elapsed, virtual_elapsed = run_bounded(loop, main=main())
    assert events == [("slept", 30), ("timeout", 90), ("wait_for", 95)]
    assert 95 <= virtual_elapsed < 97
    assert elapsed < 3.0


def test_keepalive_timer_expires_when_clock_jumps(loop):
    # The pattern of aiohttp's keep-alive tests: a timer at now + timeout
    # re-checks loop.time() when it fires and reschedules itself if early;
    # the test patches loop.time() to a point past the deadline and expects
    # the timer to run at the next iteration, not `timeout` seconds later.
    keepalive_timeout = 15.0
    log = []

    async def main():
        close_time = loop.time() + keepalive_timeout

        def process_keepalive():
            now = loop.time()
            if now < close_time:
                log.append("early")
                loop.call_at(close_time, process_keepalive)
                return
            log.append("closed")
        loop.call_at(close_time, process_keepalive)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert log == []
        with mock.patch.object(loop, "time", return_value=close_time + 1):
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return list(log)

    elapsed, seen = run_bounded(loop, main=main())
    assert seen == ["closed"]
    assert elapsed < 2.0


def test_debug_slow_callback_measured_on_patched_clock(loop, caplog):
    # asyncio times each callback in debug mode with self.time().
    loop.set_debug(True)
    clock = VirtualClock()

    def slow_on_the_virtual_clock():
        clock.jump(2.0)
    with mock.patch.object(loop, "time", clock):
        loop.call_soon(slow_on_the_virtual_clock)
        loop.call_soon(loop.stop)
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            run_bounded(loop)
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert len(slow) == 1
    assert "slow_on_the_virtual_clock" in slow[0]
    assert "took 2.0" in slow[0]


def test_error_from_patched_time(loop):
    def broken():
        raise ZeroDivisionError("clock broke")
    with mock.patch.object(loop, "time", broken):
        with pytest.raises(ZeroDivisionError):
            loop.call_later(1, lambda: None)
        loop.call_soon(lambda: None)
        with pytest.raises(ZeroDivisionError):
            loop.run_forever()
    assert not loop.is_running()
