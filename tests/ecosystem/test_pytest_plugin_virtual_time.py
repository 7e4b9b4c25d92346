"""pyasync's pytest plugin (-p pyasync.pytest_plugin): the virtual_time
marker puts a pytest-asyncio test, with its async fixtures, on a loop of
virtual time; unmarked tests keep pytest-asyncio's loop; the
virtual_time_loop fixture serves tests that drive a loop themselves. Run as a
pytest session of its own, on a test file written here."""
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("pytest_asyncio", minversion="1.4")

TESTS = textwrap.dedent('''
import asyncio, time
import pytest, pytest_asyncio
import pyasync.testing

@pytest_asyncio.fixture
async def server():
    async def handle(r, w):
        await asyncio.sleep(30)
        w.write(b"late"); await w.drain(); w.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield srv.sockets[0].getsockname()[1]
    srv.close(); await srv.wait_closed()

@pytest.mark.virtual_time
@pytest.mark.asyncio
async def test_hour(server):
    loop = asyncio.get_running_loop()
    assert isinstance(loop, pyasync.testing.VirtualTimeLoop)
    r, w = await asyncio.open_connection("127.0.0.1", server)
    assert await r.read() == b"late"
    w.close()
    await asyncio.sleep(3600)
    assert loop.time() >= 3630

@pytest.mark.virtual_time(start=100.0)
@pytest.mark.asyncio
async def test_start():
    assert asyncio.get_running_loop().time() == 100.0

@pytest.mark.asyncio
async def test_unmarked():
    assert not isinstance(asyncio.get_running_loop(), pyasync.testing.VirtualTimeLoop)

def test_fixture(virtual_time_loop):
    virtual_time_loop.run_until_complete(asyncio.sleep(86400))
    assert virtual_time_loop.time() == 86400.0

@pytest.mark.virtual_time(autojump=False)
def test_fixture_manual(virtual_time_loop):
    pyasync.testing.advance(virtual_time_loop, 5)
    assert virtual_time_loop.time() == 5.0
''')


def test_plugin_runs_marked_tests_on_virtual_time(tmp_path):
    (tmp_path / "test_virtual.py").write_text(TESTS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pyasync.pytest_plugin",
         "-o", "asyncio_default_fixture_loop_scope=function", "-W", "error::pytest.PytestUnraisableExceptionWarning",
         "test_virtual.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout
