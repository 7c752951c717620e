"""Finds and loads libpvengine, declares the C ABI's signatures for ctypes, and checks statuses.

The library is looked for, in order:

1. the path in the environment variable ``PVENGINE_LIBRARY``;
2. the copy bundled in the installed package (``pvengine/_lib/libpvengine.so``);
3. the build directories of the source tree this package sits in (``<repo>/build/bindings_c``,
   then any other ``<repo>/build*/bindings_c``, newest first), for running from a checkout;
4. ``ctypes.util.find_library("pvengine")`` (an installed system library).

At load the library's major version must equal the one this package was written for, otherwise
importing :mod:`pvengine` raises ImportError saying what was found where.
"""

import ctypes
import ctypes.util
import os
from pathlib import Path

from ._errors import PV_OK, exception_for

#: The C ABI major version this package speaks (PV_VERSION_MAJOR of pvengine.h).
ABI_MAJOR = 0
#: The oldest PV_VERSION_NUMBER (major * 10000 + minor * 100 + patch) this package accepts.
ABI_MIN_VERSION = 100

_LIBRARY_NAMES = ("libpvengine.so", "libpvengine.dylib", "pvengine.dll")

c_status = ctypes.c_int32
c_handle = ctypes.c_void_p
c_double_p = ctypes.POINTER(ctypes.c_double)
c_float_p = ctypes.POINTER(ctypes.c_float)
c_int64_p = ctypes.POINTER(ctypes.c_int64)
c_int32_p = ctypes.POINTER(ctypes.c_int32)

#: pv_progress_fn: int32_t (*)(void* user_data, int64_t epoch, int64_t max_epochs, double loss,
#: double validation_loss)
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                               ctypes.c_double, ctypes.c_double)

# name: (restype, argtypes). Functions that a library may lack while the ABI grows are marked
# optional below; calling one that is absent raises NotImplementedError naming it.
_SIGNATURES = {
    "pv_status_string": (ctypes.c_char_p, [c_status]),
    "pv_last_error": (ctypes.c_char_p, []),
    "pv_version_number": (ctypes.c_int32, []),
    "pv_build_info": (ctypes.c_char_p, []),
    "pv_mrna_dynamics": (c_status, [ctypes.c_int64] + [c_double_p] * 8),
    "pv_dataset_open_h5ad": (c_status, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.POINTER(c_handle)]),
    "pv_dataset_from_dense": (c_status, [ctypes.c_int64, ctypes.c_int64, c_double_p, c_double_p,
                                         ctypes.POINTER(c_handle)]),
    "pv_dataset_from_csr": (c_status, [ctypes.c_int64, ctypes.c_int64, c_int64_p, c_int32_p,
                                       c_double_p, c_int64_p, c_int32_p, c_double_p,
                                       ctypes.POINTER(c_handle)]),
    "pv_dataset_shape": (c_status, [c_handle, c_int64_p, c_int64_p]),
    "pv_dataset_free": (None, [c_handle]),
    "pv_dataset_set_obs": (c_status, [c_handle, ctypes.c_char_p, ctypes.c_int64, c_double_p]),
    "pv_dataset_set_obsm": (c_status, [c_handle, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64,
                                       c_double_p]),
    "pv_dataset_set_varm": (c_status, [c_handle, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64,
                                       c_double_p]),
    "pv_options_create": (c_status, [ctypes.POINTER(c_handle)]),
    "pv_options_set": (c_status, [c_handle, ctypes.c_char_p, ctypes.c_char_p]),
    "pv_options_free": (None, [c_handle]),
    "pv_model_create": (c_status, [c_handle, c_handle, ctypes.POINTER(c_handle)]),
    "pv_model_train": (c_status, [c_handle, c_handle, PROGRESS_FN, ctypes.c_void_p]),
    "pv_model_loss_history": (c_status, [c_handle, ctypes.c_int32, c_double_p, ctypes.c_int64,
                                         c_int64_p]),
    "pv_model_save": (c_status, [c_handle, ctypes.c_char_p]),
    "pv_model_load": (c_status, [ctypes.c_char_p, c_handle, ctypes.POINTER(c_handle)]),
    "pv_model_free": (None, [c_handle]),
    "pv_model_sample": (c_status, [c_handle, ctypes.c_int64, ctypes.c_uint64, c_int64_p,
                                   ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(c_handle)]),
    "pv_posterior_key_count": (ctypes.c_int64, [c_handle]),
    "pv_posterior_key": (ctypes.c_char_p, [c_handle, ctypes.c_int64]),
    "pv_posterior_shape": (c_status, [c_handle, ctypes.c_char_p, c_int64_p]),
    "pv_posterior_copy": (c_status, [c_handle, ctypes.c_char_p, c_float_p, ctypes.c_int64]),
    "pv_posterior_free": (None, [c_handle]),
    "pv_posterior_create": (c_status, [ctypes.POINTER(c_handle)]),
    "pv_posterior_set": (c_status, [c_handle, ctypes.c_char_p, c_int64_p, c_float_p]),
    "pv_statistics_compute": (c_status, [c_handle, c_handle, c_handle, ctypes.POINTER(c_handle)]),
    "pv_model_statistics": (c_status, [c_handle, ctypes.c_int64, ctypes.c_uint64, c_handle,
                                       ctypes.POINTER(c_handle)]),
    "pv_statistics_key_count": (ctypes.c_int64, [c_handle]),
    "pv_statistics_key": (ctypes.c_char_p, [c_handle, ctypes.c_int64]),
    "pv_statistics_shape": (c_status, [c_handle, ctypes.c_char_p, c_int32_p, c_int64_p]),
    "pv_statistics_copy": (c_status, [c_handle, ctypes.c_char_p, c_double_p, ctypes.c_int64]),
    "pv_statistics_free": (None, [c_handle]),
}

# Declared in pvengine.h but newer than the first release of the ABI: a library without them
# still loads, and only the features that need them are refused.
_OPTIONAL = {
    "pv_dataset_set_obs", "pv_dataset_set_obsm", "pv_dataset_set_varm", "pv_posterior_create",
    "pv_posterior_set", "pv_statistics_compute", "pv_model_statistics", "pv_statistics_key_count",
    "pv_statistics_key", "pv_statistics_shape", "pv_statistics_copy", "pv_statistics_free",
}


def _package_dir():
    return Path(__file__).resolve().parent


def candidate_paths():
    """The library paths to try, in order of preference, as (path, where-it-came-from) pairs."""
    candidates = []
    env = os.environ.get("PVENGINE_LIBRARY")
    if env:
        return [(Path(env), "PVENGINE_LIBRARY")]
    for name in _LIBRARY_NAMES:
        candidates.append((_package_dir() / "_lib" / name, "bundled"))
    # A checkout: <repo>/bindings_c/python/pvengine/_native.py.
    repo = _package_dir().parents[2]
    if (repo / "bindings_c" / "include" / "pvengine.h").is_file():
        build_dirs = [repo / "build"]
        others = [d for d in repo.glob("build*") if d.is_dir() and d.name != "build"]
        others.sort(key=lambda d: _mtime(d / "bindings_c" / _LIBRARY_NAMES[0]), reverse=True)
        for build in build_dirs + others:
            for name in _LIBRARY_NAMES:
                candidates.append((build / "bindings_c" / name, "source tree build"))
    found = ctypes.util.find_library("pvengine")
    if found:
        candidates.append((Path(found), "system (ctypes.util.find_library)"))
    return candidates


def _mtime(path):
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class Library:
    """The loaded libpvengine: its C functions as attributes, with signatures declared."""

    def __init__(self, cdll, path, origin):
        self._cdll = cdll
        self.path = str(path)
        self.origin = origin
        self.missing = set()
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                function = getattr(cdll, name)
            except AttributeError:
                if name not in _OPTIONAL:
                    raise ImportError(
                        f"pvengine: {self.path} ({origin}) lacks the C function {name}; it is not a "
                        "compatible libpvengine (rebuild it, or point PVENGINE_LIBRARY at a current "
                        "build)") from None
                self.missing.add(name)
                continue
            function.restype = restype
            function.argtypes = argtypes
            setattr(self, name, function)

    def has(self, name):
        """True when the loaded library exports the C function `name`."""
        return name in _SIGNATURES and name not in self.missing

    def __getattr__(self, name):
        # Only reached for functions absent from the library.
        if name.startswith("pv_"):
            raise NotImplementedError(
                f"{name} is declared in pvengine.h but the loaded library {self.path} does not "
                "export it (an older build): rebuild libpvengine")
        raise AttributeError(name)

    def last_error(self):
        """The message of the last failed call on this thread."""
        return (self.pv_last_error() or b"").decode("utf-8", "replace")

    def check(self, status):
        """Raises the Python exception for a non-zero status, with the library's message."""
        if status != PV_OK:
            message = self.last_error()
            if not message:
                message = self.pv_status_string(status).decode("utf-8", "replace")
            raise exception_for(status, message)


def _load():
    tried = []
    for path, origin in candidate_paths():
        if origin == "PVENGINE_LIBRARY" and not path.is_file():
            raise ImportError(f"pvengine: PVENGINE_LIBRARY={path} does not name a file")
        if origin != "system (ctypes.util.find_library)" and not path.is_file():
            continue
        try:
            cdll = ctypes.CDLL(str(path))
        except OSError as error:
            tried.append(f"{path} ({origin}): {error}")
            if origin == "PVENGINE_LIBRARY":
                break
            continue
        library = Library(cdll, path, origin)
        version = int(library.pv_version_number())
        if version // 10000 != ABI_MAJOR or version < ABI_MIN_VERSION:
            raise ImportError(
                f"pvengine: {path} ({origin}) is libpvengine version {version // 10000}."
                f"{version // 100 % 100}.{version % 100}, but this package needs major version "
                f"{ABI_MAJOR} (at least 0.{ABI_MIN_VERSION // 100 % 100}.{ABI_MIN_VERSION % 100}): "
                "install a matching package or set PVENGINE_LIBRARY to a compatible library")
        return library
    detail = "; ".join(tried) if tried else "no candidate file exists"
    raise ImportError(
        "pvengine: cannot find libpvengine (" + detail + "). Set PVENGINE_LIBRARY to the path of "
        "libpvengine.so, install the package with pip (which bundles the library), or build the "
        "repository with CMake (build/bindings_c/libpvengine.so).")


lib = _load()


def text(value):
    """Bytes for a C string argument: str as UTF-8; anything else as Python's str() writes it."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
