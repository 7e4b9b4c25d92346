"""fork() with a live loop. The child gets copies of the loop's fds, but the
epoll instance, the self-pipe and the sockets behind them stay shared with
the parent: whatever the child does with the loop it inherited (close it,
drop it, ignore it for a loop of its own, use it), the parent's loop must
keep working. pyasync renews an inherited loop on first use in the child
(a poller and self-pipe of the child's own, see docs/differences.md);
asyncio's child shares the parent's epoll instance.

Each child runs bounded in time and is always reaped."""
import asyncio
import gc
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
import weakref

import pytest

import pyasync

CHILD_TIMEOUT = 20.0


def make_loop(kind):
    return asyncio.new_event_loop() if kind == "asyncio" else pyasync.new_event_loop()


def fork():
    # A thread that an earlier test in this process left winding down (an
    # executor's worker after its loop closed) could hold a lock that the
    # child would then wait for forever: let such threads end first.
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(timeout=5)
    with warnings.catch_warnings():
        # 3.12+ warns when forking while other threads run (none of ours do).
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def wait_for_child(pid):
    """The child's exit status; it is killed if it outlives CHILD_TIMEOUT.
    Either way it is reaped."""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child did not finish in time")
        time.sleep(0.005)


def fork_and_wait(child, while_child_runs=None):
    """Run child() in a forked process, which must return 0 (its exit
    status; an exception is status 70, its traceback in the failure
    message). while_child_runs(), if given, runs in the parent meanwhile."""
    report_r, report_w = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        status = 70
        try:
            os.close(report_r)
            status = child()
        except BaseException:
            os.write(report_w, traceback.format_exc().encode())
        finally:
            os._exit(status)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as report:
        try:
            if while_child_runs is not None:
                while_child_runs()
        finally:
            status = wait_for_child(pid)
        details = report.read().decode()
    assert status == 0, f"child exited with {status}\n{details}"


def run_until(loop, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout

    def check():
        if predicate() or time.monotonic() > deadline:
            loop.stop()
        else:
            loop.call_later(0.001, check)
    loop.call_soon(check)
    loop.run_forever()
    return predicate()


class Collect(asyncio.Protocol):
    def __init__(self):
        self.data = b""

    def data_received(self, data):
        self.data += data


def nonblocking_pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


class World:
    """A loop with a reader on a socket pair and a transport on another."""

    def __init__(self, loop):
        self.loop = loop
        self.reader_sock, self.reader_peer = nonblocking_pair()
        self.read = b""
        loop.add_reader(self.reader_sock, self.on_readable)
        transport_sock, self.transport_peer = nonblocking_pair()
        self.transport, self.protocol = loop.run_until_complete(
            loop.create_connection(Collect, sock=transport_sock))

    def on_readable(self):
        self.read += self.reader_sock.recv(100)

    def check_still_works(self, tag):
        """The reader fires and the transport receives."""
        self.read = b""
        self.protocol.data = b""
        self.reader_peer.send(b"reader " + tag)
        self.transport_peer.send(b"transport " + tag)
        assert run_until(self.loop, lambda: self.read and self.protocol.data), (
            self.read, self.protocol.data)
        assert self.read == b"reader " + tag
        assert self.protocol.data == b"transport " + tag

    def close(self):
        self.transport.close()
        if not self.loop.is_closed():
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.remove_reader(self.reader_sock)
            self.loop.close()
        for sock in (self.reader_sock, self.reader_peer, self.transport_peer):
            sock.close()


@pytest.fixture
def world(loop_kind):
    w = World(make_loop(loop_kind))
    yield w
    w.close()


def wakes_on_threadsafe_call(loop, timeout=3.0):
    """Whether call_soon_threadsafe() from another thread wakes the loop
    blocked in its poller with nothing else to wait for (its self-pipe is
    registered). A timer stops it after timeout seconds anyway."""
    woken = []

    def wake():
        woken.append(True)
        loop.stop()
    safety = loop.call_later(timeout, loop.stop)
    thread = threading.Timer(0.05, loop.call_soon_threadsafe, (wake,))
    thread.start()
    try:
        loop.run_forever()
    finally:
        thread.join()
        safety.cancel()
    return bool(woken)


# -- (a) the child closes the loop it inherited ----------------------------------

def test_child_closes_inherited_loop(world):
    world.check_still_works(b"before")

    def child():
        world.loop.close()
        return 0
    fork_and_wait(child)
    world.check_still_works(b"after")


def test_child_closing_inherited_loop_leaves_parents_self_pipe(pyloop):
    # asyncio's child unregisters the parent's self-pipe from the shared
    # epoll instance when it closes the loop (see docs/differences.md).
    world = World(pyloop)
    try:
        assert wakes_on_threadsafe_call(pyloop)

        def child():
            pyloop.close()
            return 0
        fork_and_wait(child)
        assert wakes_on_threadsafe_call(pyloop)
        world.check_still_works(b"after")
    finally:
        world.close()


# -- (b) the child drops it to the garbage collector -----------------------------

def test_child_collects_inherited_loop(loop_kind):
    holder = [World(make_loop(loop_kind))]
    loop_ref = weakref.ref(holder[0].loop)
    try:
        def child():
            holder.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
            return 0 if loop_ref() is None else 3
        fork_and_wait(child)
        holder[0].check_still_works(b"after")
        if loop_kind == "pyasync":
            assert wakes_on_threadsafe_call(holder[0].loop)
    finally:
        holder[0].close()


# -- (c) the child makes a loop of its own -----------------------------------------

def test_child_uses_new_loop_while_parent_works(world, loop_kind):
    def child():
        loop = make_loop(loop_kind)
        try:
            timer = loop.create_future()
            loop.call_later(0.01, timer.set_result, "timer")
            assert loop.run_until_complete(timer) == "timer"
            a, b = nonblocking_pair()
            transport, protocol = loop.run_until_complete(
                loop.create_connection(Collect, sock=a))
            b.send(b"in the child")
            assert run_until(loop, lambda: protocol.data == b"in the child")
            transport.close()
            loop.run_until_complete(asyncio.sleep(0))
            b.close()
        finally:
            loop.close()
        return 0

    def parent_works():
        for i in range(5):
            world.check_still_works(b"during %d" % i)
    fork_and_wait(child, while_child_runs=parent_works)
    world.check_still_works(b"after")


# -- (d) the child uses the loop it inherited ----------------------------------------

def test_child_uses_inherited_loop(pyloop):
    # pyasync's choice: on first use in the child the loop gets a poller and
    # a self-pipe of its own, its watchers registered again. The parent does
    # not poll while the child runs (the inherited sockets are shared: who
    # reads first gets the data).
    world = World(pyloop)
    try:
        def child():
            loop = pyloop
            assert loop.run_until_complete(asyncio.sleep(0.01, "timer")) == "timer"
            # A watcher registered in the parent fires in the child.
            world.reader_peer.send(b"inherited")
            assert run_until(loop, lambda: world.read == b"inherited")
            # A new one too, and the self-pipe is the child's.
            a, b = nonblocking_pair()
            got = []
            loop.add_reader(a, lambda: got.append(a.recv(10)))
            b.send(b"new")
            assert run_until(loop, lambda: got == [b"new"])
            loop.remove_reader(a)
            assert wakes_on_threadsafe_call(loop)
            world.transport.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
            return 0
        fork_and_wait(child)
        assert wakes_on_threadsafe_call(pyloop)
        world.check_still_works(b"after")
    finally:
        world.close()


def test_removing_watcher_in_child_keeps_parents(pyloop):
    # Before its renewal, a change in the child only touches its table.
    world = World(pyloop)
    try:
        def child():
            assert pyloop.remove_reader(world.reader_sock) is True
            world.transport.pause_reading()
            world.transport.close()
            pyloop.run_until_complete(asyncio.sleep(0))
            return 0
        fork_and_wait(child)
        world.check_still_works(b"after")
    finally:
        world.close()


# -- fork() from a callback of the running loop ---------------------------------------

def test_fork_from_a_running_callback(world):
    # The child goes on running the loop it was forked in (a timer, then it
    # exits from a callback); the parent's loop goes on too.
    loop = world.loop
    parent = os.getpid()
    forked = []

    def fork_here():
        pid = fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            loop.call_later(0.02, os._exit, 0)
            return
        forked.append(pid)
        loop.stop()
    loop.call_soon(fork_here)
    try:
        loop.run_forever()
    finally:
        if os.getpid() != parent:  # pragma: no cover - the child must not run on
            os._exit(71)
    assert wait_for_child(forked[0]) == 0
    world.check_still_works(b"after")


# -- signals -------------------------------------------------------------------------

needs_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")


@needs_main_thread
def test_signal_in_child_does_not_reach_parents_loop(loop, loop_kind):
    if loop_kind == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("asyncio's child keeps the parent's signal wakeup fd before 3.12")
    caught = []
    loop.add_signal_handler(signal.SIGUSR1, caught.append, "parent")
    try:
        def child():
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.05)
            return 0
        fork_and_wait(child)
        loop.run_until_complete(asyncio.sleep(0.1))
        assert caught == []
        os.kill(os.getpid(), signal.SIGUSR1)
        assert run_until(loop, lambda: caught)
        assert caught == ["parent"]
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


@needs_main_thread
def test_signal_handler_of_inherited_loop_runs_in_child(pyloop):
    caught = []
    pyloop.add_signal_handler(signal.SIGUSR1, caught.append, "handler")
    try:
        def child():
            os.kill(os.getpid(), signal.SIGUSR1)
            if not run_until(pyloop, lambda: caught):
                return 3
            pyloop.close()
            return 0 if caught == ["handler"] else 4
        fork_and_wait(child)
        pyloop.run_until_complete(asyncio.sleep(0.1))
        assert caught == []
    finally:
        pyloop.remove_signal_handler(signal.SIGUSR1)
