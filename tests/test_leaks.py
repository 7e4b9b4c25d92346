"""Resource leaks: file descriptors, memory and references across many rounds
of creating, running and closing loops. Each check runs in a fresh process so
that other tests do not disturb the measurements."""
import os
import subprocess
import sys
import textwrap

import pytest

# Run children outside the repository root, whose pyasync/ source package
# (without the built extension) would shadow the installed one.
HERE = os.path.dirname(os.path.abspath(__file__))


def _under_asan():
    # AddressSanitizer's quarantine holds freed memory, so RSS says nothing
    # about leaks there; fds and tracemalloc still do.
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


UNDER_ASAN = _under_asan()

LEAK_SCRIPT = textwrap.dedent(r'''
    import asyncio, gc, os, resource, signal, socket, sys, tracemalloc
    import pyasync

    def fd_count():
        return len(os.listdir("/proc/self/fd"))

    def rss_kib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    async def work():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(0.0001, fut.set_result, 1)
        await fut
        handles = [loop.call_later(10, print) for _ in range(200)]
        for h in handles:
            h.cancel()
        a, b = socket.socketpair()
        a.setblocking(False)
        got = loop.create_future()
        loop.add_reader(a, lambda: got.set_result(a.recv(10)))
        b.send(b"x")
        await got
        loop.remove_reader(a)
        a.close(); b.close()
        loop.add_signal_handler(signal.SIGUSR1, print)
        await loop.run_in_executor(None, sum, [1, 2])
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(50)))
        def fail():
            raise ValueError("x")
        loop.set_exception_handler(lambda lp, ctx: None)
        loop.call_soon(fail)
        await asyncio.sleep(0)

    def one_round():
        loop = pyasync.new_event_loop()
        try:
            loop.run_until_complete(work())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    def total_refs():
        return sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None

    for _ in range(10):                      # warm up caches, executors, imports
        one_round()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    gc.collect()
    # A snapshot holds references to thousands of objects: both totals are
    # read while snap0, and only snap0, is alive.
    fds0, rss0, total0 = fd_count(), rss_kib(), total_refs()
    for _ in range(ROUNDS):
        one_round()
    gc.collect()
    fds1, rss1, total1 = fd_count(), rss_kib(), total_refs()
    snap1 = tracemalloc.take_snapshot()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename") if s.size_diff > 0)
    print(fds0, fds1, rss0, rss1, grown, total0, total1)
''')


def run_rounds(rounds):
    code = LEAK_SCRIPT.replace("ROUNDS", str(rounds))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    fds0, fds1, rss0, rss1, grown, total0, total1 = out.stdout.split()
    return int(fds0), int(fds1), int(rss0), int(rss1), int(grown), total0, total1


def test_no_leak_across_100_loops():
    fds0, fds1, rss0, rss1, grown, total0, total1 = run_rounds(100)
    assert fds1 == fds0, f"file descriptors leaked: {fds0} -> {fds1}"
    # Python-level allocations that survive 100 rounds (weakref caches and
    # the like may keep a few KiB).
    assert grown < 64 * 1024, f"tracemalloc shows {grown} bytes kept"
    # RSS: a leak of one handle or loop per round would show as several MiB.
    assert UNDER_ASAN or rss1 - rss0 < 4 * 1024, f"RSS grew from {rss0} KiB to {rss1} KiB"
    if total0 != "None":
        assert int(total1) - int(total0) < 100, f"refcount total {total0} -> {total1}"


@pytest.mark.parametrize("rounds", [20, 200])
def test_rss_does_not_scale_with_rounds(rounds):
    # Steady state: ten times the rounds must not mean ten times the growth.
    fds0, fds1, rss0, rss1, *_ = run_rounds(rounds)
    assert fds1 == fds0
    assert UNDER_ASAN or rss1 - rss0 < 4 * 1024


CONNECTIONS_SCRIPT = textwrap.dedent(r'''
    import asyncio, gc, os, sys, tracemalloc
    import pyasync

    def fd_count():
        return len(os.listdir("/proc/self/fd"))

    def rss_kib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

        def eof_received(self):
            self.transport.close()

    async def one(port, payload):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        writer.write_eof()
        got = await reader.read()
        assert got == payload, (len(got), len(payload))
        writer.close()
        await writer.wait_closed()

    async def batch(port, count):
        payload = os.urandom(4096)
        for _ in range(count // 50):
            await asyncio.gather(*(one(port, payload) for _ in range(50)))

    async def main():
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0,
                                                                backlog=200)
        port = server.sockets[0].getsockname()[1]
        await batch(port, 500)                 # warm up
        gc.collect()
        fds0, rss0 = fd_count(), rss_kib()
        tracemalloc.start()
        await batch(port, 1000)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        await batch(port, CONNECTIONS - 1000)
        gc.collect()
        snap2 = tracemalloc.take_snapshot()
        fds1, rss1 = fd_count(), rss_kib()
        grown = sum(s.size_diff for s in snap2.compare_to(snap1, "filename")
                    if s.size_diff > 0)
        server.close()
        await server.wait_closed()
        print(fds0, fds1, rss0, rss1, grown)

    pyasync.run(main())
''')


def test_ten_thousand_connections_leak_nothing():
    # 10,000 TCP connections through a pyasync server and pyasync streams,
    # each echoing 4 KiB: file descriptors, Python allocations (tracemalloc
    # between connection 1,500 and 10,500) and RSS stay flat.
    code = CONNECTIONS_SCRIPT.replace("CONNECTIONS", "10_000")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    fds0, fds1, rss0, rss1, grown = (int(x) for x in out.stdout.split())
    assert fds1 == fds0, f"file descriptors leaked: {fds0} -> {fds1}"
    assert grown < 64 * 1024, f"tracemalloc shows {grown} bytes kept over 9,000 connections"
    assert UNDER_ASAN or rss1 - rss0 < 8 * 1024, f"RSS grew from {rss0} KiB to {rss1} KiB"


def test_handle_in_a_cycle_at_shutdown():
    # A handle kept alive by a reference cycle until the interpreter exits:
    # the collector may clear pyasync's types before the handle, and its
    # deallocation must not need them.
    code = "import pyasync\nl = [pyasync.Handle(print, (), None)]\nl.append(l)\nprint('ok')\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"
