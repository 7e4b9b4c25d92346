"""Signals at random points. An interval timer (ITIMER_REAL) sends SIGALRM
every millisecond for about a second while the loop echoes data over a
socket pair and fires a few hundred timers. Every signal interrupts whatever
runs at that moment: a poll (EINTR), a send or recv, a callback, a protocol
method. The handlers have side effects on the loop (they schedule callbacks)
and are registered in the two ways programs use: loop.add_signal_handler(),
and signal.signal() with a handler that calls loop.call_soon_threadsafe().

Nothing may be lost: every byte comes back, every timer fires in deadline
order, every callback scheduled by the raw handler runs; and the loop must
not hang (the whole run is bounded)."""
import asyncio
import contextlib
import random
import signal
import socket

import pytest

from ._support import run

STORM_INTERVAL = 0.001
STORM_SECONDS = 1.0
N_TIMERS = 300


@contextlib.contextmanager
def itimer_storm(interval=STORM_INTERVAL):
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class SideEffects:
    """What the handlers do: count, allocate, and schedule callbacks on the
    loop (call_soon, and now and then a zero-delay timer), the work a real
    handler does (set an event, start a shutdown)."""

    def __init__(self, loop):
        self.loop = loop
        self.raw = 0          # raw signal.signal() handler calls
        self.handled = 0      # handler runs inside the loop
        self.followups = 0    # callbacks the handler scheduled, run
        self.garbage = []

    def in_loop(self):
        self.handled += 1
        self.garbage.append([self.handled] * 8)
        if len(self.garbage) > 64:
            del self.garbage[:32]
        if self.handled % 7 == 0:
            self.loop.call_later(0, self._followup)
        else:
            self.loop.call_soon(self._followup)

    def _followup(self):
        self.followups += 1

    def raw_handler(self, signum, frame):
        # Runs between any two bytecodes of whatever the main thread does.
        self.raw += 1
        self.loop.call_soon_threadsafe(self.in_loop)


async def echo_while_storming(loop, effects):
    """Send random chunks through an echo transport with sock_sendall(),
    read them back with sock_recv(), and run N_TIMERS timers, all during the
    storm. Returns (sent, received, fired timer indexes)."""
    rng = random.Random(1234)
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    transport, _ = await loop.create_connection(Echo, sock=a)
    try:
        fired = []
        t0 = loop.time()
        step = STORM_SECONDS / N_TIMERS
        for i in range(N_TIMERS):
            # Distinct deadlines, scheduled out of order.
            j = (i * 7919) % N_TIMERS
            loop.call_at(t0 + (j + 1) * step, fired.append, j)
        all_fired = loop.create_future()
        loop.call_at(t0 + (N_TIMERS + 1) * step, all_fired.set_result, None)

        sent = bytearray()
        received = bytearray()

        async def sender():
            while loop.time() - t0 < STORM_SECONDS:
                chunk = rng.randbytes(rng.randint(1, 64 * 1024))
                sent.extend(chunk)
                await loop.sock_sendall(b, chunk)
                await asyncio.sleep(rng.choice((0, 0, 0.001, 0.003)))

        async def receiver():
            # Until the echo side, having read our EOF, closes.
            while data := await loop.sock_recv(b, 256 * 1024):
                received.extend(data)

        recv_task = loop.create_task(receiver())
        await sender()
        b.shutdown(socket.SHUT_WR)
        await recv_task
        await all_fired
        # Let the last handler runs and their follow-ups finish.
        for _ in range(5):
            await asyncio.sleep(0)
        return bytes(sent), bytes(received), fired
    finally:
        transport.close()
        b.close()


def check(effects, sent, received, fired):
    assert len(sent) > 0
    assert received == sent, (
        f"echo lost or corrupted data: sent {len(sent)} bytes, got {len(received)}")
    expected = list(range(N_TIMERS))
    assert fired == expected, "timers lost or out of deadline order"
    assert effects.handled >= 10, f"only {effects.handled} signals handled in the storm"
    assert effects.followups == effects.handled, "callbacks scheduled by handlers were lost"


def test_storm_with_add_signal_handler(loop):
    effects = SideEffects(loop)
    loop.add_signal_handler(signal.SIGALRM, effects.in_loop)
    try:
        with itimer_storm():
            sent, received, fired = run(loop, echo_while_storming(loop, effects))
        # Signals still in flight are delivered afterwards; let them run.
        run(loop, asyncio.sleep(0.01))
    finally:
        loop.remove_signal_handler(signal.SIGALRM)
    check(effects, sent, received, fired)


def test_storm_with_signal_signal_and_call_soon_threadsafe(loop):
    effects = SideEffects(loop)
    previous = signal.signal(signal.SIGALRM, effects.raw_handler)
    try:
        with itimer_storm():
            sent, received, fired = run(loop, echo_while_storming(loop, effects))
        run(loop, asyncio.sleep(0.01))
    finally:
        signal.signal(signal.SIGALRM, previous)
    check(effects, sent, received, fired)
    # Every callback the raw handler scheduled ran, once.
    assert effects.handled == effects.raw


@pytest.mark.parametrize("registration", ["add_signal_handler", "signal.signal"])
def test_storm_while_idle_in_poll(loop, registration):
    # The loop blocks in poll with nothing but a far timer; signals wake it
    # and each is handled, and a stop() from a handler ends the run.
    effects = SideEffects(loop)
    stopped = []

    def maybe_stop():
        # Once: a signal still in flight after the storm must not stop the
        # run that lets the last ones through.
        if effects.handled >= 200 and not stopped:
            stopped.append(True)
            loop.stop()

    def in_loop():
        effects.in_loop()
        maybe_stop()

    if registration == "add_signal_handler":
        loop.add_signal_handler(signal.SIGALRM, in_loop)
        restore = lambda: loop.remove_signal_handler(signal.SIGALRM)  # noqa: E731
    else:
        def raw(signum, frame):
            effects.raw += 1
            loop.call_soon_threadsafe(in_loop)
        previous = signal.signal(signal.SIGALRM, raw)
        restore = lambda: signal.signal(signal.SIGALRM, previous)  # noqa: E731
    deadline = loop.call_later(10, loop.stop)
    try:
        with itimer_storm():
            loop.run_forever()
        deadline.cancel()
        # Signals still in flight are delivered afterwards; let them run.
        run(loop, asyncio.sleep(0.01))
    finally:
        restore()
    assert effects.handled >= 200, "the loop stopped before 200 signals were handled"
    assert effects.followups == effects.handled
    if registration == "signal.signal":
        assert effects.handled == effects.raw
