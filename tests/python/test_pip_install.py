"""`pip install bindings_c/python` works offline and the installed package runs on its own.

Installs with `python -m pip install --no-build-isolation --no-deps --no-index --target <tmp>`
and PVENGINE_LIBRARY set (so setup.py copies that library instead of building one), then imports
pvengine from <tmp> in a fresh process, without PVENGINE_LIBRARY and away from the source tree,
and checks that it loaded its bundled library and computes mrna_dynamics' golden value.

Usage: test_pip_install.py PACKAGE_DIR LIBRARY. Exit 77 (skip) without pip, setuptools, wheel or numpy.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile

CHECK = """
import os, sys
import pvengine
from pvengine.models import mrna_dynamics
bundled = os.path.join(os.path.dirname(pvengine.__file__), "_lib")
assert pvengine.library_path().startswith(bundled), pvengine.library_path()
assert os.path.realpath(pvengine.__file__).startswith(os.path.realpath(sys.argv[1])), pvengine.__file__
u, s = mrna_dynamics(2.0, 1.0, 0.5, 0.5, 0.4, 0.3)
assert (round(float(u), 4), round(float(s), 4)) == (1.1377, 0.9269), (u, s)
print("installed pvengine OK:", pvengine.library_path(), pvengine.build_info())
"""


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    package_dir, library = sys.argv[1], sys.argv[2]
    for module in ("pip", "setuptools", "wheel", "numpy"):
        # Only looked up: importing pip and then setuptools here would trip setuptools' distutils shim.
        if importlib.util.find_spec(module) is None:
            print(f"SKIP: Python module {module} is not installed")
            sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="pvengine-pip-") as target:
        env = dict(os.environ, PVENGINE_LIBRARY=library, PIP_DISABLE_PIP_VERSION_CHECK="1")
        install = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                   "--no-index", "--target", target, package_dir]
        print("$", " ".join(install), flush=True)
        subprocess.run(install, env=env, check=True)
        fresh = {k: v for k, v in os.environ.items() if k not in ("PVENGINE_LIBRARY", "PYTHONPATH")}
        fresh["PYTHONPATH"] = target
        subprocess.run([sys.executable, "-c", CHECK, target], env=fresh, cwd=target, check=True)


if __name__ == "__main__":
    main()
