"""Validation on held-out samples during training: the losses and scores per epoch, early
stopping on the score, and the parameters of the best epoch.

After every epoch the driver calls ``Holdout.record(epoch, params)``, which evaluates
the parameters just updated on the held-out samples: the loss (the training loss's
formula without the L2 term: a measure of fit, not of the weights) and the score,
accuracy for sigmoid and softmax outputs (as ``fusedmlp.accuracy``) or R^2 for identity
and exp (1 - residual / total sum of squares, averaged over the outputs, as scikit-learn's
``r2_score``); with sample weights, each held-out sample counts its weight in all three,
as scikit-learn's early stopping scores them. As in scikit-learn, an epoch improves
when its score beats the best so far by more than ``tol``; after ``patience`` epochs
in a row without one, training stops, and the parameters of the best-scoring epoch are
what the run returns.
"""

from __future__ import annotations

import math

import numpy as np

from . import _compiled, reference

DEFAULT_TOL = 1e-4  # scikit-learn's, when the run gives none


class Holdout:
    """The held-out samples Xv (n_x, m_v), Yv and the record of their scores.

    ``history``: (val_losses, val_scores) of epochs run before (a resumed run), so that
    the best score and the patience count continue where they were; the best parameters
    of a resumed run are those it resumes from (what the earlier run returned).
    """

    def __init__(self, Xv, Yv, settings, backend: str, history=((), ()), weights=None) -> None:
        self.Xv, self.Yv, self.s, self.backend = Xv, Yv, settings, backend
        self.weights = weights  # of the held-out samples, or None
        self.tol = DEFAULT_TOL if settings.tol is None else settings.tol
        self.patience = settings.patience
        self.losses = [float(v) for v in history[0]]
        self.scores = [float(v) for v in history[1]]
        self.best_score, self.best_epoch, self.best = -math.inf, None, None
        self.count = 0
        for epoch, score in enumerate(self.scores):
            self._judge(epoch, score)
        self.best = None  # the parameters resumed from stand for the best so far

    def record(self, epoch: int, p: dict) -> bool:
        """Evaluate p after epoch ``epoch``; True when training should stop."""
        loss, score = self.evaluate(p)
        self.losses.append(loss)
        self.scores.append(score)
        if self._judge(epoch, score):
            self.best = {k: v.copy() for k, v in p.items()}
        return self.count >= self.patience

    def _judge(self, epoch: int, score: float) -> bool:
        """Update the count and the best; True when ``score`` is the best so far."""
        if score > self.best_score + self.tol:
            self.count = 0
        else:  # a NaN score fails too
            self.count += 1
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            return True
        return False

    def restore_best(self, p: dict) -> None:
        """Put the best epoch's parameters into p's arrays (when it was recorded here)."""
        if self.best is not None:
            for k in p:
                p[k][...] = self.best[k]

    def evaluate(self, p: dict) -> tuple[float, float]:
        """(loss, score) of p on the held-out samples."""
        s, X, Y, w = self.s, self.Xv, self.Yv, self.weights
        with np.errstate(all="ignore"):  # a diverging run gives NaN scores, not warnings
            if self.backend == "numba":
                loss = _compiled.loss_and_grads(
                    p, X, Y, s.activation, s.loss, s.output, weights=w
                )[0]
                A2 = _compiled.predict_proba(p, X, s.activation, s.output)
            else:
                Yd = reference.one_hot(Y, p["W2"].shape[0], X.dtype) if Y.ndim == 1 else Y
                cache = reference.forward(p, X, s.activation, s.output)  # one pass for both
                loss = reference.cost(cache, Yd, s.loss, s.output, weights=w)
                A2 = cache["A2"]
            return float(loss), score(A2, Y, s.output, w)


def score(A2: np.ndarray, Y: np.ndarray, output: str, weights=None) -> float:
    """Accuracy (sigmoid, softmax) or mean R^2 over the outputs (identity, exp) of A2;
    with ``weights`` (m,), each sample counts its weight (scikit-learn's sample_weight).

    >>> score(np.array([[0.2, 0.9, 0.4]]), np.array([[0.0, 1.0, 1.0]]), "sigmoid")
    0.6666666666666666
    >>> score(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 2.0, 4.0]]), "identity")
    0.7857142857142857
    """
    if output == "softmax":
        labels = Y if Y.ndim == 1 else Y.argmax(axis=0)
        right = A2.argmax(axis=0) == labels
    elif output == "sigmoid":
        right = (A2 > 0.5) == (Y > 0.5)
        if weights is not None:  # every entry of a sample counts the sample's weight
            right = right.mean(axis=0)
    else:
        return r2(A2, Y, weights)
    return float(np.mean(right) if weights is None else np.average(right, weights=weights))


def r2(A2: np.ndarray, Y: np.ndarray, weights=None) -> float:
    """The coefficient of determination, averaged over the outputs (rows): for each,
    1 - sum (Y - A2)^2 / sum (Y - mean Y)^2 (1.0 when Y is constant and predicted
    exactly, 0.0 when constant and not, as scikit-learn); with ``weights`` (m,), each
    sample's terms and the mean weighted, as scikit-learn's r2_score(sample_weight=)."""
    Y = np.asarray(Y, np.float64)
    A2 = np.asarray(A2, np.float64)
    if weights is None:
        res = ((Y - A2) ** 2).sum(axis=1)
        tot = ((Y - Y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    else:
        w = np.asarray(weights, np.float64)
        res = (w * (Y - A2) ** 2).sum(axis=1)
        tot = (w * (Y - np.average(Y, axis=1, weights=w)[:, None]) ** 2).sum(axis=1)
    each = np.where(tot > 0, 1 - res / np.where(tot > 0, tot, 1), np.where(res == 0, 1.0, 0.0))
    return float(each.mean())
