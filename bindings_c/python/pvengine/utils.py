"""Utilities of the seed's pyrovelocity.utils: simulated data and readable summaries."""

import numbers

import numpy as np

from .models._transcription_dynamics import mrna_dynamics

_NOISE_MODELS = ("gillespie", "iid")


def _per_gene(value, name, n_vars):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(n_vars, float(array))
    if array.shape != (n_vars,):
        raise ValueError(f"generate_sample_data: {name} must be a number or {n_vars} values, "
                         f"got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"generate_sample_data: {name} must be finite and non-negative")
    return array


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"generate_sample_data: {name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"generate_sample_data: {name} is {value} (must be >= 1)")
    return int(value)


def generate_sample_data(n_obs=100, n_vars=12, alpha=5, beta=0.5, gamma=0.3, alpha_=0,
                         noise_model="gillespie", random_seed=0):
    """Simulates an AnnData of spliced and unspliced counts from the transcription model.

    Each gene is induced (transcription rate alpha) from u = s = 0 until t = 10, then repressed
    (rate alpha_); splicing rate beta, degradation rate gamma (numbers, or one value per gene).
    Each of the n_obs cells has a time drawn uniformly in [0, 20]; the expected counts are
    mrna_dynamics at that time, and the counts are drawn around them:

    - "gillespie": the exact distribution of the stochastic (Gillespie) reaction system. The
      reactions are first order, so from u = s = 0 the molecule numbers stay independent Poisson
      variables whose means follow the deterministic equations (Jahnke and Huisinga, J. Math.
      Biol. 2007); drawing them is exact and needs no event-by-event simulation.
    - "iid": independent Poisson noise on every count around the deterministic curve.

    Other noise models (e.g. "normal", which would give non-integer counts) raise
    NotImplementedError. The result is reproducible for a given random_seed.

    Returns an AnnData with layers spliced and unspliced (int64 counts), X = spliced (float32),
    obs true_t, var true_alpha, true_beta, true_gamma, true_t_switch, and uns simulation.
    """
    import anndata
    import pandas

    n_obs = _positive_int(n_obs, "n_obs")
    n_vars = _positive_int(n_vars, "n_vars")
    if not isinstance(noise_model, str) or noise_model not in _NOISE_MODELS:
        raise NotImplementedError(
            f"generate_sample_data: noise_model={noise_model!r} is not implemented by pvengine "
            f"(supported: {', '.join(_NOISE_MODELS)})")
    alpha = _per_gene(alpha, "alpha", n_vars)
    beta = _per_gene(beta, "beta", n_vars)
    gamma = _per_gene(gamma, "gamma", n_vars)
    alpha_ = _per_gene(alpha_, "alpha_", n_vars)
    rng = np.random.default_rng(random_seed)
    t_max, t_switch = 20.0, 10.0

    times = rng.uniform(0.0, t_max, size=n_obs)
    u_switch, s_switch = mrna_dynamics(t_switch, 0.0, 0.0, alpha, beta, gamma)
    t = times[:, None]
    induced = t < t_switch
    u_on, s_on = mrna_dynamics(np.where(induced, t, 0.0), 0.0, 0.0, alpha, beta, gamma)
    u_off, s_off = mrna_dynamics(np.where(induced, 0.0, t - t_switch), u_switch, s_switch,
                                 alpha_, beta, gamma)
    u_mean = np.where(induced, u_on, u_off)
    s_mean = np.where(induced, s_on, s_off)
    unspliced = rng.poisson(np.maximum(u_mean, 0.0)).astype(np.int64)
    spliced = rng.poisson(np.maximum(s_mean, 0.0)).astype(np.int64)

    obs = pandas.DataFrame({"true_t": times}, index=[f"cell_{i}" for i in range(n_obs)])
    var = pandas.DataFrame({"true_alpha": alpha, "true_beta": beta, "true_gamma": gamma,
                            "true_t_switch": np.full(n_vars, t_switch)},
                           index=[f"gene_{j}" for j in range(n_vars)])
    adata = anndata.AnnData(X=spliced.astype(np.float32), obs=obs, var=var,
                            layers={"spliced": spliced, "unspliced": unspliced})
    adata.uns["simulation"] = {"noise_model": noise_model, "random_seed": int(random_seed),
                               "t_max": t_max, "t_switch": t_switch}
    return adata


def _describe(value):
    """One line describing value: its type and, for arrays and frames, shape and dtype."""
    try:
        name = type(value).__name__
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return f"{name} shape={tuple(value.shape)} dtype={value.dtype}"
        if hasattr(value, "shape") and hasattr(value, "columns"):
            columns = ", ".join(map(str, list(value.columns)[:8]))
            return f"{name} shape={tuple(value.shape)} columns=[{columns}]"
        if isinstance(value, (list, tuple, set)):
            head = ", ".join(repr(v) for v in list(value)[:5])
            more = ", ..." if len(value) > 5 else ""
            return f"{name} len={len(value)} [{head}{more}]"
        if isinstance(value, (str, bytes, numbers.Number, bool)) or value is None:
            text = repr(value)
            return f"{name} {text[:77] + '...' if len(text) > 80 else text}"
        return name
    except Exception:  # a summary must never fail on an odd value
        return type(value).__name__


def pretty_log_dict(d, indent=0):
    """A readable multi-line string with one line per entry of d: key, type, shape and dtype.

    Nested dicts are listed below their key, indented.
    """
    pad = "  " * indent
    if not isinstance(d, dict):
        return pad + _describe(d)
    lines = []
    for key, value in d.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}: dict ({len(value)} entries)")
            if value:
                lines.append(pretty_log_dict(value, indent + 1))
        else:
            lines.append(f"{pad}{key}: {_describe(value)}")
    return "\n".join(lines)


def print_anndata(adata):
    """Prints a compact summary of adata: its shape, X, and the keys of obs, var, layers, obsm,
    varm, obsp and uns (with type, shape and dtype where they have one)."""
    print(f"AnnData object with n_obs x n_vars = {adata.n_obs} x {adata.n_vars}")
    print(f"  X: {_describe(adata.X) if adata.X is not None else None}")
    print(f"  obs: {', '.join(map(str, adata.obs.columns)) or '-'}")
    print(f"  var: {', '.join(map(str, adata.var.columns)) or '-'}")
    for section in ("layers", "obsm", "varm", "obsp"):
        mapping = getattr(adata, section, None)
        if mapping is None or not len(mapping.keys()):
            print(f"  {section}: -")
            continue
        print(f"  {section}:")
        for key in mapping.keys():
            print(f"    {key}: {_describe(mapping[key])}")
    if len(adata.uns):
        print("  uns:")
        print(pretty_log_dict(dict(adata.uns), indent=2))
    else:
        print("  uns: -")
