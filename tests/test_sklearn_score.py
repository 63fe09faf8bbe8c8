"""The estimators' predict and score take shortcuts past scikit-learn's checks where the
input is plain (fusedmlp.sklearn._scores): they must give scikit-learn's numbers bit for
bit, and where the input is not plain, its very errors and warnings.

The yardstick is scikit-learn's own code on our fitted model: LabelBinarizer's
inverse_transform of predict_proba for predict, and ClassifierMixin.score /
RegressorMixin.score (accuracy_score, r2_score of our predict) for score.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression

from fusedmlp.sklearn import FusedMLPClassifier, FusedMLPRegressor

FIT = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)


def _fit(cls, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few epochs are enough here
        return cls(**FIT).fit(X, y)


@pytest.fixture(scope="module")
def models():
    X, y3 = make_classification(90, 6, n_informative=4, n_classes=3, random_state=0)
    _, y2 = make_classification(90, 6, random_state=1)
    Xm, ym = make_multilabel_classification(90, 6, n_classes=3, random_state=2)
    Xr, yr = make_regression(90, 6, n_targets=2, random_state=3)
    yr = yr / yr.std(0)
    names = np.array(["ant", "bee", "cat"])
    return {
        "multiclass": (_fit(FusedMLPClassifier, X, y3), X, y3),
        "multiclass-str": (_fit(FusedMLPClassifier, X, names[y3]), X, names[y3]),
        "binary": (_fit(FusedMLPClassifier, X, y2), X, y2),
        "binary-str": (_fit(FusedMLPClassifier, X, names[y2]), X, names[y2]),
        "multilabel": (_fit(FusedMLPClassifier, Xm, ym), Xm, ym),
        "regression": (_fit(FusedMLPRegressor, Xr, yr[:, 0]), Xr, yr[:, 0]),
        "regression2": (_fit(FusedMLPRegressor, Xr, yr), Xr, yr),
    }


CLASSIFIERS = ["multiclass", "multiclass-str", "binary", "binary-str", "multilabel"]


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_predict_is_the_label_binarizers_inverse(models, kind):
    model, X, _ = models[kind]
    A = model.predict_proba(X)
    if model.n_outputs_ == 1:
        A = A[:, 1]
    A[:5] = 0.5  # ties: the first class (argmax), the negative one (> 0.5 is False)
    expected = model._label_binarizer.inverse_transform(A)
    got = model._label(A if model.n_outputs_ != 1 else A[:, None])
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        model.predict(X), model._label_binarizer.inverse_transform(
            model.predict_proba(X)[:, 1] if model.n_outputs_ == 1 else model.predict_proba(X)
        ),
    )  # fmt: skip


def _weights(kind, n):
    rng = np.random.default_rng(5)
    return {
        None: None,
        "float": rng.uniform(0, 2, n),
        "float32": rng.uniform(0, 2, n).astype(np.float32),
        "int": rng.integers(0, 3, n),
        "list": rng.uniform(0, 2, n).tolist(),  # not plain: scikit-learn's path
    }[kind]


@pytest.mark.parametrize("weights", [None, "float", "float32", "int", "list"])
@pytest.mark.parametrize("kind", CLASSIFIERS + ["regression", "regression2"])
def test_score_is_scikit_learns_bit_for_bit(models, kind, weights):
    model, X, y = models[kind]
    w = _weights(weights, len(y))
    mixin = RegressorMixin if kind.startswith("regression") else ClassifierMixin
    expected = mixin.score(model, X, y, sample_weight=w)
    for y_as in (y, y.tolist()):  # a list takes scikit-learn's own path
        got = model.score(X, y_as, sample_weight=w)
        assert type(got) is float and got == expected, (got, expected)


@pytest.mark.parametrize(
    "kind, y, error",
    [
        ("multiclass", lambda y: y + 0.5, "continuous"),  # floats, not labels
        ("multiclass", lambda y: y[:-1], "inconsistent numbers of samples"),
        ("multiclass-str", lambda y: np.zeros(len(y), int), "Mix of label input types"),
        ("regression", lambda y: np.where(np.arange(len(y)) == 3, np.nan, y), "NaN"),
        ("regression", lambda y: y[:-1], "inconsistent numbers of samples"),
        ("regression2", lambda y: y[:, 0], "number of output"),
    ],
)
def test_score_of_bad_targets_raises_scikit_learns_error(models, kind, y, error):
    model, X, y0 = models[kind]
    mixin = RegressorMixin if kind.startswith("regression") else ClassifierMixin
    with pytest.raises(ValueError, match=error) as theirs:
        mixin.score(model, X, y(y0))
    with pytest.raises(ValueError, match=error) as ours:
        model.score(X, y(y0))
    assert str(ours.value) == str(theirs.value)


def test_score_with_weights_of_zero_sum_or_nan_is_scikit_learns(models):
    model, X, y = models["multiclass"]
    with pytest.raises(ZeroDivisionError):
        model.score(X, y, sample_weight=np.zeros(len(y)))
    bad = np.ones(len(y))
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN") as theirs:
        ClassifierMixin.score(model, X, y, sample_weight=bad)
    with pytest.raises(ValueError, match="NaN") as ours:
        model.score(X, y, sample_weight=bad)
    assert str(ours.value) == str(theirs.value)


def test_score_of_one_sample_regression_is_scikit_learns_nan_and_warning(models):
    model, X, y = models["regression"]
    with pytest.warns(Warning) as theirs:
        expected = RegressorMixin.score(model, X[:1], y[:1])
    with pytest.warns(Warning) as ours:
        got = model.score(X[:1], y[:1])
    assert np.isnan(got) and np.isnan(expected)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
