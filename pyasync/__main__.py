"""python -m pyasync: run an unchanged asyncio program on pyasync.

    python -m pyasync script.py [args...]     # like: python script.py [args...]
    python -m pyasync -m module [args...]     # like: python -m module [args...]
    python -m pyasync path/to/dir-or.zip      # runs its __main__.py, like python
    python -m pyasync --version | --help

pyasync.install() is called first, so asyncio.run(), asyncio.Runner() and
asyncio.new_event_loop() in the program create pyasync loops. Then the program
runs the way CPython's own command line runs it: sys.argv, sys.path[0] and a
real, lasting __main__ module are set up as `python script.py` would set them,
and an uncaught exception is reported by sys.excepthook with the same
traceback (the frames of this launcher are left out) and the same exit status:
1 for an exception, the code of a SystemExit, and death by SIGINT after an
uncaught KeyboardInterrupt.
"""
import builtins
import importlib.machinery
import importlib.util
import io
import marshal
import os
import pkgutil
import runpy
import sys
import types

import pyasync

_PROG = "python -m pyasync"

USAGE = f"""\
usage: {_PROG} [-h] [--version] script.py [args ...]
       {_PROG} -m module [args ...]
"""

HELP = USAGE + f"""
Run an unchanged asyncio program with pyasync as its event loop: the same as
`python script.py [args ...]` (or `python -m module [args ...]`), after
pyasync.install() has made pyasync the loop of asyncio.run(), asyncio.Runner()
and asyncio.new_event_loop().

arguments:
  script.py      the program to run: a Python file, or a directory or zip
                 file with a __main__.py; everything after it is passed to
                 the program in sys.argv
  -m module      run a library module as a script, like python -m
  -h, --help     show this help and exit
  --version      show pyasync's version and exit
"""

# Frames in these files are the launcher, not the program: they are left out
# of the traceback of an exception the program does not catch.
_OWN_FILE = __file__
_RUNPY_FILES = frozenset({"<frozen runpy>", runpy.__file__})


def _usage_error(message):
    sys.stderr.write(f"{USAGE}{_PROG}: error: {message}\n")
    return 2


def main(args=None):
    """Parse the command line and run the program; return an exit status
    for the launcher's own errors (the program's status is its own)."""
    if args is None:
        args = sys.argv[1:]
    if not args:
        return _usage_error("the following arguments are required: "
                            "script.py or -m module")
    first = args[0]
    if first in ("-h", "--help"):
        sys.stdout.write(HELP)
        return 0
    if first == "--version":
        sys.stdout.write(f"pyasync {pyasync.__version__}\n")
        return 0
    if first == "-m" or (first.startswith("-m") and len(first) > 2
                         and not first.startswith("--")):
        # -m module, or -mmodule like python accepts.
        if first == "-m":
            if len(args) < 2:
                return _usage_error("argument -m: expected a module name")
            module, rest = args[1], args[2:]
        else:
            module, rest = first[2:], args[1:]
        pyasync.install()
        _run_module(module, rest)
        return 0
    if first == "--":
        if len(args) < 2:
            return _usage_error("the following arguments are required: "
                                "script.py or -m module")
        first, args = args[1], args[1:]
    elif first.startswith("-"):
        return _usage_error(f"unrecognized option: {first}")
    pyasync.install()
    return _run_path(first, args[1:])


def _fresh_main_module():
    """A new module for sys.modules['__main__'], as CPython makes it.

    It stays there after the program ends, as the real __main__ does, so
    atexit handlers, threads and pickle still find the program's globals.
    """
    module = types.ModuleType("__main__")
    module.__annotations__ = {}
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    return module


def _run_module(module_name, args):
    """`python -m module_name args...`."""
    # While the module is being looked up, sys.argv[0] is '-m', as in
    # python; runpy then sets it to the module's file.
    sys.argv[:] = ["-m", *args]
    # sys.path[0] is already the current directory (or absent with -P):
    # the launcher itself was started with -m.
    _fresh_main_module()
    _run_program(runpy._run_module_as_main, module_name)


def _run_path(path, args):
    """`python path args...` for a script file, directory or zip file."""
    # Like CPython (3.9+), __file__ is the path made absolute, not normalised.
    filename = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    sys.argv[:] = [path, *args]

    if pkgutil.get_importer(filename) is not None:
        # A directory or zip file: its __main__ module is run, found through
        # sys.path[0], which is the path itself (even with -P, as in python).
        if sys.flags.safe_path:
            sys.path.insert(0, filename)
        else:
            sys.path[0] = filename
        _fresh_main_module()
        _run_program(runpy._run_module_as_main, "__main__", False)
        return 0

    try:
        with io.open_code(filename) as f:
            source = f.read()
    except OSError as exc:
        sys.stderr.write(f"{sys.executable}: can't open file {filename!r}: "
                         f"[Errno {exc.errno}] {exc.strerror}\n")
        return 2

    if not sys.flags.safe_path:
        # The directory of the script, symbolic links resolved.
        sys.path[0] = os.path.dirname(os.path.realpath(filename))

    module = _fresh_main_module()
    module.__file__ = filename
    module.__cached__ = None
    _run_program(_exec_file, module, filename, source)
    return 0


def _exec_file(module, filename, source):
    if _is_pyc(filename, source):
        if source[:4] != importlib.util.MAGIC_NUMBER:
            raise RuntimeError("Bad magic number in .pyc file")
        module.__loader__ = importlib.machinery.SourcelessFileLoader(
            "__main__", filename)
        code = marshal.loads(source[16:])
    else:
        module.__loader__ = importlib.machinery.SourceFileLoader(
            "__main__", filename)
        code = compile(source, filename, "exec", dont_inherit=True)
    exec(code, module.__dict__)


def _is_pyc(filename, data):
    # CPython's test: the extension, or the first half of the magic number.
    return (filename.endswith(".pyc")
            or data[:2] == importlib.util.MAGIC_NUMBER[:2])


def _run_program(func, *args):
    """Run the program; if it raises (other than SystemExit), let the
    exception go on up to the interpreter, which prints it and sets the exit
    status (and, for KeyboardInterrupt, ends the process by SIGINT), exactly
    as for `python script.py` -- but have the traceback start at the
    program's code rather than at this launcher."""
    try:
        func(*args)
    except SystemExit:
        raise
    except BaseException as exc:
        _trim_traceback_when_printed(exc)
        raise


def _program_traceback(tb):
    """`tb` without its leading launcher frames: runpy's frames that ran this
    file, and this file's own. runpy frames after them (python -m module
    shows them too) and everything below are the program's."""
    cut = None
    node = tb
    while node is not None:
        filename = node.tb_frame.f_code.co_filename
        if filename == _OWN_FILE:
            cut = node
        elif filename not in _RUNPY_FILES:
            break
        node = node.tb_next
    return tb if cut is None else cut.tb_next


def _trim_traceback_when_printed(exc):
    # The interpreter reports an uncaught exception by calling sys.excepthook
    # (after setting sys.last_*). Put a one-shot hook in front of whatever
    # hook is there (the program may have set its own) that shows the
    # program's part of the traceback only.
    try:
        hook = sys.excepthook
    except AttributeError:
        return

    def excepthook(exc_type, value, tb):
        if sys.excepthook is excepthook:
            sys.excepthook = hook
        if value is exc:
            tb = _program_traceback(tb)
            value.__traceback__ = tb
            sys.last_traceback = tb
        return hook(exc_type, value, tb)

    sys.excepthook = excepthook


if __name__ == "__main__":
    _status = main()
    if _status:
        sys.exit(_status)
