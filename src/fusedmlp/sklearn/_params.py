"""The estimators' parameters, checked at fit as scikit-learn checks MLPClassifier's:
a ValueError naming the parameter, what it must be and what was given."""

from __future__ import annotations

import numbers

import numba
import numpy as np

# scikit-learn's names -> fusedmlp's
ACTIVATIONS = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
OUTPUTS = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity", "exp": "exp"}


def _real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _fail(est, name: str, must: str) -> None:
    raise ValueError(
        f"The '{name}' parameter of {type(est).__name__} must be {must}. "
        f"Got {getattr(est, name)!r} instead."
    )


def _options(est, name: str, allowed: tuple) -> None:
    if getattr(est, name) not in allowed:
        _fail(est, name, "a str among " + "{" + ", ".join(repr(a) for a in allowed) + "}")


def check_params(est) -> None:
    """Raise ValueError for the first parameter out of its range."""
    if est.activation == "identity":
        raise ValueError(
            "activation='identity' is not supported by fusedmlp (its kernels have "
            "'logistic', 'tanh' and 'relu'); use one of those, or scikit-learn's "
            "MLPClassifier / MLPRegressor for a linear hidden layer."
        )
    _options(est, "activation", tuple(ACTIVATIONS))
    if est.solver == "lbfgs":
        raise ValueError(
            "solver='lbfgs' is not supported by fusedmlp (its kernels train by mini-batch "
            "steps); use solver='adam' or 'sgd', or scikit-learn's MLPClassifier / "
            "MLPRegressor for L-BFGS."
        )
    _options(est, "solver", ("sgd", "adam"))
    if hasattr(est, "loss"):  # the regressor's
        _options(est, "loss", ("squared_error", "poisson"))
    _options(est, "learning_rate", ("constant", "invscaling", "adaptive"))
    reals = [
        ("alpha", 0.0, np.inf, "[0.0, inf)"),
        ("learning_rate_init", 0.0, np.inf, "(0.0, inf)"),
        ("power_t", 0.0, np.inf, "[0.0, inf)"),
        ("tol", 0.0, np.inf, "[0.0, inf)"),
        ("momentum", 0.0, 1.0, "[0.0, 1.0]"),
        ("validation_fraction", 0.0, 1.0, "(0.0, 1.0)"),
        ("beta_1", 0.0, 1.0, "[0.0, 1.0)"),
        ("beta_2", 0.0, 1.0, "[0.0, 1.0)"),
        ("epsilon", 0.0, np.inf, "(0.0, inf)"),
    ]
    for name, lo, hi, text in reals:
        v = getattr(est, name)
        open_lo, open_hi = text[0] == "(", text[-1] == ")"
        ok = _real(v) and (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
        if not ok:
            _fail(est, name, f"a float in the range {text}")
    for name in ("max_iter", "n_iter_no_change", "max_fun"):
        v = getattr(est, name)
        if not (_int(v) and v >= 1):
            _fail(est, name, "an int in the range [1, inf)")
    b = est.batch_size
    if not (b == "auto" or (_int(b) and b >= 1)):
        _fail(est, "batch_size", "an int in the range [1, inf) or a str among {'auto'}")
    for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            _fail(est, name, "an instance of 'bool'")
    if not isinstance(est.verbose, (bool, np.bool_, numbers.Integral)):
        _fail(est, "verbose", "an instance of 'int' or 'bool'")
    if est.dtype is not None and _dtype(est.dtype) not in (np.float32, np.float64):
        _fail(est, "dtype", "None, 'float32' or 'float64'")
    t, top = est.n_threads, numba.config.NUMBA_NUM_THREADS
    if t is not None and not (_int(t) and 1 <= t <= top):
        # numba cannot run more threads than it started with (NUMBA_NUM_THREADS)
        _fail(est, "n_threads", f"None or an int in the range [1, {top}]")


def _dtype(value):
    try:
        return np.dtype(value)
    except TypeError:
        return None


def hidden_units(sizes) -> int:
    """The one hidden layer's width from hidden_layer_sizes ((n,) or n)."""
    if _int(sizes):
        sizes = [sizes]
    try:
        sizes = list(sizes)
    except TypeError:
        sizes = [sizes]
    if len(sizes) != 1 or not _int(sizes[0]) or sizes[0] <= 0:
        if len(sizes) > 1 and all(_int(s) and s > 0 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes={tuple(sizes)} has {len(sizes)} hidden layers; "
                f"fusedmlp trains networks of one hidden layer: give (n,) or n."
            )
        raise ValueError(f"hidden_layer_sizes must be one positive int n or (n,), got {sizes!r}.")
    return int(sizes[0])
