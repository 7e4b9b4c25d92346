"""The one place where differences between CPython versions live.

pyasync supports CPython 3.11, 3.12 and 3.13. Everything that depends on the
running version is decided here once, at import; the rest of the package uses
the names below. (The C side has the same rule: csrc/compat.h.)
"""
import socket
import sys
import sysconfig

# The versions the test suite runs on, and only those: pyasync's Future and
# Task share the C layout of asyncio's of each version (csrc/compat.h), and
# 3.14 changed asyncio's task registry and policies. A free-threaded build has
# no GIL to order the loop's state. setup.py and csrc/compat.h refuse to build
# for anything else; this catches an extension built some other way.
SUPPORTED_VERSIONS = ((3, 11), (3, 12), (3, 13))


def unsupported_interpreter(version_info, gil_disabled):
    """Why pyasync cannot run on this interpreter, or None."""
    version = ".".join(str(part) for part in version_info[:3])
    if tuple(version_info[:2]) not in SUPPORTED_VERSIONS:
        return (f"pyasync supports CPython 3.11, 3.12 and 3.13; this is Python {version}, "
                "which pyasync has not been tested on")
    if gil_disabled:
        return f"pyasync does not support free-threaded CPython builds (this is {version}t)"
    return None


_unsupported = unsupported_interpreter(sys.version_info,
                                       sysconfig.get_config_var("Py_GIL_DISABLED"))
if _unsupported is not None:
    raise ImportError(_unsupported)

from asyncio import format_helpers as _format_helpers  # noqa: E402

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)

if PY313:
    def format_callback_source(func, args, debug):
        return _format_helpers._format_callback_source(func, args, debug=debug)
else:
    def format_callback_source(func, args, debug):
        # Before 3.13 asyncio always shows the arguments.
        return _format_helpers._format_callback_source(func, args)

# Task(..., eager_start=True) and asyncio's eager task factories.
HAS_EAGER_TASKS = PY312

# A custom exception handler runs in the context of the failing task, future
# or handle (3.12+).
EXCEPTION_HANDLER_IN_CONTEXT = PY312

# shutdown_default_executor() gained its timeout parameter in 3.12.
SHUTDOWN_EXECUTOR_HAS_TIMEOUT = PY312

# 3.12 added the loop_factory parameter of asyncio.run().
ASYNCIO_RUN_HAS_LOOP_FACTORY = PY312

# The asyncio.tasks global holding the WeakSet that all_tasks() reads (3.12
# split eager tasks out into a set of their own and renamed this one).
TASK_REGISTRY_NAME = "_scheduled_tasks" if PY312 else "_all_tasks"

# Where asyncio's default policy lives.
if sys.platform == "win32":  # pragma: no cover - refused in __init__
    raise ImportError("pyasync does not support Windows")
from asyncio.unix_events import _UnixDefaultEventLoopPolicy as BaseDefaultPolicy  # noqa: E402

# asyncio.Server tracks its transports from 3.13 (close_clients and
# abort_clients); before, it only counts them.
if PY313:
    def server_attach(server, transport):
        server._attach(transport)
else:
    def server_attach(server, transport):
        server._attach()


# Keyword arguments of the networking methods that newer versions added:
# create_connection(all_errors=) in 3.12, create_server(keep_alive=) and
# create_unix_server(cleanup_socket=) in 3.13 (which also made removing the
# socket file on close the default). On older versions they are refused like
# any unknown keyword.
def _pop_new_kwarg(kwargs, method, name, default, available):
    value = kwargs.pop(name, default) if available else default
    if kwargs:
        unexpected = next(iter(kwargs))
        raise TypeError(f"{method}() got an unexpected keyword argument '{unexpected}'")
    return value


def pop_all_errors(kwargs, method):
    return _pop_new_kwarg(kwargs, method, 'all_errors', False, PY312)


def pop_keep_alive(kwargs, method):
    return _pop_new_kwarg(kwargs, method, 'keep_alive', None, PY313)


def pop_cleanup_socket(kwargs, method):
    return _pop_new_kwarg(kwargs, method, 'cleanup_socket', PY313, PY313)


# A failed bind() in create_connection(local_addr=) and create_server():
# 3.13 words it with str(err) ("[errno 98] address already in use"), earlier
# versions with its strerror. And 3.13 skips a server address the host
# lacks (EADDRNOTAVAIL, bpo-30945) where earlier versions fail.
def bind_error_detail(err):
    if PY313 or err.strerror is None:
        return str(err).lower()
    return err.strerror.lower()


SKIP_UNAVAILABLE_SERVER_ADDRESS = PY313


# create_datagram_endpoint(sock=): 3.13 refuses stream sockets only (a
# SOCK_SEQPACKET one is taken), earlier versions anything but SOCK_DGRAM.
def check_datagram_socket(sock):
    if PY313:
        if sock.type == socket.SOCK_STREAM:
            raise ValueError(f'A datagram socket was expected, got {sock!r}')
    elif sock.type != socket.SOCK_DGRAM:
        raise ValueError(f'A UDP Socket was expected, got {sock!r}')


# The warning for a child whose exit status another waitpid() took first, in
# the words of the child watcher asyncio uses by default: since 3.12 its
# pidfd watcher wherever pidfds work, on 3.11 its threaded watcher.
def warn_child_status_taken(logger, pid, learnt_by_pidfd):
    if learnt_by_pidfd and PY312:
        logger.warning("child process pid %d exit status already read: "
                       " will report returncode 255", pid)
    else:
        logger.warning("Unknown child process pid %d, will report returncode 255", pid)


# A child still running when its loop closes, reaped when it exits: 3.11's
# threaded watcher (asyncio's default there) warns then; from 3.12 the pidfd
# watcher drops the child without a word.
WARN_CHILD_EXIT_AFTER_LOOP_CLOSED = not PY312


async def sleep0():
    """One loop iteration (asyncio.sleep(0), imported late: no cycle)."""
    from asyncio import tasks
    await tasks.sleep(0)


# Signalling a child process. 3.12 sends with os.kill() and ignores a child
# that is gone (ProcessLookupError); 3.11 goes through Popen, which does
# nothing once it knows the child exited. Closing a transport with the child
# running kills it and ignores these errors (3.12 adds PermissionError: the
# child may run setuid).
if PY312:
    import os as _os
    import signal as _signal

    def send_signal_to_child(popen, sig):
        try:
            _os.kill(popen.pid, sig)
        except ProcessLookupError:
            pass

    def terminate_child(popen):
        send_signal_to_child(popen, _signal.SIGTERM)

    def kill_child(popen):
        send_signal_to_child(popen, _signal.SIGKILL)

    KILL_IGNORED_ERRORS = (ProcessLookupError, PermissionError)
else:
    def send_signal_to_child(popen, sig):
        popen.send_signal(sig)

    def terminate_child(popen):
        popen.terminate()

    def kill_child(popen):
        popen.kill()

    KILL_IGNORED_ERRORS = (ProcessLookupError,)
