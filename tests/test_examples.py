"""The programs in examples/ run on pyasync and print what they should.

Each example is run with the first command its docstring gives (`python
examples/x.py ...` or `python -m pyasync examples/x.py ...`, from the
repository root), so the docstrings stay true, and its whole output is
checked. run_unchanged.py, a plain asyncio program, is also run with plain
python, and must print the same apart from the name of the loop.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import pyasync

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PYASYNC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))
TIMEOUT = 60

EXPECTED = {
    "hello.py": """\
        event loop: pyasync (Loop)
        Hello, pyasync!
        Hello, world!
        Hello, asyncio!
        gathered: world, pyasync, asyncio
    """,
    "timers.py": """\
        scheduled; cancelled one: True
        call_soon: before every timer
        call_later(0.10)
        call_at(loop.time() + 0.20)
        call_later(0.30)
        asyncio.timeout(0.1) expired
        asyncio.wait_for(..., timeout=0.05) expired
        asyncio.timeout(5): in time
        tick 1
        tick 2
        tick 3
        periodic callback ran 3 times
    """,
    "producer_consumer.py": """\
        produced 60 items with 3 producers
        consumed 60 items with 4 consumers
        every item handled exactly once: True
        producer 0: 20 items handled
        producer 1: 20 items handled
        producer 2: 20 items handled
        queue never held more than 5 items: True
        consumers cancelled: True
    """,
    "executor.py": """\
        sha256^1000(pyasync) = dc48792e0a75cab4
        sha256^1000(asyncio) = c26eb83f2fd17a02
        sha256^1000(threads) = 1fff3fa8511079fa
        heartbeat went on while the threads worked: True
    """,
    "echo.py": """\
        event loop: pyasync (Loop)
        TCP clients echoed intact: 10 of 10
        Unix clients echoed intact: 10 of 10
        servers closed
    """,
    "virtual_time.py": """\
        attempt 1 timed out at 0.5 min; retry in 1 min
        attempt 2 timed out at 2.0 min; retry in 2 min
        attempt 3 timed out at 4.5 min; retry in 4 min
        attempt 4 timed out at 9.0 min; retry in 8 min
        attempt 5 timed out at 17.5 min; retry in 16 min
        attempt 6 timed out at 34.0 min; retry in 32 min
        attempt 7 timed out at 66.5 min; retry in 64 min
        attempt 8: 'ready' at 2.17 h of virtual time
        real time under a second: True
    """,
    "run_unchanged.py": """\
        event loop: pyasync (Loop)
        results: ALPHA, BETA, GAMMA
        finished first to last: GAMMA, BETA, ALPHA
    """,
}


def _lines(text):
    return [line.strip() for line in text.strip().splitlines()]


def run_commands(name):
    """The `python ...` command lines of the example's docstring."""
    source = (EXAMPLES / name).read_text()
    docstring = re.match(r'\s*"""(.*?)"""', source, re.S).group(1)
    return [shlex.split(line, comments=True) for line in docstring.splitlines()
            if line.startswith("    python ")]


def run_example(argv):
    """Run a docstring command line from the examples directory (commands
    written from the repository root, `python examples/x.py`, are mapped)."""
    assert argv[0] == "python"
    argv = [sys.executable] + [a[len("examples/"):] if a.startswith("examples/") else a
                               for a in argv[1:]]
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PYASYNC_ROOT + (os.pathsep + path if path else "")
    env.pop("PYTHONASYNCIODEBUG", None)
    return subprocess.run(argv, cwd=EXAMPLES, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def test_every_example_is_checked():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_output(name):
    commands = run_commands(name)
    assert commands, f"{name}: its docstring shows no `python ...` command"
    command = commands[0]
    assert f"examples/{name}" in command or name in command
    proc = run_example(command)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert _lines(proc.stdout) == _lines(EXPECTED[name])


def test_producer_consumer_arguments():
    command = run_commands("producer_consumer.py")[1]
    assert command[2:] == ["--producers", "5", "--consumers", "2", "--items", "100"]
    proc = run_example(command)
    assert proc.returncode == 0, proc.stderr
    out = _lines(proc.stdout)
    assert out[:3] == ["produced 500 items with 5 producers",
                       "consumed 500 items with 2 consumers",
                       "every item handled exactly once: True"]
    assert out[3:8] == [f"producer {p}: 100 items handled" for p in range(5)]


def test_run_unchanged_is_plain_asyncio():
    source = (EXAMPLES / "run_unchanged.py").read_text()
    assert "import pyasync" not in source
    pyasync_cmd, args_cmd, plain_cmd = run_commands("run_unchanged.py")
    assert pyasync_cmd[:3] == ["python", "-m", "pyasync"]
    assert plain_cmd[:2] == ["python", "run_unchanged.py"]

    ours = run_example(pyasync_cmd)
    plain = run_example(plain_cmd)
    assert ours.returncode == plain.returncode == 0, (ours.stderr, plain.stderr)
    assert _lines(plain.stdout)[0] == "event loop: asyncio (_UnixSelectorEventLoop)"
    assert _lines(ours.stdout)[0] == "event loop: pyasync (Loop)"
    assert _lines(ours.stdout)[1:] == _lines(plain.stdout)[1:]

    ours = run_example(args_cmd)
    assert ours.returncode == 0, ours.stderr
    assert _lines(ours.stdout)[1:] == ["results: SPAM, EGGS",
                                       "finished first to last: EGGS, SPAM"]


def test_run_unchanged_exit_status():
    # The program's exit status comes through `python -m pyasync`.
    ours = run_example(["python", "-m", "pyasync", "examples/run_unchanged.py",
                        "a", "b", "a", "b", "c"])
    assert ours.returncode == 2, ours.stderr
    assert _lines(ours.stdout)[0] == "event loop: pyasync (Loop)"
