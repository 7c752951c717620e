"""PyroVelocity: the seed's model class, fitted by libpvengine instead of Pyro.

The constructor's parameters are those of pyrovelocity.models.PyroVelocity, with the same
defaults. They are handed to the library as text, the way Python writes them (True -> "True",
None -> "None"); the library decides what it implements. An option value it does not implement
raises NotImplementedError naming the option, a malformed value ValueError, a value of the wrong
Python type TypeError.
"""

import json
import numbers
import os
import signal
import threading

import numpy as np

from .. import _anndata
from .._errors import PV_ERR_CANCELLED, PV_OK
from .._handles import Model, Options, Posterior, Statistics
from .._native import lib

# The seed's constructor parameters in order, each with the Python types it accepts.
_MODEL_PARAMETERS = (
    ("input_type", ("str",)),
    ("shared_time", ("bool",)),
    ("model_type", ("str",)),
    ("guide_type", ("str",)),
    ("likelihood", ("str",)),
    ("t_scale_on", ("bool",)),
    ("plate_size", ("int",)),
    ("latent_factor", ("str",)),
    ("latent_factor_operation", ("str",)),
    ("inducing_point_size", ("int",)),
    ("latent_factor_size", ("int",)),
    ("include_prior", ("bool",)),
    ("use_gpu", ("str", "bool", "int")),
    ("init", ("bool",)),
    ("num_aux_cells", ("int",)),
    ("only_cell_times", ("bool",)),
    ("decoder_on", ("bool",)),
    ("add_offset", ("bool",)),
    ("correct_library_size", ("bool", "str")),
    ("cell_specific_kinetics", ("none", "str")),
    ("kinetics_num", ("none", "int")),
)

# The training keyword arguments the library reads (pvengine.h), with their accepted types.
# use_gpu is handled here: the library picks the device when the model is created.
_TRAIN_PARAMETERS = {
    "max_epochs": ("int",),
    "lr": ("real",),
    "lr_decay": ("real",),
    "batch_size": ("int", "none"),
    "train_size": ("real",),
    "valid_size": ("real",),
    "improvement": ("real",),
    "patience": ("int",),
    "log_every": ("int",),
    "early_stopping": ("bool",),
    "early_stopping_patience": ("int",),
    "seed": ("int",),
    "use_gpu": ("str", "bool", "int"),
}

_GENE_RANKING_KEYS = ("mean_mae", "time_correlation", "mean_mae_rank", "time_correlation_rank")
_POSTERIOR_KEYS_FOR_STATISTICS = ("ut", "st", "s", "beta", "gamma", "cell_time", "u_scale")
_DROPPED_AFTER_STATISTICS = ("u", "s", "ut", "st")


def _is_kind(value, kind):
    if kind == "bool":
        return isinstance(value, (bool, np.bool_))
    if kind == "int":
        return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if kind == "real":
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if kind == "str":
        return isinstance(value, str)
    if kind == "none":
        return value is None
    raise AssertionError(kind)


def _check_type(where, name, value, kinds):
    if not any(_is_kind(value, kind) for kind in kinds):
        words = {"bool": "a bool", "int": "an int", "real": "a number", "str": "a str", "none": "None"}
        expected = " or ".join(words[k] for k in kinds)
        raise TypeError(f"{where}: {name} must be {expected}, not {type(value).__name__} ({value!r})")


def _device(use_gpu):
    """The engine's device name for a use_gpu value (as engine/settings.cpp reads it)."""
    text = str(use_gpu).lower()
    if text in ("false", "cpu"):
        return "cpu"
    if text in ("true", "cuda", "0"):
        return "cuda"
    return text


class PyroVelocity:
    """Bayesian RNA velocity (the Pyro-Velocity model) fitted by libpvengine.

    Attributes, as in the seed: ``use_gpu``, ``cell_specific_kinetics``, ``k`` (kinetics_num),
    ``layers`` (the [spliced, unspliced] layers used), ``input_type``, ``num_cells``,
    ``num_samples`` (of the last generate_posterior_samples), ``adata``, ``init_params_`` and
    ``_model_summary_string``; plus ``num_genes``, ``history`` (loss per epoch) and
    ``progress_callback`` (None, or a function (epoch, max_epochs, loss, validation_loss) called
    after every training epoch that may return True to stop the training early).
    """

    def __init__(self, adata, input_type="raw", shared_time=True, model_type="auto",
                 guide_type="auto", likelihood="Poisson", t_scale_on=False, plate_size=2,
                 latent_factor="none", latent_factor_operation="selection", inducing_point_size=0,
                 latent_factor_size=0, include_prior=False, use_gpu="auto", init=False,
                 num_aux_cells=0, only_cell_times=True, decoder_on=False, add_offset=False,
                 correct_library_size=True, cell_specific_kinetics=None, kinetics_num=None, *,
                 engine_options=None):
        """Builds the model on adata (see setup_anndata for the layers it reads).

        Every parameter is the seed's. engine_options (keyword only, not in the seed) is a dict
        of the engine's own model keys: seed, state_mode, entropy, guide_rank, num_particles,
        init_read_depth_at_library, precision.
        """
        where = "PyroVelocity"
        _anndata.require_anndata(adata, where)
        values = dict(
            input_type=input_type, shared_time=shared_time, model_type=model_type,
            guide_type=guide_type, likelihood=likelihood, t_scale_on=t_scale_on,
            plate_size=plate_size, latent_factor=latent_factor,
            latent_factor_operation=latent_factor_operation,
            inducing_point_size=inducing_point_size, latent_factor_size=latent_factor_size,
            include_prior=include_prior, use_gpu=use_gpu, init=init, num_aux_cells=num_aux_cells,
            only_cell_times=only_cell_times, decoder_on=decoder_on, add_offset=add_offset,
            correct_library_size=correct_library_size,
            cell_specific_kinetics=cell_specific_kinetics, kinetics_num=kinetics_num)
        for name, kinds in _MODEL_PARAMETERS:
            _check_type(where, name, values[name], kinds)
        if engine_options is None:
            engine_options = {}
        if not isinstance(engine_options, dict):
            raise TypeError(f"{where}: engine_options must be a dict, not {type(engine_options).__name__}")
        for key in engine_options:
            if not isinstance(key, str):
                raise TypeError(f"{where}: engine_options keys must be str, not {type(key).__name__}")
        dataset = _anndata.counts_dataset(adata, where)
        options = {name: values[name] for name, _ in _MODEL_PARAMETERS}
        options.update(engine_options)
        with Options(options) as handle:
            model = Model.create(dataset, handle)
        self._bind(adata, dict(values, engine_options=dict(engine_options)), model, dataset)

    def _bind(self, adata, init_params, model, dataset):
        """Sets the attributes of a model bound to adata (shared by __init__ and load_model)."""
        self.adata = adata
        self.init_params_ = init_params
        self._model = model
        self.num_cells, self.num_genes = dataset.shape()
        dataset.close()  # the model keeps its own reference to the data
        setup = _anndata.current_setup(adata, "PyroVelocity")
        self.layers = [setup["spliced_layer"], setup["unspliced_layer"]]
        self.input_type = init_params.get("input_type", "raw")
        self.use_gpu = init_params.get("use_gpu", "auto")
        self.cell_specific_kinetics = init_params.get("cell_specific_kinetics")
        self.k = init_params.get("kinetics_num")
        self.num_samples = None
        self.posterior_samples = None
        self.sampled_indices = None
        self.progress_callback = None
        self._model_summary_string = (
            f"pvengine PyroVelocity: {self.num_cells} cells x {self.num_genes} genes, likelihood "
            f"{init_params.get('likelihood', 'Poisson')}, layers {self.layers[0]}/{self.layers[1]}")

    def __repr__(self):
        return f"<{self._model_summary_string}; {self.history['elbo_train'].size} training epochs>"

    @staticmethod
    def setup_anndata(adata, *args, **kwargs):
        """Validates adata and records (in adata.uns) the layers and library sizes the model reads.

        The layers are raw_spliced/raw_unspliced when both exist, else spliced/unspliced
        (ValueError naming a missing one). The library sizes are the obs columns u_lib_size_raw
        and s_lib_size_raw, when present. Further arguments of scvi-tools' setup are refused.
        """
        if args or kwargs:
            names = [*(repr(a) for a in args), *kwargs]
            raise NotImplementedError(
                f"PyroVelocity.setup_anndata: pvengine takes only adata (got also {', '.join(names)})")
        _anndata.setup_anndata(adata)

    # ---- training ---------------------------------------------------------------------------

    def train(self, **kwargs):
        """Trains with a validation split (the seed's train): max_epochs (100), lr (0.001),
        lr_decay, batch_size, train_size, valid_size, early_stopping, early_stopping_patience,
        patience, improvement, log_every, seed, use_gpu.
        """
        self._train("train", kwargs)

    def train_faster(self, **kwargs):
        """Trains on every cell at once (the seed's train_faster): max_epochs, lr, lr_decay,
        patience, improvement, log_every, seed, use_gpu.
        """
        self._train("train_faster", kwargs)

    def train_faster_with_batch(self, **kwargs):
        """Trains on shuffled minibatches of cells (the seed's train_faster_with_batch):
        batch_size, max_epochs, lr, lr_decay, patience, log_every, seed, use_gpu.
        """
        self._train("train_faster_with_batch", kwargs)

    def _train(self, method, kwargs):
        unknown = sorted(set(kwargs) - set(_TRAIN_PARAMETERS))
        if unknown:
            raise TypeError(
                f"{method}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))} "
                f"(pvengine's training options: {', '.join(sorted(_TRAIN_PARAMETERS))})")
        for name, value in kwargs.items():
            _check_type(method, name, value, _TRAIN_PARAMETERS[name])
        options = dict(kwargs)
        if "use_gpu" in options:
            self._select_device(options.pop("use_gpu"), method)
        batch_size = options.get("batch_size")
        if batch_size is not None and batch_size > self.num_cells:
            # A data loader's batch larger than the data set is the whole data set, as in the seed.
            options["batch_size"] = self.num_cells
        options["method"] = method

        interrupted = threading.Event()
        callback = self.progress_callback
        stopped_by_callback = []

        def progress(epoch, max_epochs, loss, validation_loss):
            if interrupted.is_set():
                return True
            if callback is not None and callback(int(epoch), int(max_epochs), float(loss),
                                                 float(validation_loss)):
                stopped_by_callback.append(epoch)
                return True
            return interrupted.is_set()  # Ctrl-C pressed while the callback ran

        previous_handler = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            # Ctrl-C during a C call cannot raise at once: note it, stop after the epoch, raise.
            previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
        try:
            with Options(options) as handle:
                status = self._model.train(handle, progress)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        if interrupted.is_set():
            raise KeyboardInterrupt(
                f"{method} interrupted (the model keeps the parameters of its last completed epoch)")
        if status == PV_ERR_CANCELLED and stopped_by_callback:
            return
        if status != PV_OK:
            lib.check(status)

    def _select_device(self, use_gpu, method):
        """Honours train(use_gpu=...): the engine chooses the device when the model is built, so
        an untrained model is rebuilt for another device; a trained one cannot move."""
        if _device(use_gpu) in ("auto", _device(self.use_gpu)):
            return
        if self.history["elbo_train"].size:
            raise NotImplementedError(
                f"{method}: option use_gpu={use_gpu!r} differs from the device of this trained model "
                f"(use_gpu={self.use_gpu!r}); pvengine cannot move a trained model: pass use_gpu "
                "to PyroVelocity(...) instead")
        init_params = dict(self.init_params_, use_gpu=use_gpu)
        options = {name: init_params[name] for name, _ in _MODEL_PARAMETERS}
        options.update(init_params.get("engine_options", {}))
        dataset = _anndata.counts_dataset(self.adata, method)
        with Options(options) as handle:
            model = Model.create(dataset, handle)
        self._model.close()
        self._bind(self.adata, init_params, model, dataset)

    @property
    def history(self):
        """The loss per epoch (-ELBO / (2 cells genes)) as numpy arrays: elbo_train and
        elbo_validation (empty without a validation split)."""
        return {"elbo_train": self._model.loss_history(0),
                "elbo_validation": self._model.loss_history(1)}

    def loss_history(self, kind="train"):
        """The loss per epoch so far: kind "train" or "validation"."""
        if kind not in ("train", "validation"):
            raise ValueError(f"loss_history: kind must be 'train' or 'validation', not {kind!r}")
        return self._model.loss_history(0 if kind == "train" else 1)

    # ---- posterior ----------------------------------------------------------------------------

    def _check_same_data(self, adata, where):
        if adata is None or adata is self.adata:
            return
        _anndata.require_anndata(adata, where)
        same = (adata.shape == self.adata.shape
                and list(adata.obs_names) == list(self.adata.obs_names)
                and list(adata.var_names) == list(self.adata.var_names))
        if not same:
            raise NotImplementedError(
                f"{where}: pvengine draws posterior samples for the cells the model was fitted to; "
                f"adata {adata.shape} is not the model's data {self.adata.shape} (use indices= to "
                "select cells)")

    def generate_posterior_samples(self, adata=None, indices=None, batch_size=None, num_samples=100,
                                   *, seed=0):
        """Draws num_samples posterior samples; returns a dict of float32 numpy arrays.

        Keys and shapes: gene sites (alpha, beta, gamma, u_scale, t0, ...) (S, 1, G); cell sites
        (cell_time, u_read_depth, s_read_depth) (S, C, 1); cell_gene_state, ut, st, u, s
        (S, C, G). adata must be the model's data (None: it is). indices selects cells (None:
        all); batch_size processes cells in chunks (the numbers do not depend on it). seed
        (keyword only, not in the seed) fixes the draws: equal seeds give equal samples.
        The model remembers num_samples, sampled_indices and posterior_samples.
        """
        where = "generate_posterior_samples"
        self._check_same_data(adata, where)
        _check_type(where, "num_samples", num_samples, ("int",))
        _check_type(where, "batch_size", batch_size, ("int", "none"))
        _check_type(where, "seed", seed, ("int",))
        if seed < 0:
            raise ValueError(f"{where}: seed is {seed} (must be >= 0)")
        cells = None
        if indices is not None:
            cells = np.asarray(indices)
            if cells.dtype == bool:
                cells = np.flatnonzero(cells)
            if cells.ndim != 1 or (cells.size and cells.dtype.kind not in "iu"):
                raise TypeError(f"{where}: indices must be a sequence of int cell indices")
        posterior = self._model.sample(num_samples, seed, cells, batch_size or 0)
        with posterior:
            samples = {key: posterior.get(key) for key in posterior.keys()}
        self.num_samples = num_samples
        self.sampled_indices = None if cells is None else cells.astype(np.int64)
        self.posterior_samples = samples
        return samples

    def compute_statistics_from_posterior_samples(self, adata, posterior_samples,
                                                  vector_field_basis="umap", ncpus_use=1):
        """Adds the seed's statistics to posterior_samples and returns it.

        Reads ut, st, s, beta, gamma, cell_time and u_scale (when present) over every cell of
        adata, and adata.obsm X_pca and X_<vector_field_basis> (varm PCs when present). Adds
        vector_field_posterior_samples, vector_field_posterior_mean, embeds_magnitude,
        embeds_angle, original_spaces_embeds_magnitude, fdri, ut_mean, st_mean, ut_std, st_std,
        pca_vector_field_posterior_samples, pca_embeds_angle, pca_fdri (numpy arrays),
        gene_ranking (a pandas DataFrame indexed by gene name, or a dict of arrays without
        pandas) and genes (the selected gene names); removes u, s, ut and st. ncpus_use is
        accepted; the library uses its OpenMP threads (OMP_NUM_THREADS).
        """
        where = "compute_statistics_from_posterior_samples"
        _anndata.require_anndata(adata, where)
        if not isinstance(posterior_samples, dict):
            raise TypeError(f"{where}: posterior_samples must be a dict, not "
                            f"{type(posterior_samples).__name__}")
        _check_type(where, "vector_field_basis", vector_field_basis, ("str",))
        _check_type(where, "ncpus_use", ncpus_use, ("int",))
        if ncpus_use < 1:
            raise ValueError(f"{where}: ncpus_use is {ncpus_use} (must be >= 1)")
        with Posterior.create() as posterior:
            for key in _POSTERIOR_KEYS_FOR_STATISTICS:
                if key in posterior_samples:
                    posterior.set(key, posterior_samples[key])
            with _anndata.counts_dataset(adata, where) as dataset:
                _anndata.attach_embeddings(dataset, adata,
                                           required=("X_pca", f"X_{vector_field_basis}"))
                with Options({"vector_field_basis": vector_field_basis}) as options:
                    with Statistics.compute(dataset, posterior, options) as statistics:
                        results = {key: statistics.get(key) for key in statistics.keys()}
        gene_names = [str(name) for name in adata.var_names]
        ranking = {key: results.pop(key) for key in _GENE_RANKING_KEYS if key in results}
        try:
            import pandas
            posterior_samples["gene_ranking"] = pandas.DataFrame(ranking, index=adata.var_names.copy())
        except ImportError:
            posterior_samples["gene_ranking"] = ranking
        if "genes" in results:
            posterior_samples["genes"] = [gene_names[int(i)] for i in results.pop("genes")]
        posterior_samples.update(results)
        for key in _DROPPED_AFTER_STATISTICS:
            posterior_samples.pop(key, None)
        return posterior_samples

    # ---- saving and loading -------------------------------------------------------------------

    @staticmethod
    def _paths(dir_path, prefix):
        stem = prefix or ""
        return (os.path.join(dir_path, f"{stem}model.pvmodel"),
                os.path.join(dir_path, f"{stem}adata.h5ad"),
                os.path.join(dir_path, f"{stem}attributes.json"))

    def save_model(self, dir_path, prefix=None, overwrite=True, save_anndata=False,
                   **anndata_write_kwargs):
        """Saves the model in dir_path (created when missing) as f"{prefix}model.pvmodel", its
        constructor parameters as f"{prefix}attributes.json" and, with save_anndata, adata as
        f"{prefix}adata.h5ad" (adata.write(**anndata_write_kwargs)). With overwrite=False an
        existing file is refused with FileExistsError before anything is written.
        """
        dir_path = os.fspath(dir_path)
        _check_type("save_model", "prefix", prefix, ("str", "none"))
        model_path, adata_path, attributes_path = self._paths(dir_path, prefix)
        if not overwrite:
            for path in (model_path, attributes_path) + ((adata_path,) if save_anndata else ()):
                if os.path.exists(path):
                    raise FileExistsError(
                        f"save_model: {path} already exists (pass overwrite=True to replace it)")
        os.makedirs(dir_path, exist_ok=True)
        self._model.save(model_path)
        with open(attributes_path, "w", encoding="utf-8") as stream:
            json.dump(self.init_params_, stream, indent=1, default=str)
        if save_anndata:
            self.adata.write(adata_path, **anndata_write_kwargs)

    @classmethod
    def load_model(cls, dir_path, adata=None, use_gpu="auto", prefix=None, backup_url=None):
        """Loads a model saved by save_model onto adata (None: the saved f"{prefix}adata.h5ad").

        adata must hold the genes and cells the model was fitted to. backup_url (downloading a
        model) is not implemented: pvengine reads local files only.
        """
        where = "load_model"
        if backup_url is not None:
            raise NotImplementedError(
                f"{where}: backup_url is not implemented (pvengine never downloads; copy the model "
                "directory locally)")
        _check_type(where, "use_gpu", use_gpu, ("str", "bool", "int"))
        _check_type(where, "prefix", prefix, ("str", "none"))
        dir_path = os.fspath(dir_path)
        model_path, adata_path, attributes_path = cls._paths(dir_path, prefix)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"{where}: no saved model {model_path}")
        if adata is None:
            if not os.path.isfile(adata_path):
                raise FileNotFoundError(
                    f"{where}: adata is None and {adata_path} does not exist (pass adata, or save "
                    "with save_anndata=True)")
            import anndata
            adata = anndata.read_h5ad(adata_path)
        _anndata.require_anndata(adata, where)
        init_params = {}
        if os.path.isfile(attributes_path):
            with open(attributes_path, encoding="utf-8") as stream:
                init_params = json.load(stream)
        init_params["use_gpu"] = use_gpu
        dataset = _anndata.counts_dataset(adata, where)
        model = Model.load(model_path, dataset)
        instance = cls.__new__(cls)
        instance._bind(adata, init_params, model, dataset)
        return instance
