"""Fixtures of the ecosystem suite: real libraries driven on stdlib asyncio
(the reference) and on pyasync.

Every scenario takes the ``loop_kind`` parameter of tests/conftest.py, so it
runs once per loop. ``run(fn, *args)`` drives a coroutine function on a new
loop of that kind and bounds it in time, so a library stuck on a broken loop
fails its test instead of hanging the suite. The libraries come with the
project's ``test`` extra; a module whose library is missing is skipped as a
whole by ``pytest.importorskip``.
"""
import asyncio
import gc

import pytest

import _ecosystem as eco


@pytest.fixture
def new_loop(loop_kind):
    """The loop factory of the kind under test (asyncio.new_event_loop or
    pyasync.new_event_loop), for libraries that take one."""
    return eco.LOOP_FACTORIES[loop_kind]


@pytest.fixture
def run(new_loop):
    """run(fn, *args, timeout=TIMEOUT): fn(*args) on a new loop of the kind
    under test, through asyncio.Runner (which closes the loop, its async
    generators and its executor), bounded by asyncio.wait_for(); fails if
    anything reached the loop's exception handler."""

    def runner(fn, *args, timeout=eco.TIMEOUT):
        errors = []

        async def main():
            eco.record_loop_errors(errors)
            return await asyncio.wait_for(fn(*args), timeout)

        with asyncio.Runner(loop_factory=new_loop) as asyncio_runner:
            result = asyncio_runner.run(main())
        eco.assert_no_loop_errors(errors)
        return result

    return runner


@pytest.fixture(autouse=True)
def no_fd_leak():
    """Every scenario closes what it opened: servers, clients, the loop.
    (What only the garbage collector would close counts as closed; a full
    collection runs only when descriptors seem to be left, as it is slow.)"""
    before = eco.open_fds()
    yield
    if eco.open_fds() - before:
        gc.collect()
    leaked = {fd: eco.describe_fd(fd) for fd in eco.open_fds() - before}
    assert not leaked, f"file descriptors left open: {leaked}"


def _pytest_asyncio_has_loop_factories():
    try:
        from pytest_asyncio.plugin import PytestAsyncioSpecs
    except ImportError:
        return False
    return hasattr(PytestAsyncioSpecs, "pytest_asyncio_loop_factories")


if _pytest_asyncio_has_loop_factories():
    def pytest_asyncio_loop_factories(config, item):
        """pytest-asyncio 1.4+: each test of this folder marked
        ``@pytest.mark.asyncio`` runs once per loop, [asyncio] and [pyasync]
        (test_pytest_asyncio.py)."""
        return dict(eco.LOOP_FACTORIES)
