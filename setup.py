"""Build script for the pyasync C extension.

Environment switches:
  PYASYNC_DEBUG=1     -O0 -g3 with assertions enabled
  PYASYNC_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer (implies debug flags)
  PYASYNC_WERROR=1    turn warnings into errors (used by CI)
"""
import glob
import os
import sys
import sysconfig

from setuptools import Extension, setup

if sys.platform == "win32":
    raise RuntimeError("pyasync needs epoll or poll(); Windows is not supported")


def unsupported_interpreter(version_info, gil_disabled):
    """Why pyasync cannot be built for this interpreter, or None.

    Only the versions the test suite has run on are accepted: pyasync's
    Future and Task share the C layout of asyncio's of each version
    (csrc/compat.h), and 3.14 changed asyncio's task registry and policies.
    A free-threaded build has no GIL to order the loop's state. The same
    check is made at import (pyasync/_compat.py) and at compile time
    (csrc/compat.h).
    """
    version = ".".join(str(part) for part in version_info[:3])
    if tuple(version_info[:2]) < (3, 11) or tuple(version_info[:2]) >= (3, 14):
        return (f"pyasync supports CPython 3.11, 3.12 and 3.13; this is Python {version}, "
                "which pyasync has not been tested on")
    if gil_disabled:
        return (f"pyasync does not support free-threaded CPython builds (this is {version} "
                "built with --disable-gil); use the default build of the same version")
    return None


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


extra_compile_args = ["-Wall", "-Wextra", "-Wno-unused-parameter",
                      "-Wno-missing-field-initializers", "-std=c11"]
extra_link_args = []
undef_macros = []

if _flag("PYASYNC_WERROR"):
    extra_compile_args.append("-Werror")

if _flag("PYASYNC_DEBUG") or _flag("PYASYNC_SANITIZE"):
    extra_compile_args += ["-O0", "-g3"]
    undef_macros.append("NDEBUG")
else:
    extra_compile_args += ["-O2"]

if _flag("PYASYNC_SANITIZE"):
    # Undefined behaviour aborts like an ASan report, so a CI run cannot
    # print one and still pass.
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    extra_compile_args += san
    extra_link_args += san

if __name__ == "__main__":  # also when pip builds: setuptools runs this file as __main__
    reason = unsupported_interpreter(sys.version_info,
                                     sysconfig.get_config_var("Py_GIL_DISABLED"))
    if reason is not None:
        sys.exit(f"error: cannot build pyasync: {reason}.")
    setup(
        ext_modules=[
            Extension(
                "pyasync._core",
                sources=sorted(glob.glob("csrc/*.c")),
                depends=sorted(glob.glob("csrc/*.h")),
                extra_compile_args=extra_compile_args,
                extra_link_args=extra_link_args,
                undef_macros=undef_macros,
            )
        ],
    )
