"""scikit-learn's accuracy_score and r2_score for early stopping, without their input
checks: the same arithmetic in the same order and dtype (for NumPy arrays scikit-learn
averages with ``np.average``), so the same bits.

Early stopping scores the held-out samples after every epoch. scikit-learn's metrics
check and classify their inputs first (``type_of_target``, ``check_array``, ...), which
costs 240-360 us a call on the 2-core VM, about ten epochs of a small network; the
estimators know their targets' kind already and call these instead. The tests hold them
to scikit-learn's own functions bit for bit (tests/test_sklearn_scores.py).

The estimators' ``score`` and ``predict`` take the same shortcuts where the input is
plain (``plain_labels``, ``plain_values``: NumPy arrays whose checks could not fail nor
change anything) and call scikit-learn's own functions otherwise, so its errors and
warnings stay. Measured on the 2-core VM, scoring wine's 54 test samples: 736 us through
accuracy_score and LabelBinarizer, 163-169 us with the shortcuts (and the prediction
plan of kernels.config.forward_plan), MLPClassifier's 566-572 us.
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
    if weights is None:  # np.average's sum of 0s and 1s is exact: the same quotient
        return int(np.count_nonzero(right)) / right.shape[0]
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
    return r2_scorer(y, weights, pred.dtype)(pred)


def r2_scorer(y, weights: np.ndarray | None, pred_dtype):
    """``score(pred) -> r2(y, pred, weights)`` for predictions of ``pred_dtype``, y's own
    terms (its deviations' weighted sum of squares) computed once: early stopping scores
    the same held-out y every epoch. y (n,) or (n, k), n >= 2.

    >>> score = r2_scorer(np.array([1.0, 2.0, 3.0]), None, np.float64)
    >>> score(np.array([1.0, 2.0, 4.0]))
    0.5
    """
    y = np.asarray(y)
    dtype = _float_dtype(y, np.empty(0, pred_dtype), weights)
    y = y.astype(dtype).reshape(y.shape[0], -1)
    w = None if weights is None else np.asarray(weights).astype(dtype)
    weight = 1.0 if w is None else w[:, None]
    denominator = np.sum(weight * (y - np.average(y, axis=0, weights=w)) ** 2, axis=0)

    def score(pred: np.ndarray) -> float:
        pred = np.asarray(pred).astype(dtype).reshape(pred.shape[0], -1)
        numerator = np.sum(weight * (y - pred) ** 2, axis=0)
        if numerator.shape[0] == 1:  # one output: the same steps on its two scalars
            num, den = numerator[0], denominator[0]  # (np.average of one score is it)
            return 1.0 if num == 0 else (0.0 if den == 0 else float(1 - num / den))
        scores = np.ones(y.shape[1], dtype=numerator.dtype)
        valid = (denominator != 0) & (numerator != 0)
        scores[valid] = 1 - numerator[valid] / denominator[valid]
        scores[(numerator != 0) & (denominator == 0)] = 0.0
        return float(np.average(scores))

    return score


def _plain_weights(w, n: int) -> bool:
    """Whether sample weights ``w`` pass scikit-learn's checks unchanged: None, or a
    finite 1-D NumPy array of n integers or floats."""
    if w is None:
        return True
    return (
        type(w) is np.ndarray
        and w.shape == (n,)
        and w.dtype.kind in "iuf"
        and (w.dtype.kind != "f" or bool(np.isfinite(w).all()))
    )


def plain_labels(y, pred: np.ndarray, weights) -> bool:
    """Whether accuracy_score(y, pred, sample_weight=weights) is ``accuracy(y == pred,
    weights)`` with nothing to check: y a 1-D NumPy array of as many labels as pred,
    both integers or both strings (a mix, a float y, an empty one, etc.: scikit-learn's
    own checks and errors)."""
    if type(y) is not np.ndarray or y.ndim != 1 or pred.ndim != 1:
        return False
    kinds = {y.dtype.kind, pred.dtype.kind}
    same = kinds <= {"i", "u"} or kinds == {"U"}
    return same and 0 < y.shape[0] == pred.shape[0] and _plain_weights(weights, y.shape[0])


def plain_values(y, pred: np.ndarray, weights) -> bool:
    """Whether r2_score(y, pred, sample_weight=weights) is ``r2(y, pred, weights)`` with
    nothing to check: y a NumPy array of numbers of pred's shape, at least 2 samples,
    y and pred finite (anything else: scikit-learn's own checks and errors)."""
    if type(y) is not np.ndarray or y.shape != pred.shape or y.dtype.kind not in "iuf":
        return False
    return (
        y.shape[0] >= 2
        and bool(np.isfinite(pred).all())
        and (y.dtype.kind != "f" or bool(np.isfinite(y).all()))
        and _plain_weights(weights, y.shape[0])
    )
