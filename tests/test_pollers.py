"""The poller backends and their selection."""
import os
import subprocess
import sys

import pytest

# Run children outside the repository root, whose pyasync/ source package
# (without the built extension) would shadow the installed one.
HERE = os.path.dirname(os.path.abspath(__file__))

import pyasync


def test_both_backends_built():
    assert set(pyasync.pollers()) == {"epoll", "poll"}


def test_selected_backend_follows_environment(pyloop):
    assert pyloop._poller == (os.environ.get("PYASYNC_POLLER") or "epoll")


@pytest.mark.parametrize("name", ["epoll", "poll"])
def test_each_backend_runs_a_program(name):
    code = ("import asyncio, pyasync\n"
            "async def main():\n"
            "    await asyncio.sleep(0.01)\n"
            "    return asyncio.get_running_loop()._poller\n"
            "print(pyasync.run(main()))\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYASYNC_POLLER": name},
                         capture_output=True, text=True, cwd=HERE, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == name


def test_unknown_backend_is_refused():
    code = "import pyasync; pyasync.new_event_loop()"
    out = subprocess.run([sys.executable, "-c", code],
                         env={**os.environ, "PYASYNC_POLLER": "kqueue"},
                         capture_output=True, text=True, cwd=HERE, timeout=60)
    assert out.returncode != 0
    assert "unknown poller in PYASYNC_POLLER: kqueue" in out.stderr
