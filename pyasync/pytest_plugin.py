"""A pytest plugin for virtual time (pyasync.testing). Enable it with
`-p pyasync.pytest_plugin` or `pytest_plugins = ["pyasync.pytest_plugin"]`.

- `@pytest.mark.virtual_time` (options: autojump, start, autojump_threshold)
  runs a pytest-asyncio test (1.4 or newer), with its async fixtures, on a
  pyasync loop of virtual time. Unmarked tests keep the loop pytest-asyncio
  would give them (a new loop of the current event loop policy).
- The `virtual_time_loop` fixture is such a loop for a test that drives it
  itself (`virtual_time_loop.run_until_complete(...)`); the marker's options
  apply to it too.

A conftest.py that implements pytest_asyncio_loop_factories itself takes
precedence over this plugin's (pytest-asyncio asks the first answer).
"""
import asyncio
import functools

import pytest

from . import testing

MARKER = "virtual_time"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}(autojump=True, start=0.0, autojump_threshold=0.0): run this test "
        "on a pyasync loop of virtual time (pyasync.testing)")


def _options(item):
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    if marker.args:
        raise pytest.UsageError(f"{item.nodeid}: mark.{MARKER} takes keyword options only")
    return dict(marker.kwargs)


def _policy_loop():
    return asyncio.get_event_loop_policy().new_event_loop()


@pytest.hookimpl(optionalhook=True)
def pytest_asyncio_loop_factories(config, item):
    options = _options(item)
    if options is None:
        return {"default": _policy_loop}
    return {"virtual-time": functools.partial(testing.new_event_loop, **options)}


@pytest.fixture
def virtual_time_loop(request):
    """A pyasync loop of virtual time, set as the current event loop for
    the test and closed after it."""
    loop = testing.new_event_loop(**(_options(request.node) or {}))
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()
