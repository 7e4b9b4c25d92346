"""Helpers shared by the fault tests."""
import asyncio
import os
import sys

DEFAULT_TIMEOUT = 20.0

# Children run from tests/, not from the repository root, whose pyasync/
# source package (without a built extension) would shadow the installed one.
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(loop, coro, timeout=DEFAULT_TIMEOUT):
    """Run coro on loop; TimeoutError after timeout seconds instead of a hang."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def child_command(code, loop_kind):
    """argv that runs code in a fresh interpreter with LOOP_KIND set."""
    return [sys.executable, "-X", "faulthandler", "-c",
            f"LOOP_KIND = {loop_kind!r}\n" + code]


def new_loop_source():
    """Source text that makes the loop named by LOOP_KIND in a child."""
    return ("import asyncio, pyasync\n"
            "def new_loop():\n"
            "    if LOOP_KIND == 'asyncio':\n"
            "        return asyncio.new_event_loop()\n"
            "    return pyasync.new_event_loop()\n")
