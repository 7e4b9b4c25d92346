"""Build script for the pyasync C extension.

Environment switches:
  PYASYNC_DEBUG=1     -O0 -g3 with assertions enabled
  PYASYNC_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer (implies debug flags)
  PYASYNC_WERROR=1    turn warnings into errors (used by CI)
"""
import glob
import os
import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    raise RuntimeError("pyasync needs epoll or poll(); Windows is not supported")


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
