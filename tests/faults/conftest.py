"""Fault and stress tests (tests/faults): signals at random points, threads,
exhausted descriptors, resets, files closed behind the loop's back, closing
from callbacks, protocols that raise, flow control, many connections, many
timers, and a differential test of random programs against asyncio.

Every case runs on stdlib asyncio (the reference) and on pyasync through the
`loop`/`loop_factory` fixtures of tests/conftest.py, and every case is bounded
in time twice over: the coroutines run under asyncio.wait_for() or a loop
deadline, so a lost wakeup fails a test; and a watchdog (faulthandler) dumps
the stacks and ends the run if a test blocks where no deadline can reach it
(the loop stuck in C code, a thread that never ends).
"""
import faulthandler

import pytest

# Longer than any test here takes on a busy machine; only a hang reaches it.
WATCHDOG_SECONDS = 180


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
