"""How children start (pyasync/_spawn.py, csrc/spawn.c): what a child
inherits, the errors of a child that cannot start, a start cancelled or cut
short by the loop closing, and no thread, fd or process left behind; each
compared with asyncio (which starts children with subprocess.Popen)."""
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from unittest import mock

import pytest

import pyasync
from _child import CHILD_CWD, children_of_this_process
from _net_helpers import open_fd_count, run

PY = sys.executable

# The child reports what it inherited, one item per line. A shell reads the
# signal dispositions first (Python changes SIGPIPE's at start-up), then
# Python reports the rest.
SHELL = r"""
printf 'argv0 %s\n' "$(tr '\0' '\n' < /proc/$$/cmdline | head -n 1)"
grep -E '^SigIgn' /proc/self/status
py="$1"; report="$2"; shift 2
exec "$py" -c "$report" "$@"
"""
REPORT = r"""
import os, sys
old = os.umask(0)
print("cwd", os.getcwd())
print("umask", oct(old))
print("session-leader", os.getsid(0) == os.getpid())
print("group-leader", os.getpgid(0) == os.getpid())
for fd in map(int, sys.argv[1:]):
    try:
        os.fstat(fd)
        print("fd", fd, "open")
    except OSError:
        print("fd", fd, "closed")
print("stdio", [os.path.exists(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)])
"""


def bit(sig):
    return 1 << (sig - 1)


def status_mask(lines, name):
    return int(next(line for line in lines if line.startswith(name + ":")).split()[1], 16)


@pytest.fixture(params=["asyncio", "pyasync"])
def loop(request):
    lp = asyncio.new_event_loop() if request.param == "asyncio" else pyasync.new_event_loop()
    asyncio.set_event_loop(None)
    yield lp
    lp.close()


def report(loop, *fds, argv0="sh", **kw):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            argv0, "-c", SHELL, "sh", PY, REPORT, *map(str, fds), stdout=subprocess.PIPE, **kw)
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return [standard_signals_only(line) for line in out.decode().splitlines()]
    return run(loop, main())


def standard_signals_only(line):
    """The SigIgn line without the real-time signals: glibc's posix_spawn()
    leaves its own two (32, 33) ignored in the child, and Popen uses it on
    3.13 for some arguments; no program sees them."""
    if not line.startswith("SigIgn:"):
        return line
    return "SigIgn:\t%016x" % (int(line.split()[1], 16) & ((1 << 31) - 1))


def reference(*fds, **kw):
    loop = asyncio.new_event_loop()
    try:
        return report(loop, *fds, **kw)
    finally:
        loop.close()


@pytest.fixture
def parent_state():
    """Signal handlers, an ignored signal, a blocked signal and fds of
    both kinds in the parent, as a program may have them."""
    old_usr1 = signal.signal(signal.SIGUSR1, lambda *a: None)
    old_usr2 = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGWINCH})
    inheritable_r, inheritable_w = os.pipe()
    os.set_inheritable(inheritable_r, True)
    private_r, private_w = os.pipe()
    try:
        yield inheritable_r, private_r
    finally:
        for fd in (inheritable_r, inheritable_w, private_r, private_w):
            os.close(fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGUSR1, old_usr1)
        signal.signal(signal.SIGUSR2, old_usr2)


@pytest.mark.parametrize("keywords", [
    {},
    {"close_fds": False},
    {"restore_signals": False},
    {"umask": 0o027, "start_new_session": True},
    {"process_group": 0, "cwd": "/"},
    {"executable": "/bin/sh", "argv0": "not-a-shell", "stdin": subprocess.DEVNULL,
     "stderr": subprocess.STDOUT},
    {"pass_fds": "private"},
], ids=lambda kw: ",".join(kw) or "defaults")
def test_the_child_inherits_what_popens_child_inherits(loop, parent_state, keywords):
    inheritable, private = parent_state
    kw = dict(keywords)
    if kw.get("pass_fds") == "private":
        kw["pass_fds"] = (private,)
    got = report(loop, inheritable, private, **kw)
    assert got == reference(inheritable, private, **kw)
    # And what that is, so that the comparison cannot pass on two wrongs:
    ignored = status_mask(got, "SigIgn")
    assert not ignored & bit(signal.SIGUSR1)  # a handler: back to the default
    assert ignored & bit(signal.SIGUSR2)  # ignored stays ignored
    assert bool(ignored & bit(signal.SIGPIPE)) == (keywords.get("restore_signals") is False)
    assert f"argv0 {keywords.get('argv0', 'sh')}" in got
    assert (f"fd {inheritable} open" if keywords.get("close_fds") is False
            else f"fd {inheritable} closed") in got
    assert (f"fd {private} open" if "pass_fds" in keywords else f"fd {private} closed") in got


# Keywords that make the start go through subprocess.Popen (in a worker
# thread too), or not.
VIA = {"spawn": {}, "popen": {"user": os.getuid()}}


@pytest.mark.parametrize("via", VIA)
def test_the_child_gets_the_signal_mask_of_its_starter(loop, parent_state, via):
    # (dash unblocks every signal when it starts: Python reports this one.)
    code = "import signal; print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))"

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=subprocess.PIPE,
                                                    **VIA[via])
        out, _ = await proc.communicate()
        return out.decode().strip()
    got = run(loop, main())
    assert got == f"[<Signals.SIGWINCH: {int(signal.SIGWINCH)}>]"


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_preexec_fn_may_set_signal_handlers(loop):
    # Popen runs in a worker thread on pyasync: in the child it forked, that
    # thread is the main thread, where signal.signal() is allowed.
    code = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=subprocess.PIPE,
                                                    preexec_fn=_ignore_sigint)
        out, _ = await proc.communicate()
        return out, proc.returncode
    assert run(loop, main()) == (b"True\n", 0)


async def start_error(program, **kw):
    try:
        proc = await asyncio.create_subprocess_exec(program, **kw)
    except BaseException as exc:
        return type(exc), getattr(exc, "errno", None), getattr(exc, "filename", None), str(exc)
    await proc.wait()
    return None


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    # (Module-wide: a tmp_path per run would show as growth in leak checks.)
    path = tmp_path_factory.mktemp("spawn")
    (path / "script").write_text("#!/bin/sh\n")
    return path


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("case", ["missing-on-path", "missing-path", "not-executable",
                                  "a-directory", "missing-cwd", "bad-env", "bad-argument"])
def test_a_child_that_cannot_start_raises_what_popen_raises(loop, files, case, via):
    tmp_path = files
    script = tmp_path / "script"
    program, kw = {
        "missing-on-path": ("pyasync-no-such-program", {}),
        "missing-path": (str(tmp_path / "missing"), {}),
        "not-executable": (str(script), {}),
        "a-directory": (str(tmp_path), {}),
        "missing-cwd": (PY, {"cwd": str(tmp_path / "nowhere")}),
        "bad-env": (PY, {"env": {"A=B": "1"}}),
        "bad-argument": (PY, {"pass_fds": (-1,)}),
    }[case]
    kw.update(VIA[via])
    before = open_fd_count()
    got = run(loop, start_error(program, **kw))
    ref_loop = asyncio.new_event_loop()
    try:
        expected = run(ref_loop, start_error(program, **kw))
    finally:
        ref_loop.close()
    assert got == expected and got is not None
    assert open_fd_count() <= before


def marked_children(marker):
    return [c for c in children_of_this_process() if marker.encode() in c[2]]


def wait_until_gone(marker, timeout=10):
    deadline = time.monotonic() + timeout
    while marked_children(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    return marked_children(marker)


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("stdout", [None, subprocess.PIPE])
def test_a_start_cancelled_leaves_no_child_and_no_fd(loop, stdout, via):
    marker = f"pyasync-cancelled-start-{os.getpid()}-{stdout}-{via}"

    async def main():
        task = asyncio.ensure_future(asyncio.create_subprocess_exec(
            PY, "-c", "import time; time.sleep(30)", marker, stdout=stdout, **VIA[via]))
        await asyncio.sleep(0)  # the start is under way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)  # time for a child to show up if one was left

    run(loop, main())  # warm up
    before = open_fd_count()
    run(loop, main())
    assert wait_until_gone(marker) == []
    assert open_fd_count() <= before


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("when", ["while-starting", "started-not-yet-told"])
def test_a_loop_closed_while_a_child_starts_leaves_no_child(when, via):
    # asyncio starts a child before its first await, so its loop cannot
    # close in between; ours starts it in a worker thread, and a loop that
    # closes meanwhile must not leave the child behind: whether the worker
    # is still starting it, or has started it and queued the news for a
    # loop that will never run again.
    marker = f"pyasync-closed-loop-start-{os.getpid()}-{when}-{via}"
    loop = pyasync.new_event_loop()
    before = open_fd_count()
    coro = asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)", marker,
                                          stdout=subprocess.PIPE, **VIA[via])
    loop.create_task(coro)
    loop.call_soon(loop.stop)
    loop.run_forever()  # one iteration: the start is handed to a worker
    (request,) = loop._child_starts
    if when == "started-not-yet-told":
        deadline = time.monotonic() + 30
        while request._outcome is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert request._outcome is not None and request._outcome[0] is not None
    loop.close()
    # The child shows its marker once it has called execve(), which is
    # before spawn() returns: wait for that, then for the child to go.
    deadline = time.monotonic() + 30
    while request._outcome is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert request._outcome is not None
    assert wait_until_gone(marker) == []
    deadline = time.monotonic() + 10
    while open_fd_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert open_fd_count() <= before


def test_no_thread_outlives_the_children_being_started(loop):
    async def main():
        procs = await asyncio.gather(*(asyncio.create_subprocess_exec("true")
                                       for _ in range(20)))
        return [await p.wait() for p in procs]

    assert run(loop, main()) == [0] * 20
    # A thread leaves once the queue is empty, which it was before the
    # children were waited for: allow for a slow machine, not for an idle
    # timeout.
    deadline = time.monotonic() + 0.5
    while (any(t.name == "pyasync-spawn" for t in threading.enumerate())
           and time.monotonic() < deadline):
        time.sleep(0.01)
    assert [t for t in threading.enumerate() if t.name == "pyasync-spawn"] == []


def test_a_replaced_popen_is_called_as_asyncio_calls_it(loop):
    # Test suites fake the children a program starts by patching
    # subprocess.Popen; asyncio calls whatever is there at the time.
    with mock.patch("subprocess.Popen", side_effect=ZeroDivisionError) as popen:
        with pytest.raises(ZeroDivisionError):
            run(loop, asyncio.create_subprocess_exec("true", stdout=subprocess.PIPE))
    assert popen.call_count == 1
    assert popen.call_args.args[0] == ("true",)


def test_the_child_is_described_by_a_popen(loop):
    async def main():
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, PY, "-c", "pass", stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=None)
        proc = transport.get_extra_info("subprocess")
        described = (type(proc), proc.args, proc.pid == transport.get_pid(),
                     type(proc.stdout), proc.stdin, proc.text_mode)
        while transport.get_returncode() is None:
            await asyncio.sleep(0.01)
        polled = proc.poll()
        transport.close()
        return described, polled
    (cls, args, same_pid, stdout_type, stdin, text_mode), polled = run(loop, main())
    assert cls is subprocess.Popen
    assert args == (PY, "-c", "pass")
    assert same_pid and stdin is None and not text_mode
    assert stdout_type.__name__ == "FileIO"
    assert polled == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_starts_children_of_its_own():
    async def start_some():
        procs = await asyncio.gather(*(asyncio.create_subprocess_exec("true")
                                       for _ in range(8)))
        return [await p.wait() for p in procs]

    loop = pyasync.new_event_loop()
    try:
        # Fork while the parent's children are being started by its threads:
        # the forked child has none of those threads.
        in_flight = loop.create_task(start_some())
        for _ in range(3):  # the gather, then its tasks hand the starts over
            loop.call_soon(loop.stop)
            loop.run_forever()
        assert any(t.name == "pyasync-spawn" for t in threading.enumerate())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                child_loop = pyasync.new_event_loop()
                code = 0 if child_loop.run_until_complete(start_some()) == [0] * 8 else 2
                child_loop.close()
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung starting children")
            time.sleep(0.02)
        assert os.waitstatus_to_exitcode(status) == 0
        assert loop.run_until_complete(in_flight) == [0] * 8
    finally:
        loop.close()


CLOSED_STDIO = r"""
import asyncio, os, sys
result = open(sys.argv[2], "w")
if sys.argv[1] == "pyasync":
    import pyasync
    loop = pyasync.new_event_loop()
else:
    loop = asyncio.new_event_loop()
for fd in (0, 1, 2):
    os.close(fd)  # the fds made for a child now get the lowest numbers

async def main():
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", "cat; echo out; echo err >&2", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(b"in,")
    # /dev/null becomes fd 0, the error pipe 1 and 2: the child's stderr
    # is moved onto 2, and a failed exec must still be reported.
    try:
        await asyncio.create_subprocess_exec(
            "pyasync-no-such-program", stdin=None, stdout=None,
            stderr=asyncio.subprocess.DEVNULL)
        failed = None
    except OSError as exc:
        failed = type(exc).__name__
    return out, err, proc.returncode, failed

print(loop.run_until_complete(main()), file=result, flush=True)
loop.close()
"""


@pytest.mark.parametrize("kind", ["asyncio", "pyasync"])
def test_children_start_when_the_parent_closed_its_standard_streams(kind, tmp_path):
    out = tmp_path / "result"
    subprocess.run([PY, "-c", CLOSED_STDIO, kind, str(out)], cwd=CHILD_CWD, timeout=60,
                   check=True)
    assert out.read_text() == "(b'in,out\\n', b'err\\n', 0, 'FileNotFoundError')\n"
