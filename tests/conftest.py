"""Shared fixtures: every behaviour test runs on stdlib asyncio (the
reference) and on pyasync, so the expected behaviour is CPython's."""
import asyncio
import gc
import os
import signal

import pytest

# Helper modules that test modules import before naming them in
# pytest_plugins: their asserts are rewritten too, without a warning.
pytest.register_assert_rewrite("_net_helpers", "_tls_helpers")

import pyasync  # noqa: E402

LOOP_KINDS = ("asyncio", "pyasync")


def make_loop(kind):
    if kind == "asyncio":
        return asyncio.new_event_loop()
    return pyasync.new_event_loop()


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    return request.param


@pytest.fixture
def loop(loop_kind):
    lp = make_loop(loop_kind)
    asyncio.set_event_loop(None)
    yield lp
    if lp.is_running():  # pragma: no cover - a test bug
        lp.stop()
    lp.close()
    gc.collect()


@pytest.fixture
def loop_factory(loop_kind):
    """Makes more loops of the kind under test; closes them afterwards."""
    made = []

    def factory():
        lp = make_loop(loop_kind)
        made.append(lp)
        return lp
    yield factory
    for lp in made:
        if not lp.is_closed():
            lp.close()


@pytest.fixture
def pyloop():
    """A pyasync loop, for tests of pyasync-only behaviour."""
    lp = pyasync.new_event_loop()
    yield lp
    lp.close()


def pytest_report_header(config):
    return f"pyasync poller: {os.environ.get('PYASYNC_POLLER') or 'default'}"


@pytest.fixture
def default_sigint():
    """SIGINT handled by Python's default handler (KeyboardInterrupt) during
    the test, whatever the test process inherited: a test run started in the
    background by a non-interactive shell has SIGINT ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)
