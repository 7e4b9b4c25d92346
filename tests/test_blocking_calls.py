"""Nothing the loop does looks blocking to blocking-call detectors.

blockbuster (used by aiohttp's test suite, among others) replaces
os.sendfile, os.stat, os.unlink, os.remove, blocking socket calls, ... with
wrappers that raise BlockingError when called while an event loop runs,
unless a frame on the stack is one of asyncio's own functions that it
allows (base_events.sendfile, unix_events._sock_sendfile_native_impl,
unix_events.create_unix_server and _stop_serving, ...). The same calls made
from Python frames of pyasync would be flagged: pyasync makes them in C
(csrc/sendfile.c, csrc/unixsocket.c), where no Python call is made.
"""
import asyncio
import os
import socket
import threading

import blockbuster
import pytest

import _net_helpers as nh
from _net_helpers import Recorder, ServerFactory, run

pytest_plugins = ["_net_helpers"]  # fixtures: endpoint, tcp, unix, closer, ...

SIZE = 3 * nh.MiB + 4321


def run_watched(loop, coro):
    """Run coro on loop with blockbuster active and return its result. A
    BlockingError raised in a callback goes to the loop's exception handler
    rather than to coro: whatever reaches the handler fails the test too."""
    reported = []
    loop.set_exception_handler(lambda lp, context: reported.append(context))
    with blockbuster.blockbuster_ctx():
        result = run(loop, coro)
    assert reported == []
    return result


@pytest.fixture(scope="module")
def content():
    return nh.payload(SIZE, seed=11)


@pytest.fixture
def data_file(tmp_path, content):
    path = tmp_path / "sendfile.bin"
    path.write_bytes(content)
    with open(path, "rb") as f:
        yield f


def test_blockbuster_flags_a_blocking_call(loop):
    # The detector is on: the same kind of call from the test's own frame
    # is flagged.
    async def main():
        os.stat(".")
    with pytest.raises(blockbuster.BlockingError):
        run_watched(loop, main())


def test_sendfile_over_a_transport(loop, endpoint, data_file, content):
    async def main():
        server, client, sproto = await nh.connect_pair(loop, endpoint)
        try:
            sent = await loop.sendfile(client.transport, data_file)
            client.transport.write_eof()
            await sproto.eof
            return sent, bytes(sproto.data)
        finally:
            await nh.close_all(server, client, sproto)
    assert run_watched(loop, main()) == (SIZE, content)


def test_sock_sendfile(loop, sock_pair, data_file, content):
    a, b = sock_pair

    async def main():
        sender = asyncio.ensure_future(loop.sock_sendfile(a, data_file, 0, SIZE))
        got = bytearray()
        while len(got) < SIZE:
            got += await loop.sock_recv(b, 1 << 16)
        return await sender, bytes(got)
    assert run_watched(loop, main()) == (SIZE, content)


def test_unix_server_open_and_close(loop, unix):
    path = unix.new_path()

    async def main():
        server = await loop.create_unix_server(ServerFactory(loop, echo=True), path)
        transport, proto = await loop.create_unix_connection(lambda: Recorder(loop), path)
        transport.write(b"ping")
        echoed = await proto.received(4)
        transport.close()
        await proto.lost
        server.close()
        await server.wait_closed()
        return echoed
    assert run_watched(loop, main()) == b"ping"
    # 3.13+ removed the socket file on close (with os.unlink in asyncio).
    assert os.path.exists(path) is not nh.UNIX_SERVER_CLEANUP


# asyncio's own os.remove() of a stale socket file, and its os.stat() of the
# local address of a Unix datagram endpoint, are not in blockbuster's
# allow-list: asyncio's loop is flagged there, pyasync's is not.

def test_unix_server_replaces_stale_socket_file(pyloop, unix):
    path = unix.new_path()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()

    async def main():
        server = await pyloop.create_unix_server(asyncio.Protocol, path)
        server.close()
        await server.wait_closed()
    run_watched(pyloop, main())


def test_unix_datagram_endpoint_local_address(pyloop, unix):
    path = unix.new_path()

    async def main():
        transport, _ = await pyloop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=path, family=socket.AF_UNIX)
        transport.close()
    run_watched(pyloop, main())
    assert os.path.exists(path)


def test_shutdown_default_executor(loop):
    """Waiting for the executor's shutdown thread must not block in a
    Python frame of pyasync (asyncio's blocking join() is allowed only in
    its own shutdown_default_executor). The shutdown thread is made to
    linger after handing over its result, so that a join() would block."""
    import time
    lingered = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def slow_to_exit(*args, **kwargs):
        handle = call_soon_threadsafe(*args, **kwargs)
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.05)  # in the shutdown thread: linger before exiting
            lingered.append(True)
        return handle

    async def main():
        await loop.run_in_executor(None, time.sleep, 0.001)
        loop.call_soon_threadsafe = slow_to_exit
        try:
            await loop.shutdown_default_executor()
        finally:
            del loop.call_soon_threadsafe

    run_watched(loop, main())
    assert lingered


@pytest.mark.parametrize("keyword", ["user", "preexec_fn"])
def test_children_started_through_popen(loop, keyword):
    # A child that needs subprocess.Popen (here user= or preexec_fn=) waits
    # for the fork and exec with a blocking read; asyncio makes that call in
    # Popen under its own frames, which the detector allows, and pyasync in
    # a worker thread, which it does not watch.
    value = {"user": os.getuid(), "preexec_fn": os.getpid}[keyword]

    async def main():
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo started", stdout=asyncio.subprocess.PIPE, **{keyword: value})
        out, _ = await proc.communicate()
        return out, proc.returncode
    assert run_watched(loop, main()) == (b"started\n", 0)
