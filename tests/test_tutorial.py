"""The programs of our users' asyncio tutorial run the same on pyasync.

The tutorial (shared/seed/asyncio-tutorial.md, beside the repository) teaches
asyncio with small programs: every fenced code block that calls asyncio.run()
is one. Each is run unchanged (with the `import asyncio, time` the tutorial
leaves out) under `python -m pyasync` and under plain `python`, all at once,
and must:

* exit 0 with nothing on stderr;
* print the same lines in the same order, with the %X times masked (and the
  order shown in the tutorial's own output comments, where it has them);
* take the time the tutorial says: the sum of the sleeps when the coroutines
  are awaited one after the other (6 s), the longest sleep when they run as
  tasks (4 s), measured from the first printed line to the last, close to
  plain python's time, line by line, and to the printed timestamps.

A copy of each program with asyncio.sleep() wrapped to report the running
loop shows that pyasync's loop is the one that ran it.
"""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import pyasync

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = REPO.parent / "shared" / "seed" / "asyncio-tutorial.md"
PYASYNC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))

if not TUTORIAL.is_file():
    pytest.skip(f"the asyncio tutorial is not at {TUTORIAL}",
                allow_module_level=True)

PRELUDE = "import asyncio, time\n"
# How far a duration may be from the expected one, or pyasync's from plain
# python's (the sleeps are seconds long: a loop that misses a timer by this
# much is broken).
TOLERANCE = 0.5
TIMEOUT = 60

_FENCE_RE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_TIME_RE = re.compile(r"\b(\d{2}):(\d{2}):(\d{2})\b")


def _programs():
    text = TUTORIAL.read_text(encoding="utf-8")
    programs = []
    for match in _FENCE_RE.finditer(text):
        block = match.group(1)
        if "asyncio.run(" in block:
            line = text.count("\n", 0, match.start()) + 1
            kind = ("sequential" if re.search(r"\bawait func\(", block)
                    else "concurrent")
            programs.append((f"line{line}-{kind}", block))
    return programs


PROGRAMS = _programs()


def mask_times(line):
    return _TIME_RE.sub("HH:MM:SS", line)


def seconds_of_day(line):
    h, m, s = map(int, _TIME_RE.search(line).groups())
    return h * 3600 + m * 60 + s


def expected_duration(block):
    """The sleeps of func(delay, name) add up when awaited one by one, and
    overlap when run as tasks."""
    delays = [float(d) for d in re.findall(r"\bfunc\((\d+(?:\.\d+)?)\s*,", block)]
    assert delays, "no func(delay, ...) call found: update this test"
    if re.search(r"\bawait func\(", block):
        return sum(delays)
    return max(delays)


def documented_output(block):
    """The output the tutorial shows in `# ...` comments after asyncio.run()."""
    after = block.split("asyncio.run(", 1)[1].splitlines()[1:]
    return [line[2:] for line in after if line.startswith("# ")]


# Wraps asyncio.sleep() to report, on stderr, the loop running the caller.
LOOP_PROBE = """\
import asyncio as _asyncio, sys as _sys
_real_sleep = _asyncio.sleep
async def _probe_sleep(delay, *args, **kwargs):
    _loop = type(_asyncio.get_running_loop())
    print("loop:", _loop.__module__ + "." + _loop.__qualname__, file=_sys.stderr)
    return await _real_sleep(delay, *args, **kwargs)
_asyncio.sleep = _probe_sleep
"""


class Run:
    """One process: its stdout lines with the time each arrived, relative
    to the start of the process."""

    def __init__(self, cmd, cwd):
        self.cmd = cmd
        self.cwd = cwd
        self.lines = []  # (seconds since start, line without "\n")
        self.stderr = ""
        self.returncode = None
        self.elapsed = None

    def __call__(self):
        env = dict(os.environ)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = PYASYNC_ROOT + (os.pathsep + path if path else "")
        env["PYTHONUNBUFFERED"] = "1"  # lines arrive when printed
        env.pop("PYTHONASYNCIODEBUG", None)
        with tempfile.TemporaryFile("w+") as err:
            start = time.monotonic()
            proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=err)
            try:
                for line in proc.stdout:
                    self.lines.append((time.monotonic() - start, line.rstrip("\n")))
                self.returncode = proc.wait(timeout=TIMEOUT)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            self.elapsed = time.monotonic() - start
            err.seek(0)
            self.stderr = err.read()

    @property
    def output(self):
        return [line for _, line in self.lines]

    @property
    def duration(self):
        """From the first printed line to the last one."""
        return self.lines[-1][0] - self.lines[0][0]

    def describe(self):
        return (f"{self.cmd} exited {self.returncode}\nstdout: {self.output}"
                f"\nstderr:\n{self.stderr}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every program under both interpreters' setups, all in parallel."""
    directory = tmp_path_factory.mktemp("tutorial")
    jobs = {}
    for name, block in PROGRAMS:
        program = directory / f"{name}.py"
        program.write_text(PRELUDE + block, encoding="utf-8")
        probed = directory / f"{name}_probed.py"
        probed.write_text(LOOP_PROBE + PRELUDE + block, encoding="utf-8")
        jobs[name, "python"] = Run([sys.executable, program.name], directory)
        jobs[name, "pyasync"] = Run(
            [sys.executable, "-m", "pyasync", program.name], directory)
        jobs[name, "probe"] = Run(
            [sys.executable, "-m", "pyasync", probed.name], directory)
    threads = [threading.Thread(target=job) for job in jobs.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return jobs


def test_tutorial_has_programs():
    # The tutorial has three: awaiting coroutines, create_task, TaskGroup.
    assert len(PROGRAMS) >= 3, PROGRAMS


@pytest.fixture(params=[name for name, _ in PROGRAMS])
def program(request, runs):
    name = request.param
    block = dict(PROGRAMS)[name]
    plain, ours, probe = (runs[name, kind] for kind in ("python", "pyasync", "probe"))
    for run in (plain, ours, probe):
        assert run.returncode == 0, run.describe()
    return block, plain, ours, probe


def test_same_output_as_python(program):
    block, plain, ours, _ = program
    assert plain.stderr == "", plain.describe()
    assert ours.stderr == "", ours.describe()
    masked = [mask_times(line) for line in ours.output]
    assert masked == [mask_times(line) for line in plain.output]
    assert masked[0].startswith("Start ") and masked[-1] == "Finish HH:MM:SS"
    documented = documented_output(block)
    if documented:
        assert masked == [mask_times(line) for line in documented]


def test_takes_the_time_python_takes(program):
    block, plain, ours, _ = program
    expected = expected_duration(block)
    documented = documented_output(block)
    if documented:
        # The tutorial's own timestamps agree with how this test reads it.
        shown = (seconds_of_day(documented[-1]) - seconds_of_day(documented[0])) % 86400
        assert shown == expected
    assert abs(plain.duration - expected) < TOLERANCE, plain.describe()
    assert abs(ours.duration - expected) < TOLERANCE, (ours.duration, expected)
    assert abs(ours.duration - plain.duration) < TOLERANCE
    # Each line comes when it does under python (a late or early timer
    # shows here even when the total is right).
    first_ours, first_plain = ours.lines[0][0], plain.lines[0][0]
    for (t_ours, line), (t_plain, _) in zip(ours.lines, plain.lines):
        assert abs((t_ours - first_ours) - (t_plain - first_plain)) < TOLERANCE, line
    # Whole process: python's startup and exit cost no more under pyasync.
    assert abs(ours.elapsed - plain.elapsed) < TOLERANCE


def test_printed_timestamps_match_the_duration(program):
    block, _, ours, _ = program
    start, finish = ours.output[0], ours.output[-1]
    printed = (seconds_of_day(finish) - seconds_of_day(start)) % 86400
    # %X has whole seconds: a 6.0x s run prints 6 or 7 seconds apart.
    assert printed - 1 <= ours.duration <= printed + 1, (start, finish, ours.duration)
    assert abs(printed - expected_duration(block)) <= 1


def test_ran_on_pyasync_loop(program):
    _, plain, _, probe = program
    reports = probe.stderr.splitlines()
    assert reports, probe.describe()
    assert set(reports) == {"loop: pyasync._loop.Loop"}, probe.describe()
    assert ([mask_times(line) for line in probe.output]
            == [mask_times(line) for line in plain.output])
