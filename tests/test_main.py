"""`python -m pyasync`: an unchanged program runs as under plain `python`.

Each behaviour test runs the same program twice, as `python prog.py ...` and
as `python -m pyasync prog.py ...`, and compares what a user sees: sys.argv,
sys.path, the __main__ module, stdout, stderr (tracebacks with the event
loop's own frames masked, since those are where asyncio and pyasync differ)
and the exit status. Other tests check that the program really ran on
pyasync, and the launcher's own options.
"""
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from _child import with_default_sigint

import pyasync

PYASYNC_DIR = os.path.dirname(os.path.abspath(pyasync.__file__))
# The directory to put on the children's PYTHONPATH so that they import the
# same pyasync as this test process.
PYASYNC_ROOT = os.path.dirname(PYASYNC_DIR)
REPO = Path(__file__).resolve().parent.parent
ASYNCIO_DIR = os.path.dirname(os.path.abspath(asyncio.__file__))
TIMEOUT = 60


def child_env(**extra):
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PYASYNC_ROOT + (os.pathsep + path if path else "")
    env["PYTHON_COLORS"] = "0"  # 3.13: no colour in tracebacks
    env.pop("PYTHONASYNCIODEBUG", None)
    env.update(extra)
    return env


def run(cmd, cwd, **kwargs):
    return subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True,
                          text=True, timeout=TIMEOUT, **kwargs)


def run_plain(args, cwd, python_opts=()):
    return run([sys.executable, *python_opts, *args], cwd)


def run_pyasync(args, cwd, python_opts=()):
    return run([sys.executable, *python_opts, "-m", "pyasync", *args], cwd)


def write(path, source):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


# Files whose frames differ between the two runs by design: the event loop
# (asyncio's Python loop vs pyasync's) and asyncio's Handle._run, which
# pyasync does in C.
_LOOP_FILES = {os.path.join(ASYNCIO_DIR, name) for name in (
    "base_events.py", "events.py", "selector_events.py", "unix_events.py")}
_LOOP_FILES.add(os.path.join(os.path.dirname(ASYNCIO_DIR), "selectors.py"))
_FRAME_RE = re.compile(
    r'^(?P<prefix>(?:[ ]*\| )?)  File "(?P<file>[^"]*)", line \d+, in .*$')


def _is_loop_file(filename):
    return (filename in _LOOP_FILES
            or filename.startswith(PYASYNC_DIR + os.sep))


def normalise(stderr):
    """stderr without the event loop's frames (asyncio has a frame for
    Handle._run where pyasync has none, so they are dropped, not counted)."""
    out = []
    lines = stderr.splitlines()
    i = 0
    while i < len(lines):
        m = _FRAME_RE.match(lines[i])
        if not (m and _is_loop_file(m["file"])):
            out.append(lines[i])
            i += 1
            continue
        prefix = m["prefix"]
        # Skip this frame's header, source and caret lines, and those of the
        # loop frames right after it.
        while i < len(lines):
            m = _FRAME_RE.match(lines[i])
            if m and _is_loop_file(m["file"]):
                i += 1
            elif lines[i].startswith(prefix + "    ") and not m:
                i += 1
            else:
                break
    return "\n".join(out)


def assert_same_run(plain, ours):
    assert ours.returncode == plain.returncode, (plain.stderr, ours.stderr)
    assert ours.stdout == plain.stdout
    assert normalise(ours.stderr) == normalise(plain.stderr)
    assert "pyasync" not in normalise(ours.stderr)


# ---------------------------------------------------------------- the loop

LOOP_PROBE = """\
    import asyncio, sys
    import pyasync

    async def main():
        loop = asyncio.get_running_loop()
        print("running loop:", type(loop).__module__, type(loop).__qualname__)
        print("is pyasync.Loop:", type(loop) is pyasync.Loop)
        return 7

    print("policy:", type(asyncio.get_event_loop_policy()).__qualname__)
    print("result:", asyncio.run(main()))
    loop = asyncio.new_event_loop()
    print("new_event_loop:", type(loop) is pyasync.Loop)
    loop.close()
    with asyncio.Runner() as runner:
        print("Runner:", type(runner.get_loop()) is pyasync.Loop)
"""


def test_asyncio_run_uses_pyasync_loop(tmp_path):
    prog = write(tmp_path / "prog.py", LOOP_PROBE)
    ours = run_pyasync([prog.name], tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.splitlines() == [
        "policy: EventLoopPolicy",
        "running loop: pyasync._loop Loop",
        "is pyasync.Loop: True",
        "result: 7",
        "new_event_loop: True",
        "Runner: True",
    ]
    assert ours.stderr == ""


def test_plain_python_does_not_use_pyasync(tmp_path):
    # The probe above can tell the two apart.
    prog = write(tmp_path / "prog.py", LOOP_PROBE)
    plain = run_plain([prog.name], tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "is pyasync.Loop: False" in plain.stdout.splitlines()


@pytest.mark.parametrize("poller", ["epoll", "poll"])
def test_pyasync_poller_env_reaches_the_program(tmp_path, poller):
    prog = write(tmp_path / "prog.py", """\
        import asyncio
        async def main():
            await asyncio.sleep(0.01)
            print(asyncio.get_running_loop()._poller)
        asyncio.run(main())
    """)
    proc = subprocess.run(
        [sys.executable, "-m", "pyasync", prog.name], cwd=tmp_path,
        env=child_env(PYASYNC_POLLER=poller), capture_output=True, text=True,
        timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == poller + "\n"


# ---------------------------------------------------------------- the program's world

ENV_PROBE = """\
    import json, sys, warnings
    import __main__

    def describe_spec(spec):
        if spec is None:
            return None
        return [spec.name, spec.origin, type(spec.loader).__name__, spec.parent]

    def describe():
        g = globals()
        return {
            "__name__": __name__,
            "argv": sys.argv,
            "path": sys.path,
            "__file__": g.get("__file__"),
            "__package__": g.get("__package__"),
            "__spec__": describe_spec(g.get("__spec__")),
            "__cached__": g.get("__cached__"),
            "__loader__": type(g.get("__loader__")).__name__,
            "__loader__.path": getattr(g.get("__loader__"), "path", None),
            "__builtins__": repr(g.get("__builtins__")),
            "__annotations__": repr(g.get("__annotations__")),
            "keys": list(g)[:12],
            "main is this module": sys.modules["__main__"] is __main__
                                   and __main__.describe is describe,
        }

    print(json.dumps(describe(), indent=1))
    warnings.warn("shown for __main__ by default", DeprecationWarning)
"""


def _compare_probe(plain, ours):
    assert plain.returncode == 0, plain.stderr
    assert_same_run(plain, ours)
    return json.loads(ours.stdout)


@pytest.mark.parametrize("args", [
    [],
    ["a", "b c", ""],
    ["--version", "-m", "x", "--help", "--"],
])
def test_argv_path_and_main_module_match_python(tmp_path, args):
    write(tmp_path / "sub" / "prog.py", ENV_PROBE)
    plain = run_plain(["sub/prog.py", *args], tmp_path)
    ours = run_pyasync(["sub/prog.py", *args], tmp_path)
    info = _compare_probe(plain, ours)
    assert info["argv"] == ["sub/prog.py", *args]
    assert info["__name__"] == "__main__"
    assert info["path"][0] == str((tmp_path / "sub").resolve())
    assert info["main is this module"]
    assert "DeprecationWarning: shown for __main__" in ours.stderr


@pytest.mark.parametrize("how", ["absolute", "dot-slash", "symlink"])
def test_script_path_forms_match_python(tmp_path, how):
    real = write(tmp_path / "real" / "prog.py", ENV_PROBE)
    (tmp_path / "other").mkdir()
    if how == "absolute":
        arg, cwd = str(real), tmp_path / "other"
    elif how == "dot-slash":
        arg, cwd = "./prog.py", tmp_path / "real"
    else:
        (tmp_path / "other" / "link.py").symlink_to(real)
        arg, cwd = "link.py", tmp_path / "other"
    info = _compare_probe(run_plain([arg], cwd), run_pyasync([arg], cwd))
    # sys.path[0] is the directory of the real file, links resolved.
    assert info["path"][0] == str(real.parent.resolve())


def test_safe_path_flag_matches_python(tmp_path):
    # python -P does not put the script's directory on sys.path.
    write(tmp_path / "prog.py", ENV_PROBE)
    info = _compare_probe(run_plain(["prog.py"], tmp_path, ["-P"]),
                          run_pyasync(["prog.py"], tmp_path, ["-P"]))
    assert str(tmp_path) not in info["path"]


def test_script_directory_is_importable(tmp_path):
    write(tmp_path / "app" / "helper.py", "VALUE = 'from helper'\n")
    write(tmp_path / "app" / "prog.py", """\
        import helper
        print(helper.VALUE)
    """)
    plain = run_plain(["app/prog.py"], tmp_path)
    ours = run_pyasync(["app/prog.py"], tmp_path)
    assert ours.stdout == "from helper\n"
    assert_same_run(plain, ours)


def test_main_module_outlives_the_script(tmp_path):
    # atexit handlers, threads and pickle see the program's __main__ after
    # its last line has run, as in python.
    write(tmp_path / "prog.py", """\
        import atexit, pickle, sys, threading, time

        class Point:
            def __init__(self, x):
                self.x = x

        def at_exit():
            import __main__
            print("atexit:", __main__.MARKER, pickle.loads(pickle.dumps(Point(3))).x)

        def late():
            time.sleep(0.2)
            print("thread:", sys.modules["__main__"].MARKER)

        atexit.register(at_exit)
        threading.Thread(target=late).start()
        MARKER = "program globals"
    """)
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert ours.stdout == "thread: program globals\natexit: program globals 3\n"
    assert_same_run(plain, ours)


def test_pickle_of_main_classes_inside_asyncio_run(tmp_path):
    write(tmp_path / "prog.py", """\
        import asyncio, pickle

        class Job:
            def __init__(self, n):
                self.n = n

        async def main():
            await asyncio.sleep(0)
            return pickle.loads(pickle.dumps(Job(5))).n

        if __name__ == "__main__":
            print(asyncio.run(main()))
    """)
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert ours.stdout == "5\n"
    assert_same_run(plain, ours)


def test_source_encoding_and_bom(tmp_path):
    path = tmp_path / "prog.py"
    path.write_bytes(b"\xef\xbb\xbfprint('\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82')\n")
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\nprint(ascii('\xe9'))\n")
    for name in ("prog.py", "latin.py"):
        assert_same_run(run_plain([name], tmp_path), run_pyasync([name], tmp_path))
    assert run_pyasync(["latin.py"], tmp_path).stdout == "'\\xe9'\n"


def test_compiled_pyc_file(tmp_path):
    import py_compile
    src = write(tmp_path / "prog.py", ENV_PROBE)
    py_compile.compile(str(src), cfile=str(tmp_path / "prog.pyc"), doraise=True)
    src.unlink()
    info = _compare_probe(run_plain(["prog.pyc"], tmp_path),
                          run_pyasync(["prog.pyc"], tmp_path))
    assert info["__loader__"] == "SourcelessFileLoader"


def test_directory_with_main(tmp_path):
    write(tmp_path / "app" / "__main__.py", ENV_PROBE)
    info = _compare_probe(run_plain(["app", "x"], tmp_path),
                          run_pyasync(["app", "x"], tmp_path))
    assert info["argv"] == ["app", "x"]
    assert info["path"][0] == str(tmp_path / "app")


def test_zip_file_with_main(tmp_path):
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as zf:
        zf.writestr("__main__.py", textwrap.dedent(ENV_PROBE))
    info = _compare_probe(run_plain(["app.zip", "y"], tmp_path),
                          run_pyasync(["app.zip", "y"], tmp_path))
    assert info["argv"] == ["app.zip", "y"]


def test_directory_without_main(tmp_path):
    (tmp_path / "empty").mkdir()
    plain = run_plain(["empty"], tmp_path)
    ours = run_pyasync(["empty"], tmp_path)
    assert ours.returncode == plain.returncode == 1
    assert ours.stderr == plain.stderr
    assert "can't find '__main__' module" in ours.stderr


def test_missing_script(tmp_path):
    plain = run_plain(["nope.py"], tmp_path)
    ours = run_pyasync(["nope.py"], tmp_path)
    assert ours.returncode == plain.returncode == 2
    assert ours.stderr == plain.stderr
    assert "can't open file" in ours.stderr


def test_double_dash_ends_launcher_options(tmp_path):
    write(tmp_path / "-dash.py", "import sys; print(sys.argv)\n")
    ours = run_pyasync(["--", "-dash.py", "--help"], tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == "['-dash.py', '--help']\n"


# ---------------------------------------------------------------- python -m module

MODULE_PROBE = """\
    import asyncio, json, sys

    async def main():
        loop = asyncio.get_running_loop()
        return type(loop).__module__

    print(json.dumps({
        "argv": sys.argv, "path0": sys.path[0], "__name__": __name__,
        "__spec__.name": __spec__.name, "__file__": __file__,
        "__package__": __package__,
        "main is this": sys.modules["__main__"].__dict__ is globals(),
    }))
    print("loop module:", asyncio.run(main()))
"""


@pytest.mark.parametrize("module, args", [
    ("tool", []),
    ("pkg.cli", ["--flag", "v"]),
    ("pkg", ["a"]),  # runs pkg/__main__.py
])
def test_module_mode_matches_python_m(tmp_path, module, args):
    write(tmp_path / "tool.py", MODULE_PROBE)
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "cli.py", MODULE_PROBE)
    write(tmp_path / "pkg" / "__main__.py", MODULE_PROBE)
    plain = run_plain(["-m", module, *args], tmp_path)
    ours = run_pyasync(["-m", module, *args], tmp_path)
    assert plain.returncode == ours.returncode == 0, (plain.stderr, ours.stderr)
    plain_lines = plain.stdout.splitlines()
    ours_lines = ours.stdout.splitlines()
    assert json.loads(ours_lines[0]) == json.loads(plain_lines[0])
    info = json.loads(ours_lines[0])
    assert info["argv"][1:] == args
    assert info["main is this"]
    assert info["path0"] == str(tmp_path)
    assert plain_lines[1] == "loop module: asyncio.unix_events"
    assert ours_lines[1] == "loop module: pyasync._loop"
    assert ours.stderr == plain.stderr == ""


def test_module_mode_attached_form(tmp_path):
    write(tmp_path / "tool.py", "import sys; print(sys.argv[1:])\n")
    ours = run_pyasync(["-mtool", "z"], tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == "['z']\n"


def test_module_mode_missing_module(tmp_path):
    plain = run_plain(["-m", "no_such_module_xyz"], tmp_path)
    ours = run_pyasync(["-m", "no_such_module_xyz"], tmp_path)
    assert ours.returncode == plain.returncode == 1
    assert ours.stderr == plain.stderr
    assert "No module named no_such_module_xyz" in ours.stderr


@pytest.mark.parametrize("failing", ["module", "package init"])
def test_module_mode_traceback_matches_python_m(tmp_path, failing):
    write(tmp_path / "pkg" / "__init__.py",
          "1 / 0\n" if failing == "package init" else "")
    write(tmp_path / "pkg" / "mod.py", """\
        import asyncio
        async def main():
            raise LookupError("in module")
        asyncio.run(main())
    """)
    plain = run_plain(["-m", "pkg.mod"], tmp_path)
    ours = run_pyasync(["-m", "pkg.mod"], tmp_path)
    assert ours.returncode == 1
    assert_same_run(plain, ours)


# ---------------------------------------------------------------- exit status and errors

@pytest.mark.parametrize("body, status", [
    ("print('done')", 0),
    ("sys.exit()", 0),
    ("sys.exit(3)", 3),
    ("sys.exit('fatal: message')", 1),
    ("raise SystemExit(0)", 0),
    ("async def main():\n    sys.exit(4)\nasyncio.run(main())", 4),
    ("async def main():\n    await asyncio.sleep(0)\n    raise SystemExit('bye')\n"
     "asyncio.run(main())", 1),
    ("os._exit(9)", 9),
])
def test_exit_status_matches_python(tmp_path, body, status):
    write(tmp_path / "prog.py", "import asyncio, os, sys\n" + body + "\n")
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert ours.returncode == status
    assert_same_run(plain, ours)


TRACEBACK_PROGRAMS = {
    "module level": """\
        def f():
            raise ValueError("top level")
        f()
    """,
    "in a coroutine": """\
        import asyncio
        async def inner():
            await asyncio.sleep(0.01)
            {}["missing"]
        async def main():
            await inner()
        asyncio.run(main())
    """,
    "chained": """\
        import asyncio
        async def main():
            try:
                1 / 0
            except ZeroDivisionError as exc:
                raise RuntimeError("wrapped") from exc
        asyncio.run(main())
    """,
    "during handling": """\
        import asyncio
        async def main():
            try:
                raise KeyError(1)
            except KeyError:
                await asyncio.sleep(0)
                raise OSError(2, "no such thing")
        asyncio.run(main())
    """,
    "task group": """\
        import asyncio
        async def boom(n):
            await asyncio.sleep(0.01 * n)
            raise ValueError(n)
        async def main():
            async with asyncio.TaskGroup() as tg:
                tg.create_task(boom(1))
                tg.create_task(boom(2))
        asyncio.run(main())
    """,
    "callback error logged, then exit": """\
        import asyncio
        def cb():
            raise ValueError("in callback")
        async def main():
            asyncio.get_running_loop().call_soon(cb)
            await asyncio.sleep(0.01)
            raise SystemExit(5)
        asyncio.run(main())
    """,
    "stdout unflushed": """\
        import sys
        sys.stdout.write("partial line without newline")
        print("to stderr first", file=sys.stderr)
        raise TypeError("after output")
    """,
}


@pytest.mark.parametrize("name", list(TRACEBACK_PROGRAMS))
def test_uncaught_exception_output_matches_python(tmp_path, name):
    prog = write(tmp_path / "prog.py", TRACEBACK_PROGRAMS[name])
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert_same_run(plain, ours)
    assert ours.returncode in (1, 5)
    # Nothing of the launcher: the traceback starts at the program.
    assert "runpy" not in ours.stderr
    assert "__main__.py" not in ours.stderr
    first_frame = re.search(r'File "([^"]*)"', normalise(ours.stderr))
    assert first_frame and first_frame.group(1) == str(prog)


def test_syntax_error_matches_python(tmp_path):
    write(tmp_path / "prog.py", "import asyncio\nasync def main(:\n    pass\n")
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert ours.returncode == 1
    assert ours.stderr == plain.stderr
    assert "Traceback" not in ours.stderr
    assert "SyntaxError" in ours.stderr


def test_program_excepthook_gets_program_traceback(tmp_path):
    write(tmp_path / "prog.py", """\
        import sys, traceback
        def hook(exc_type, exc, tb):
            names = [f.name for f in traceback.extract_tb(tb)]
            same = exc.__traceback__ is tb
            print("hook:", exc_type.__name__, exc, names, same)
        sys.excepthook = hook
        def fail():
            raise ValueError("x")
        fail()
    """)
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert ours.stdout == "hook: ValueError x ['<module>', 'fail'] True\n"
    assert_same_run(plain, ours)


def test_sys_last_traceback_starts_at_program(tmp_path):
    write(tmp_path / "prog.py", """\
        import atexit, sys, traceback
        @atexit.register
        def show():
            print([f.name for f in traceback.extract_tb(sys.last_traceback)])
        def fail():
            raise ValueError("x")
        fail()
    """)
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert ours.stdout == "['<module>', 'fail']\n"
    assert_same_run(plain, ours)


# ---------------------------------------------------------------- KeyboardInterrupt

def test_uncaught_keyboard_interrupt_kills_by_sigint(tmp_path):
    write(tmp_path / "prog.py", """\
        import atexit
        atexit.register(print, "atexit ran")
        def f():
            raise KeyboardInterrupt
        f()
    """)
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert plain.returncode == -signal.SIGINT
    assert_same_run(plain, ours)
    assert ours.stdout == "atexit ran\n"
    assert "runpy" not in ours.stderr


def test_keyboard_interrupt_status_seen_by_shell(tmp_path):
    write(tmp_path / "prog.py", "raise KeyboardInterrupt\n")
    proc = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -m pyasync prog.py; echo "status=$?"'],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True,
        timeout=TIMEOUT)
    assert proc.stdout.strip() == "status=130"


def test_caught_keyboard_interrupt_exits_normally(tmp_path):
    write(tmp_path / "prog.py", """\
        import sys
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.exit(0)
    """)
    plain = run_plain(["prog.py"], tmp_path)
    ours = run_pyasync(["prog.py"], tmp_path)
    assert ours.returncode == 0
    assert_same_run(plain, ours)


CTRL_C_PROGRAM = """\
    import asyncio

    async def main():
        print("ready", flush=True)
        try:
            await asyncio.sleep(60)
        finally:
            print("main cancelled", flush=True)

    asyncio.run(main())
"""


def _interrupt(cmd, cwd):
    proc = subprocess.Popen(with_default_sigint(cmd), cwd=cwd, env=child_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, "ready\n" + out, err)


def test_ctrl_c_during_asyncio_run_matches_python(tmp_path):
    # asyncio.Runner turns the first SIGINT into cancelling the main task and
    # then raises KeyboardInterrupt: the loop must wake up from its wait for
    # the signal, and the process must end the way python's does.
    write(tmp_path / "prog.py", CTRL_C_PROGRAM)
    plain = _interrupt([sys.executable, "prog.py"], tmp_path)
    ours = _interrupt([sys.executable, "-m", "pyasync", "prog.py"], tmp_path)
    assert plain.returncode == -signal.SIGINT
    assert ours.stdout == "ready\nmain cancelled\n"
    assert_same_run(plain, ours)


def test_second_ctrl_c_during_asyncio_run_matches_python(tmp_path):
    # The first SIGINT cancels main(), which carries on; the second makes
    # asyncio.Runner's handler raise KeyboardInterrupt from inside the loop's
    # wait for events.
    write(tmp_path / "prog.py", """\
        import asyncio

        async def main():
            print("ready", flush=True)
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                print("first cancel ignored", flush=True)
            try:
                await asyncio.sleep(60)
            finally:
                print("main finally", flush=True)

        asyncio.run(main())
    """)

    def interrupt_twice(cmd):
        proc = subprocess.Popen(with_default_sigint(cmd), cwd=tmp_path, env=child_env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline() == "ready\n"
            proc.send_signal(signal.SIGINT)
            assert proc.stdout.readline() == "first cancel ignored\n"
            # Let main() get back to its await: a KeyboardInterrupt raised
            # while it runs would end it before its try/finally.
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    plain = interrupt_twice([sys.executable, "prog.py"])
    ours = interrupt_twice([sys.executable, "-m", "pyasync", "prog.py"])
    assert plain.returncode == -signal.SIGINT
    assert ours.stdout == "main finally\n"
    assert_same_run(plain, ours)


# ---------------------------------------------------------------- the launcher's own options

def test_version(tmp_path):
    import tomllib
    proc = run_pyasync(["--version"], tmp_path)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert proc.stdout == f"pyasync {pyasync.__version__}\n"
    assert re.fullmatch(r"pyasync \d+\.\d+\.\d+\S*\n", proc.stdout)
    with open(REPO / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["project"]["version"] == pyasync.__version__


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(tmp_path, flag):
    proc = run_pyasync([flag], tmp_path)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: python -m pyasync")
    for word in ("script.py", "-m module", "--version", "--help"):
        assert word in proc.stdout


@pytest.mark.parametrize("args, message", [
    ([], "required"),
    (["-m"], "-m"),
    (["--"], "required"),
    (["--bogus", "prog.py"], "--bogus"),
    (["-x"], "-x"),
])
def test_usage_errors(tmp_path, args, message):
    proc = run_pyasync(args, tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: python -m pyasync")
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("python -m pyasync: error: ")
    assert message in error


def test_launcher_options_after_script_go_to_the_script(tmp_path):
    write(tmp_path / "prog.py", "import sys; print(sys.argv[1:])\n")
    proc = run_pyasync(["prog.py", "--version", "-h", "-m", "x"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "['--version', '-h', '-m', 'x']\n"


def test_importing_pyasync_main_runs_nothing(tmp_path):
    proc = run([sys.executable, "-c",
                "import sys, pyasync.__main__ as m; print(callable(m.main), sys.argv)"],
               tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True ['-c']\n"
