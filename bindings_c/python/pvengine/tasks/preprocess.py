"""Preprocessing helpers of the seed's pyrovelocity.tasks.preprocess."""

import numpy as np


def copy_raw_counts(adata):
    """Keeps the raw counts before any normalisation, as the model reads them.

    Sets adata.layers raw_unspliced and raw_spliced to copies of the unspliced and spliced layers,
    and adata.obs u_lib_size_raw and s_lib_size_raw to each cell's total raw unspliced and spliced
    counts (the library sizes). Raises ValueError naming a missing layer. Returns adata.
    """
    for name in ("unspliced", "spliced"):
        if name not in adata.layers:
            raise ValueError(f"copy_raw_counts: adata.layers has no '{name}' layer "
                             f"(found: {sorted(adata.layers.keys())})")
    adata.layers["raw_unspliced"] = adata.layers["unspliced"].copy()
    adata.layers["raw_spliced"] = adata.layers["spliced"].copy()
    adata.obs["u_lib_size_raw"] = _row_sums(adata.layers["raw_unspliced"])
    adata.obs["s_lib_size_raw"] = _row_sums(adata.layers["raw_spliced"])
    return adata


def _row_sums(matrix):
    """Per-row sums of a dense or sparse matrix as a 1-D float64 array."""
    return np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
