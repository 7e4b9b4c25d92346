"""add_signal_handler and remove_signal_handler."""
import asyncio
import ctypes
import os
import signal
import threading
import time

import pytest


def test_signal_handler_runs_in_loop(loop):
    got = []

    def handler(*args):
        got.append(args)
        loop.stop()
    loop.add_signal_handler(signal.SIGUSR1, handler, "arg")
    try:
        loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
        loop.call_later(5, loop.stop)
        loop.run_forever()
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert got == [("arg",)]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


@pytest.mark.parametrize("target", ["process", "other thread"])
def test_signal_wakes_loop_blocked_in_poll(loop, target):
    # Sent to the process, the signal interrupts the poll of the main
    # thread; sent to another thread, only the byte that CPython's C-level
    # handler writes to the wakeup fd can wake the loop. Either way the
    # handler runs at once: the 5 s timer only ends the test if it does not.
    got = []
    loop.add_signal_handler(signal.SIGUSR2, lambda: (got.append(1), loop.stop()))

    def send():
        if target == "process":
            os.kill(os.getpid(), signal.SIGUSR2)
        else:
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)
    timer = threading.Timer(0.05, send)
    timer.start()
    try:
        loop.call_later(5, loop.stop)
        start = time.monotonic()
        loop.run_forever()
        elapsed = time.monotonic() - start
    finally:
        timer.join()
        loop.remove_signal_handler(signal.SIGUSR2)
    assert got == [1]
    assert elapsed < 1


def test_remove_unknown_signal_handler(loop):
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_sigint_handler_restored_to_default_int_handler(loop):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signal_handler_errors(loop):
    with pytest.raises(TypeError, match="sig must be an int"):
        loop.add_signal_handler("SIGINT", print)
    with pytest.raises(ValueError, match="invalid signal number"):
        loop.add_signal_handler(0, print)
    with pytest.raises(ValueError, match="invalid signal number"):
        loop.remove_signal_handler(100000)
    with pytest.raises(RuntimeError, match="cannot be caught"):
        loop.add_signal_handler(signal.SIGKILL, print)

    async def coro_func():
        pass
    with pytest.raises(TypeError, match="coroutines cannot be used with add_signal_handler"):
        loop.add_signal_handler(signal.SIGUSR1, coro_func)


def test_signal_handler_outside_main_thread(loop):
    errors = []

    def in_thread():
        try:
            loop.add_signal_handler(signal.SIGUSR1, print)
        except RuntimeError as exc:
            errors.append(exc)
    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert len(errors) == 1


def test_signal_handler_on_closed_loop(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.add_signal_handler(signal.SIGUSR1, print)


def test_close_removes_signal_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, print)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_close_at_interpreter_shutdown_removes_signal_handlers(pyloop):
    """asyncio skips the removal while the interpreter finalises (it warns
    and leaves the wakeup fd on its closed self-pipe); pyasync restores the
    handlers and the wakeup fd as at any other time (docs/differences.md)."""
    import warnings
    from unittest import mock
    pyloop.add_signal_handler(signal.SIGUSR1, print)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with mock.patch("sys.is_finalizing", return_value=True):
            pyloop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1


def test_keyboard_interrupt_while_blocked(loop, default_sigint):
    # The default SIGINT handler raises KeyboardInterrupt out of the poll.
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(5))
    finally:
        timer.join()


def test_signal_during_c_callback_is_handled(loop_kind):
    # A signal that arrives while a callback runs C code (no bytecode runs
    # after it) must still be handled before the loop blocks in poll.
    import subprocess
    import sys
    code = (
        "import _thread, asyncio, pyasync\n"
        f"loop = {'asyncio' if loop_kind == 'asyncio' else 'pyasync'}.new_event_loop()\n"
        "loop.call_soon(_thread.interrupt_main)\n"
        "try:\n"
        "    loop.run_forever()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    from _child import with_default_sigint
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(with_default_sigint([sys.executable, "-c", code]), capture_output=True,
                         text=True, timeout=60, cwd=here)
    assert out.stdout.strip() == "interrupted", out.stderr


def _c_raise():
    """libc's raise(): a callable that sends a signal to the calling thread
    and returns without running any bytecode, so the Python handler of the
    signal has not run when the loop gets control back (os.kill() and
    signal.raise_signal() run it before returning)."""
    c_raise = getattr(ctypes.CDLL(None, use_errno=True), "raise")
    c_raise.argtypes = [ctypes.c_int]
    return c_raise


@pytest.mark.parametrize("action", ["stop", "call_soon_threadsafe"])
def test_signal_handler_after_c_callback_does_not_leave_loop_asleep(loop, action):
    # A handler installed with signal.signal() (no wakeup fd) that stops the
    # loop, or hands it a callback, once a callback has raised the signal
    # from C: the loop must act on it at once rather than block in poll. No
    # timer is scheduled; a thread stops the loop after 5 s at the latest.
    ran = []

    def handler(signum, frame):
        if action == "stop":
            loop.stop()
        else:
            loop.call_soon_threadsafe(loop.stop)
    old = signal.signal(signal.SIGUSR1, handler)
    rescue = threading.Timer(5, loop.call_soon_threadsafe, (loop.stop,))
    try:
        # Raised last in its batch: a Python callback after it would run
        # the handler itself.
        loop.call_soon(lambda: (ran.append("same batch"), loop.call_soon(ran.append, "next")))
        loop.call_soon(_c_raise(), signal.SIGUSR1)
        rescue.start()
        start = time.monotonic()
        loop.run_forever()
        elapsed = time.monotonic() - start
    finally:
        rescue.cancel()
        rescue.join()
        signal.signal(signal.SIGUSR1, old)
    assert elapsed < 1
    # stop() from the handler ends the loop after the current batch, as if
    # it had been called by the callback that raised the signal.
    assert ran == (["same batch"] if action == "stop" else ["same batch", "next"])


def test_signal_handler_run_by_an_overridden_time_does_not_leave_loop_asleep():
    # An overridden time() is Python code that the loop calls while it
    # computes the poll timeout: a signal handler that runs there (here for
    # a signal raised by time() itself) and stops the loop must not leave it
    # blocked until the next timer. asyncio has the same window (it looks at
    # its stopping flag before calling time()): pyasync's guarantee only.
    import pyasync
    c_raise = _c_raise()

    class SignalRaisingClock(pyasync.Loop):
        armed = False

        def time(self):
            if self.armed:
                self.armed = False
                c_raise(signal.SIGUSR1)
            return super().time()
    loop = SignalRaisingClock()
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: loop.stop())
    try:
        loop.call_later(5, loop.stop)
        loop.armed = True
        start = time.monotonic()
        loop.run_forever()
        elapsed = time.monotonic() - start
    finally:
        signal.signal(signal.SIGUSR1, old)
        loop.close()
    assert not loop.armed
    assert elapsed < 1
