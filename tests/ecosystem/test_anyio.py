"""anyio on each loop, through ``anyio.run(..., backend_options={"loop_factory":
...})``: task groups, cancel scopes, memory object streams, sockets and
worker threads.

anyio's asyncio backend reads asyncio internals of the tasks it manages: it
decides whether a task may still be cancelled from
``isinstance(task._fut_waiter, asyncio.Future)`` (and whether its waiter is
already done), so a loop whose futures fail that check has tasks cancelled
after their wait completed, and items of memory object streams lost.
"""
import asyncio
import gc
import os
import signal
import socket
import threading

import pytest

anyio = pytest.importorskip("anyio")

from anyio import from_thread, to_thread  # noqa: E402
from anyio.abc import TaskStatus  # noqa: E402
from anyio.streams.tls import TLSAttribute, TLSListener  # noqa: E402

import _ecosystem as eco  # noqa: E402

pytest_plugins = ["_net_helpers"]  # TLS fixtures: server_ctx, client_ctx


@pytest.fixture
def anyio_run(new_loop):
    """anyio_run(fn, *args): anyio.run() on a new loop of the kind under
    test, bounded in time; fails if anything reached the loop's exception
    handler."""

    def runner(fn, *args):
        errors = []

        async def main():
            eco.record_loop_errors(errors)
            with anyio.fail_after(eco.TIMEOUT):
                return await fn(*args)

        result = anyio.run(main, backend="asyncio", backend_options={"loop_factory": new_loop})
        eco.assert_no_loop_errors(errors)
        return result

    return runner


def test_runs_on_the_loop_given(anyio_run, loop_kind):
    async def main():
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert anyio_run(main) == loop_kind


# ------------------------------------------------------------ task groups

def test_task_group_start_and_start_soon(anyio_run):
    async def main():
        results = []

        async def worker(n):
            await anyio.sleep(0.001 * n)
            results.append(n)

        async def service(*, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED):
            await anyio.sleep(0)
            task_status.started("ready")
            await anyio.sleep(0.01)
            results.append("service")

        async with anyio.create_task_group() as tg:
            for n in (3, 1, 2):
                tg.start_soon(worker, n)
            status = await tg.start(service)
        return status, results

    status, results = anyio_run(main)
    assert status == "ready"
    assert sorted(results, key=str) == [1, 2, 3, "service"]


def test_task_group_failure_cancels_siblings(anyio_run):
    async def main():
        cancelled = []

        async def sleeper():
            try:
                await anyio.sleep(5)
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise

        async def failing():
            await anyio.sleep(0.01)
            raise ValueError("boom")

        with pytest.raises(ExceptionGroup) as group:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper)
                tg.start_soon(sleeper)
                tg.start_soon(failing)
        return [type(e) for e in group.value.exceptions], cancelled

    assert anyio_run(main) == ([ValueError], [True, True])


# ------------------------------------------------------------ cancel scopes

def test_cancel_scopes(anyio_run):
    async def main():
        log = []
        with anyio.move_on_after(0.01) as scope:
            await anyio.sleep(5)
        log.append(("move_on_after", scope.cancelled_caught))

        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.01):
                await anyio.sleep(5)
        log.append("fail_after")

        with anyio.CancelScope() as outer:
            outer.cancel()
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)  # not interrupted
                log.append("shielded")
            await anyio.sleep(5)
            log.append("not reached")
        log.append(("outer", outer.cancelled_caught))

        with anyio.CancelScope(deadline=anyio.current_time() + 5) as moved:
            moved.deadline = anyio.current_time() + 0.01
            await anyio.sleep(5)
        log.append(("deadline moved", moved.cancelled_caught))
        return log

    assert anyio_run(main) == [
        ("move_on_after", True), "fail_after", "shielded", ("outer", True),
        ("deadline moved", True)]


def test_cancel_scope_cancelled_from_another_task(anyio_run):
    async def main():
        async def waiter(scope_box, *, task_status=anyio.TASK_STATUS_IGNORED):
            with anyio.CancelScope() as scope:
                scope_box.append(scope)
                task_status.started()
                await anyio.Event().wait()
            return scope.cancelled_caught

        box = []
        async with anyio.create_task_group() as tg:
            await tg.start(waiter, box)
            box[0].cancel()
        return box[0].cancelled_caught

    assert anyio_run(main) is True


def test_cancel_scope_spares_a_task_whose_wait_completed(anyio_run):
    # The receiver's wait is complete (an item was handed to it) when its
    # scope is cancelled in the same callback. anyio then does not cancel the
    # task, whose waiter is done, so the item is received. A loop whose
    # futures fail isinstance(waiter, asyncio.Future) makes anyio cancel the
    # task anyway: CancelledError at the completed wait, and the item, taken
    # out of the stream, is lost.
    async def main():
        send, receive = anyio.create_memory_object_stream(0)
        received = []
        scopes = []

        async def receiver():
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                received.append(await receive.receive())

        async with send, receive, anyio.create_task_group() as tg:
            tg.start_soon(receiver)
            await anyio.wait_all_tasks_blocked()
            send.send_nowait("item")
            scopes[0].cancel()
        return received

    assert anyio_run(main) == ["item"]


# ------------------------------------------------------------ memory object streams

def test_memory_object_stream_producers_and_consumers(anyio_run):
    async def main():
        send, receive = anyio.create_memory_object_stream(2)
        received = []

        async def producer(stream, base):
            async with stream:
                for i in range(50):
                    await stream.send(base + i)

        async def consumer(stream):
            async with stream:
                async for item in stream:
                    received.append(item)

        async with anyio.create_task_group() as tg:
            async with send, receive:
                for base in (0, 1000, 2000):
                    tg.start_soon(producer, send.clone(), base)
                for _ in range(2):
                    tg.start_soon(consumer, receive.clone())
        return sorted(received)

    assert anyio_run(main) == [b + i for b in (0, 1000, 2000) for i in range(50)]


def test_memory_object_stream_item_not_given_to_a_cancelled_receiver(anyio_run):
    # The receiver task has been cancelled (task.cancel() cancelled the
    # future it waits on) but has not run yet. send_nowait() must see the
    # pending cancellation and keep the item in the buffer. anyio sees it from
    # isinstance(task._fut_waiter, asyncio.Future) and waiter.cancelled(); if
    # that check fails the item goes to the cancelled receiver and is lost.
    async def main():
        send, receive = anyio.create_memory_object_stream(1)
        received = []

        async def receiver():
            received.append(await receive.receive())

        async with send, receive:
            task = asyncio.get_running_loop().create_task(receiver())
            await anyio.wait_all_tasks_blocked()
            task.cancel()
            send.send_nowait("item")
            with pytest.raises(asyncio.CancelledError):
                await task
            return received, receive.receive_nowait()

    assert anyio_run(main) == ([], "item")


def test_memory_object_stream_receive_with_timeout(anyio_run):
    async def main():
        send, receive = anyio.create_memory_object_stream(0)
        async with send, receive:
            with anyio.move_on_after(0.01) as scope:
                await receive.receive()
            timed_out = scope.cancelled_caught

            async def later():
                await anyio.sleep(0.01)
                await send.send("late")

            async with anyio.create_task_group() as tg:
                tg.start_soon(later)
                with anyio.fail_after(5):
                    item = await receive.receive()
            return timed_out, item, receive.statistics().tasks_waiting_receive

    assert anyio_run(main) == (True, "late", 0)


# ------------------------------------------------------------ sockets

def test_tcp_listener_and_client(anyio_run):
    async def main():
        async def handle(stream):
            async with stream:
                data = b""
                async for chunk in stream:
                    data += chunk
                await stream.send(data.upper())

        listener = await anyio.create_tcp_listener(local_host=eco.LOCALHOST)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        replies = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            for n in range(3):
                async with await anyio.connect_tcp(eco.LOCALHOST, port) as client:
                    await client.send(b"x" * (100000 * n) + b"hello")
                    await client.send_eof()
                    reply = b""
                    async for chunk in client:
                        reply += chunk
                    replies.append(reply)
            tg.cancel_scope.cancel()
        await listener.aclose()
        return replies

    assert anyio_run(main) == [b"X" * (100000 * n) + b"HELLO" for n in range(3)]


def test_tls_listener_and_client(anyio_run, server_ctx, client_ctx):
    async def main():
        async def handle(stream):
            async with stream:
                await stream.send((await stream.receive()).upper())

        listener = TLSListener(await anyio.create_tcp_listener(local_host=eco.LOCALHOST),
                               server_ctx)
        port = listener.listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            async with await anyio.connect_tcp(eco.LOCALHOST, port, tls=True,
                                               ssl_context=client_ctx) as client:
                await client.send(b"over tls")
                reply = await client.receive()
                version = client.extra(TLSAttribute.tls_version)
            tg.cancel_scope.cancel()
        await listener.aclose()
        return reply, version.startswith("TLS")

    assert anyio_run(main) == (b"OVER TLS", True)


def test_udp_echo(anyio_run):
    async def main():
        async with await anyio.create_udp_socket(local_host=eco.LOCALHOST) as server:
            port = server.extra(anyio.abc.SocketAttribute.local_port)
            async with await anyio.create_connected_udp_socket(eco.LOCALHOST, port) as client:
                await client.send(b"ping")
                data, address = await server.receive()
                await server.sendto(data.upper(), *address)
                return await client.receive()

    assert anyio_run(main) == b"PING"


def test_unix_stream_closed_while_a_task_receives(anyio_run, tmp_path):
    # A server closes a connection while another task waits in receive():
    # anyio closes the socket, then wakes the reader, whose done-callback
    # calls loop.remove_reader() with the now closed socket object. asyncio
    # removes the watcher by that object. A loop that only looks at
    # sock.fileno() (-1 now) raises ValueError in that callback and keeps a
    # stale watcher on the old fd number; the next connection reuses the
    # number and its reads may never be woken.
    path = str(tmp_path / "anyio.sock")

    async def exchange(sender, receiver, data, received):
        # The receiver waits before the data is sent, so that its read goes
        # through the loop's reader watcher.
        async def receive():
            received.append(await receiver.receive())

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await anyio.wait_all_tasks_blocked()
                await sender.send(data)

    async def main():
        outcomes = []
        async with await anyio.create_unix_listener(path) as listener:
            for attempt in range(2):
                async with anyio.create_task_group() as tg:
                    accepted = []

                    async def accept(*, task_status=anyio.TASK_STATUS_IGNORED):
                        task_status.started()
                        accepted.append(await listener.accept())

                    await tg.start(accept)
                    client = await anyio.connect_unix(path)
                async with client, accepted[0] as server_side:
                    await exchange(client, server_side, b"ping", outcomes)
                    await exchange(server_side, client, b"pong", outcomes)

                    async def reader():
                        try:
                            await server_side.receive()
                        except anyio.ClosedResourceError:
                            outcomes.append("closed")

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(reader)
                        await anyio.wait_all_tasks_blocked()
                        await server_side.aclose()
        return outcomes

    assert anyio_run(main) == [b"ping", b"pong", "closed"] * 2


def test_wait_readable_on_a_socket(anyio_run):
    async def main():
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, b.send, b"ready")
                await anyio.wait_readable(a)
            return a.recv(10)

    assert anyio_run(main) == b"ready"


def test_refused_connection_leaves_no_reference_cycles(anyio_run):
    # The OSError of a failed connect_tcp() is all that remains: nothing of
    # the attempt (sockets, futures, frames) is kept alive by a cycle that
    # only the garbage collector would break.
    with socket.socket() as probe:
        probe.bind((eco.LOCALHOST, 0))
        port = probe.getsockname()[1]

    async def main():
        await anyio.sleep(0)
        gc.collect()
        gc.disable()
        try:
            with pytest.raises(OSError):
                await anyio.connect_tcp(eco.LOCALHOST, port)
            return gc.collect()
        finally:
            gc.enable()

    assert anyio_run(main) == 0


# ------------------------------------------------------------ threads

def test_to_thread_and_back(anyio_run):
    async def main():
        loop_thread = threading.get_ident()

        def in_worker():
            back_on_loop = from_thread.run(anyio.sleep, 0) is None
            loop_ident = from_thread.run_sync(threading.get_ident)
            return threading.get_ident() != loop_thread, back_on_loop, loop_ident == loop_thread

        limiter = anyio.CapacityLimiter(2)
        results = []
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                async def one():
                    results.append(await to_thread.run_sync(in_worker, limiter=limiter))
                tg.start_soon(one)
        return results

    assert anyio_run(main) == [(True, True, True)] * 4


def test_to_thread_abandoned_on_cancel(anyio_run):
    async def main():
        release = threading.Event()
        with anyio.move_on_after(0.01) as scope:
            await to_thread.run_sync(release.wait, 5, abandon_on_cancel=True)
        release.set()
        return scope.cancelled_caught

    assert anyio_run(main) is True


def test_many_short_connections(anyio_run):
    # Twenty connections in a row through one listener; afterwards nothing
    # of them is left open (the suite's fd check).
    async def main():
        listener = await anyio.create_tcp_listener(local_host=eco.LOCALHOST)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def handle(stream):
            async with stream:
                await stream.send(await stream.receive())

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            echoed = []
            for n in range(20):
                async with await anyio.connect_tcp(eco.LOCALHOST, port) as client:
                    await client.send(b"%d" % n)
                    echoed.append(await client.receive())
            tg.cancel_scope.cancel()
        await listener.aclose()
        return echoed

    assert anyio_run(main) == [b"%d" % n for n in range(20)]


def test_blocking_portal_from_sync_code(new_loop, loop_kind):
    # Synchronous code calling into async code: the portal runs a loop made
    # by the factory in a thread of its own.
    async def work(n):
        await anyio.sleep(0.001)
        return n * 2, type(asyncio.get_running_loop()).__module__.split(".")[0]

    with from_thread.start_blocking_portal(backend_options={"loop_factory": new_loop}) as portal:
        results = [portal.call(work, n) for n in range(3)]
        in_background = portal.start_task_soon(work, 10)  # a concurrent.futures.Future
        results.append(in_background.result(eco.TIMEOUT))
    assert results == [(n * 2, loop_kind) for n in (0, 1, 2, 10)]


def test_signal_receiver(anyio_run):
    # SIGWINCH (a terminal resized): ignored by default, so a handler that
    # never got installed shows as a timeout, not a killed test run.
    async def main():
        received = []
        with anyio.open_signal_receiver(signal.SIGWINCH) as signals:
            async with anyio.create_task_group() as tg:
                tg.start_soon(to_thread.run_sync, os.kill, os.getpid(), signal.SIGWINCH)
                with anyio.fail_after(5):
                    async for signum in signals:
                        received.append(signum)
                        break
        return received

    assert anyio_run(main) == [signal.SIGWINCH]
