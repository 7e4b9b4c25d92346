"""Helpers of the ecosystem suite (tests/ecosystem/), imported by its
conftest and test modules as ``import _ecosystem`` (pytest puts this folder
on sys.path)."""
import asyncio
import os
import socket

import pyasync

LOOP_FACTORIES = {"asyncio": asyncio.new_event_loop, "pyasync": pyasync.new_event_loop}

# Seconds one scenario may take. Each is short (well under a second on a
# working loop); the bound only turns a hang into a failure.
TIMEOUT = 10.0

LOCALHOST = "127.0.0.1"


def record_loop_errors(errors):
    """Makes the running loop's exception handler append to ``errors``: an
    error that a library only logs (an exception in a callback, a task never
    retrieved) must fail the scenario too."""
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: errors.append(context))


def assert_no_loop_errors(errors):
    assert not errors, f"the loop's exception handler was called: {errors!r}"


def bound_socket():
    """A TCP socket bound to an ephemeral port of 127.0.0.1, and the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOCALHOST, 0))
    return sock, sock.getsockname()[1]


def open_fds():
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


def describe_fd(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed between the listing and now
        return "?"
