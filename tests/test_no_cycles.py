"""No reference cycles on failure paths.

When a loop method fails, the exception it raises must be freed by reference
counting alone once the caller drops it. A frame that keeps the future (or a
list) holding the exception, while that frame is itself in the exception's
traceback, makes a cycle exception -> traceback -> frame -> future ->
exception that lives until the cyclic collector runs; libraries test for it
(anyio checks ``gc.get_referrers(exc) == []`` after a failed connect).

Each test provokes one failure with the collector off and looks at what
still refers to the exception it caught. Where asyncio's own loop keeps a
cycle, the test runs on pyasync only (docs/differences.md, "Stronger
guarantees"); where both loops run code of asyncio's that keeps one (its
staggered race, its SSL protocol), the test checks that nothing else does.
"""
import asyncio
import concurrent.futures
import contextlib
import gc
import socket
import ssl
import sys
import types
from asyncio import sslproto

import pytest

import _net_helpers as nh
from _net_helpers import run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...


@contextlib.contextmanager
def collector_off():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def failure(loop, make):
    """Run the coroutine make() on loop and return what it raised (caught
    inside the loop). Call it with the collector off."""
    caught = []

    async def main():
        try:
            await make()
        except BaseException as exc:
            caught.append(exc)
    run(loop, main())
    assert caught, "the operation did not fail"
    return caught.pop()


def referrers(obj):
    """gc.get_referrers(obj), less the frames still running on this stack
    (the test's own, which hold obj as a local only while they run)."""
    running = set()
    frame = sys._getframe(1)
    while frame is not None:
        running.add(id(frame))
        frame = frame.f_back
    del frame
    return [r for r in gc.get_referrers(obj)
            if not (isinstance(r, types.FrameType) and id(r) in running)]


def assert_freed_by_refcount(loop, make):
    """make()'s exception has no referrer once caught: dropping it frees
    it, its traceback and their frames at once."""
    with collector_off():
        exc = failure(loop, make)
        assert referrers(exc) == []
    return exc


def reset_peer(sock):
    """Close sock with a RST (the other side's next send fails)."""
    nh.linger_reset(sock)
    sock.close()


async def tcp_pair():
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        a = socket.create_connection(lsock.getsockname())
        b, _ = lsock.accept()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


# -- sock_* methods ----------------------------------------------------------

def test_sock_connect_refused(loop):
    async def make():
        with socket.socket() as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", nh.free_tcp_port()))
    exc = assert_freed_by_refcount(loop, make)
    assert isinstance(exc, ConnectionRefusedError)


def test_sock_connect_to_missing_unix_path(loop, unix):
    async def make():
        with socket.socket(socket.AF_UNIX) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, unix.new_path())
    assert isinstance(assert_freed_by_refcount(loop, make), FileNotFoundError)


def test_sock_sendall_to_closed_peer(loop):
    async def make():
        a, b = await tcp_pair()
        reset_peer(b)
        await nh.spin(2)
        try:
            await loop.sock_sendall(a, b"x" * nh.MiB)
        finally:
            a.close()
    assert isinstance(assert_freed_by_refcount(loop, make), OSError)


def test_sock_accept_cancelled(loop):
    async def make():
        with socket.create_server(("127.0.0.1", 0)) as lsock:
            lsock.setblocking(False)
            await asyncio.wait_for(loop.sock_accept(lsock), 0.01)
    assert isinstance(assert_freed_by_refcount(loop, make), TimeoutError)


def test_sock_recv_cancelled(loop):
    async def make():
        a, b = await tcp_pair()
        try:
            task = asyncio.ensure_future(loop.sock_recv(a, 100))
            await nh.spin(2)
            task.cancel()
            await task
        finally:
            a.close()
            b.close()
    assert isinstance(assert_freed_by_refcount(loop, make), asyncio.CancelledError)


# asyncio's sock_recv(), sock_sendall() and sock_sendfile() keep the future
# in the frame that awaits it: a failure after waiting leaves a cycle.

def test_sock_recv_reset_while_waiting(pyloop):
    async def make():
        a, b = await tcp_pair()
        pyloop.call_later(0.01, reset_peer, b)
        try:
            await pyloop.sock_recv(a, 100)
        finally:
            a.close()
    assert isinstance(assert_freed_by_refcount(pyloop, make), ConnectionResetError)


def test_sock_sendall_fails_while_waiting(pyloop):
    async def make():
        a, b = await tcp_pair()
        nh.set_small_buffers(a)
        pyloop.call_later(0.01, reset_peer, b)
        try:
            await pyloop.sock_sendall(a, b"x" * (8 * nh.MiB))
        finally:
            a.close()
    assert isinstance(assert_freed_by_refcount(pyloop, make), OSError)


def test_sock_sendfile_fails_while_waiting(pyloop, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (8 * nh.MiB))

    async def make():
        a, b = await tcp_pair()
        nh.set_small_buffers(a)
        pyloop.call_later(0.01, reset_peer, b)
        try:
            with open(path, "rb") as f:
                await pyloop.sock_sendfile(a, f)
        finally:
            a.close()
    exc = assert_freed_by_refcount(pyloop, make)
    assert isinstance(exc, OSError) and not isinstance(exc, asyncio.SendfileNotAvailableError)


# -- connections ---------------------------------------------------------------

def test_create_connection_refused(loop):
    async def make():
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", nh.free_tcp_port())
    assert isinstance(assert_freed_by_refcount(loop, make), ConnectionRefusedError)


def test_create_connection_refused_on_every_address(loop):
    # "localhost" may name 127.0.0.1 and ::1: one error or the combined one.
    async def make():
        await loop.create_connection(asyncio.Protocol, "localhost", nh.free_tcp_port())
    assert isinstance(assert_freed_by_refcount(loop, make), OSError)


def test_create_connection_from_local_address_in_use(loop, closer):
    lsock = socket.create_server(("127.0.0.1", 0))
    closer(lsock)
    taken = lsock.getsockname()

    async def make():
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", taken[1],
                                     local_addr=taken)
    assert isinstance(assert_freed_by_refcount(loop, make), OSError)


@pytest.mark.skipif(not nh.HAS_ALL_ERRORS, reason="create_connection(all_errors=) is 3.12+")
def test_create_connection_all_errors(loop):
    async def make():
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", nh.free_tcp_port(),
                                     all_errors=True)
    with collector_off():
        group = failure(loop, make)
        assert referrers(group) == []
        inner, = group.exceptions
        # Only the group holds it: in .exceptions, and in the list that
        # create_connection() passed to ExceptionGroup(), kept in .args.
        held_by_group = [group.exceptions, group.args[1]]
        for holder in referrers(inner):
            assert holder in held_by_group
    assert isinstance(inner, ConnectionRefusedError)


def test_create_connection_happy_eyeballs_refused(loop):
    # Both loops race the addresses with asyncio.staggered.staggered_race(),
    # which (in the versions supported) keeps the exceptions of the attempts
    # in lists reachable from its tasks' frames. No future or frame of the
    # loop's own may hold the error besides.
    async def make():
        await loop.create_connection(asyncio.Protocol, "localhost", nh.free_tcp_port(),
                                     happy_eyeballs_delay=0.05)
    with collector_off():
        exc = failure(loop, make)
        assert [type(r) for r in referrers(exc) if type(r) is not list] == []
    assert isinstance(exc, OSError)


def test_create_unix_connection_to_missing_path(loop, unix):
    async def make():
        await loop.create_unix_connection(asyncio.Protocol, unix.new_path())
    assert isinstance(assert_freed_by_refcount(loop, make), FileNotFoundError)


# The lookup runs in the default executor, whose worker thread holds the
# work item (and so the error) until it takes the next one: the executor is
# shut down before the error is looked at.

def test_getaddrinfo_error(loop):
    async def make():
        try:
            await loop.getaddrinfo("name.invalid", 80)
        finally:
            await loop.shutdown_default_executor()
    assert isinstance(assert_freed_by_refcount(loop, make), socket.gaierror)


def test_create_connection_getaddrinfo_error(loop):
    async def make():
        try:
            await loop.create_connection(asyncio.Protocol, "name.invalid", 80)
        finally:
            await loop.shutdown_default_executor()
    assert isinstance(assert_freed_by_refcount(loop, make), socket.gaierror)


def _garbage_server(loop):
    class Garbage(asyncio.Protocol):
        def connection_made(self, transport):
            transport.write(b"this is not TLS\r\n" * 64)
            transport.close()
    return loop.create_server(Garbage, "127.0.0.1", 0)


def test_tls_connection_handshake_error(pyloop, client_ctx):
    # asyncio's SSLProtocol (which both loops use) keeps the error in a
    # frame of its own; asyncio's loop also keeps it in the waiter.
    async def make():
        server = await _garbage_server(pyloop)
        try:
            await pyloop.create_connection(asyncio.Protocol, "127.0.0.1",
                                           server.sockets[0].getsockname()[1],
                                           ssl=client_ctx, server_hostname="localhost")
        finally:
            server.close()
    with collector_off():
        exc = failure(pyloop, make)
        outside_sslproto = [r for r in referrers(exc)
                            if not (isinstance(r, types.FrameType)
                                    and r.f_code.co_filename == sslproto.__file__)]
        assert outside_sslproto == []
    assert isinstance(exc, ssl.SSLError)


def test_tls_server_handshake_error(pyloop, server_ctx):
    # A failed handshake of an accepted connection is reported to the
    # exception handler in debug mode. asyncio's SSLProtocol keeps the
    # error in a frame of its own, on both loops; asyncio's loop also keeps
    # it in the waiter and in the context given to the handler.
    loop = pyloop
    loop.set_debug(True)
    reported = []

    def handler(lp, context):
        if context["message"] == "Error on transport creation for incoming connection":
            reported.append(context["exception"])
    loop.set_exception_handler(handler)

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=server_ctx)
        try:
            transport, _ = await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", server.sockets[0].getsockname()[1])
            transport.write(b"this is not TLS\r\n" * 64)
            while not reported:
                await asyncio.sleep(0.01)
            transport.close()
        finally:
            server.close()
    with collector_off():
        run(loop, main())
        exc = reported.pop()
        outside_sslproto = [r for r in referrers(exc)
                            if not (isinstance(r, types.FrameType)
                                    and r.f_code.co_filename == sslproto.__file__)]
        assert outside_sslproto == []
    assert isinstance(exc, ssl.SSLError)


def test_start_tls_handshake_timeout(pyloop, client_ctx):
    async def make():
        server = await pyloop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        transport, proto = await pyloop.create_connection(
            asyncio.Protocol, "127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            await pyloop.start_tls(transport, proto, client_ctx, server_hostname="localhost",
                                   ssl_handshake_timeout=0.05)
        finally:
            transport.close()
            server.close()
    assert isinstance(assert_freed_by_refcount(pyloop, make), ConnectionAbortedError)


# -- servers and datagram endpoints --------------------------------------------

def test_create_server_address_in_use(loop, closer):
    lsock = socket.create_server(("127.0.0.1", 0))
    closer(lsock)

    async def make():
        await loop.create_server(asyncio.Protocol, "127.0.0.1", lsock.getsockname()[1],
                                 reuse_address=False)
    exc = assert_freed_by_refcount(loop, make)
    assert isinstance(exc, OSError) and "address already in use" in str(exc)


def test_create_unix_server_in_missing_directory(loop, unix):
    async def make():
        await loop.create_unix_server(asyncio.Protocol, unix.new_path() + "/no/such/dir")
    assert isinstance(assert_freed_by_refcount(loop, make), FileNotFoundError)


def test_create_unix_server_listen_error(loop, unix):
    async def make():
        await loop.create_unix_server(asyncio.Protocol, unix.new_path(), backlog="many")
    assert isinstance(assert_freed_by_refcount(loop, make), TypeError)


# asyncio's create_datagram_endpoint() keeps its list of errors in the frame.

def test_datagram_endpoint_bind_error(pyloop, closer):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closer(taken)
    taken.bind(("127.0.0.1", 0))

    async def make():
        await pyloop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                              local_addr=taken.getsockname())
    assert isinstance(assert_freed_by_refcount(pyloop, make), OSError)


def test_unix_datagram_endpoint_bind_error(pyloop, unix):
    async def make():
        await pyloop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                              local_addr=unix.new_path() + "/no/such/dir",
                                              family=socket.AF_UNIX)
    assert isinstance(assert_freed_by_refcount(pyloop, make), FileNotFoundError)


# -- sendfile over a transport ---------------------------------------------------

def _sendfile_to_reset_peer(loop, tmp_path, fallback_only):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (8 * nh.MiB))

    async def make():
        accepted = loop.create_future()

        class Stalled(asyncio.Protocol):
            def connection_made(self, transport):
                transport.pause_reading()
                accepted.set_result(transport)
        server = await loop.create_server(Stalled, "127.0.0.1", 0)
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            peer = await accepted
            nh.set_small_buffers(transport.get_extra_info("socket"))
            loop.call_later(0.02, lambda: (nh.linger_reset(peer.get_extra_info("socket")),
                                           peer.abort()))
            with open(path, "rb") as f:
                if fallback_only:
                    # what the fallback sees: a file object without fileno()
                    f = _NoFileno(f)
                await loop.sendfile(transport, f)
        finally:
            transport.close()
            server.close()
    return make


class _NoFileno:
    def __init__(self, f):
        self._f = f
        self.mode = f.mode

    def readinto(self, buf):
        return self._f.readinto(buf)

    def seek(self, pos):
        return self._f.seek(pos)


# asyncio's sendfile keeps the failed future in a frame (native) or in the
# fallback's protocol (fallback).

def test_sendfile_native_to_reset_peer(pyloop, tmp_path):
    exc = assert_freed_by_refcount(pyloop, _sendfile_to_reset_peer(pyloop, tmp_path, False))
    assert isinstance(exc, ConnectionError)


def test_sendfile_fallback_to_reset_peer(pyloop, tmp_path):
    exc = assert_freed_by_refcount(pyloop, _sendfile_to_reset_peer(pyloop, tmp_path, True))
    assert isinstance(exc, ConnectionError)


# -- the loop itself ------------------------------------------------------------

def test_run_until_complete_error(pyloop):
    # asyncio's run_until_complete() keeps the task in the frame that
    # raises its exception.
    async def fail():
        raise ValueError("boom")
    with collector_off():
        caught = []
        try:
            pyloop.run_until_complete(fail())
        except ValueError as exc:
            caught.append(exc)
        exc = caught.pop()
        assert referrers(exc) == []


class _FailingShutdownExecutor(concurrent.futures.ThreadPoolExecutor):
    """Its first shutdown() fails (after shutting down)."""
    failed = False

    def shutdown(self, wait=True, **kwargs):
        super().shutdown(wait=wait, **kwargs)
        if not self.failed:
            self.failed = True
            raise RuntimeError("shutdown failed")


def test_shutdown_default_executor_error(pyloop):
    pyloop.set_default_executor(_FailingShutdownExecutor())

    async def make():
        await pyloop.shutdown_default_executor()
    assert isinstance(assert_freed_by_refcount(pyloop, make), RuntimeError)
