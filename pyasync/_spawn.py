"""Starting a child process for subprocess_exec() and subprocess_shell().

asyncio starts children with subprocess.Popen. So do we when a keyword needs
Python code or lookups around the fork (preexec_fn, user, group,
extra_groups, pipesize); otherwise the child is started by
pyasync._core.spawn() (csrc/spawn.c), which does what Popen's C helper does
with none of Popen's Python around it, and with the GIL released while the
child starts. A subprocess.Popen replaced by the program (mock.patch) is
called as asyncio would call it, in the loop's thread.

spawn() and Popen run in worker threads (_Spawner): a fork and exec keeps
its caller waiting until the child has called execve(), about half a
millisecond on a small VM, and the loop's thread goes on meanwhile; several
children start at once on several cores. For spawn(), the arguments are
worked out and the pipes made in the loop's thread before (raising what
Popen raises, in its order); Popen does all that itself, in the worker.
Either way the outcome is handled in the loop's thread after. A caller
cancelled meanwhile, or a loop closed, gets its child killed and collected
and its pipes closed, as asyncio's transport does for a child whose start
was cancelled.

Either way the caller gets a subprocess.Popen object: the one Popen made,
or one that describes the child spawn() started, as Popen would have made
it (what transport.get_extra_info('subprocess') gives).
"""
import io
import operator
import os
import queue
import signal
import subprocess
import sys
import threading
import warnings

from . import _core

# Keywords spawn() handles, with Popen's defaults; any other keyword, or
# one of these with another value, goes to Popen.
_POPEN_ONLY = {"preexec_fn": None, "user": None, "group": None, "extra_groups": None,
               "pipesize": -1, "startupinfo": None, "creationflags": 0}
_SPAWN_KEYWORDS = {"cwd", "env", "pass_fds", "close_fds", "start_new_session",
                   "process_group", "umask", "restore_signals", "executable"}
_UNIX_SHELL = "/system/bin/sh" if hasattr(sys, "getandroidapilevel") else "/bin/sh"
_INT_MAX = 2**31 - 1  # the largest fd, as a C int
# Tests and tools replace subprocess.Popen (mock.patch) to see or fake the
# children a program starts, and asyncio calls whatever is there: so does
# start() whenever it is not the class it was at import.
_POPEN = subprocess.Popen


async def start(loop, args, shell, stdin, stdout, stderr, bufsize, kwargs):
    """The child, started; a subprocess.Popen."""
    popen_kwargs = dict(shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
                        universal_newlines=False, bufsize=bufsize, **kwargs)
    if subprocess.Popen is not _POPEN:
        # A replacement (mock.patch) is called where asyncio calls Popen.
        return subprocess.Popen(args, **popen_kwargs)
    if _spawn_can_start(stdin, stdout, stderr, kwargs):
        request = _Request(args, shell, stdin, stdout, stderr, **kwargs)
    else:
        request = _PopenRequest(args, popen_kwargs)
    loop._child_starts.add(request)
    return await _spawner.start(loop, request)


def abandon_starts(loop):
    """The loop closes: no start still under way may leave its child."""
    starts, loop._child_starts = loop._child_starts, set()
    for request in starts:
        request.loop_closing()


def _std_handle_ok(how, may_be_stdout=False):
    if how is None or how in (subprocess.PIPE, subprocess.DEVNULL):
        return True
    if how == subprocess.STDOUT:
        return may_be_stdout
    if isinstance(how, int):
        return how >= 0
    return hasattr(how, "fileno")


def _spawn_can_start(stdin, stdout, stderr, kwargs):
    for name, value in kwargs.items():
        if name in _SPAWN_KEYWORDS:
            continue
        if name not in _POPEN_ONLY or value != _POPEN_ONLY[name]:
            return False
    pass_fds = kwargs.get("pass_fds", ())
    if any(not isinstance(fd, int) or fd < 0 for fd in pass_fds):
        return False  # Popen's error for these
    return (_std_handle_ok(stdin) and _std_handle_ok(stdout)
            and _std_handle_ok(stderr, may_be_stdout=True))


class _Start:
    """One child to start in a worker thread, and the hand-over of the
    outcome (the child, or the exception) between the worker and the
    loop's thread, which may be closing meanwhile. Subclasses say how the
    child is started (start_child), what the caller gets (started) and how
    a child nobody wants is disposed of (abandon)."""

    def __init__(self):
        # What the start gave, and who deals with it: the loop's thread
        # (_settle), or whoever learns first that the loop closed.
        self._lock = threading.Lock()
        self._outcome = None  # (child, exception) once the start returned
        self._taken = False
        self._loop_closed = False

    def finish(self, child, exc):
        """(Worker) the start returned: whether to hand the outcome to the
        loop; if the loop closed already, the child is abandoned here."""
        with self._lock:
            self._outcome = (child, exc)
            if not self._loop_closed:
                return True
            self._taken = True
        self.abandon(child, reap_here=True)
        return False

    def take(self):
        """The outcome, (child, exception), to whoever asks first once it
        is there; None to everyone else."""
        with self._lock:
            if self._taken or self._outcome is None:
                return None
            self._taken = True
            return self._outcome

    def loop_closing(self):
        """The loop closes: abandon the child now if the start returned and
        nobody took it (its _settle will never run), else leave that to
        the worker."""
        with self._lock:
            self._loop_closed = True
        outcome = self.take()
        if outcome is not None:
            self.abandon(outcome[0])


class _PopenRequest(_Start):
    """A child that needs subprocess.Popen (preexec_fn, user, group,
    extra_groups, pipesize). Popen runs in a worker too: it waits for the
    fork and exec (and for the user and group lookups) as spawn() does, and
    in the loop's thread it would hold up every other task meanwhile."""

    def __init__(self, args, popen_kwargs):
        super().__init__()
        self._args = args
        self._popen_kwargs = popen_kwargs

    def start_child(self):
        """(Worker) the subprocess.Popen."""
        return _POPEN(self._args, **self._popen_kwargs)

    def close_fds(self):
        pass  # Popen closes what it made when it fails

    def started(self, proc):
        return proc

    def abandon(self, proc, reap_here=False):
        """Kill, collect and close the child nobody wants any more."""
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        if reap_here:
            proc.wait()
        else:
            threading.Thread(target=proc.wait, daemon=True,
                             name=f"waitpid-{proc.pid}").start()


class _Request(_Start):
    """One child to start: spawn()'s arguments worked out as Popen works
    them out (raising what it raises, before anything starts), and the
    pipes made for it until they are handed over or closed."""

    def __init__(self, args, shell, stdin, stdout, stderr, *, executable=None, close_fds=True,
                 pass_fds=(), cwd=None, env=None, restore_signals=True,
                 start_new_session=False, process_group=None, umask=-1, **_popen_defaults):
        super().__init__()
        self.args = args
        if pass_fds and not close_fds:
            warnings.warn("pass_fds overriding close_fds.", RuntimeWarning)
            close_fds = True
        self._ours = []  # fds made here; the child's ends are closed once it started
        self._parent_ends = [None, None, None]
        try:
            # In Popen's order, so that of two bad arguments the same one is
            # reported: the standard handles, the command, the environment,
            # the program's paths, then what its C helper converts.
            child_fds = self._std_handles(stdin, stdout, stderr)
            args, exec_name = _command(args, shell, executable)
            sys.audit("subprocess.Popen", exec_name, args, cwd, env)
            env_list = _environment(env)
            executables = _executables(os.fsencode(exec_name), env)
            keep = _fds_to_keep(pass_fds)
            process_group = -1 if process_group is None else operator.index(process_group)
            umask = operator.index(umask)
            argv = [os.fsencode(a) for a in args]
            cwd_bytes = os.fsencode(cwd) if cwd is not None else None
        except BaseException:
            self.close_fds()
            raise
        self.spawn_args = (argv, executables, env_list, cwd_bytes, *child_fds, keep,
                           bool(close_fds), bool(restore_signals), bool(start_new_session),
                           process_group, umask, exec_name, cwd)

    def _std_handles(self, stdin, stdout, stderr):
        child_fds = []
        for index, how in enumerate((stdin, stdout, stderr)):
            if how is None:
                fd = -1
            elif how == subprocess.PIPE:
                read_end, write_end = os.pipe()
                self._ours += [read_end, write_end]
                fd, self._parent_ends[index] = ((read_end, write_end) if index == 0
                                                else (write_end, read_end))
            elif how == subprocess.DEVNULL:
                fd = os.open(os.devnull, os.O_RDWR)
                self._ours.append(fd)
            elif how == subprocess.STDOUT:  # stderr only
                fd = child_fds[1] if child_fds[1] != -1 else sys.__stdout__.fileno()
            elif isinstance(how, int):
                fd = how
            else:
                fd = how.fileno()
            child_fds.append(fd)
        return child_fds

    def close_fds(self):
        ours, self._ours = self._ours, []
        for fd in ours:
            os.close(fd)

    def started(self, pid):
        """The child runs: close its ends here; a Popen that describes it."""
        parent_ends = self._parent_ends
        ours, self._ours = self._ours, []
        for fd in ours:
            if fd not in parent_ends:
                os.close(fd)
        return _popen_of(self.args, pid, parent_ends)

    def start_child(self):
        """(Worker) the child's pid."""
        return _core.spawn(*self.spawn_args)

    def abandon(self, pid, reap_here=False):
        """Nobody wants the child any more (the caller was cancelled, or the
        loop closed while it started): kill it, collect it, close the fds."""
        self.close_fds()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if reap_here:
            reap(pid)
        else:
            reap_in_a_thread(pid)


def reap(pid):
    """The exit status of our child pid, which has exited or is being
    killed (never blocks for long); None if someone else reaped it."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        # Reaped by someone else (Popen.poll(), for one).
        return None
    return os.waitstatus_to_exitcode(status)


def reap_in_a_thread(pid, then=None):
    """Reap pid from a thread of its own: nothing here waits for it, and
    it must not stay a zombie. `then()` is called in that thread after."""
    def reap_then():
        reap(pid)
        if then is not None:
            then()
    threading.Thread(target=reap_then, daemon=True, name=f"waitpid-{pid}").start()


class _Spawner:
    """Threads that call spawn(), so that the loop's thread does not wait
    for each fork and exec, and several children start at once. A thread is
    started for work that waits, up to MAX_THREADS, and leaves as soon as
    there is none: no thread outlives the children being started (programs
    and test suites count threads, and fork() warns about them)."""

    MAX_THREADS = max(2, min(4, os.cpu_count() or 1))

    def __init__(self):
        self._forget_threads()

    def _forget_threads(self):
        """(Also after fork(): the child has none of the parent's threads.)"""
        self._lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        self._threads = 0

    def start(self, loop, request):
        fut = loop.create_future()
        self._queue.put((loop, fut, request))
        with self._lock:
            if self._threads < self.MAX_THREADS and self._queue.qsize() > 0:
                self._threads += 1
                threading.Thread(target=self._work, daemon=True,
                                 name="pyasync-spawn").start()
        return fut

    def _work(self):
        while True:
            with self._lock:
                try:
                    loop, fut, request = self._queue.get_nowait()
                except queue.Empty:
                    self._threads -= 1
                    return
            child = exc = None
            try:
                child = request.start_child()
            except BaseException as e:
                exc = e
            if request.finish(child, exc):
                try:
                    loop.call_soon_threadsafe(_settle, loop, fut, request)
                except RuntimeError:  # the loop closed meanwhile
                    outcome = request.take()
                    if outcome is not None:
                        request.abandon(outcome[0], reap_here=True)
            del loop, fut, request, child, exc


def _settle(loop, fut, request):
    loop._child_starts.discard(request)
    outcome = request.take()
    if outcome is None:
        return  # abandoned: the loop is closing
    child, exc = outcome
    if fut.cancelled():
        request.abandon(child)
    elif exc is not None:
        request.close_fds()
        fut.set_exception(exc)
    else:
        fut.set_result(request.started(child))


_spawner = _Spawner()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_spawner._forget_threads)


def _command(args, shell, executable):
    """The arguments and the program (the name a failed exec reports), as
    Popen's _execute_child works them out."""
    if isinstance(args, (str, bytes)):
        args = [args]
    elif isinstance(args, os.PathLike):
        if shell:
            raise TypeError("path-like args is not allowed when shell is true")
        args = [args]
    else:
        args = list(args)
    if shell:
        args = [_UNIX_SHELL, "-c"] + args
        if executable:
            args[0] = executable
    if executable is None:
        executable = args[0]
    return args, executable


def _fds_to_keep(pass_fds):
    """pass_fds as spawn() takes them: sorted, unique, none below 3 (those
    are the standard handles), refused as Popen's helper refuses them."""
    keep = sorted({int(fd) for fd in pass_fds})
    if any(fd < 0 or fd > _INT_MAX for fd in keep):
        raise ValueError("bad value(s) in fds_to_keep")
    return tuple(fd for fd in keep if fd >= 3)


_exec_paths = {}  # (program, $PATH) -> the paths to try, for env=None


def _executables(executable, env):
    """The paths execve() tries for the program, in order (PATH searched
    when the name has no directory, as Popen searches it)."""
    if os.path.dirname(executable):
        return (executable,)
    key = None
    if env is None:
        key = (executable, os.environ.get("PATH"))
        found = _exec_paths.get(key)
        if found is not None:
            return found
    found = tuple(os.path.join(os.fsencode(d), executable) for d in os.get_exec_path(env))
    if key is not None:
        if len(_exec_paths) >= 256:
            _exec_paths.clear()
        _exec_paths[key] = found
    return found


def _environment(env):
    if env is None:
        return None
    env_list = []
    for key, value in env.items():
        key = os.fsencode(key)
        if b"=" in key:
            raise ValueError("illegal environment variable name")
        env_list.append(key + b"=" + os.fsencode(value))
    return env_list


def _popen_of(args, pid, parent_ends):
    """A subprocess.Popen for a child started by spawn(), as Popen would
    have made it with bufsize=0 and no text mode."""
    proc = _POPEN.__new__(_POPEN)
    proc._waitpid_lock = threading.Lock()
    proc._input = None
    proc._communication_started = False
    proc.args = args
    proc.encoding = None
    proc.errors = None
    proc.pipesize = -1
    proc.text_mode = False
    proc._sigint_wait_secs = 0.25
    proc._closed_child_pipe_fds = True
    proc.returncode = None
    proc.pid = pid
    proc._child_created = True
    stdin_fd, stdout_fd, stderr_fd = parent_ends
    proc.stdin = io.open(stdin_fd, "wb", 0) if stdin_fd is not None else None
    proc.stdout = io.open(stdout_fd, "rb", 0) if stdout_fd is not None else None
    proc.stderr = io.open(stderr_fd, "rb", 0) if stderr_fd is not None else None
    return proc
