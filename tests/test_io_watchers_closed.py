"""Watchers of files closed while registered. Like a selector's keys, a
watcher remembers the object it was registered with: remove_reader(sock) of
a socket closed in the meantime (fileno() == -1) finds it by identity, and
the fd number is free for the next file, which must then be polled."""
import asyncio
import gc
import selectors
import socket

import pytest

import pyasync


def run_until(loop, predicate, timeout=5.0):
    deadline = loop.time() + timeout

    def check():
        if predicate() or loop.time() > deadline:
            loop.stop()
        else:
            loop.call_later(0.001, check)
    loop.call_soon(check)
    loop.run_forever()
    assert predicate(), "condition not reached in time"


def socketpair_on_fd(fd):
    """A connected non-blocking pair whose first socket has file descriptor
    `fd`, which the caller just freed: the kernel gives out the lowest free
    number, so the lower free ones are filled (and closed again) first."""
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


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture(params=["asyncio-poll", "pyasync"])
def poll_ref_loop(request):
    """For what asyncio gets right with its poll selector only. With epoll,
    the kernel drops the registration of a file when it is closed, but
    asyncio's selector keeps its key: a new file given the same fd number
    and registered with the same events only swaps the callback and is
    never polled, other events make modify() fail (FileNotFoundError), and
    removing one direction of a closed socket fails (OSError EBADF). poll()
    takes fd numbers afresh at every call, so asyncio with its poll selector
    is the reference for these cases."""
    if request.param == "asyncio-poll":
        lp = asyncio.SelectorEventLoop(selectors.PollSelector())
    else:
        lp = pyasync.new_event_loop()
    yield lp
    lp.close()


def test_remove_reader_of_closed_socket(loop, pair):
    a, b = pair
    loop.add_reader(a, lambda: None)
    a.close()
    assert a.fileno() == -1
    assert loop.remove_reader(a) is True
    # Gone now: the object has no fd and no watcher to find it by.
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(a)
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_writer(a)


def test_remove_writer_of_closed_socket(loop, pair):
    a, b = pair
    loop.add_writer(a, lambda: None)
    a.close()
    assert loop.remove_writer(a) is True
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_writer(a)


def test_closed_socket_with_reader_and_writer(poll_ref_loop, pair):
    loop = poll_ref_loop
    a, b = pair
    loop.add_reader(a, lambda: None)
    loop.add_writer(a, lambda: None)
    a.close()
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False  # still found: its writer is there
    assert loop.remove_writer(a) is True
    with pytest.raises(ValueError):
        loop.remove_writer(a)


def test_remove_other_direction_of_closed_socket(loop, pair):
    a, b = pair
    loop.add_reader(a, lambda: None)
    a.close()
    assert loop.remove_writer(a) is False
    assert loop.remove_reader(a) is True


def test_closed_socket_registered_by_fd_is_not_found_by_object(loop, pair):
    # The watcher remembers the int it was given, as a selector key does.
    a, b = pair
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    a.close()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(a)
    assert loop.remove_reader(fd) is True


def test_closed_socket_never_registered(loop):
    a, b = socket.socketpair()
    a.close()
    b.close()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(a)
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_reader(a, lambda: None)


def test_add_reader_again_on_closed_registered_socket(loop, pair):
    # asyncio finds the registration by the object and swaps the callback.
    a, b = pair
    loop.add_reader(a, lambda: None)
    a.close()
    assert loop.add_reader(a, lambda: None) is None
    assert loop.remove_reader(a) is True


def test_closed_loop_remove_of_closed_socket(loop, pair):
    a, b = pair
    loop.add_reader(a, lambda: None)
    a.close()
    loop.close()
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False


@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_fd_reused_after_removal_is_polled(loop, direction):
    a, b = socket.socketpair()
    fd = a.fileno()
    getattr(loop, "add_" + direction)(a, lambda: None)
    a.close()
    b.close()
    assert getattr(loop, "remove_" + direction)(a) is True

    c, d = socketpair_on_fd(fd)
    try:
        got = []
        if direction == "reader":
            loop.add_reader(c, lambda: got.append(c.recv(10)))
            d.send(b"fresh")
        else:
            loop.add_writer(c, lambda: got.append("writable"))
        run_until(loop, lambda: got, timeout=2.0)
        assert got[0] in (b"fresh", "writable")
        assert getattr(loop, "remove_" + direction)(c) is True
    finally:
        c.close()
        d.close()


def test_anyio_like_close_sequence(loop):
    # anyio's raw socket streams wait with add_reader(sock, fut.set_result)
    # and remove the reader in the future's done callback; aclose() closes
    # the socket first and then completes the future.
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    def wait_until_readable(sock):
        fut = loop.create_future()

        def on_done(f):
            removed.append(loop.remove_reader(sock))
        loop.add_reader(sock, fut.set_result, None)
        fut.add_done_callback(on_done)
        return fut

    async def aclose(sock, fut):
        sock.close()
        if not fut.done():
            fut.set_result(None)

    removed = []
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    waiter = wait_until_readable(a)
    loop.run_until_complete(aclose(a, waiter))
    run_until(loop, lambda: removed)
    b.close()
    assert removed == [True]
    assert errors == []

    # The fd number goes to the next socket, which is polled normally.
    c, d = socketpair_on_fd(fd)
    try:
        waiter = wait_until_readable(c)
        d.send(b"x")
        run_until(loop, waiter.done, timeout=2.0)
        run_until(loop, lambda: len(removed) == 2)
        assert removed == [True, True]
        assert errors == []
    finally:
        c.close()
        d.close()


def test_add_reader_replaces_stale_entry(poll_ref_loop):
    loop = poll_ref_loop
    a, b = socket.socketpair()
    fd = a.fileno()
    stale = []
    loop.add_reader(a, lambda: stale.append(True))
    a.close()  # closed behind the loop's back: no remove_reader()
    b.close()

    c, d = socketpair_on_fd(fd)
    try:
        got = []
        loop.add_reader(c, lambda: got.append(c.recv(10)))
        d.send(b"new")
        run_until(loop, lambda: got, timeout=2.0)
        assert got[0] == b"new"
        assert stale == []
        assert loop.remove_reader(c) is True
        assert loop.remove_reader(c) is False
    finally:
        c.close()
        d.close()


def test_add_writer_replaces_stale_entry(poll_ref_loop):
    loop = poll_ref_loop
    a, b = socket.socketpair()
    fd = a.fileno()
    stale = []
    loop.add_writer(a, lambda: stale.append(True))
    a.close()
    b.close()

    c, d = socketpair_on_fd(fd)
    try:
        got = []
        loop.add_writer(c, lambda: got.append(True))
        run_until(loop, lambda: got, timeout=2.0)
        assert stale == []
        assert loop.remove_writer(c) is True
    finally:
        c.close()
        d.close()


def test_add_writer_next_to_stale_reader(poll_ref_loop):
    # The stale reader keeps its place (as in asyncio); the new writer must
    # be polled on the new file.
    loop = poll_ref_loop
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(a, lambda: None)
    a.close()
    b.close()

    c, d = socketpair_on_fd(fd)
    try:
        got = []
        loop.add_writer(c, lambda: got.append(True))
        run_until(loop, lambda: got, timeout=2.0)
        assert loop.remove_writer(c) is True
        assert loop.remove_reader(c) is True  # the stale reader, by fd
    finally:
        c.close()
        d.close()


def test_sock_recv_on_fd_of_stale_entry(poll_ref_loop):
    loop = poll_ref_loop
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(a, lambda: None)
    a.close()
    b.close()

    c, d = socketpair_on_fd(fd)
    try:
        async def main():
            recv = asyncio.ensure_future(loop.sock_recv(c, 10))
            await asyncio.sleep(0.05)
            d.send(b"data")
            return await asyncio.wait_for(recv, 2.0)
        assert loop.run_until_complete(main()) == b"data"
    finally:
        c.close()
        d.close()


def test_transport_on_fd_of_stale_entry(poll_ref_loop):
    loop = poll_ref_loop
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(a, lambda: None)
    a.close()
    b.close()

    c, d = socketpair_on_fd(fd)

    class Collect(asyncio.Protocol):
        def __init__(self):
            self.data = loop.create_future()

        def data_received(self, data):
            if not self.data.done():
                self.data.set_result(data)

    async def main():
        transport, protocol = await loop.create_connection(Collect, sock=c)
        d.send(b"over the transport")
        try:
            return await asyncio.wait_for(protocol.data, 2.0)
        finally:
            transport.close()
            await asyncio.sleep(0)
    try:
        assert loop.run_until_complete(main()) == b"over the transport"
    finally:
        d.close()


# -- transports collected without close() --------------------------------------

class FirstData(asyncio.Protocol):
    def __init__(self, loop):
        self.data = loop.create_future()

    def data_received(self, data):
        if not self.data.done():
            self.data.set_result(data)


def paused_transport(loop):
    """A transport on one end of a socket pair with its reading paused (so
    that the loop holds no reference to it), the socket it was made with and
    the other end of the pair."""
    a, b = socket.socketpair()

    async def start():
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        await asyncio.sleep(0)  # reading started
        transport.pause_reading()
        return transport
    return loop.run_until_complete(start()), a, b


def reads_on_transport(loop, sock, peer):
    """Whether a transport made on sock receives what peer sends."""
    async def main():
        transport, protocol = await loop.create_connection(lambda: FirstData(loop), sock=sock)
        peer.send(b"on the reused fd")
        try:
            return await asyncio.wait_for(protocol.data, 2.0)
        finally:
            transport.close()
            await asyncio.sleep(0)
    return loop.run_until_complete(main()) == b"on the reused fd"


def test_transport_collected_while_paused_frees_its_fd(loop):
    # The finaliser closes the socket through the loop: no interest is left
    # behind for the number, which the next file takes.
    transport, a, b = paused_transport(loop)
    fd = a.fileno()
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del transport, a
        gc.collect()
    b.close()
    c, d = socketpair_on_fd(fd)
    try:
        assert reads_on_transport(loop, c, d)
    finally:
        c.close()
        d.close()


def test_transport_on_fd_left_by_a_socket_closed_behind_the_loop(loop):
    # The socket of a paused transport is closed behind the loop's back,
    # then the transport is collected: the interest its paused reading left
    # for the number is of a file the kernel forgot, and the next transport
    # on that number must be registered afresh.
    transport, a, b = paused_transport(loop)
    fd = a.fileno()
    a.close()
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del transport
        gc.collect()
    b.close()
    c, d = socketpair_on_fd(fd)
    try:
        assert reads_on_transport(loop, c, d)
    finally:
        c.close()
        d.close()


def test_closed_transport_leaves_the_next_owner_of_its_fd_alone(loop):
    # close() only schedules connection_lost() and the socket's close; the
    # socket is closed behind the transport's back before that (a `with`
    # block ends) and its number goes to a new socket, watched at once.
    a, b = socket.socketpair()
    fd = a.fileno()

    async def main():
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        await asyncio.sleep(0)  # reading started
        transport.close()
        a.close()
        b.close()
        c, d = socketpair_on_fd(fd)
        try:
            got = loop.create_future()
            loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(100)))
            await asyncio.sleep(0.01)  # the transport's connection_lost() ran
            d.send(b"still watched")
            result = await asyncio.wait_for(got, 2.0)
            assert loop.remove_reader(c) is True
            return result
        finally:
            c.close()
            d.close()
    assert loop.run_until_complete(main()) == b"still watched"
