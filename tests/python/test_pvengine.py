"""The pvengine Python package over libpvengine: shapes, round trips, errors and statistics.

Run with the library in PVENGINE_LIBRARY and bindings_c/python on PYTHONPATH (tests/bindings_python.cmake
does both). Exit 77 (skip) when numpy, scipy or anndata is missing.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

for _module in ("numpy", "scipy", "anndata"):
    try:
        __import__(_module)
    except ImportError:
        print(f"SKIP: Python module {_module} is not installed")
        sys.exit(77)

import numpy as np  # noqa: E402
import scipy.sparse as sparse  # noqa: E402

import pvengine  # noqa: E402
from pvengine.models import PyroVelocity, mrna_dynamics  # noqa: E402
from pvengine.tasks.preprocess import copy_raw_counts  # noqa: E402
from pvengine.utils import generate_sample_data, pretty_log_dict  # noqa: E402

GENE_KEYS = ("alpha", "beta", "gamma", "t0", "u_scale", "dt_switching")
CELL_KEYS = ("cell_time", "u_read_depth", "s_read_depth")
CELL_GENE_KEYS = ("cell_gene_state", "ut", "st", "u", "s")


def sample_data(n_obs=40, n_vars=6, seed=0):
    """A small simulated AnnData with raw layers and library sizes, as the seed prepares it."""
    adata = generate_sample_data(n_obs=n_obs, n_vars=n_vars, random_seed=seed)
    copy_raw_counts(adata)
    return adata


def add_embeddings(adata, components=4):
    """obsm X_pca / X_umap and varm PCs from a PCA of log1p(spliced) (numpy SVD)."""
    x = np.log1p(np.asarray(adata.layers["spliced"], dtype=np.float64))
    x -= x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    loadings = vt[:components].T
    adata.obsm["X_pca"] = x @ loadings
    adata.obsm["X_umap"] = adata.obsm["X_pca"][:, :2].copy()
    adata.varm["PCs"] = loadings
    return adata


class DynamicsTest(unittest.TestCase):
    def test_golden_value(self):
        u, s = mrna_dynamics(2.0, 1.0, 0.5, 0.5, 0.4, 0.3)
        self.assertEqual((round(float(u), 4), round(float(s), 4)), (1.1377, 0.9269))
        self.assertEqual(np.shape(u), ())

    def test_broadcasting(self):
        u, s = mrna_dynamics(np.array([0.0, 2.0]), 1.0, 0.5, 0.5, 0.4, [[0.3], [0.3]])
        self.assertEqual(u.shape, (2, 2))
        self.assertEqual(float(u[0, 0]), 1.0)  # tau = 0 keeps the start
        self.assertAlmostEqual(float(s[1, 1]), 0.9269, places=4)

    def test_bad_input_names_it(self):
        with self.assertRaisesRegex(ValueError, r"gamma\[0\]"):
            mrna_dynamics(1.0, 0.0, 0.0, 1.0, 1.0, -0.5)
        with self.assertRaises(TypeError):
            mrna_dynamics("a", 0.0, 0.0, 1.0, 1.0, 1.0)


class PosteriorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.adata = sample_data()
        PyroVelocity.setup_anndata(cls.adata)
        cls.model = PyroVelocity(cls.adata)
        cls.model.train_faster(max_epochs=30, seed=1)

    def test_attributes(self):
        m = self.model
        self.assertEqual(m.num_cells, 40)
        self.assertEqual(m.layers, ["raw_spliced", "raw_unspliced"])
        self.assertEqual((m.input_type, m.use_gpu, m.cell_specific_kinetics, m.k), ("raw", "auto", None, None))
        self.assertIs(m.adata, self.adata)
        self.assertEqual(m.history["elbo_train"].shape, (30,))
        self.assertTrue(np.isfinite(m.history["elbo_train"]).all())
        self.assertEqual(m.history["elbo_validation"].size, 0)

    def test_keys_and_shapes(self):
        samples = self.model.generate_posterior_samples(num_samples=7)
        self.assertIsInstance(samples, dict)
        self.assertEqual(self.model.num_samples, 7)
        for key in GENE_KEYS:
            self.assertEqual(samples[key].shape, (7, 1, 6), key)
        for key in CELL_KEYS:
            self.assertEqual(samples[key].shape, (7, 40, 1), key)
        for key in CELL_GENE_KEYS:
            self.assertEqual(samples[key].shape, (7, 40, 6), key)
        for key, value in samples.items():
            self.assertEqual(value.dtype, np.float32, key)
            self.assertTrue(np.isfinite(value).all(), key)
        self.assertTrue((samples["u"] >= 0).all() and (samples["u"] == np.round(samples["u"])).all())

    def test_indices_batches_and_seed(self):
        whole = self.model.generate_posterior_samples(num_samples=4, seed=5)
        chunked = self.model.generate_posterior_samples(self.adata, batch_size=7, num_samples=4, seed=5)
        for key in whole:
            np.testing.assert_array_equal(whole[key], chunked[key], err_msg=key)
        other = self.model.generate_posterior_samples(num_samples=4, seed=6)
        self.assertFalse(np.array_equal(whole["alpha"], other["alpha"]))
        subset = self.model.generate_posterior_samples(indices=[3, 0, 9], num_samples=4)
        self.assertEqual(subset["ut"].shape, (4, 3, 6))
        self.assertEqual(subset["cell_time"].shape, (4, 3, 1))

    def test_sampling_errors(self):
        with self.assertRaises(TypeError):
            self.model.generate_posterior_samples(num_samples=2.5)
        with self.assertRaises(ValueError):
            self.model.generate_posterior_samples(indices=[40], num_samples=2)
        with self.assertRaises(NotImplementedError):
            self.model.generate_posterior_samples(sample_data(n_obs=12), num_samples=2)

    def test_save_load_round_trip(self):
        if "hdf5=off" in pvengine.build_info():
            with tempfile.TemporaryDirectory() as tmp, self.assertRaisesRegex(NotImplementedError, "HDF5"):
                self.model.save_model(tmp)
            self.skipTest("saved models are HDF5 files; this library has no HDF5")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "nested", "model")
            self.model.save_model(path, prefix="pv_", save_anndata=True)
            self.assertTrue(os.path.isfile(os.path.join(path, "pv_model.pvmodel")))
            self.assertTrue(os.path.isfile(os.path.join(path, "pv_adata.h5ad")))
            loaded = PyroVelocity.load_model(path, self.adata, prefix="pv_")
            original = self.model.generate_posterior_samples(num_samples=5, seed=11)
            again = loaded.generate_posterior_samples(num_samples=5, seed=11)
            self.assertEqual(list(original), list(again))
            for key in original:
                np.testing.assert_array_equal(original[key], again[key], err_msg=key)
            np.testing.assert_array_equal(loaded.history["elbo_train"], self.model.history["elbo_train"])
            from_file = PyroVelocity.load_model(path, prefix="pv_")  # the saved adata.h5ad
            self.assertEqual(from_file.num_cells, 40)
            np.testing.assert_array_equal(
                from_file.generate_posterior_samples(num_samples=5, seed=11)["ut"], original["ut"])
            with self.assertRaises(FileExistsError):
                self.model.save_model(path, prefix="pv_", overwrite=False)
            self.model.save_model(path, overwrite=False)  # another prefix: nothing to overwrite
            with self.assertRaisesRegex(FileNotFoundError, "adata.h5ad"):
                PyroVelocity.load_model(path)
            with self.assertRaises(NotImplementedError):
                PyroVelocity.load_model(path, self.adata, backup_url="https://example.org/model")
            with self.assertRaises(FileNotFoundError):
                PyroVelocity.load_model(os.path.join(tmp, "absent"), self.adata)
            with self.assertRaises(ValueError):  # other genes than the model's
                PyroVelocity.load_model(path, sample_data(n_vars=5))
            with open(os.path.join(path, "model.pvmodel"), "wb") as stream:
                stream.write(b"not a model")
            with self.assertRaisesRegex(OSError, "pv_model_load") as caught:
                PyroVelocity.load_model(path, self.adata)
            self.assertIsInstance(caught.exception, pvengine.FileFormatError)


class TrainingTest(unittest.TestCase):
    def setUp(self):
        self.adata = sample_data(n_obs=30, n_vars=5)

    def test_methods_and_history(self):
        model = PyroVelocity(self.adata)
        model.train(max_epochs=4, train_size=0.8, valid_size=0.2, use_gpu="auto")
        self.assertEqual(model.history["elbo_train"].size, 4)
        self.assertEqual(model.history["elbo_validation"].size, 4)
        model.train_faster(max_epochs=3)
        self.assertEqual(model.loss_history("train").size, 7)
        model.train_faster_with_batch(batch_size=1000, max_epochs=2)  # larger than the data: all cells
        self.assertEqual(model.loss_history().size, 9)

    def test_bad_training_values(self):
        model = PyroVelocity(self.adata)
        with self.assertRaisesRegex(ValueError, "max_epochs is -1"):
            model.train_faster(max_epochs=-1)
        with self.assertRaisesRegex(ValueError, "pv_model_train: train_size"):
            model.train(max_epochs=2, train_size=1.5)
        with self.assertRaisesRegex(TypeError, "max_epochs"):
            model.train_faster(max_epochs="10")
        with self.assertRaisesRegex(TypeError, "'no_such_option'"):
            model.train_faster(no_such_option=1)
        with self.assertRaisesRegex(ValueError, "use_gpu"):
            model.train_faster(max_epochs=1, use_gpu="banana")

    def test_progress_callback_and_interrupts(self):
        model = PyroVelocity(self.adata)
        model.progress_callback = lambda epoch, max_epochs, loss, validation_loss: epoch >= 2
        model.train_faster(max_epochs=50)
        self.assertEqual(model.history["elbo_train"].size, 3)  # epochs 0, 1, 2, then stopped

        def interrupt(epoch, max_epochs, loss, validation_loss):
            if epoch == 1:
                raise KeyboardInterrupt
        model.progress_callback = interrupt
        with self.assertRaises(KeyboardInterrupt):
            model.train_faster(max_epochs=50)
        self.assertEqual(model.history["elbo_train"].size, 5)

        def ctrl_c(epoch, max_epochs, loss, validation_loss):
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGINT)  # as a user pressing Ctrl-C
        model.progress_callback = ctrl_c
        with self.assertRaisesRegex(KeyboardInterrupt, "interrupted"):
            model.train_faster(max_epochs=50)
        self.assertEqual(model.history["elbo_train"].size, 5 + 1)  # stopped after that epoch
        self.assertIs(signal.getsignal(signal.SIGINT), signal.default_int_handler)

    def test_ctrl_c_during_native_training(self):
        adata = sample_data(n_obs=300, n_vars=30)
        model = PyroVelocity(adata)
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        try:
            with self.assertRaisesRegex(KeyboardInterrupt, "train_faster interrupted"):
                model.train_faster(max_epochs=10**7, patience=10**6)  # never ends by itself
        finally:
            timer.cancel()
        self.assertLess(time.monotonic() - start, 20)
        self.assertGreater(model.history["elbo_train"].size, 0)
        self.assertIs(signal.getsignal(signal.SIGINT), signal.default_int_handler)

    def test_sparse_counts_match_dense(self):
        dense = PyroVelocity(self.adata)
        dense.train_faster(max_epochs=3)
        for convert in (sparse.csr_matrix, sparse.csc_matrix):
            adata = self.adata.copy()
            for layer in ("raw_spliced", "raw_unspliced"):
                adata.layers[layer] = convert(adata.layers[layer])
            model = PyroVelocity(adata)
            model.train_faster(max_epochs=3)
            np.testing.assert_allclose(model.history["elbo_train"], dense.history["elbo_train"], rtol=1e-6)


class ErrorTest(unittest.TestCase):
    def setUp(self):
        self.adata = generate_sample_data(n_obs=20, n_vars=4)

    def test_layers(self):
        del self.adata.layers["unspliced"]
        with self.assertRaisesRegex(ValueError, "'unspliced'"):
            PyroVelocity.setup_anndata(self.adata)
        with self.assertRaisesRegex(ValueError, "'unspliced'"):
            PyroVelocity(self.adata)
        with self.assertRaisesRegex(ValueError, "'unspliced'"):
            copy_raw_counts(self.adata)

    def test_setup_prefers_raw_layers(self):
        PyroVelocity.setup_anndata(self.adata)
        self.assertEqual(PyroVelocity(self.adata).layers, ["spliced", "unspliced"])
        copy_raw_counts(self.adata)
        PyroVelocity.setup_anndata(self.adata)
        self.assertEqual(PyroVelocity(self.adata).layers, ["raw_spliced", "raw_unspliced"])

    def test_bad_counts(self):
        for bad, message in ((-1.0, r"spliced\[9\] = -1 \(cell 2, gene 1\)"), (np.nan, "spliced.*nan"),
                             (0.5, "whole number")):
            spliced = self.adata.layers["spliced"].astype(np.float64)
            spliced[2, 1] = bad
            self.adata.layers["spliced"] = spliced
            with self.assertRaisesRegex(ValueError, message):
                PyroVelocity(self.adata)
        unspliced = sparse.csr_matrix(self.adata.layers["unspliced"].astype(np.float64))
        unspliced.data[0] = -3
        self.adata.layers["spliced"] = np.abs(np.nan_to_num(spliced)).round()
        self.adata.layers["unspliced"] = unspliced
        with self.assertRaisesRegex(ValueError, "u_data.*-3"):
            PyroVelocity(self.adata)

    def test_unsupported_options(self):
        for name, value in (("guide_type", "auto_t0_constraint"), ("latent_factor", "linear"),
                            ("model_type", "dynamic"), ("cell_specific_kinetics", "multiple"),
                            ("use_gpu", 3), ("correct_library_size", "median")):
            with self.assertRaisesRegex(NotImplementedError, f"option {name}") as caught:
                PyroVelocity(self.adata, **{name: value})
            self.assertIsInstance(caught.exception, pvengine.PvEngineError)

    def test_bad_types_and_values(self):
        for name, value in (("shared_time", "yes"), ("plate_size", 2.0), ("likelihood", 1),
                            ("kinetics_num", "2"), ("use_gpu", 1.5)):
            with self.assertRaisesRegex(TypeError, name):
                PyroVelocity(self.adata, **{name: value})
        with self.assertRaises(TypeError):
            PyroVelocity(self.adata.layers["spliced"])
        with self.assertRaisesRegex(ValueError, "use_gpu"):
            PyroVelocity(self.adata, use_gpu="banana")
        with self.assertRaisesRegex(ValueError, "unknown option 'bogus'"):
            PyroVelocity(self.adata, engine_options={"bogus": 1})

    def test_no_gpu_in_a_cpu_build(self):
        if "cuda=off" not in pvengine.build_info():
            self.skipTest("this library has a CUDA backend")
        with self.assertRaises(pvengine.NoDeviceError) as caught:
            PyroVelocity(self.adata, use_gpu=True)
        self.assertIsInstance(caught.exception, RuntimeError)


class StatisticsTest(unittest.TestCase):
    def test_keys_and_shapes(self):
        from pvengine._native import lib
        if not lib.has("pv_statistics_compute") or not lib.has("pv_dataset_set_obsm"):
            self.skipTest("this libpvengine predates pv_statistics_compute")
        adata = add_embeddings(sample_data(n_obs=40, n_vars=6))
        model = PyroVelocity(adata)
        model.train_faster(max_epochs=20)
        samples = model.generate_posterior_samples(num_samples=6)
        result = model.compute_statistics_from_posterior_samples(adata, samples, vector_field_basis="umap",
                                                                 ncpus_use=1)
        self.assertIs(result, samples)
        S, C, G = 6, 40, 6
        expected = {"vector_field_posterior_samples": (S, C, 2), "vector_field_posterior_mean": (C, 2),
                    "embeds_magnitude": (S, C), "embeds_angle": (S, C),
                    "original_spaces_embeds_magnitude": (S, C), "fdri": (C,), "ut_mean": (C, G),
                    "st_mean": (C, G), "pca_vector_field_posterior_samples": (S, C, 2),
                    "pca_embeds_angle": (S, C), "pca_fdri": (C,)}
        for key, shape in expected.items():
            self.assertEqual(np.shape(result[key]), shape, key)
        for key in ("u", "s", "ut", "st"):
            self.assertNotIn(key, result)
        ranking = result["gene_ranking"]
        self.assertEqual(len(ranking["mean_mae"]), G)
        if hasattr(ranking, "index"):
            self.assertEqual(list(ranking.index), list(adata.var_names))
        self.assertTrue(result["genes"])
        self.assertTrue(set(result["genes"]) <= set(adata.var_names))
        with self.assertRaisesRegex(ValueError, "X_tsne"):
            model.compute_statistics_from_posterior_samples(
                adata, model.generate_posterior_samples(num_samples=3), vector_field_basis="tsne")


class UtilsTest(unittest.TestCase):
    def test_generate_sample_data(self):
        adata = generate_sample_data(n_obs=30, n_vars=7, random_seed=3)
        self.assertEqual(adata.shape, (30, 7))
        for layer in ("spliced", "unspliced"):
            counts = adata.layers[layer]
            self.assertEqual(counts.dtype.kind, "i")
            self.assertTrue((counts >= 0).all())
        again = generate_sample_data(n_obs=30, n_vars=7, random_seed=3)
        np.testing.assert_array_equal(adata.layers["spliced"], again.layers["spliced"])
        self.assertEqual(generate_sample_data(n_obs=5, n_vars=3, noise_model="iid").shape, (5, 3))
        with self.assertRaisesRegex(NotImplementedError, "normal"):
            generate_sample_data(noise_model="normal")

    def test_copy_raw_counts(self):
        adata = copy_raw_counts(generate_sample_data(n_obs=8, n_vars=3))
        np.testing.assert_array_equal(adata.obs["u_lib_size_raw"], adata.layers["unspliced"].sum(axis=1))
        np.testing.assert_array_equal(adata.obs["s_lib_size_raw"], adata.layers["spliced"].sum(axis=1))
        self.assertIsNot(adata.layers["raw_spliced"], adata.layers["spliced"])

    def test_pretty_log_dict(self):
        text = pretty_log_dict({"a": np.zeros((2, 3), np.float32), "nested": {"b": [1, 2], "c": None},
                                "obj": object(), "s": "x" * 200})
        self.assertIn("a: ndarray shape=(2, 3) dtype=float32", text)
        self.assertIn("  b: list len=2", text)
        self.assertGreater(len(text.splitlines()), 4)


class LoaderTest(unittest.TestCase):
    def test_bad_library_path_is_import_error(self):
        env = dict(os.environ, PVENGINE_LIBRARY="/nonexistent/libpvengine.so")
        run = subprocess.run([sys.executable, "-c", "import pvengine"], env=env, capture_output=True, text=True)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("ImportError", run.stderr)
        self.assertIn("PVENGINE_LIBRARY", run.stderr)

    def test_version(self):
        self.assertEqual(pvengine.library_version()[0], 0)
        self.assertTrue(os.path.isfile(pvengine.library_path()))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
