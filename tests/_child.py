"""Where the tests start child Pythons.

`python -c ...` and `python -m ...` put the working directory first on
sys.path. From the repository root that is pyasync's source tree, which has
no compiled extension when pyasync was installed with pip (as CI does), so a
child started there would import the wrong pyasync. Children run from the
interpreter's own directory instead, which holds no Python package.
"""
import os
import sys

CHILD_CWD = os.path.dirname(os.path.abspath(sys.executable))


def with_default_sigint(cmd):
    """`cmd` exec'd by a Python that first gives SIGINT its default
    disposition, for tests whose child must react to Ctrl-C. A test run
    started in the background by a non-interactive shell (a CI harness run
    with `&`) has SIGINT ignored, and every child inherits that (the test
    process only looks right after something installed a Python handler):
    the child's Python then installs no KeyboardInterrupt handler, and
    SIGINT, signal.raise_signal() or _thread.interrupt_main() do nothing,
    on either loop."""
    reset = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", reset] + list(cmd)


def children_of_this_process():
    """(pid, state, argv) of each child of this process, from /proc; state
    "Z" for one that exited and was never reaped."""
    me = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[1] != me:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        found.append((int(pid), fields[0], argv))
    return found
