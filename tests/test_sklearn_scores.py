"""fusedmlp.sklearn._scores against scikit-learn's accuracy_score and r2_score: the same
bits, for every kind of target the estimators score during early stopping (several
classes with string or integer labels, binary, multilabel; one or several outputs), with
and without sample weights, in float64 and float32, and at the edges (constant targets,
exact predictions, ties in the outputs)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer

from fusedmlp.sklearn import _scores


def _labels(kind, n, rng):
    if kind == "multilabel":
        return (rng.random((n, 3)) < 0.4).astype(int)
    k = 2 if kind == "binary" else 4
    names = np.array(["ant", "bee", "cat", "dog"])[:k]
    return names[rng.integers(0, k, n)] if kind.endswith("str") else rng.integers(0, k, n)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    kind=st.sampled_from(["multiclass", "multiclass-str", "binary", "binary-str", "multilabel"]),
    n=st.integers(1, 60),
    weighted=st.sampled_from([None, "float64", "float32"]),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_accuracy_is_scikit_learns(kind, n, weighted, dtype, seed):
    rng = np.random.default_rng(seed)
    y = _labels(kind, n, rng)
    lb = LabelBinarizer().fit(_labels(kind, 200, np.random.default_rng(0)))
    n_out = len(lb.classes_) if lb.y_type_ != "binary" else 1
    A = rng.random((n, n_out)).astype(dtype)
    A[: n // 3] = 0.5  # ties: argmax takes the first, > 0.5 is False
    w = None if weighted is None else rng.uniform(0, 3, n).astype(weighted)
    pred = lb.inverse_transform(A.ravel() if n_out == 1 else A)
    want = accuracy_score(y, pred, sample_weight=w)
    got = _scores.accuracy(_scores.class_verdicts(lb.y_type_, lb.classes_, y, A), w)
    assert got == want  # bit for bit


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(2, 60),
    n_out=st.integers(1, 3),
    weighted=st.sampled_from([None, "float64", "float32"]),
    dtype=st.sampled_from(["float64", "float32"]),
    edge=st.sampled_from([None, "constant", "exact", "constant-exact"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_r2_is_scikit_learns(n, n_out, weighted, dtype, edge, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, n_out)) * 3
    pred = (y + rng.normal(size=(n, n_out))).astype(dtype)
    if edge in ("constant", "constant-exact"):
        y[:, 0] = 1.5  # no variance: R^2 is 1 if predicted exactly, else 0
    if edge in ("exact", "constant-exact"):
        pred[:, 0] = y[:, 0]
    w = None if weighted is None else rng.uniform(0.1, 3, n).astype(weighted)
    y1 = y.ravel() if n_out == 1 else y
    p1 = pred.ravel() if n_out == 1 else pred
    assert _scores.r2(y1, p1, w) == r2_score(y1, p1, sample_weight=w)  # bit for bit


def test_r2_of_one_sample_is_scikit_learns_nan_and_warning():
    with pytest.warns(Warning, match="less than two samples"):
        assert np.isnan(_scores.r2(np.array([1.0]), np.array([2.0])))


@pytest.mark.parametrize("shape", [(40, 2), (40,)], ids=["two outputs", "one output"])
def test_r2_scorer_scores_prediction_after_prediction_as_r2_score(shape):
    # early stopping's scorer: y's terms computed once, then many predictions (one
    # output takes a path of its own)
    rng = np.random.default_rng(5)
    y, w = rng.normal(size=shape), rng.uniform(0.5, 2, 40)
    score = _scores.r2_scorer(y, w, np.float32)
    for _ in range(4):
        pred = (y + rng.normal(size=y.shape)).astype(np.float32)
        assert score(pred) == r2_score(y, pred, sample_weight=w)  # bit for bit
