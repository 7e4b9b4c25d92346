"""Files closed behind the loop's back while it watches them. A program
closes a watched socket without remove_reader() (or closes the socket under
a transport); the kernel hands the number to the next file. The next file
must be polled, its data must reach its own callback, the stale callback
must not run once the number is watched again, and a transport whose socket
was closed must neither read the new file nor write into it.

Reference for the add_reader() churn: asyncio with its poll selector. With
epoll the kernel drops a closed file's registration but asyncio's epoll
selector keeps its key, so a reused number watched for the same events is
never polled (docs/differences.md, "An fd closed while watched"): a known
asyncio defect, not behaviour to copy. The transport cases hold on both
asyncio selectors."""
import asyncio
import errno
import os
import random
import selectors
import socket

import pytest

import pyasync
import pyasync._transports
from ._support import run


@pytest.fixture
def ref_loop(loop_kind):
    """asyncio with its poll selector (see the module docstring), or pyasync."""
    if loop_kind == "asyncio":
        lp = asyncio.SelectorEventLoop(selectors.PollSelector())
    else:
        lp = pyasync.new_event_loop()
    yield lp
    lp.close()


class Slot:
    """A watched socket pair: the loop reads `a` with add_reader(); the
    test writes into `b`."""

    def __init__(self, loop, registry):
        self.loop = loop
        self.a, self.b = socket.socketpair()
        self.a.setblocking(False)
        self.b.setblocking(False)
        self.fd = self.a.fileno()
        self.expected = bytearray()
        self.received = bytearray()
        self.closed = False
        self.replaced = False
        self.stale_calls = 0
        self.late_calls = 0
        for old in registry.get(self.fd, ()):
            # The number was watched for a closed socket: this registration
            # takes its place.
            old.replaced = True
        registry.setdefault(self.fd, []).append(self)
        loop.add_reader(self.a, self.on_readable)

    def on_readable(self):
        if self.replaced:
            self.late_calls += 1
            return
        if self.closed:
            # Between the close and the next registration on the number:
            # a poll selector reports the closed (or reused) number.
            self.stale_calls += 1
            return
        try:
            data = self.a.recv(65536)
        except BlockingIOError:
            return
        self.received += data

    def send(self, data):
        self.b.send(data)
        self.expected += data

    def close_behind_back(self):
        self.closed = True
        self.a.close()
        self.b.close()


def test_reused_numbers_are_polled_under_churn(ref_loop):
    loop = ref_loop
    rng = random.Random(42)
    registry = {}
    live = [Slot(loop, registry) for _ in range(8)]
    dead = []
    to_replace = 0
    rounds = 300

    async def churn():
        nonlocal to_replace
        for _ in range(rounds):
            for _ in range(to_replace):
                live.append(Slot(loop, registry))
            to_replace = 0
            for slot in rng.sample(live, k=min(3, len(live))):
                slot.send(rng.randbytes(rng.randint(1, 2048)))
            if rng.random() < 0.3:
                victim = live.pop(rng.randrange(len(live)))
                victim.close_behind_back()
                dead.append(victim)
                if rng.random() < 0.7:
                    live.append(Slot(loop, registry))  # at once: the number is reused
                else:
                    to_replace += 1                    # next round: a stale window
            await asyncio.sleep(0.001)
        for _ in range(to_replace):
            live.append(Slot(loop, registry))
        deadline = loop.time() + 10
        while any(s.received != s.expected for s in live) and loop.time() < deadline:
            await asyncio.sleep(0.005)

    try:
        run(loop, churn())
        reused = sum(1 for s in dead if s.replaced)
        assert reused >= 20, f"only {reused} numbers were reused: the test did not test"
        for slot in live:
            assert slot.received == slot.expected, (
                f"fd {slot.fd}: {len(slot.expected) - len(slot.received)} bytes never "
                "reached the callback of the socket that reuses it")
        assert sum(s.late_calls for s in dead) == 0, (
            "the callback of a closed socket ran after its number was watched again")
    finally:
        for slot in live:
            loop.remove_reader(slot.a)
            slot.a.close()
            slot.b.close()
        # The dead ones go with the loop, which the fixture closes.


def socketpair_on_fd(fd):
    """A connected non-blocking pair whose first socket has number fd,
    which the caller just freed."""
    others = []
    try:
        for _ in range(64):
            a, b = socket.socketpair()
            for mine, peer in ((a, b), (b, a)):
                if mine.fileno() == fd:
                    mine.setblocking(False)
                    peer.setblocking(False)
                    return mine, peer
            others += [a, b]
        raise AssertionError(f"fd {fd} was not reused")
    finally:
        for s in others:
            s.close()


class Collect(asyncio.Protocol):
    def __init__(self):
        self.events = []

    def data_received(self, data):
        self.events.append(("data", data))

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__, getattr(exc, "errno", None)))


def recv_or_none(sock):
    try:
        return sock.recv(100)
    except BlockingIOError:
        return None


@pytest.mark.parametrize("direction", ["read", "write"])
def test_transport_does_not_use_a_reused_number(loop, direction):
    # The socket under a transport is closed behind its back and its number
    # goes to a new, unrelated connection. asyncio's transport calls the
    # socket object, which fails with EBADF: the transport is lost, and the
    # new connection's data stays with the new connection.
    async def main():
        a, b = socket.socketpair()
        fd = a.fileno()
        proto = Collect()
        transport, _ = await loop.create_connection(lambda: proto, sock=a)
        await asyncio.sleep(0.01)
        a.close()
        b.close()
        c, d = socketpair_on_fd(fd)
        try:
            if direction == "read":
                d.send(b"for c only")
                await asyncio.sleep(0.05)
                return list(proto.events), recv_or_none(c), None
            transport.write(b"for the old peer only")
            await asyncio.sleep(0.05)
            return list(proto.events), None, recv_or_none(d)
        finally:
            transport.abort()
            c.close()
            d.close()

    events, c_got, d_got = run(loop, main())
    assert ("data", b"for c only") not in events, "the old transport read the new socket"
    if direction == "read":
        assert c_got == b"for c only"
        # Lost with EBADF if the number was polled for it; untouched if not
        # (epoll dropped the closed file's registration).
        assert events in ([], [("lost", "OSError", errno.EBADF)])
    else:
        assert d_got is None, "the old transport wrote into the new socket"
        assert events == [("lost", "OSError", errno.EBADF)]


class SocketLike:
    """Not a socket.socket: what a transport is given by code that wraps its
    socket. It reports -1 once closed, as socket objects do."""

    def __init__(self, sock):
        self._sock = sock

    def fileno(self):
        return self._sock.fileno()

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.mark.parametrize("direction", ["read", "write"])
def test_transport_over_a_socket_like_object(direction):
    # pyasync only: the transport asks such an object fileno() instead of
    # reading a socket object's fd field.
    loop = pyasync.new_event_loop()

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        fd = a.fileno()
        proto = Collect()
        transport = pyasync._transports.SocketTransport(loop, SocketLike(a), proto)
        b.send(b"before")
        await asyncio.sleep(0.01)
        assert proto.events == [("data", b"before")]
        a.close()
        b.close()
        c, d = socketpair_on_fd(fd)
        try:
            if direction == "read":
                d.send(b"for c only")
            else:
                transport.write(b"for the old peer only")
            await asyncio.sleep(0.05)
            return list(proto.events), recv_or_none(c), recv_or_none(d)
        finally:
            transport.abort()
            c.close()
            d.close()

    try:
        events, c_got, d_got = run(loop, main())
    finally:
        loop.close()
    assert d_got is None, "the old transport wrote into the new socket"
    if direction == "read":
        assert c_got == b"for c only"
        assert events[1:] in ([], [("lost", "OSError", errno.EBADF)])
    else:
        assert events[1:] == [("lost", "OSError", errno.EBADF)]
