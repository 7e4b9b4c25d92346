"""pytest-asyncio running tests on pyasync loops.

The ``pytest_asyncio_loop_factories`` hook of this folder's conftest.py
(pytest-asyncio 1.4+) names the loops: every test marked
``@pytest.mark.asyncio`` here runs once on asyncio's loop and once on
pyasync's, with async fixtures on the same loop.
"""
import asyncio
import gc
import subprocess
import sys

import pytest

pytest_asyncio = pytest.importorskip("pytest_asyncio", minversion="1.4")

import _ecosystem as eco  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def no_fd_leak():
    """The fd check of conftest.py, once for the module: a loop shared by
    the tests of a class is made during the first and closed after the last."""
    before = eco.open_fds()
    yield
    if eco.open_fds() - before:
        gc.collect()
    leaked = {fd: eco.describe_fd(fd) for fd in eco.open_fds() - before}
    assert not leaked, f"file descriptors left open: {leaked}"


@pytest.fixture
def expected_loop(request):
    """The loop this test was parametrized with by the hook."""
    kinds = [kind for kind in eco.LOOP_FACTORIES if kind in request.node.callspec.id.split("-")]
    assert len(kinds) == 1, request.node.callspec.id
    return kinds[0]


def kind_of(loop):
    return type(loop).__module__.split(".")[0]


@pytest_asyncio.fixture
async def echo_server():
    async def echo(reader, writer):
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, eco.LOCALHOST, 0)
    yield server.sockets[0].getsockname()[1], asyncio.get_running_loop()
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_runs_on_the_parametrized_loop(expected_loop):
    assert kind_of(asyncio.get_running_loop()) == expected_loop


@pytest.mark.asyncio
async def test_async_fixture_shares_the_loop(echo_server, expected_loop):
    port, fixture_loop = echo_server
    assert fixture_loop is asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(eco.LOCALHOST, port)
    writer.write(b"hello\nworld\n")
    lines = [await reader.readline(), await reader.readline()]
    writer.close()
    await writer.wait_closed()
    assert lines == [b"HELLO\n", b"WORLD\n"]
    assert kind_of(fixture_loop) == expected_loop


@pytest.mark.asyncio
async def test_tasks_and_timeouts(expected_loop):
    async def slow():
        await asyncio.sleep(5)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await slow()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(asyncio.sleep(0.001, result=n)) for n in range(3)]
    assert [t.result() for t in tasks] == [0, 1, 2]


ONE_LOOP_FOR_THE_CLASS = """
import asyncio
import pytest
import pyasync

def pytest_asyncio_loop_factories(config, item):
    return {{"only": {factory}}}
"""

ONE_LOOP_FOR_THE_CLASS_TESTS = """
import asyncio
import pytest

loops = []

class TestShared:
    @pytest.mark.asyncio(loop_scope="class")
    async def test_first(self):
        loops.append(asyncio.get_running_loop())

    @pytest.mark.asyncio(loop_scope="class")
    async def test_second(self):
        loops.append(asyncio.get_running_loop())
        assert loops[0] is loops[1]
        assert type(loops[0]).__module__.split(".")[0] == {kind!r}
"""


def test_one_loop_for_the_class(loop_kind, tmp_path):
    """loop_scope="class": the tests of a class share one loop. They run in a
    pytest of their own, serially: pytest-xdist may hand two tests of a
    class to different workers."""
    factory = {"asyncio": "asyncio.new_event_loop", "pyasync": "pyasync.new_event_loop"}
    (tmp_path / "conftest.py").write_text(
        ONE_LOOP_FOR_THE_CLASS.format(factory=factory[loop_kind]))
    (tmp_path / "test_shared.py").write_text(ONE_LOOP_FOR_THE_CLASS_TESTS.format(kind=loop_kind))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-o", "asyncio_default_fixture_loop_scope=function", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout
