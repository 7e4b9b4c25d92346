"""pyasync refuses interpreters it has not been tested on (CPython 3.14 and
later, free-threaded builds) at build time and at import, with a message
that says why. The checks are run here with a faked version or build."""
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import pyasync
from pyasync import _compat

REPO = Path(__file__).resolve().parent.parent
PYASYNC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))


def load_setup_module():
    # Imported under a name other than __main__, setup.py defines its check
    # without building anything.
    spec = importlib.util.spec_from_file_location("pyasync_setup", REPO / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(code, cwd):
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PYASYNC_ROOT + (os.pathsep + path if path else "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


CHECKS = [pytest.param(lambda: load_setup_module().unsupported_interpreter, id="setup.py"),
          pytest.param(lambda: _compat.unsupported_interpreter, id="import")]


@pytest.mark.parametrize("get_check", CHECKS)
@pytest.mark.parametrize("version", [(3, 11, 2, "final", 0), (3, 12, 0, "final", 0),
                                     (3, 13, 1, "final", 0)])
def test_tested_versions_are_accepted(get_check, version):
    assert get_check()(version, None) is None
    assert get_check()(version, 0) is None


@pytest.mark.parametrize("get_check", CHECKS)
@pytest.mark.parametrize("version", [(3, 14, 0, "final", 0), (3, 14, 0, "alpha", 1),
                                     (3, 15, 2, "final", 0), (4, 0, 0, "final", 0),
                                     (3, 10, 12, "final", 0)])
def test_untested_versions_are_refused(get_check, version):
    message = get_check()(version, None)
    shown = ".".join(map(str, version[:3]))
    assert f"this is Python {shown}" in message
    assert "3.11, 3.12 and 3.13" in message


@pytest.mark.parametrize("get_check", CHECKS)
def test_free_threaded_build_is_refused(get_check):
    message = get_check()((3, 13, 0, "final", 0), 1)
    assert "does not support free-threaded CPython builds" in message


def test_setup_py_stops_on_an_untested_version():
    # What pip runs: setup.py as __main__ (here with --version, which would
    # build nothing on a tested version).
    out = run_python(f"""
        import runpy, sys
        import setuptools
        sys.version_info = (3, 14, 0, "final", 0)
        sys.argv = ["setup.py", "--version"]
        runpy.run_path({str(REPO / "setup.py")!r}, run_name="__main__")
    """, cwd=REPO)
    assert out.returncode == 1
    assert "error: cannot build pyasync: pyasync supports CPython 3.11, 3.12 and 3.13; " \
           "this is Python 3.14.0" in out.stderr


def test_setup_py_runs_on_this_version():
    out = subprocess.run([sys.executable, "setup.py", "--version"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == pyasync.__version__


@pytest.mark.parametrize("fake, expected", [
    ('sys.version_info = (3, 14, 0, "final", 0)',
     "ImportError: pyasync supports CPython 3.11, 3.12 and 3.13; this is Python 3.14.0"),
    ('orig = sysconfig.get_config_var\n'
     'sysconfig.get_config_var = lambda name: 1 if name == "Py_GIL_DISABLED" else orig(name)',
     "ImportError: pyasync does not support free-threaded CPython builds"),
])
def test_import_stops_on_an_untested_interpreter(fake, expected):
    out = run_python("import sys, sysconfig\n" + fake + textwrap.dedent("""
        try:
            import pyasync
        except ImportError as exc:
            print(f"ImportError: {exc}")
        print("C extension loaded:", "pyasync._core" in sys.modules)
    """), cwd=REPO / "tests")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(expected), out.stdout
    assert lines[1:] == ["C extension loaded: False"]


def test_requires_python_excludes_untested_versions():
    text = (REPO / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.14"' in text


def test_compat_h_refuses_a_free_threaded_build(tmp_path):
    # What compiling against a free-threaded interpreter's headers (which
    # define Py_GIL_DISABLED) does.
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    if shutil.which(cc[0]) is None:
        pytest.skip(f"no C compiler ({cc[0]}) to compile csrc/compat.h with")
    source = tmp_path / "probe.c"
    source.write_text('#include "compat.h"\n')
    out = subprocess.run([*cc, "-fsyntax-only", "-DPy_GIL_DISABLED=1",
                          "-I" + sysconfig.get_paths()["include"], "-I" + str(REPO / "csrc"),
                          str(source)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "pyasync does not support free-threaded CPython builds" in out.stderr
