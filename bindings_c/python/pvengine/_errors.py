"""Python exceptions for the status codes of libpvengine's C ABI.

Every failing C call returns a status; :func:`exception_for` turns it, with the library's
last-error message (which names the function and the argument at fault), into the Python exception
a Python user expects: a bad value is a ValueError, an option the engine does not implement is a
NotImplementedError, a file problem is an OSError, and so on. Each class also derives from
:class:`PvEngineError`, so ``except pvengine.PvEngineError`` catches anything the library refused.
"""

PV_OK = 0
PV_ERR_INVALID_ARGUMENT = 1
PV_ERR_OUT_OF_MEMORY = 2
PV_ERR_IO = 3
PV_ERR_FORMAT = 4
PV_ERR_UNSUPPORTED = 5
PV_ERR_NO_DEVICE = 6
PV_ERR_DEVICE_OUT_OF_MEMORY = 7
PV_ERR_CUDA = 8
PV_ERR_CANCELLED = 9
PV_ERR_NUMERIC = 10
PV_ERR_STATE = 11
PV_ERR_INTERNAL = 12


class PvEngineError(Exception):
    """Base of every error reported by libpvengine; ``status`` is the C status code."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgumentError(PvEngineError, ValueError):
    """PV_ERR_INVALID_ARGUMENT: a value, shape or option the call cannot accept."""

    status = PV_ERR_INVALID_ARGUMENT


class HostOutOfMemoryError(PvEngineError, MemoryError):
    """PV_ERR_OUT_OF_MEMORY: the library ran out of host memory."""

    status = PV_ERR_OUT_OF_MEMORY


class EngineIOError(PvEngineError, OSError):
    """PV_ERR_IO: a file cannot be opened, read, written or renamed."""

    status = PV_ERR_IO


class FileFormatError(PvEngineError, OSError):
    """PV_ERR_FORMAT: a file is not what it must be (not HDF5, not AnnData, corrupt)."""

    status = PV_ERR_FORMAT


class UnsupportedOptionError(PvEngineError, NotImplementedError):
    """PV_ERR_UNSUPPORTED: a valid option that this build or engine does not implement."""

    status = PV_ERR_UNSUPPORTED


class NoDeviceError(PvEngineError, RuntimeError):
    """PV_ERR_NO_DEVICE: CUDA was asked for, but is not compiled in or no device is present."""

    status = PV_ERR_NO_DEVICE


class DeviceOutOfMemoryError(PvEngineError, RuntimeError):
    """PV_ERR_DEVICE_OUT_OF_MEMORY: the GPU ran out of memory."""

    status = PV_ERR_DEVICE_OUT_OF_MEMORY


class CudaError(PvEngineError, RuntimeError):
    """PV_ERR_CUDA: any other CUDA runtime or library error."""

    status = PV_ERR_CUDA


class CancelledError(PvEngineError, RuntimeError):
    """PV_ERR_CANCELLED: a progress callback asked the library to stop."""

    status = PV_ERR_CANCELLED


class NumericError(PvEngineError, RuntimeError):
    """PV_ERR_NUMERIC: a NaN or infinite loss, or another failed numerical step."""

    status = PV_ERR_NUMERIC


class StateError(PvEngineError, RuntimeError):
    """PV_ERR_STATE: the call does not fit the object's state (e.g. not trained)."""

    status = PV_ERR_STATE


class InternalError(PvEngineError, RuntimeError):
    """PV_ERR_INTERNAL: a bug in libpvengine; please report it with the message."""

    status = PV_ERR_INTERNAL


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, HostOutOfMemoryError, EngineIOError, FileFormatError,
    UnsupportedOptionError, NoDeviceError, DeviceOutOfMemoryError, CudaError, CancelledError,
    NumericError, StateError, InternalError)}


def exception_for(status, message):
    """Returns the exception (not raised) for a non-zero C status and its last-error message."""
    cls = _BY_STATUS.get(int(status))
    if cls is None:
        return PvEngineError(f"{message} (unknown status {int(status)})", int(status))
    return cls(message)
