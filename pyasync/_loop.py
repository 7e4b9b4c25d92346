"""pyasync.Loop: the C event loop plus the few methods that stay in Python.

The C base class (pyasync._core.LoopBase) owns everything on the hot path:
the ready queue, timers, I/O watchers, the poller, the self-pipe and the run
loop. This subclass adds asyncio.AbstractEventLoop as a base (so isinstance()
checks hold) and the methods that are glue around other Python modules and
run once per program rather than once per callback: run_until_complete, the
default executor, async generator hooks, the exception handler, signals, and
the interpreter-wide setup that run_forever() performs.
"""
import _socket
import concurrent.futures
import errno
import os
import signal
import socket
import sys
import threading
import traceback
import types
import warnings
import weakref

from asyncio import base_events as _base_events
from asyncio import base_futures, base_tasks, constants, coroutines, events, exceptions
from asyncio import format_helpers, futures, protocols, streams, tasks, timeouts, transports
from asyncio import trsock, unix_events
from asyncio.log import logger

from . import _compat, _network, _taskdump
from ._core import Handle, LoopBase
from ._network import NetworkMixin
from ._pipes import PipesMixin
from ._sendfile import SendfileMixin
from ._subprocess import SubprocessMixin


def _run_until_complete_cb(fut):
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # Issue #22429: run_forever() already finished, no need to
            # stop it.
            return
    fut.get_loop().stop()


def _sighandler_noop(signum, frame):
    """Dummy signal handler: the C-level handler of CPython writes the
    signal number to the loop's wakeup fd, which is all we need."""


# The loop whose self-pipe add_signal_handler() made the signal wakeup fd.
_signal_wakeup_loop = None


def _set_signal_wakeup_loop(loop):
    global _signal_wakeup_loop
    _signal_wakeup_loop = None if loop is None else weakref.ref(loop)


def _signal_wakeup_after_fork():
    # In a forked child the wakeup fd still is the parent's pipe: a signal
    # sent to the child would run the parent's handler. The loop's
    # _wakeup_fd is the pipe of the process asking (the loop renews its
    # poller and self-pipe in the child), so its handlers keep working here.
    loop = _signal_wakeup_loop() if _signal_wakeup_loop is not None else None
    if loop is None or loop.is_closed() or not loop._signal_handlers:
        return
    try:
        signal.set_wakeup_fd(loop._wakeup_fd)
    except (ValueError, OSError) as exc:
        logger.info('set_wakeup_fd() after fork failed: %s', exc)
        try:
            signal.set_wakeup_fd(-1)  # at least not the parent's pipe
        except (ValueError, OSError):
            pass


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_signal_wakeup_after_fork)


class Loop(LoopBase, NetworkMixin, SendfileMixin, PipesMixin, SubprocessMixin,
           events.AbstractEventLoop):
    """An asyncio event loop implemented in C."""

    def __init__(self):
        self._exception_handler = None
        self._default_executor = None
        self._executor_shutdown_called = False
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._old_agen_hooks = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        self._signal_handlers = {}
        self._unix_server_sockets = {}  # listening Unix socket -> inode of its file
        self._child_watches = {}  # pid -> _ExitWatch watching its pidfd (_subprocess.py)
        self._child_starts = set()  # children being started (_spawn.py)
        self.set_debug(coroutines._is_debug_mode())

    def __repr__(self):
        return (f'<{self.__class__.__name__} running={self.is_running()} '
                f'closed={self.is_closed()} debug={self.get_debug()}>')

    def __del__(self, _warn=warnings.warn):
        # A loop made by Loop.__new__() (or a subclass whose __init__ skips
        # ours) was never started: the C part releases its poller and
        # self-pipe when it goes, and close() needs what __init__ sets.
        if not self.is_closed() and '_child_starts' in self.__dict__:
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # ------------------------------------------------------------ running

    def _run_forever_setup(self):
        # Called by the C run_forever() after its checks, before the loop.
        self._set_coroutine_origin_tracking(self._debug)
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                               finalizer=self._asyncgen_finalizer_hook)
        events._set_running_loop(self)
        if _taskdump.SIGNAL_FROM_ENV is not None:
            _taskdump.install_signal_dump()

    def _run_forever_cleanup(self):
        # Called by the C run_forever() on the way out, whatever happened.
        events._set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        if self._old_agen_hooks is not None:
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None

    def _check_running(self):
        if self.is_running():
            raise RuntimeError('This event loop is already running')
        if events._get_running_loop() is not None:
            raise RuntimeError(
                'Cannot run the event loop while another loop is running')

    def _check_closed(self):
        if self.is_closed():
            raise RuntimeError('Event loop is closed')

    def run_until_complete(self, future):
        """Run until the future (or awaitable) is done; return its result."""
        self._check_closed()
        self._check_running()
        new_task = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if new_task:
            # The caller has no handle on this task: the exception is
            # raised here, so a "never retrieved" log would be noise.
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except:
            if new_task and future.done() and not future.cancelled():
                # The coroutine raised a BaseException; consume it so that
                # it is not logged as never retrieved.
                future.exception()
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError('Event loop stopped before Future completed.')
        try:
            return future.result()
        finally:
            # This frame is in the traceback of the future's exception.
            future = None

    def close(self):
        """Close the loop: drop pending callbacks, release the OS resources,
        remove signal handlers and shut the default executor down (without
        waiting for it). Refused while running; closing twice is a no-op."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self._debug:
            logger.debug("Close %r", self)
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        self._hand_children_over()
        self._close_core()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    # ------------------------------------------------------------ executor

    def _check_default_executor(self):
        if self._executor_shutdown_called:
            raise RuntimeError('Executor shutdown has been called')

    def run_in_executor(self, executor, func, *args):
        self._check_closed()
        if self._debug:
            self._check_callback(func, 'run_in_executor')
        if executor is None:
            executor = self._default_executor
            self._check_default_executor()
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(
                    thread_name_prefix='asyncio')
                self._default_executor = executor
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    def _check_callback(self, callback, method):
        if (coroutines.iscoroutine(callback) or
                coroutines.iscoroutinefunction(callback)):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f'a callable object was expected by {method}(), '
                            f'got {callback!r}')

    def set_default_executor(self, executor):
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError('executor must be ThreadPoolExecutor instance')
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout=None):
        """Shut the default executor down, waiting for its threads up to
        `timeout` seconds (3.12+; None waits forever)."""
        self._executor_shutdown_called = True
        if self._default_executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._do_shutdown, args=(future,))
        thread.start()
        try:
            async with timeouts.timeout(timeout):
                await future
        except TimeoutError:
            warnings.warn("The executor did not finishing joining "
                          f"its threads within {timeout} seconds.",
                          RuntimeWarning, stacklevel=2)
            self._default_executor.shutdown(wait=False)
        else:
            # The thread has handed over the result and is exiting. Wait for
            # it without blocking the loop: a blocking join() here is what
            # blocking-call detectors (blockbuster) flag outside asyncio's
            # own frame.
            while thread.is_alive():
                await tasks.sleep(0)
        finally:
            future = None  # it may hold the exception raised through this frame

    if not _compat.SHUTDOWN_EXECUTOR_HAS_TIMEOUT:
        _shutdown_default_executor = shutdown_default_executor

        async def shutdown_default_executor(self):
            """Shut the default executor down and wait for its threads."""
            return await self._shutdown_default_executor()

    def _do_shutdown(self, future):
        try:
            self._default_executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(futures._set_result_unless_cancelled,
                                          future, None)
        except Exception as ex:
            if not self.is_closed() and not future.cancelled():
                self.call_soon_threadsafe(future.set_exception, ex)
        finally:
            future = None  # ex's traceback holds this frame

    # ------------------------------------------------------------ async generators

    def _asyncgen_finalizer_hook(self, agen):
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen):
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning, source=self)
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self):
        """Close every async generator still alive on this loop."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing_agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await tasks.gather(
            *[ag.aclose() for ag in closing_agens], return_exceptions=True)
        for result, agen in zip(results, closing_agens):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    'message': f'an error occurred during closing of '
                               f'asynchronous generator {agen!r}',
                    'exception': result,
                    'asyncgen': agen,
                })

    # ------------------------------------------------------------ debug

    def set_debug(self, enabled):
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking,
                                      enabled)

    def _set_coroutine_origin_tracking(self, enabled):
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = (
                sys.get_coroutine_origin_tracking_depth())
            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(
                self._coroutine_origin_tracking_saved_depth)
        self._coroutine_origin_tracking_enabled = enabled

    # ------------------------------------------------------------ errors

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f'A callable object or None is expected, '
                            f'got {handler!r}')
        self._exception_handler = handler

    def default_exception_handler(self, context):
        """Log the error described by `context`, as asyncio does."""
        message = context.get('message')
        if not message:
            message = 'Unhandled exception in event loop'
        exception = context.get('exception')
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        current = self._current_handle
        if ('source_traceback' not in context and current is not None
                and current._source_traceback):
            context['handle_traceback'] = current._source_traceback
        log_lines = [message]
        for key in sorted(context):
            if key in {'message', 'exception'}:
                continue
            value = context[key]
            if key == 'source_traceback':
                tb = ''.join(traceback.format_list(value))
                value = 'Object created at (most recent call last):\n'
                value += tb.rstrip()
            elif key == 'handle_traceback':
                tb = ''.join(traceback.format_list(value))
                value = 'Handle created at (most recent call last):\n'
                value += tb.rstrip()
            else:
                value = repr(value)
            log_lines.append(f'{key}: {value}')
        logger.error('\n'.join(log_lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        """Pass `context` to the exception handler (the default one if none
        was set). Errors in the handler are logged, never raised, except
        SystemExit and KeyboardInterrupt."""
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error('Exception in default exception handler',
                             exc_info=True)
            return
        try:
            self._call_custom_exception_handler(context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    'message': 'Unhandled error in exception handler',
                    'exception': exc,
                    'context': context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error('Exception in default exception handler '
                             'while handling an unexpected error '
                             'in custom exception handler',
                             exc_info=True)

    if _compat.EXCEPTION_HANDLER_IN_CONTEXT:
        def _call_custom_exception_handler(self, context):
            # 3.12+ runs the handler in the context of the failing task,
            # future or handle.
            thing = context.get("task")
            if thing is None:
                thing = context.get("future")
            if thing is None:
                thing = context.get("handle")
            ctx = None
            if thing is not None and hasattr(thing, "get_context"):
                ctx = thing.get_context()
            if ctx is not None and hasattr(ctx, "run"):
                ctx.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
    else:
        def _call_custom_exception_handler(self, context):
            self._exception_handler(self, context)

    # ------------------------------------------------------------ signals

    def _check_signal(self, sig):
        if not isinstance(sig, int):
            raise TypeError(f'sig must be an int, not {sig!r}')
        if sig not in signal.valid_signals():
            raise ValueError(f'invalid signal number {sig}')

    def add_signal_handler(self, sig, callback, *args):
        """Run callback(*args) in the loop when signal `sig` arrives.

        Main thread only. ValueError for an invalid signal, RuntimeError for
        one that cannot be caught."""
        if (coroutines.iscoroutine(callback) or
                coroutines.iscoroutinefunction(callback)):
            raise TypeError("coroutines cannot be used "
                            "with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        try:
            # Fails outside the main thread: a loop running in another
            # thread cannot take signals.
            signal.set_wakeup_fd(self._wakeup_fd)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        _set_signal_wakeup_loop(self)
        handle = self._make_handle(callback, args)
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, _sighandler_noop)
            # SA_RESTART: fewer EINTRs in code running beside the loop.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                _set_signal_wakeup_loop(None)
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    logger.info('set_wakeup_fd(-1) failed: %s', nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f'sig {sig} cannot be caught')
            raise

    def _make_handle(self, callback, args):
        return Handle(callback, args, self, None)

    def _handle_signal(self, sig):
        # Called by the C loop for each signal number read from the pipe.
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            self._add_callback_signalsafe(handle)

    def remove_signal_handler(self, sig):
        """Remove the handler of `sig`; True if there was one."""
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        if sig == signal.SIGINT:
            handler = signal.default_int_handler
        else:
            handler = signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f'sig {sig} cannot be caught')
            raise
        if not self._signal_handlers:
            _set_signal_wakeup_loop(None)
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                logger.info('set_wakeup_fd(-1) failed: %s', exc)
        return True


def _take_asyncio_qualnames():
    """The loop's methods written in Python carry the qualified names of
    asyncio's (`BaseEventLoop.shutdown_asyncgens`): those names are in the
    messages and warnings that name a function (an unexpected keyword, a
    coroutine never awaited), and libraries match them; pytest-asyncio, for
    one, silences the never-awaited shutdown_asyncgens() of a loop closed
    early by its name."""
    reference = unix_events._UnixSelectorEventLoop
    for name in dir(Loop):
        if name.startswith('_'):
            continue
        ours, theirs = getattr(Loop, name), getattr(reference, name, None)
        if (isinstance(ours, types.FunctionType) and isinstance(theirs, types.FunctionType)
                and ours.__module__.startswith('pyasync.')):
            ours.__qualname__ = theirs.__qualname__


_take_asyncio_qualnames()


def _raise_loop_closed(*kept):
    """The C methods' "Event loop is closed". Raised from a Python frame on
    purpose: the frame, kept by the traceback, holds what the failed call was
    given (a callback, a task, a coroutine) until the exception is dropped, as
    asyncio's own call_soon() frame does. A task whose last reference is the
    callback a future fails to schedule then dies after the code that
    cancelled the future has finished, not inside it: dying inside would close
    the task's coroutine chain while one of its coroutines still runs
    ("coroutine already executing")."""
    raise RuntimeError('Event loop is closed')


def _install_helpers():
    from . import _core
    _core._set_helpers(
        base_get_extra_info=transports.BaseTransport.get_extra_info,
        format_callback_source=_compat.format_callback_source,
        extract_stack=format_helpers.extract_stack,
        iscoroutinefunction=coroutines.iscoroutinefunction,
        iscoroutine=coroutines.iscoroutine,
        format_handle=_base_events._format_handle,
        logger=logger,
        get_running_loop=events._get_running_loop,
        get_event_loop=events.get_event_loop,
        future_repr_info=base_futures._future_repr_info,
        InvalidStateError=exceptions.InvalidStateError,
        CancelledError=exceptions.CancelledError,
        enter_task=tasks._enter_task,
        leave_task=tasks._leave_task,
        register_task=tasks._register_task,
        swap_current_task=getattr(tasks, "_swap_current_task", None),
        register_eager_task=getattr(tasks, "_register_eager_task", None),
        unregister_eager_task=getattr(tasks, "_unregister_eager_task", None),
        task_repr_info=base_tasks._task_repr_info,
        task_get_stack=base_tasks._task_get_stack,
        task_print_stack=base_tasks._task_print_stack,
        get_running_loop_strict=events.get_running_loop,
        current_task=tasks.current_task,
        task_registry=getattr(tasks, _compat.TASK_REGISTRY_NAME),
        WeakSet=weakref.WeakSet,
        BufferedProtocol=protocols.BufferedProtocol,
        StreamReaderProtocol=streams.StreamReaderProtocol,
        socket_type=_socket.socket,
        socket_class=socket.socket,
        TransportSocket=trsock.TransportSocket,
        check_ssl_socket=_network._check_ssl_socket,
        raise_loop_closed=_raise_loop_closed,
    )


_install_helpers()
