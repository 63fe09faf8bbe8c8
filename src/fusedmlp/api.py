"""The user's surface besides training: init_params, predict_proba, predict, accuracy."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from . import _compiled, reference
from ._validation import (
    check_activation,
    check_backend,
    check_count,
    check_data_for,
    check_network_size,
    check_params,
    check_seed,
    check_X,
    params_in,
    user_stacklevel,
    work_dtype,
)


def init_params(
    n_x: int,
    n_h: int,
    n_y: int,
    *,
    seed: int | None = None,
    scale: float = 0.01,
    dtype: np.dtype | type = np.float64,
) -> dict:
    """Small random weights and zero biases.

    Draws W1 then W2 from ``numpy.random.RandomState(seed)`` (never the global RNG), so
    ``seed=2`` gives the starting point of the original planar-flower exercise.

    Parameters
    ----------
    n_x, n_h, n_y : int
        Input, hidden and output sizes, each >= 1.
    seed : int, optional
        Seed for the weights; None draws fresh entropy.
    scale : float
        Standard deviation of the weights (N(0, 1) * scale).
    dtype : float32 or float64

    Returns
    -------
    dict
        {"W1": (n_h, n_x), "b1": (n_h, 1), "W2": (n_y, n_h), "b2": (n_y, 1)}.

    Examples
    --------
    >>> p = init_params(2, 4, 1, seed=2)
    >>> p["W1"].shape, p["b2"].shape
    ((4, 2), (1, 1))
    """
    n_x = check_count("n_x", n_x, minimum=1)
    n_h = check_count("n_h", n_h, minimum=1)
    n_y = check_count("n_y", n_y, minimum=1)
    check_network_size(n_x, n_h, n_y, name="n_h")
    if (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not (math.isfinite(scale) and scale >= 0)
    ):
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}.")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}.")
    rng = np.random.RandomState(None if seed is None else check_seed(seed))
    W1 = rng.randn(n_h, n_x) * scale
    W2 = rng.randn(n_y, n_h) * scale
    return {
        "W1": W1.astype(dtype),
        "b1": np.zeros((n_h, 1), dtype),
        "W2": W2.astype(dtype),
        "b2": np.zeros((n_y, 1), dtype),
    }


def _forward(p, X, activation, backend):
    if backend == "numpy":
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, once
            A2 = reference.predict_proba(p, X, activation)
    else:
        A2 = _compiled.predict_proba(p, X, activation)
    bad = int(np.count_nonzero(np.isnan(A2)))
    if bad:
        _warn_nan(bad, A2.size, A2.dtype)
    return A2


def _warn_nan(bad: int, size: int, dtype) -> None:
    warnings.warn(
        f"{bad} of {size} outputs are NaN because W1 X + b1 or W2 A1 + b2 overflowed "
        f"{np.dtype(dtype)} (inf - inf); compute in float64 (X.astype(np.float64)) or use "
        "smaller parameters.",
        RuntimeWarning,
        stacklevel=user_stacklevel(),
    )


def _checked_model(params, X, activation):
    activation = check_activation(activation)
    p = check_params(params)
    X = check_X(X, n_x=p["W1"].shape[1])
    return params_in(p, work_dtype(X)), X, activation


def predict_proba(
    params: dict, X: np.ndarray, *, activation: str = "sigmoid", backend: str = "numba"
) -> np.ndarray:
    """Output probabilities A2 = sigmoid(Z2), shape (n_y, m), in X's working dtype.

    ``backend="numba"`` evaluates with the compiled blocked forward kernel (parallel,
    no array of size n_h x m), ``"numpy"`` with the reference.

    Examples
    --------
    >>> p = init_params(2, 4, 1, seed=0)
    >>> predict_proba(p, np.zeros((2, 3))).shape
    (1, 3)
    """
    backend = check_backend(backend)
    p, X, activation = _checked_model(params, X, activation)
    return _forward(p, X, activation, backend)


def predict(
    params: dict, X: np.ndarray, *, activation: str = "sigmoid", backend: str = "numba"
) -> np.ndarray:
    """Labels 0/1 (A2 > 0.5) as int8, shape (n_y, m).

    Examples
    --------
    >>> p = init_params(2, 4, 1, seed=0)
    >>> p["b2"][:] = -1.0  # pushes every output below 0.5
    >>> predict(p, np.zeros((2, 3))).tolist()
    [[0, 0, 0]]
    """
    A2 = predict_proba(params, X, activation=activation, backend=backend)
    return (A2 > 0.5).astype(np.int8)


def accuracy(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activation: str = "sigmoid",
    backend: str = "numba",
) -> float:
    """Fraction of entries of Y that ``predict`` gets right (Y thresholded at 0.5).

    Examples
    --------
    >>> p = init_params(2, 4, 1, seed=0)
    >>> accuracy(p, np.zeros((2, 4)), np.array([[0, 0, 1, 1]]))
    0.5
    """
    activation = check_activation(activation)
    backend = check_backend(backend)
    p = check_params(params)
    X, Y = check_data_for(p, X, Y, "mse")
    return _accuracy(params_in(p, work_dtype(X)), X, Y, activation, backend)


def _accuracy(p: dict, X: np.ndarray, Y: np.ndarray, activation: str, backend="numba") -> float:
    """accuracy on inputs already validated (no second scan of the data).

    The compiled backend counts in one fused pass without making A2 (at m = 10^7 it
    costs about one forward pass); both backends threshold the same A2 at 1/2.
    """
    if backend == "numba":
        acc, nan = _compiled.accuracy(p, X, Y, activation)
        if nan:
            _warn_nan(nan, Y.size, X.dtype)
        return acc
    A2 = _forward(p, X, activation, backend)
    return float(np.mean((A2 > 0.5) == (Y > 0.5)))
