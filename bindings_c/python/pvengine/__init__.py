"""pvengine: the Pyro-Velocity model's public Python API, computed by the native libpvengine.

Submodules mirror the seed's package: :mod:`pvengine.models` (PyroVelocity, mrna_dynamics),
:mod:`pvengine.utils` (generate_sample_data, pretty_log_dict, print_anndata) and
:mod:`pvengine.tasks.preprocess` (copy_raw_counts). Importing the package loads libpvengine
(see :mod:`pvengine._native` for where it is looked for) and raises ImportError when it is
missing or of an incompatible version.
"""

from ._errors import (CancelledError, CudaError, DeviceOutOfMemoryError, EngineIOError,
                      FileFormatError, HostOutOfMemoryError, InternalError, InvalidArgumentError,
                      NoDeviceError, NumericError, PvEngineError, StateError,
                      UnsupportedOptionError)
from ._native import lib as _lib

__version__ = "0.1.0"


def library_path():
    """The path of the libpvengine this package loaded."""
    return _lib.path


def build_info():
    """The loaded library's build facts, e.g. "version=0.1.0 commit=abc1234 cuda=off ..."."""
    return _lib.pv_build_info().decode("utf-8", "replace")


def library_version():
    """The loaded library's version as a (major, minor, patch) tuple."""
    number = int(_lib.pv_version_number())
    return number // 10000, number // 100 % 100, number % 100


from . import models, tasks, utils  # noqa: E402  (after the library is known to load)
from .tasks import preprocess  # noqa: E402

__all__ = [
    "models", "tasks", "utils", "preprocess", "library_path", "build_info", "library_version",
    "PvEngineError", "InvalidArgumentError", "HostOutOfMemoryError", "EngineIOError",
    "FileFormatError", "UnsupportedOptionError", "NoDeviceError", "DeviceOutOfMemoryError",
    "CudaError", "CancelledError", "NumericError", "StateError", "InternalError",
]
