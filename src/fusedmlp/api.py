"""The user's surface besides training: init_params, predict_proba, predict, accuracy,
score."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from . import _compiled, _holdout, reference
from ._data import check_targets
from ._holdout import r2
from ._validation import (
    check_activation,
    check_backend,
    check_count,
    check_network_size,
    check_output,
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


def _forward(p, X, activation, backend, output="sigmoid"):
    if backend == "numpy":
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, once
            A2 = reference.predict_proba(p, X, activation, output)
    else:
        A2 = _compiled.predict_proba(p, X, activation, output)
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


def _checked_model(params, X, activation, output="sigmoid", Y=None):
    """(params in X's dtype, X, activation, output), or with Y given (params, X, Y, ...)
    with Y checked for the output and the network."""
    activation = check_activation(activation)
    output = check_output(output)
    p = check_params(params)
    if output == "softmax" and p["W2"].shape[0] < 2:
        raise ValueError(
            f"output='softmax' needs at least 2 outputs, but W2 is {p['W2'].shape}; use "
            "output='sigmoid' for one."
        )
    if Y is None:
        X = check_X(X, n_x=p["W1"].shape[1])
        return params_in(p, work_dtype(X)), X, activation, output
    X, Y = check_targets(X, Y, output, "mse", p=p, training=False)
    return params_in(p, work_dtype(X)), X, Y, activation, output


def predict_proba(
    params: dict,
    X: np.ndarray,
    *,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    backend: str = "numba",
) -> np.ndarray:
    """The outputs A2, shape (n_y, m), in X's working dtype: probabilities for a sigmoid
    (each output its own) or softmax output (each column sums to 1), values for identity
    and exp (the mean of the Poisson loss's count: exp(Z2)).

    ``backend="numba"`` evaluates with the compiled blocked forward kernel (parallel,
    no array of size n_h x m), ``"numpy"`` with the reference.

    Examples
    --------
    >>> p = init_params(2, 4, 3, seed=0)
    >>> predict_proba(p, np.zeros((2, 2)), output="softmax").sum(axis=0).round(12)
    array([1., 1.])
    """
    backend = check_backend(backend)
    p, X, activation, output = _checked_model(params, X, activation, output)
    return _forward(p, X, activation, backend, output)


def predict(
    params: dict,
    X: np.ndarray,
    *,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    backend: str = "numba",
) -> np.ndarray:
    """Predictions: for sigmoid, labels 0/1 (A2 > 0.5) as int8, shape (n_y, m); for
    softmax, class indices (argmax over the outputs) as int64, shape (m,); for
    identity and exp (regression), the values A2, shape (n_y, m).

    Examples
    --------
    >>> p = init_params(2, 4, 1, seed=0)
    >>> p["b2"][:] = -1.0  # pushes every output below 0.5
    >>> predict(p, np.zeros((2, 3))).tolist()
    [[0, 0, 0]]
    >>> q = init_params(2, 4, 3, seed=0)
    >>> q["b2"][1] = 5.0  # class 1 wins everywhere
    >>> predict(q, np.zeros((2, 3)), output="softmax").tolist()
    [1, 1, 1]
    """
    A2 = predict_proba(params, X, activation=activation, output=output, backend=backend)
    if output == "softmax":
        return A2.argmax(axis=0).astype(np.int64)
    if output in reference.REGRESSION:
        return A2
    return (A2 > 0.5).astype(np.int8)


def accuracy(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    backend: str = "numba",
) -> float:
    """Fraction that ``predict`` gets right: for sigmoid, the entries of Y thresholded
    at 0.5; for softmax, the samples whose class (Y's class index (m,), or the argmax of
    its one-hot column) is the predicted one. Not defined for the regression outputs,
    identity and exp (use ``score``).

    Examples
    --------
    >>> p = init_params(2, 4, 1, seed=0)
    >>> accuracy(p, np.zeros((2, 4)), np.array([[0, 0, 1, 1]]))
    0.5
    """
    backend = check_backend(backend)
    if output in reference.REGRESSION:
        raise ValueError(
            f"accuracy compares class labels; an {output} output predicts values: use "
            "fusedmlp.score (R^2) for regression."
        )
    p, X, Y, activation, output = _checked_model(params, X, activation, output, Y)
    return _accuracy(p, X, Y, activation, backend, output)


def _accuracy(p, X, Y, activation: str, backend="numba", output="sigmoid") -> float:
    """accuracy on inputs already validated (no second scan of the data).

    The compiled backend counts in one fused pass without making A2 (at m = 10^7 it
    costs about one forward pass); both backends threshold (or take the argmax of) the
    same A2.
    """
    if output == "softmax" and Y.ndim == 2:
        Y = Y.argmax(axis=0)
    if backend == "numba":
        acc, nan = _compiled.accuracy(p, X, Y, activation, output)
        if nan:
            _warn_nan(nan, Y.size, X.dtype)
        return acc
    A2 = _forward(p, X, activation, backend, output)
    return _holdout.score(A2, Y, output)


def score(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    backend: str = "numba",
) -> float:
    """scikit-learn's score: ``accuracy`` for sigmoid and softmax outputs, R^2 for
    identity and exp (1 - residual / total sum of squares, averaged over the outputs).

    Examples
    --------
    >>> p = init_params(1, 4, 1, seed=0)
    >>> p["W2"][:] = 0.0; p["b2"][:] = 2.0  # predicts 2 everywhere: the mean of Y
    >>> score(p, np.zeros((1, 3)), np.array([1.0, 2.0, 3.0]), output="identity")
    0.0
    """
    if output not in reference.REGRESSION:
        return accuracy(params, X, Y, activation=activation, output=output, backend=backend)
    backend = check_backend(backend)
    p, X, Y, activation, output = _checked_model(params, X, activation, output, Y)
    return r2(_forward(p, X, activation, backend, output), Y)
