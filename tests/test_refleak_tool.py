"""tools/refleak.py, the reference-leak hunter: it runs every test pytest
would run (fixtures, parametrisation, a module skipped at import), reports
the ones that leak and only those."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pyasync

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "refleak.py"
PYASYNC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))

SAMPLE_TESTS = {
    "test_sample.py": '''
        import ctypes

        import pytest

        import pyasync

        KEPT = []


        @pytest.fixture
        def made_loop():
            loop = pyasync.new_event_loop()
            yield loop
            loop.close()


        def test_keeps_an_object_per_run():
            KEPT.append(object())


        def test_leaks_a_reference_from_c():
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(object()))


        @pytest.mark.parametrize("count", [1, 50])
        def test_clean_with_fixture(made_loop, count):
            done = []
            for i in range(count):
                made_loop.call_soon(done.append, i)
            made_loop.call_soon(made_loop.stop)
            made_loop.run_forever()
            assert done == list(range(count))


        def test_skipped():
            pytest.skip("not here")
    ''',
    "test_skipped_module.py": '''
        import pytest

        pytest.skip("whole module", allow_module_level=True)
    ''',
    "test_broken_module.py": '''
        import a_test_dependency_that_is_not_installed  # noqa: F401
    ''',
}


def run_tool(tmp_path, *args):
    for name, source in SAMPLE_TESTS.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PYASYNC_ROOT + (os.pathsep + path if path else "")
    return subprocess.run([sys.executable, str(TOOL), *args, "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


needs_debug_interpreter = pytest.mark.skipif(not hasattr(sys, "gettotalrefcount"),
                                             reason="the leak hunt needs a debug interpreter")


@needs_debug_interpreter
def test_reports_leaking_tests_and_runs_every_test(tmp_path):
    out = run_tool(tmp_path, "-R", "2:3")
    lines = out.stdout.splitlines()
    leaking = sorted(line.split(":")[2] for line in lines if line.startswith("LEAK "))
    assert leaking == ["test_keeps_an_object_per_run", "test_leaks_a_reference_from_c"], \
        out.stdout
    assert "not measured (skipped): test_sample.py::test_skipped" in lines
    assert "not collected (error): test_broken_module.py" in lines
    assert ("4 tests measured (2 warm-up runs, 3 measured), 2 leaking, 1 not measured, "
            "1 modules not collected") in lines
    # The tests passed: neither the module skipped at import nor the one
    # that failed to import stopped the run. The leaks (and the error) make
    # the exit status non-zero.
    assert "4 passed, 2 skipped, 1 error" in lines[-1]
    assert out.returncode == 1


@needs_debug_interpreter
def test_exit_status_is_zero_when_nothing_leaks(tmp_path):
    out = run_tool(tmp_path, "-R", "2:3", "-k", "clean_with_fixture",
                   "--ignore", str(tmp_path / "test_broken_module.py"))
    assert "2 tests measured (2 warm-up runs, 3 measured), 0 leaking, 0 not measured, " \
           "0 modules not collected" in out.stdout.splitlines(), out.stdout
    assert out.returncode == 0, out.stdout


@pytest.mark.skipif(hasattr(sys, "gettotalrefcount"), reason="a debug interpreter")
def test_refuses_a_release_interpreter(tmp_path):
    out = run_tool(tmp_path)
    assert out.returncode == 1
    assert "needs a debug interpreter" in out.stderr
