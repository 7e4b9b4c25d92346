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
