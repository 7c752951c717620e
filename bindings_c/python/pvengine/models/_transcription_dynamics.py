"""The analytic transcription dynamics, evaluated by libpvengine (pv_mrna_dynamics)."""

import numpy as np

from .._handles import _doubles
from .._native import lib


def mrna_dynamics(tau, u0, s0, alpha, beta, gamma):
    """Unspliced and spliced mRNA after time tau from (u0, s0) with rates alpha, beta and gamma.

    Solves du/dt = alpha - beta u, ds/dt = beta u - gamma s in closed form (including the limit
    gamma == beta). The six inputs are numbers or array-likes that numpy broadcasts together;
    every value must be finite, and tau, alpha, beta and gamma non-negative (ValueError naming the
    input and the entry otherwise).

    Returns a tuple (u, s) of float64 numpy arrays of the broadcast shape (0-d for scalar inputs).

    >>> u, s = mrna_dynamics(2.0, 1.0, 0.5, 0.5, 0.4, 0.3)
    >>> round(float(u), 4), round(float(s), 4)
    (1.1377, 0.9269)
    """
    names = ("tau", "u0", "s0", "alpha", "beta", "gamma")
    arrays = []
    for name, value in zip(names, (tau, u0, s0, alpha, beta, gamma)):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"mrna_dynamics: {name} must be numeric, not {array.dtype}")
        arrays.append(array)
    try:
        broadcast = np.broadcast_arrays(*arrays)
    except ValueError as error:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
        raise ValueError(f"mrna_dynamics: the inputs do not broadcast together ({shapes})") from error
    shape = broadcast[0].shape
    flat = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in broadcast]
    n = flat[0].size
    u = np.empty(n, dtype=np.float64)
    s = np.empty(n, dtype=np.float64)
    lib.check(lib.pv_mrna_dynamics(n, *(_doubles(a) for a in flat), _doubles(u), _doubles(s)))
    return u.reshape(shape), s.reshape(shape)
