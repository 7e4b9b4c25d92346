"""Subprocesses: subprocess_exec(), subprocess_shell() and their transport.

The child is started by pyasync/_spawn.py (csrc/spawn.c, or
subprocess.Popen as asyncio does when a keyword needs it); its stdin,
stdout and stderr are pyasync's pipe transports (csrc/pipetransport.c), and
what runs per child here is bookkeeping: the order of the protocol's
callbacks, which follows asyncio's (connection_made, then pipe data and
pipe_connection_lost as they come, process_exited, and connection_lost
once the child has exited and every pipe is closed).

The child's exit is learnt without threads and without signals where the
kernel allows it: a pidfd (Linux 5.3+) is watched by the loop's own poller
like any file, and the child is reaped with waitpid() on that one pid when
it polls readable. Nothing is installed for SIGCHLD and no waitpid(-1) can
reap another's child. Where pidfd_open() is missing or refused (ENOSYS,
EPERM in some sandboxes), a thread per child waits for it, as asyncio's
ThreadedChildWatcher does. PYASYNC_CHILD_WATCHER=thread forces the
threads (docs/usage.md).
"""
import collections
import errno
import os
import subprocess
import threading
import warnings

from asyncio import base_events, protocols, transports
from asyncio.log import logger

from . import _compat, _spawn

_PIDFD_REFUSED = (errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EINVAL)


def _use_pidfd():
    how = os.environ.get("PYASYNC_CHILD_WATCHER", "pidfd")
    if how not in ("pidfd", "thread"):
        raise ValueError(f"PYASYNC_CHILD_WATCHER must be 'pidfd' or 'thread', not {how!r}")
    return how == "pidfd" and hasattr(os, "pidfd_open")


class _ExitWatch:
    """Learns the exit of one child and calls back in the loop's thread."""

    def __init__(self, loop, pid, callback, use_pidfd):
        self._loop = loop
        self._pid = pid
        self._callback = callback
        self._pidfd = None
        if use_pidfd:
            try:
                self._pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                # Gone already: the child exited and was reaped behind our
                # back before we could watch it (a SIGCHLD handler of the
                # program's calling waitpid(-1), say). Reported as asyncio
                # reports a child whose status someone else read.
                loop.call_soon(self._report_exit)
                return
            except OSError as exc:
                if exc.errno not in _PIDFD_REFUSED:
                    raise
        if self._pidfd is not None:
            loop._add_reader(self._pidfd, self._pidfd_readable)
            loop._child_watches[pid] = self
        else:
            threading.Thread(target=self._wait_in_thread, daemon=True,
                             name=f"waitpid-{pid}").start()

    def _pidfd_readable(self):
        self._stop_watching()
        self._report_exit()

    def _report_exit(self):
        self._callback(_spawn.reap(self._pid), learnt_by_pidfd=True)

    def _stop_watching(self):
        if self._pidfd is not None:
            self._loop._remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
            self._loop._child_watches.pop(self._pid, None)

    def _wait_in_thread(self):
        returncode = _spawn.reap(self._pid)
        try:
            self._loop.call_soon_threadsafe(self._callback, returncode)
        except RuntimeError:
            if self._loop.is_closed():
                self._warn_loop_closed()
            else:
                raise

    def hand_over_to_a_thread(self):
        """The loop closes with the child still running: reap it from a
        thread, so that it does not stay a zombie."""
        if self._pidfd is not None:
            self._stop_watching()
            _spawn.reap_in_a_thread(
                self._pid, self._warn_loop_closed if _compat.WARN_CHILD_EXIT_AFTER_LOOP_CLOSED
                else None)

    def _warn_loop_closed(self):
        logger.warning("Loop %r that handles pid %r is closed", self._loop, self._pid)


class _PipeProtocol(protocols.Protocol):
    """Connects one of the child's pipes (fd 0, 1 or 2) to the transport."""

    def __init__(self, owner, fd):
        self.owner = owner
        self.fd = fd
        self.pipe = None
        self.disconnected = False

    def __repr__(self):
        return f'<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>'

    def connection_made(self, transport):
        self.pipe = transport

    def data_received(self, data):
        self.owner._pipe_data_received(self.fd, data)

    def pause_writing(self):
        self.owner._protocol.pause_writing()

    def resume_writing(self):
        self.owner._protocol.resume_writing()

    def connection_lost(self, exc):
        self.disconnected = True
        owner, self.owner = self.owner, None
        owner._pipe_connection_lost(self.fd, exc)


class SubprocessTransport(transports.SubprocessTransport):
    """A child process and its pipes."""

    _closed = True  # until __init__ runs: an instance made by __new__() holds nothing

    def __init__(self, loop, protocol, proc, stdin, stdout, stderr, waiter=None, extra=None):
        super().__init__(extra)
        self._closed = False
        self._protocol = protocol
        self._loop = loop
        self._proc = proc
        self._pid = proc.pid
        self._returncode = None
        self._exit_waiters = []
        self._pending_calls = collections.deque()  # until connection_made() is scheduled
        self._pipes = {}  # fd -> _PipeProtocol (None until its pipe is connected)
        self._finished = False
        for fd, how in enumerate((stdin, stdout, stderr)):
            if how == subprocess.PIPE:
                self._pipes[fd] = None
        self._extra['subprocess'] = proc
        if loop.get_debug():
            if isinstance(proc.args, (bytes, str)):
                program = proc.args
            else:
                program = proc.args[0]
            logger.debug('process %r created: pid %s', program, self._pid)
        loop.create_task(self._connect_pipes(waiter))

    def __repr__(self):
        info = [type(self).__name__]
        if self._closed:
            info.append('closed')
        if self._pid is not None:
            info.append(f'pid={self._pid}')
        if self._returncode is not None:
            info.append(f'returncode={self._returncode}')
        elif self._pid is not None:
            info.append('running')
        else:
            info.append('not started')
        stdin, stdout, stderr = (self._pipes.get(fd) for fd in (0, 1, 2))
        if stdin is not None:
            info.append(f'stdin={stdin.pipe}')
        if stdout is not None and stderr is stdout:
            info.append(f'stdout=stderr={stdout.pipe}')
        else:
            if stdout is not None:
                info.append(f'stdout={stdout.pipe}')
            if stderr is not None:
                info.append(f'stderr={stderr.pipe}')
        return '<{}>'.format(' '.join(info))

    async def _connect_pipes(self, waiter):
        try:
            proc, loop = self._proc, self._loop
            for fd, pipe in ((0, proc.stdin), (1, proc.stdout), (2, proc.stderr)):
                if pipe is None:
                    continue
                connect = loop.connect_write_pipe if fd == 0 else loop.connect_read_pipe
                _, self._pipes[fd] = await connect(
                    lambda fd=fd: _PipeProtocol(self, fd), pipe)
            loop.call_soon(self._protocol.connection_made, self)
            for callback, args in self._pending_calls:
                loop.call_soon(callback, *args)
            self._pending_calls = None
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if waiter is not None and not waiter.cancelled():
                waiter.set_exception(exc)
        else:
            if waiter is not None and not waiter.cancelled():
                waiter.set_result(None)

    # ------------------------------------------------------------ public API

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        self._protocol = protocol

    def is_closing(self):
        return self._closed

    def close(self):
        if self._closed:
            return
        self._closed = True
        for pipe_protocol in self._pipes.values():
            if pipe_protocol is not None:
                pipe_protocol.pipe.close()
        if (self._proc is not None and self._returncode is None
                and self._proc.poll() is None):
            if self._loop.get_debug():
                logger.warning('Close running child process: kill %r', self)
            try:
                self._proc.kill()
            except _compat.KILL_IGNORED_ERRORS:
                pass  # gone already, or running setuid

    def __del__(self, _warn=warnings.warn):
        if not self._closed:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close()

    def get_pid(self):
        return self._pid

    def get_returncode(self):
        return self._returncode

    def get_pipe_transport(self, fd):
        pipe_protocol = self._pipes.get(fd)
        return None if pipe_protocol is None else pipe_protocol.pipe

    def _check_proc(self):
        if self._proc is None:
            raise ProcessLookupError()

    def send_signal(self, signal):
        self._check_proc()
        _compat.send_signal_to_child(self._proc, signal)

    def terminate(self):
        self._check_proc()
        _compat.terminate_child(self._proc)

    def kill(self):
        self._check_proc()
        _compat.kill_child(self._proc)

    # ------------------------------------------------------------ events

    def _call(self, callback, *args):
        if self._pending_calls is not None:
            self._pending_calls.append((callback, args))
        else:
            self._loop.call_soon(callback, *args)

    def _pipe_connection_lost(self, fd, exc):
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _pipe_data_received(self, fd, data):
        self._call(self._protocol.pipe_data_received, fd, data)

    def _process_exited(self, returncode, learnt_by_pidfd=False):
        if returncode is None:
            # Reaped behind our back: Popen knows the status if it did it.
            returncode = self._proc.returncode if self._proc.returncode is not None else 255
            if self._proc.returncode is None:
                _compat.warn_child_status_taken(logger, self._pid, learnt_by_pidfd)
        if self._loop.get_debug():
            logger.info('%r exited with return code %r', self, returncode)
        self._returncode = returncode
        if self._proc.returncode is None:
            # Popen did not reap it: tell it the status, so that it neither
            # waits again nor warns.
            self._proc.returncode = returncode
        self._call(self._protocol.process_exited)
        self._try_finish()

    async def _wait(self):
        """The child's return code, once it has exited."""
        if self._returncode is not None:
            return self._returncode
        waiter = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter

    def _try_finish(self):
        if self._finished or self._returncode is None:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc):
        try:
            self._protocol.connection_lost(exc)
        finally:
            for waiter in self._exit_waiters:
                if not waiter.cancelled():
                    waiter.set_result(self._returncode)
            self._exit_waiters = None
            self._loop = None
            self._proc = None
            self._protocol = None


class SubprocessMixin:
    """subprocess_exec() and subprocess_shell() of the loop."""

    async def _make_subprocess_transport(self, protocol, args, shell, stdin, stdout, stderr,
                                         bufsize, extra=None, **kwargs):
        use_pidfd = _use_pidfd()  # checked before there is a child to lose
        proc = await _spawn.start(self, args, shell, stdin, stdout, stderr, bufsize, kwargs)
        waiter = self.create_future()
        transport = SubprocessTransport(self, protocol, proc, stdin, stdout, stderr,
                                        waiter=waiter, extra=extra)
        _ExitWatch(self, transport.get_pid(), transport._process_exited, use_pidfd)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        return transport

    def _log_subprocess(self, msg, stdin, stdout, stderr):
        info = [msg]
        if stdin is not None:
            info.append(f'stdin={base_events._format_pipe(stdin)}')
        if stdout is not None and stderr == subprocess.STDOUT:
            info.append(f'stdout=stderr={base_events._format_pipe(stdout)}')
        else:
            if stdout is not None:
                info.append(f'stdout={base_events._format_pipe(stdout)}')
            if stderr is not None:
                info.append(f'stderr={base_events._format_pipe(stderr)}')
        logger.debug(' '.join(info))

    @staticmethod
    def _check_modes(bufsize, text, encoding, errors):
        """asyncio's checks after universal_newlines and shell, in its order."""
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")

    async def subprocess_exec(self, protocol_factory, program, *args,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=False,
                              shell=False, bufsize=0, encoding=None, errors=None, text=None,
                              **kwargs):
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        self._check_modes(bufsize, text, encoding, errors)
        protocol = protocol_factory()
        debug_log = None
        if self.get_debug():
            debug_log = f'execute program {program!r}'
            self._log_subprocess(debug_log, stdin, stdout, stderr)
        transport = await self._make_subprocess_transport(
            protocol, (program,) + args, False, stdin, stdout, stderr, bufsize, **kwargs)
        if debug_log is not None:
            logger.info('%s: %r', debug_log, transport)
        return transport, protocol

    async def subprocess_shell(self, protocol_factory, cmd, *, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=False, shell=True, bufsize=0,
                               encoding=None, errors=None, text=None, **kwargs):
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        self._check_modes(bufsize, text, encoding, errors)
        protocol = protocol_factory()
        debug_log = None
        if self.get_debug():
            debug_log = 'run shell command %r' % cmd
            self._log_subprocess(debug_log, stdin, stdout, stderr)
        transport = await self._make_subprocess_transport(
            protocol, cmd, True, stdin, stdout, stderr, bufsize, **kwargs)
        if debug_log is not None:
            logger.info('%s: %r', debug_log, transport)
        return transport, protocol

    def _hand_children_over(self):
        """At close: children still running are reaped from threads, and
        children still starting are killed and reaped."""
        if not self._child_starts and not self._child_watches:
            # Nothing to hand over (the usual case), and nothing touched: a
            # loop collected unclosed as the interpreter exits is closed
            # after this module's globals are gone.
            return
        _spawn.abandon_starts(self)
        for watch in list(self._child_watches.values()):
            watch.hand_over_to_a_thread()
