"""From an AnnData to the library's pv_dataset: which layers to read, and how to hand them over.

anndata itself is imported only to recognise an AnnData; everything else goes through numpy (and
scipy.sparse when a layer is sparse).
"""

import warnings

import numpy as np

from ._handles import Dataset
from ._native import lib

#: Where setup_anndata records its choices in adata.uns (strings only, so that adata.write keeps them).
SETUP_KEY = "_pvengine_setup"
LIBRARY_SIZE_KEYS = ("u_lib_size_raw", "s_lib_size_raw")


def require_anndata(adata, where):
    """Raises TypeError unless adata is an anndata.AnnData."""
    try:
        import anndata
    except ImportError:  # pragma: no cover - the caller passed something, so anndata is likely there
        anndata = None
    if anndata is not None and isinstance(adata, anndata.AnnData):
        return
    raise TypeError(f"{where}: adata must be an anndata.AnnData, not {type(adata).__name__}")


def choose_layers(adata, where="PyroVelocity.setup_anndata"):
    """The (spliced, unspliced) layer names: raw_* when both exist, else spliced/unspliced.

    Raises ValueError naming the layer that is missing.
    """
    layers = adata.layers
    if "raw_spliced" in layers and "raw_unspliced" in layers:
        return "raw_spliced", "raw_unspliced"
    missing = [name for name in ("spliced", "unspliced") if name not in layers]
    if missing:
        names = " and ".join(f"'{name}'" for name in missing)
        raise ValueError(
            f"{where}: adata.layers has no {names} layer (pvengine needs raw_spliced and "
            f"raw_unspliced, or spliced and unspliced; found: {sorted(layers.keys())})")
    return "spliced", "unspliced"


def setup_anndata(adata, where="PyroVelocity.setup_anndata"):
    """Validates adata and records in adata.uns which layers and library sizes to use."""
    require_anndata(adata, where)
    spliced, unspliced = choose_layers(adata, where)
    setup = {"spliced_layer": spliced, "unspliced_layer": unspliced}
    for key in LIBRARY_SIZE_KEYS:
        setup[key] = key if key in adata.obs.columns else ""
    adata.uns[SETUP_KEY] = setup
    return setup


def current_setup(adata, where):
    """The setup recorded by setup_anndata, redone when absent or stale (e.g. layers changed)."""
    setup = adata.uns.get(SETUP_KEY) if hasattr(adata, "uns") else None
    if (isinstance(setup, dict) and setup.get("spliced_layer") in adata.layers
            and setup.get("unspliced_layer") in adata.layers):
        return setup
    return setup_anndata(adata, where)


def _as_counts(matrix, name):
    """A layer as a CSR matrix (when sparse) or a dense float64 array; TypeError if not numeric."""
    try:
        import scipy.sparse as sparse
    except ImportError:  # pragma: no cover
        sparse = None
    if sparse is not None and sparse.issparse(matrix):
        if matrix.dtype.kind not in "biuf":
            raise TypeError(f"layer {name} must hold numeric counts, not {matrix.dtype}")
        csr = sparse.csr_matrix(matrix, dtype=np.float64, copy=True)
        csr.sum_duplicates()
        return csr
    array = np.asarray(matrix)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"layer {name} must hold numeric counts, not {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _is_sparse(matrix):
    return hasattr(matrix, "tocsr") and hasattr(matrix, "indptr")


def counts_dataset(adata, where, annotations=False):
    """A Dataset of adata's chosen layers, with obs library sizes, and (annotations=True) obsm/varm.

    Dense layers go through pv_dataset_from_dense; when either layer is sparse both go through
    pv_dataset_from_csr. The library validates the counts (finite, non-negative, whole numbers).
    """
    setup = current_setup(adata, where)
    spliced = _as_counts(adata.layers[setup["spliced_layer"]], setup["spliced_layer"])
    unspliced = _as_counts(adata.layers[setup["unspliced_layer"]], setup["unspliced_layer"])
    if _is_sparse(spliced) or _is_sparse(unspliced):
        import scipy.sparse as sparse
        spliced, unspliced = (m if _is_sparse(m) else sparse.csr_matrix(m) for m in (spliced, unspliced))
        dataset = Dataset.from_csr(spliced, unspliced)
    else:
        dataset = Dataset.from_dense(spliced, unspliced)
    library_sizes = [key for key in LIBRARY_SIZE_KEYS if key in adata.obs.columns]
    if library_sizes and not lib.has("pv_dataset_set_obs"):
        warnings.warn(f"{lib.path} is an older libpvengine without pv_dataset_set_obs: obs "
                      f"{', '.join(library_sizes)} are not passed (the model uses the layers' "
                      "totals as library sizes); rebuild libpvengine", RuntimeWarning, stacklevel=3)
        library_sizes = []
    for key in library_sizes:
        dataset.set_obs(key, _numeric_column(adata.obs[key], key))
    if annotations:
        attach_embeddings(dataset, adata)
    return dataset


def _numeric_column(column, key):
    values = np.asarray(column)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"adata.obs['{key}'] must be numeric, not {values.dtype}")
    return values.astype(np.float64)


def _matrix(value):
    """A 2-D numeric float64 array from an obsm/varm entry, or None when it is not one."""
    if hasattr(value, "to_numpy") and hasattr(value, "dtypes"):  # a pandas DataFrame
        if not all(getattr(dtype, "kind", "O") in "biuf" for dtype in value.dtypes):
            return None
        value = value.to_numpy(dtype=np.float64)
    elif hasattr(value, "toarray"):
        value = value.toarray()
    array = np.asarray(value)
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        return None
    return np.ascontiguousarray(array, dtype=np.float64)


def attach_embeddings(dataset, adata, required=("X_pca", "X_umap")):
    """Hands every 2-D numeric obsm entry and varm 'PCs' to the dataset.

    An entry with non-finite values is skipped unless its name is in `required` (the statistics
    read X_pca and X_<basis>), in which case the library reports it.
    """
    for key in adata.obsm.keys():
        array = _matrix(adata.obsm[key])
        if array is None or (key not in required and not np.isfinite(array).all()):
            continue
        dataset.set_obsm(key, array)
    if "PCs" in adata.varm.keys():
        array = _matrix(adata.varm["PCs"])
        if array is not None:
            dataset.set_varm("PCs", array)

