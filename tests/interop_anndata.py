"""Interop with the Python anndata package, both ways.

1. pvengine writes an AnnData (write_h5ad); anndata must read every element with the values
   pvengine wrote.
2. anndata writes a velocity-style file; pvengine reads it and writes a copy with additions
   (write_h5ad_with_additions); anndata must read the copy with the original content intact and
   the additions present, whose values prove pvengine read the counts correctly.

usage: interop_anndata.py HELPER_EXECUTABLE WORK_DIR
Exits 77 (CTest: skipped) when anndata is not installed.
"""
import os
import subprocess
import sys

try:
    import anndata
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
except ImportError as missing:
    print(f"SKIP: the anndata Python package is not installed ({missing}); "
          "install python3-anndata to run this interop test")
    sys.exit(77)


def run(*args):
    result = subprocess.run(list(args), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")


def dense(matrix):
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def check_pvengine_written(helper, work):
    path = os.path.join(work, "pvengine_written.h5ad")
    run(helper, "write", path)
    adata = anndata.read_h5ad(path)

    assert adata.shape == (4, 3), adata.shape
    assert list(adata.obs_names) == ["cell_a", "cell_b", "célula", "cell_d"]
    assert list(adata.var_names) == ["Gene1", "Gene2", "Gene3"]
    assert list(adata.obs.columns) == ["score", "n_counts", "batch", "clusters"]
    np.testing.assert_array_equal(adata.obs["score"].to_numpy(), [0.1, -2.5, 3.0, 1.0 / 3.0])
    assert adata.obs["n_counts"].dtype == np.int64
    assert list(adata.obs["n_counts"]) == [0, 1, 1099511627776, -7]
    assert list(adata.obs["batch"]) == ["a", "b", "", "ü"]
    clusters = adata.obs["clusters"]
    assert isinstance(clusters.dtype, pd.CategoricalDtype)
    assert list(clusters.cat.categories) == ["Ductal", "Ngn3 high EP", "Beta"]
    assert clusters.cat.ordered
    assert list(clusters.cat.codes) == [0, 2, -1, 1]
    assert list(adata.var["highly_variable"]) == [1, 0, 1]

    expected_spliced = np.array([[1, 0, 3], [0, 0, 0], [0, 7, 0], [16, 0, 2]], dtype=np.float32)
    assert sp.isspmatrix_csr(adata.layers["spliced"]), type(adata.layers["spliced"])
    np.testing.assert_array_equal(dense(adata.layers["spliced"]), expected_spliced)
    np.testing.assert_array_equal(
        dense(adata.layers["unspliced"]), np.array([[0, 1, 2], [3, 0, 0], [5, 0, 1], [0, 0, 9]]))
    assert adata.layers["unspliced"].dtype == np.float32
    np.testing.assert_array_equal(dense(adata.X), expected_spliced)
    np.testing.assert_array_equal(
        adata.obsm["X_umap"], [[1.5, -2.25], [0.0, 3.0], [4.0, 5.5], [-6.0, 7.125]])

    uns = adata.uns
    assert uns["alpha"] == 0.25
    assert uns["n_steps"] == -42
    assert uns["note"] == "hello ✓"
    np.testing.assert_array_equal(uns["losses"], [1.5, 2.5, -1e10])
    assert list(uns["names"]) == ["x", "y"]
    assert uns["params"]["inner"]["deep"] == 7
    print(f"anndata {anndata.__version__} read the pvengine-written file: ok")


def check_additions(helper, work):
    rng = np.random.default_rng(7)
    n_obs, n_vars = 40, 25
    spliced = sp.random(n_obs, n_vars, density=0.3, format="csr", random_state=1)
    spliced.data = np.floor(spliced.data * 20) + 1
    unspliced = sp.random(n_obs, n_vars, density=0.2, format="csr", random_state=2)
    unspliced.data = np.floor(unspliced.data * 10) + 1
    obs = pd.DataFrame(
        {"clusters": pd.Categorical(rng.choice(["Ductal", "Alpha", "Beta"], n_obs)),
         "u_lib_size_raw": rng.integers(500, 2000, n_obs).astype(np.float32)},
        index=[f"cell{i}" for i in range(n_obs)])
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_vars)])
    original = anndata.AnnData(
        X=spliced.astype(np.float32), obs=obs, var=var,
        layers={"spliced": spliced.astype(np.float32), "unspliced": unspliced.astype(np.float32)},
        obsm={"X_umap": rng.normal(size=(n_obs, 2))},
        obsp={"connectivities": sp.random(n_obs, n_obs, density=0.1, format="csr", random_state=3)},
        uns={"source": "interop test", "params": {"k": 30}})
    source = os.path.join(work, "anndata_written.h5ad")
    result = os.path.join(work, "with_additions.h5ad")
    original.write_h5ad(source, compression="gzip")
    source_bytes = open(source, "rb").read()

    run(helper, "add", source, result)
    assert open(source, "rb").read() == source_bytes, "pvengine modified its input"
    adata = anndata.read_h5ad(result)

    # The original content, unchanged.
    assert adata.shape == original.shape
    assert list(adata.obs_names) == list(original.obs_names)
    assert list(adata.obs["clusters"]) == list(original.obs["clusters"])
    np.testing.assert_array_equal(adata.obs["u_lib_size_raw"], original.obs["u_lib_size_raw"])
    for key in ("spliced", "unspliced"):
        np.testing.assert_array_equal(dense(adata.layers[key]), dense(original.layers[key]))
    np.testing.assert_array_equal(dense(adata.X), dense(original.X))
    np.testing.assert_array_equal(adata.obsm["X_umap"], original.obsm["X_umap"])
    np.testing.assert_array_equal(dense(adata.obsp["connectivities"]),
                                  dense(original.obsp["connectivities"]))
    assert adata.uns["source"] == "interop test"
    assert adata.uns["params"]["k"] == 30

    # The additions; velocity = 0.5 * spliced shows pvengine read the counts correctly.
    assert list(adata.obs.columns) == ["clusters", "u_lib_size_raw", "latent_time"]
    np.testing.assert_allclose(adata.obs["latent_time"], np.arange(n_obs) / n_obs)
    np.testing.assert_allclose(adata.var["fit_alpha"], np.arange(n_vars) + 0.5)
    np.testing.assert_array_equal(adata.layers["velocity"], 0.5 * dense(original.layers["spliced"]))
    assert adata.layers["velocity"].dtype == np.float32
    np.testing.assert_array_equal(adata.obsm["velocity_umap"][:, 0], np.arange(n_obs))
    assert adata.uns["pyrovelocity"]["n_cells"] == n_obs
    np.testing.assert_array_equal(adata.uns["pyrovelocity"]["elbo"], [-3, -2])
    print("anndata read the file pvengine extended: ok")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    helper, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    check_pvengine_written(helper, work)
    check_additions(helper, work)


if __name__ == "__main__":
    main()
