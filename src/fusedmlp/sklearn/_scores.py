"""scikit-learn's accuracy_score and r2_score for early stopping, without their input
checks: the same arithmetic in the same order and dtype (for NumPy arrays scikit-learn
averages with ``np.average``), so the same bits.

Early stopping scores the held-out samples after every epoch. scikit-learn's metrics
check and classify their inputs first (``type_of_target``, ``check_array``, ...), which
costs 240-360 us a call on the 2-core VM, about ten epochs of a small network; the
estimators know their targets' kind already and call these instead. The tests hold them
to scikit-learn's own functions bit for bit (tests/test_sklearn_scores.py).
"""

from __future__ import annotations

import numpy as np


def _float_dtype(*arrays) -> np.dtype:
    """scikit-learn's ``_find_matching_floating_dtype``: the result type of the floating
    arrays among these, else float64."""
    floating = [a.dtype for a in arrays if a is not None and a.dtype.kind == "f"]
    return np.result_type(*floating) if floating else np.dtype(np.float64)


def accuracy(right: np.ndarray, weights: np.ndarray | None = None) -> float:
    """accuracy_score from the per-sample verdicts ``right`` (bool, (n,)): the share of
    samples predicted right, each counting its weight.

    >>> accuracy(np.array([True, False, True, True]))
    0.75
    """
    return float(np.average(right, weights=weights))


def class_verdicts(y_type: str, classes: np.ndarray, y, A: np.ndarray) -> np.ndarray:
    """Per sample, whether the outputs A (n, n_outputs) predict y's label as
    LabelBinarizer.inverse_transform does: the argmax for several classes, A > 0.5 for
    binary and multilabel targets (all of a sample's labels right, for multilabel)."""
    if y_type == "multilabel-indicator":
        return np.all(np.asarray(y) == (A > 0.5).astype(int), axis=1)
    truth = np.searchsorted(classes, y)
    if y_type == "multiclass":
        return A.argmax(axis=1) == truth
    return (A.ravel() > 0.5).astype(int) == truth


def r2(y, pred: np.ndarray, weights: np.ndarray | None = None) -> float:
    """r2_score(y, pred, sample_weight=weights) with its defaults (the outputs' R^2
    averaged; 1 where an output's targets are constant and predicted exactly, 0 where
    constant and not). Fewer than 2 samples: scikit-learn's own (NaN and a warning).

    >>> r2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    0.5
    """
    y, pred = np.asarray(y), np.asarray(pred)
    if y.shape[0] < 2:
        from sklearn.metrics import r2_score

        return float(r2_score(y, pred, sample_weight=weights))
    dtype = _float_dtype(y, pred, weights)
    y = y.astype(dtype).reshape(y.shape[0], -1)
    pred = pred.astype(dtype).reshape(pred.shape[0], -1)
    w = None if weights is None else np.asarray(weights).astype(dtype)
    weight = 1.0 if w is None else w[:, None]
    numerator = np.sum(weight * (y - pred) ** 2, axis=0)
    denominator = np.sum(weight * (y - np.average(y, axis=0, weights=w)) ** 2, axis=0)
    scores = np.ones(y.shape[1], dtype=numerator.dtype)
    valid = (denominator != 0) & (numerator != 0)
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[(numerator != 0) & (denominator == 0)] = 0.0
    return float(np.average(scores))
