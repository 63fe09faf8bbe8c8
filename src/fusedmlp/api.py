"""The user's surface: init_params, train, predict_proba, predict, accuracy."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import _compiled, reference
from ._validation import (
    PARAM_NAMES,
    check_activation,
    check_backend,
    check_count,
    check_loss,
    check_lr,
    check_params,
    check_X,
    check_XY,
    work_dtype,
)

# status codes shared by every backend's epoch runner
OK, NONFINITE_LOSS, UPDATE_OVERFLOW = 0, 1, 2


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Attributes
    ----------
    epoch : int
        The epoch at which it happened (0-based).
    params : dict
        The parameters at the start of the failing epoch. They are all finite: the
        update that would have overflowed is never applied, so nothing trained before
        the failure is lost (their own loss may be the non-finite one).
    losses : ndarray
        The losses of the epochs before ``epoch``.
    """

    def __init__(self, message: str, *, epoch: int, params: dict, losses: np.ndarray):
        super().__init__(message)
        self.epoch = epoch
        self.params = params
        self.losses = losses


@dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes
    ----------
    params : dict
        Trained parameters {"W1", "b1", "W2", "b2"}.
    losses : ndarray of float64, shape (epochs,)
        ``losses[i]`` is the cost of the forward pass of epoch i, before its update.
    """

    params: dict
    losses: np.ndarray
    activation: str
    loss: str
    lr: float
    backend: str
    seed: int | None = None
    sizes: tuple = field(default=())

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.losses)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """A2 for new data; see ``fusedmlp.predict_proba``."""
        return predict_proba(self.params, X, activation=self.activation)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 labels for new data; see ``fusedmlp.predict``."""
        return predict(self.params, X, activation=self.activation)


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
    if (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not (math.isfinite(scale) and scale >= 0)
    ):
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}.")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}.")
    rng = np.random.RandomState(seed)
    W1 = rng.randn(n_h, n_x) * scale
    W2 = rng.randn(n_y, n_h) * scale
    return {
        "W1": W1.astype(dtype),
        "b1": np.zeros((n_h, 1), dtype),
        "W2": W2.astype(dtype),
        "b2": np.zeros((n_y, 1), dtype),
    }


def _numpy_epochs(p, X, Y, activation, loss, lr, n_epochs, losses_out):
    """Reference runner: n_epochs of gradient descent, p updated in place.

    The same contract as ``fusedmlp._compiled.train_epochs``, the compiled runner.
    Returns (epochs done, status). Stops before the update of the first epoch whose loss
    or gradients are not finite (NONFINITE_LOSS), or whose update would overflow a
    parameter (UPDATE_OVERFLOW), so p always holds the last finite parameters.
    """
    # overflow is detected and reported below; numpy's warnings would only be noise
    with np.errstate(over="ignore", invalid="ignore"):
        return _numpy_epochs_quiet(p, X, Y, activation, loss, lr, n_epochs, losses_out)


def _numpy_epochs_quiet(p, X, Y, activation, loss, lr, n_epochs, losses_out):
    for i in range(n_epochs):
        L, g = reference.loss_and_grads(p, X, Y, activation, loss)
        if not (math.isfinite(L) and all(np.isfinite(v).all() for v in g.values())):
            return i, NONFINITE_LOSS
        new = {k: p[k] - lr * g["d" + k] for k in PARAM_NAMES}
        if not all(np.isfinite(v).all() for v in new.values()):
            return i, UPDATE_OVERFLOW
        losses_out[i] = L
        for k in PARAM_NAMES:
            p[k][...] = new[k]
    return n_epochs, OK


def train(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    hidden: int | None = None,
    activation: str = "sigmoid",
    loss: str = "mse",
    epochs: int = 1000,
    lr: float = 0.2,
    init: dict | None = None,
    seed: int | None = None,
    backend: str = "numba",
) -> TrainResult:
    """Train a one-hidden-layer network by full-batch gradient descent.

    Parameters
    ----------
    X : array (n_x, m)
        Inputs, one sample per column. float32 data is trained in float32, anything
        else in float64.
    Y : array (n_y, m), or (m,) for one output
        Targets in [0, 1] (required for cross-entropy).
    hidden : int, default 4
        Hidden units; taken from ``init`` when that is given.
    activation : {"sigmoid", "tanh", "relu"}
        Hidden activation; the output is always a sigmoid.
    loss : {"mse", "cross_entropy"}
    epochs : int
        Number of gradient-descent steps (>= 0).
    lr : float
        Learning rate (> 0).
    init : dict, optional
        Starting parameters {"W1", "b1", "W2", "b2"}; copied, never modified.
    seed : int, optional
        Seed for ``init_params`` when ``init`` is not given.
    backend : {"numba", "numpy"}
        "numba" runs the fused compiled kernels (float32 or float64, parallel over
        samples for large m, one compiled call for many epochs for small m); "numpy"
        the plain reference implementation.

    Returns
    -------
    TrainResult
        ``.params`` and ``.losses`` (``losses[i]`` is the cost before epoch i's update).

    Raises
    ------
    TrainingDiverged
        If the loss or a parameter stops being finite; ``.epoch`` says when and
        ``.params`` holds the last finite parameters.

    Examples
    --------
    >>> from fusedmlp import datasets
    >>> X, Y = datasets.planar()
    >>> res = train(X, Y, epochs=10, seed=2, backend="numpy")
    >>> res.losses.shape
    (10,)
    """
    activation = check_activation(activation)
    loss = check_loss(loss)
    backend = check_backend(backend)
    epochs = check_count("epochs", epochs, minimum=0)
    lr = check_lr(lr)
    if init is not None:
        p = check_params(init)
        n_h, n_x = p["W1"].shape
        if hidden is not None and check_count("hidden", hidden, minimum=1) != n_h:
            raise ValueError(
                f"hidden={hidden!r} but init has W1 of shape {p['W1'].shape}, i.e. {n_h} "
                "hidden units; leave hidden out when passing init."
            )
        X, Y = check_XY(X, Y, loss, n_x=n_x)
        if Y.shape[0] != p["W2"].shape[0]:
            raise ValueError(
                f"Y has {Y.shape[0]} rows (outputs) but init's W2 is {p['W2'].shape}, "
                f"i.e. {p['W2'].shape[0]} outputs."
            )
    else:
        n_h = check_count("hidden", 4 if hidden is None else hidden, minimum=1)
        X, Y = check_XY(X, Y, loss)
        p = init_params(X.shape[0], n_h, Y.shape[0], seed=seed)
    dtype = work_dtype(X)
    p = {k: np.array(p[k], dtype=dtype) for k in PARAM_NAMES}  # own copy, never init's
    losses = np.zeros(epochs)
    run = _numpy_epochs if backend == "numpy" else _compiled.train_epochs
    done, status = run(p, X, Y, activation, loss, lr, epochs, losses)
    if status != OK:
        what = "the loss or its gradients became non-finite"
        if status == UPDATE_OVERFLOW:
            what = "the update overflowed a parameter to inf"
        raise TrainingDiverged(
            f"training diverged at epoch {done}: {what} (lr={lr} is probably too large; "
            "try a smaller lr). The last finite parameters are in the exception's "
            ".params and the losses so far in .losses.",
            epoch=done,
            params=p,
            losses=losses[:done].copy(),
        )
    return TrainResult(
        params=p,
        losses=losses,
        activation=activation,
        loss=loss,
        lr=lr,
        backend=backend,
        seed=seed,
        sizes=(X.shape[0], p["W1"].shape[0], Y.shape[0]),
    )


def _forward(p, X, activation, backend):
    if backend == "numpy":
        return reference.predict_proba(p, X, activation)
    return _compiled.predict_proba(p, X, activation)


def _checked_model(params, X, activation):
    activation = check_activation(activation)
    p = check_params(params)
    X = check_X(X, n_x=p["W1"].shape[1])
    dtype = work_dtype(X)
    return {k: p[k].astype(dtype, copy=False) for k in PARAM_NAMES}, X, activation


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
    X, Y = check_XY(X, Y, "mse", n_x=p["W1"].shape[1])
    if Y.shape[0] != p["W2"].shape[0]:
        raise ValueError(
            f"Y has {Y.shape[0]} rows but W2 is {p['W2'].shape}: {p['W2'].shape[0]} outputs."
        )
    A2 = _forward(p, X, activation, backend)  # data already checked: no second scan
    return float(np.mean((A2 > 0.5) == (Y > 0.5)))
