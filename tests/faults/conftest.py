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
import contextlib
import faulthandler
import signal
import sys
import threading

import pytest

# Longer than any test here takes on a busy machine; only a hang reaches it.
WATCHDOG_SECONDS = 150
# Last resort, for a hang that holds the GIL (the Python watchdog cannot run).
HARD_WATCHDOG_SECONDS = 210


@pytest.fixture(autouse=True)
def watchdog(request):
    """After WATCHDOG_SECONDS, print every thread's stack where the terminal
    shows it (not into pytest's capture) and interrupt the main thread with
    SIGINT, which also breaks a poll that no deadline would end."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    main_thread = threading.get_ident()

    def expire():
        uncaptured = (capman.global_and_fixture_disabled() if capman is not None
                      else contextlib.nullcontext())
        with uncaptured:
            sys.stderr.write(f"\n*** watchdog: {request.node.nodeid} still running after "
                             f"{WATCHDOG_SECONDS} s\n")
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            sys.stderr.flush()
        signal.pthread_kill(main_thread, signal.SIGINT)

    timer = threading.Timer(WATCHDOG_SECONDS, expire)
    timer.daemon = True
    timer.start()
    faulthandler.dump_traceback_later(HARD_WATCHDOG_SECONDS, exit=True)
    yield
    timer.cancel()
    faulthandler.cancel_dump_traceback_later()
