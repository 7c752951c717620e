"""Builds the pvengine wheel with libpvengine inside it (pvengine/_lib/libpvengine.so).

The library comes from the environment variable PVENGINE_LIBRARY when it is set (a path to a
built libpvengine.so: copied, nothing is built), otherwise from a CMake build of the repository
this directory belongs to:

    cmake -S <repo> -B <temporary dir> -DCMAKE_BUILD_TYPE=Release -DPV_BUILD_TESTS=OFF $PVENGINE_CMAKE_ARGS
    cmake --build <temporary dir> --target pvengine

Nothing is downloaded. Package metadata lives in pyproject.toml.
"""

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
BUNDLED_NAME = "libpvengine.so"


def build_with_cmake(build_dir):
    """Configures and builds the pvengine target of the repository; returns the library's path."""
    if not (REPOSITORY / "CMakeLists.txt").is_file() or not (REPOSITORY / "bindings_c" / "include" / "pvengine.h").is_file():
        raise RuntimeError(
            f"pvengine: {REPOSITORY} is not the pvengine repository, so libpvengine cannot be built "
            "here; set PVENGINE_LIBRARY to a built libpvengine.so")
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("pvengine: cmake is not on PATH; install it or set PVENGINE_LIBRARY to a built libpvengine.so")
    configure = [cmake, "-S", str(REPOSITORY), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 "-DPV_BUILD_TESTS=OFF"] + shlex.split(os.environ.get("PVENGINE_CMAKE_ARGS", ""))
    subprocess.run(configure, check=True)
    jobs = os.environ.get("PVENGINE_BUILD_JOBS", str(os.cpu_count() or 2))
    subprocess.run([cmake, "--build", str(build_dir), "--target", "pvengine", "--parallel", jobs], check=True)
    for name in ("libpvengine.so", "libpvengine.dylib", "pvengine.dll"):
        found = list(Path(build_dir).rglob(name))
        if found:
            return found[0]
    raise RuntimeError(f"pvengine: the CMake build in {build_dir} produced no libpvengine")


class BuildPyWithLibrary(build_py):
    """build_py that also puts libpvengine into pvengine/_lib/ of the build tree."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "pvengine" / "_lib"
        target.mkdir(parents=True, exist_ok=True)
        source = os.environ.get("PVENGINE_LIBRARY")
        if source:
            path = Path(source)
            if not path.is_file():
                raise RuntimeError(f"pvengine: PVENGINE_LIBRARY={source} does not name a file")
            self.announce(f"pvengine: bundling {path}", level=2)
            shutil.copyfile(os.path.realpath(path), target / BUNDLED_NAME)
            return
        with tempfile.TemporaryDirectory(prefix="pvengine-cmake-") as build_dir:
            library = build_with_cmake(build_dir)
            self.announce(f"pvengine: bundling {library}", level=2)
            shutil.copyfile(os.path.realpath(library), target / BUNDLED_NAME)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self):
        return True


def fresh_build_base():
    """A temporary build directory, removed at exit: pip builds in the source tree, and a reused
    build/ would package modules deleted since (and litter the checkout)."""
    path = tempfile.mkdtemp(prefix="pvengine-setuptools-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


BUILD_BASE = fresh_build_base()
setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=BinaryDistribution,
      options={"build": {"build_base": BUILD_BASE}, "egg_info": {"egg_base": BUILD_BASE}})
