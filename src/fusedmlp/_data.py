"""Targets for every output, and the validation split: checked once, at the boundary.

- sigmoid: Y (n_y, m), or (m,) for one output, in [0, 1] for cross-entropy (as before);
- softmax: Y (K, m) one-hot or probabilities (every column >= 0 and summing to 1), or
  (m,) integer class indices 0..K-1, kept as they are (the kernels read them as one-hot;
  no K x m matrix is built), K the number of outputs;
- identity: Y (n_y, m), or (m,) for one output, any finite real numbers;
- exp (the Poisson loss): the same, every value >= 0 (counts or rates).

``split`` holds out a share of the samples for validation, stratified by class for
sigmoid and softmax outputs, drawn from the run's seed.
"""

from __future__ import annotations

import os

import numpy as np

from ._validation import _SCAN_COLUMNS, _real_array, check_X, check_XY
from .reference import REGRESSION

SUM_TOL = 1e-6  # how far from 1 a column of softmax targets may sum
_ONE_CLASS = (
    "softmax needs at least 2 outputs (classes); for one output use output='sigmoid' "
    "(two classes) or 'identity' (regression)."
)


def check_targets(X, Y, output: str, loss: str, *, p: dict | None = None, training=True):
    """(X, Y) checked for the output (and for the network p, from check_params, when
    given); Y as the backends take it (see the module docstring)."""
    n_x = None if p is None else p["W1"].shape[1]
    n_y = None if p is None else p["W2"].shape[0]
    if output == "softmax" and n_y is not None and n_y < 2:
        raise ValueError(_ONE_CLASS)
    if output == "softmax" and np.ndim(Y) == 1:
        X = check_X(X, n_x)
        return X, _class_indices(Y, X.shape[1], n_y)
    # only a sigmoid output cannot reach targets outside [0, 1]: warn for it alone
    sigmoid = output == "sigmoid"
    X, Y = check_XY(X, Y, loss if sigmoid else "mse", n_x, training=training and sigmoid)
    if n_y is not None and Y.shape[0] != n_y:
        raise ValueError(
            f"Y has {Y.shape[0]} rows but W2 is {p['W2'].shape}: {n_y} outputs. Give Y one "
            f"row per output, or parameters for {Y.shape[0]} outputs."
        )
    if output == "softmax":
        _check_distributions(Y)
    if output == "exp":
        _check_counts(Y)
    return X, Y


def _check_counts(Y: np.ndarray) -> None:
    """Targets of an exp output (the Poisson loss) are >= 0: its log(Y / A2) is not
    defined for a negative one."""
    first, count = None, 0
    for start in range(0, Y.shape[1], _SCAN_COLUMNS):  # slices: no mask the size of Y
        neg = Y[:, start : start + _SCAN_COLUMNS] < 0
        if first is None and neg.any():
            o, j = (int(i) for i in np.argwhere(neg)[0])
            first = (o, j + start)
        count += int(np.count_nonzero(neg))
    if count:
        o, j = first
        raise ValueError(
            f"output='exp' (the Poisson loss) needs targets >= 0 (counts or rates); Y[{o}, "
            f"{j}] is {Y[o, j]:.6g} ({count} negative values). Shift or transform the "
            "targets, or use output='identity' (squared error) for signed values."
        )


def is_dask(X) -> bool:
    """Whether X is a dask collection (told by its type's module: no import of dask)."""
    return type(X).__module__.split(".")[0] == "dask"


def on_cluster(X) -> bool:
    """Whether ``train``'s X asks for a dask cluster (fusedmlp.distributed): a dask
    array, or a list of shard paths."""
    if is_dask(X):
        return True
    paths = isinstance(X, (list, tuple)) and len(X) > 0
    return paths and all(isinstance(s, (str, os.PathLike)) for s in X)


def n_outputs(Y: np.ndarray, output: str) -> int:
    """The outputs a network needs for checked targets Y."""
    if output == "softmax" and Y.ndim == 1:
        return max(2, int(Y.max()) + 1)
    return Y.shape[0]


def _class_indices(y, m: int, n_y: int | None) -> np.ndarray:
    y = _real_array("Y", y)
    if y.shape != (m,):
        raise ValueError(f"class labels Y must have one entry per sample: ({m},), got {y.shape}.")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            bad = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            raise ValueError(
                f"class labels must be whole numbers 0..K-1, but Y[{bad}] = {y[bad]}; "
                "pass integer class indices (or one-hot columns, shape (K, m))."
            )
    elif y.dtype.kind not in "iub":
        raise TypeError(f"class labels must be integers, got dtype {y.dtype}.")
    y = y.astype(np.int64)
    top = n_y if n_y is not None else None
    if y.min() < 0 or (top is not None and y.max() >= top):
        bad = int(np.flatnonzero((y < 0) | (y >= (top if top is not None else 1 << 62)))[0])
        limit = f"0..{top - 1} (the network has {top} outputs)" if top else "0 or more"
        raise ValueError(f"class label Y[{bad}] = {y[bad]} is out of range: expected {limit}.")
    return y


def _check_distributions(Y: np.ndarray) -> None:
    """Every column of softmax targets is a distribution: >= 0, summing to 1."""
    if Y.shape[0] < 2:
        raise ValueError(_ONE_CLASS)
    if (Y < 0).any():
        bad = np.argwhere(Y < 0)[0]
        raise ValueError(
            f"softmax targets must be probabilities, but Y[{bad[0]}, {bad[1]}] = "
            f"{Y[tuple(bad)]} < 0; give one-hot columns or class indices (m,)."
        )
    sums = Y.sum(axis=0, dtype=np.float64)
    off = np.flatnonzero(np.abs(sums - 1) > SUM_TOL)
    if off.size:
        j = int(off[0])
        raise ValueError(
            f"softmax targets must sum to 1 in every column (sample), but column {j} "
            f"sums to {sums[j]:.6g} ({off.size} such columns); normalise them "
            "(Y / Y.sum(axis=0)) or give class indices (m,)."
        )


# ---------------------------------------------------------------------------
# the validation split


def _classes(Y: np.ndarray, output: str) -> np.ndarray | None:
    """The class of every sample, for stratifying; None for regression."""
    if output in REGRESSION:
        return None
    if Y.ndim == 1:
        return Y
    if output == "softmax":
        return Y.argmax(axis=0)
    # sigmoid: the pattern of thresholded outputs is the class
    bits = (Y > 0.5).astype(np.int64)
    return (bits * (1 << np.arange(Y.shape[0]))[:, None]).sum(axis=0)


def split(X, Y, fraction: float, seed: int, output: str) -> tuple:
    """(X_train, Y_train, X_val, Y_val): ``fraction`` of the samples held out.

    Stratified by class for sigmoid and softmax outputs (each class keeps its share in
    both parts; a class too small for both is refused), drawn from the seed.
    """
    train, val = split_index(Y, X.shape[1], fraction, seed, output)
    return take(X, train), take(Y, train), take(X, val), take(Y, val)


def take(A: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The samples idx of A: entries of a vector (m,), columns of a matrix (n, m)."""
    return A[idx] if A.ndim == 1 else A[:, idx]


def check_weights(w, m: int, dtype) -> np.ndarray | None:
    """Sample weights for ``train``: None, or (m,) finite, >= 0 and not all 0, as a
    C-contiguous array of the working dtype; a ValueError naming what is wrong."""
    if w is None:
        return None
    w = np.asarray(w)
    if w.shape != (m,) or w.dtype.kind not in "biuf":
        raise ValueError(
            f"sample_weight must be {m} real numbers, one per sample (a column of X), "
            f"got an array of shape {w.shape} and dtype {w.dtype}."
        )
    w = np.ascontiguousarray(w, dtype=dtype)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(
            f"sample_weight must be finite and >= 0; sample {bad[0]} has {w[bad[0]]} "
            f"({bad.size} such samples in all)."
        )
    if not w.any():
        raise ValueError("sample_weight is 0 for every sample: give some samples weight.")
    return w


def split_index(Y, m: int, fraction: float, seed: int, output: str) -> tuple:
    """(train, val): ``split``'s sample indices of the m samples of targets Y, each sorted
    (so both parts keep the samples' order); a distributed run draws the same ones."""
    rng = np.random.default_rng([seed, 0x5EED])
    classes = _classes(Y, output)
    if classes is None:
        order = rng.permutation(m)
        n_val = int(round(fraction * m))
        if not 0 < n_val < m:
            raise ValueError(
                f"validation_fraction={fraction} of {m} samples leaves {n_val} for "
                "validation; it needs at least one sample on each side."
            )
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    val_parts, train_parts = [], []
    for c in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        n_val = int(round(fraction * members.size))
        if not 0 < n_val < members.size:
            raise ValueError(
                f"validation_fraction={fraction} leaves class {c} ({members.size} "
                f"samples) with {n_val} for validation and {members.size - n_val} for "
                "training; every class needs samples on both sides: change the "
                "fraction or give more samples of that class."
            )
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))
