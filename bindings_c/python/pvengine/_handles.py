"""Python owners of the C ABI's opaque handles (options, dataset, model, posterior, statistics).

Each class holds one pointer, frees it exactly once (explicitly with ``close()`` or when garbage
collected) and turns the numpy arrays it is given into the C arrays the library copies.
"""

import ctypes
import weakref

import numpy as np

from ._native import PROGRESS_FN, c_double_p, c_float_p, c_handle, c_int32_p, c_int64_p, lib, text


class _Handle:
    """Owns one C handle; ``_free_name`` is the pv_*_free function that releases it."""

    _free_name = None

    def __init__(self, pointer):
        self._pointer = pointer
        self._finalizer = weakref.finalize(self, getattr(lib, self._free_name), pointer)

    @property
    def pointer(self):
        """The c_void_p handle; ValueError once closed."""
        if not self._finalizer.alive:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._pointer

    def close(self):
        """Frees the C object now (further use raises ValueError)."""
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _create(function, *args):
    out = c_handle()
    lib.check(function(*args, ctypes.byref(out)))
    return out


def _doubles(array):
    return array.ctypes.data_as(c_double_p)


class Options(_Handle):
    """A pv_options: key = value text pairs, given as a mapping; values as Python writes them."""

    _free_name = "pv_options_free"

    def __init__(self, entries=None):
        super().__init__(_create(lib.pv_options_create))
        for key, value in (entries or {}).items():
            self.set(key, value)

    def set(self, key, value):
        """Sets one option: str(value) ("True", "None", "0.01"), checked by the library when used."""
        lib.check(lib.pv_options_set(self.pointer, text(key), text(value)))


def _float64_matrix(values, name, rows=None):
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, not {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if rows is not None and (array.ndim != 2 or array.shape[0] != rows):
        raise ValueError(f"{name} must be a 2-D array with {rows} rows, got shape {array.shape}")
    return array


class Dataset(_Handle):
    """A pv_dataset: spliced and unspliced counts (cells x genes) and their annotations."""

    _free_name = "pv_dataset_free"

    @classmethod
    def from_dense(cls, spliced, unspliced):
        """From two dense count matrices of the same shape (copied as float64)."""
        s = np.ascontiguousarray(spliced, dtype=np.float64)
        u = np.ascontiguousarray(unspliced, dtype=np.float64)
        if s.ndim != 2 or s.shape != u.shape:
            raise ValueError(f"spliced {s.shape} and unspliced {u.shape} must be 2-D arrays of one shape")
        return cls(_create(lib.pv_dataset_from_dense, s.shape[0], s.shape[1], _doubles(s), _doubles(u)))

    @classmethod
    def from_csr(cls, spliced, unspliced):
        """From two scipy.sparse CSR matrices of the same shape (copied)."""
        if spliced.shape != unspliced.shape:
            raise ValueError(f"spliced {spliced.shape} and unspliced {unspliced.shape} differ in shape")
        parts = []
        for matrix in (spliced, unspliced):
            indptr = np.ascontiguousarray(matrix.indptr, dtype=np.int64)
            indices = np.ascontiguousarray(matrix.indices, dtype=np.int32)
            data = np.ascontiguousarray(matrix.data, dtype=np.float64)
            parts.append((indptr, indices, data))
        (s_ptr, s_idx, s_dat), (u_ptr, u_idx, u_dat) = parts
        rows, cols = spliced.shape
        return cls(_create(
            lib.pv_dataset_from_csr, rows, cols,
            s_ptr.ctypes.data_as(c_int64_p), s_idx.ctypes.data_as(c_int32_p), _doubles(s_dat),
            u_ptr.ctypes.data_as(c_int64_p), u_idx.ctypes.data_as(c_int32_p), _doubles(u_dat)))

    def shape(self):
        """(n_cells, n_genes)."""
        cells, genes = ctypes.c_int64(), ctypes.c_int64()
        lib.check(lib.pv_dataset_shape(self.pointer, ctypes.byref(cells), ctypes.byref(genes)))
        return cells.value, genes.value

    def set_obs(self, key, values):
        """Attaches a numeric obs column (one value per cell) under key."""
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"obs column {key} must be numeric, not {array.dtype}")
        array = np.ascontiguousarray(array, dtype=np.float64).ravel()
        lib.check(lib.pv_dataset_set_obs(self.pointer, text(key), array.size, _doubles(array)))

    def set_obsm(self, key, values):
        """Attaches an obsm matrix (cells x k) under key, e.g. X_pca or X_umap."""
        array = _float64_matrix(values, f"obsm {key}")
        if array.ndim != 2:
            raise ValueError(f"obsm {key} must be 2-D, got shape {array.shape}")
        lib.check(lib.pv_dataset_set_obsm(self.pointer, text(key), array.shape[0], array.shape[1],
                                          _doubles(array)))

    def set_varm(self, key, values):
        """Attaches a varm matrix (genes x k) under key, e.g. PCs."""
        array = _float64_matrix(values, f"varm {key}")
        if array.ndim != 2:
            raise ValueError(f"varm {key} must be 2-D, got shape {array.shape}")
        lib.check(lib.pv_dataset_set_varm(self.pointer, text(key), array.shape[0], array.shape[1],
                                          _doubles(array)))


class Model(_Handle):
    """A pv_model: the model and guide bound to a dataset, with its loss history."""

    _free_name = "pv_model_free"

    @classmethod
    def create(cls, dataset, options):
        """pv_model_create on a Dataset with an Options of model keys."""
        return cls(_create(lib.pv_model_create, dataset.pointer, options.pointer))

    @classmethod
    def load(cls, path, dataset):
        """pv_model_load: a saved model bound to dataset (same genes and cells)."""
        return cls(_create(lib.pv_model_load, text(path), dataset.pointer))

    def train(self, options, progress):
        """pv_model_train with training Options and a Python progress function.

        progress(epoch, max_epochs, loss, validation_loss) returns True to cancel. An exception
        raised by progress (KeyboardInterrupt included) cancels the training and is re-raised here
        once the library has returned; otherwise the status of the C call is returned, not raised,
        so that the caller can decide what a cancel means.
        """
        raised = []

        def trampoline(_user_data, epoch, max_epochs, loss, validation_loss):
            try:
                return 1 if progress(epoch, max_epochs, loss, validation_loss) else 0
            except BaseException as error:  # nothing may unwind through the C frames
                raised.append(error)
                return 1
        callback = PROGRESS_FN(trampoline)
        status = lib.pv_model_train(self.pointer, options.pointer, callback, None)
        if raised:
            raise raised[0]
        return status

    def loss_history(self, kind):
        """The epoch losses so far: kind 0 training, 1 validation, as a float64 array."""
        count = ctypes.c_int64()
        lib.check(lib.pv_model_loss_history(self.pointer, kind, None, 0, ctypes.byref(count)))
        out = np.empty(count.value, dtype=np.float64)
        if count.value:
            lib.check(lib.pv_model_loss_history(self.pointer, kind, _doubles(out), out.size,
                                                ctypes.byref(count)))
        return out

    def save(self, path):
        """pv_model_save to path."""
        lib.check(lib.pv_model_save(self.pointer, text(path)))

    def sample(self, num_samples, seed, cells, batch_size):
        """pv_model_sample: a Posterior of num_samples draws for cells (None: all)."""
        if cells is None:
            pointer, count, keep = None, 0, None
        else:
            keep = np.ascontiguousarray(cells, dtype=np.int64)
            pointer, count = keep.ctypes.data_as(c_int64_p), keep.size
        return Posterior(_create(lib.pv_model_sample, self.pointer, num_samples, seed, pointer,
                                 count, batch_size))


class Posterior(_Handle):
    """A pv_posterior: named float32 arrays of shape (S, C, G), (S, 1, G) or (S, C, 1)."""

    _free_name = "pv_posterior_free"

    @classmethod
    def create(cls):
        """An empty posterior, to fill with set()."""
        return cls(_create(lib.pv_posterior_create))

    def keys(self):
        """The keys, in the library's order."""
        count = lib.pv_posterior_key_count(self.pointer)
        return [lib.pv_posterior_key(self.pointer, i).decode("utf-8") for i in range(count)]

    def get(self, key):
        """A copy of one key's values as a float32 array of its 3-D shape."""
        shape = (ctypes.c_int64 * 3)()
        lib.check(lib.pv_posterior_shape(self.pointer, text(key), shape))
        out = np.empty(tuple(shape), dtype=np.float32)
        lib.check(lib.pv_posterior_copy(self.pointer, text(key), out.ctypes.data_as(c_float_p), out.size))
        return out

    def set(self, key, values):
        """Stores a copy of a 3-D array under key (as float32)."""
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"posterior sample {key} must be numeric, not {array.dtype}")
        if array.ndim != 3:
            raise ValueError(f"posterior sample {key} must be 3-D (samples, cells or 1, genes or 1), "
                             f"got shape {array.shape}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        shape = (ctypes.c_int64 * 3)(*array.shape)
        lib.check(lib.pv_posterior_set(self.pointer, text(key), shape, array.ctypes.data_as(c_float_p)))


class Statistics(_Handle):
    """A pv_statistics: the named float64 arrays of compute_statistics_from_posterior_samples."""

    _free_name = "pv_statistics_free"

    @classmethod
    def compute(cls, dataset, posterior, options):
        """pv_statistics_compute over a Dataset (with obsm/varm) and a Posterior."""
        return cls(_create(lib.pv_statistics_compute, dataset.pointer, posterior.pointer, options.pointer))

    def keys(self):
        """The keys, in the library's order."""
        count = lib.pv_statistics_key_count(self.pointer)
        return [lib.pv_statistics_key(self.pointer, i).decode("utf-8") for i in range(count)]

    def get(self, key):
        """A copy of one key's values as a float64 array of its shape (1 to 3 dimensions)."""
        ndim = ctypes.c_int32()
        shape = (ctypes.c_int64 * 3)()
        lib.check(lib.pv_statistics_shape(self.pointer, text(key), ctypes.byref(ndim), shape))
        out = np.empty(tuple(shape)[: ndim.value], dtype=np.float64)
        lib.check(lib.pv_statistics_copy(self.pointer, text(key), _doubles(out), out.size))
        return out
