"""The estimators' input checks (fusedmlp/sklearn/_checks.py) against scikit-learn's
``validate_data``: for plain arrays the same arrays back and the same fitted attributes
without its work; for everything else its own result, errors and warnings, because it
is what runs."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.validation import validate_data

from fusedmlp.sklearn import FusedMLPClassifier, FusedMLPRegressor, _checks

FLOATS = (np.float64, np.float32)
rng = np.random.default_rng(0)
X = rng.normal(size=(20, 3))


def _outcome(fn):
    """(result or None, (error type, message) or None, warning messages)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            out, err = fn(), None
        except Exception as exc:  # noqa: BLE001 (compared below, whatever it is)
            out, err = None, (type(exc), str(exc))
    return out, err, [str(w.message) for w in seen]


def _same(a, b):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and np.array_equal(a, b) and a.dtype == b.dtype


def _fitted_state(est):
    return {k: v for k, v in vars(est).items() if k in ("n_features_in_", "feature_names_in_")}


def _compare(make, call_ours, call_theirs):
    ours, theirs = make(), make()
    a = _outcome(lambda: call_ours(ours))
    b = _outcome(lambda: call_theirs(theirs))
    assert a[1] == b[1] and a[2] == b[2]
    assert _same(a[0], b[0])
    assert repr(_fitted_state(ours)) == repr(_fitted_state(theirs))
    return a


def _fresh(cls):
    return cls


def _fitted_on_frame(cls):
    def make():
        est = cls(hidden_layer_sizes=(3,), max_iter=2)
        frame = pd.DataFrame(X, columns=["a", "b", "c"])
        y = (X[:, 0] > 0).astype(int) if cls is FusedMLPClassifier else X[:, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return est.fit(frame, y)

    return make


def _fitted_on_array(cls, n_features=3):
    def make():
        est = cls(hidden_layer_sizes=(3,), max_iter=2)
        Xf = rng.normal(size=(20, n_features))
        y = (Xf[:, 0] > 0).astype(int) if cls is FusedMLPClassifier else Xf[:, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return est.fit(Xf, y)

    return make


def _xs():
    big = np.full((4, 3), 1e308)  # finite, but its sum overflows: scikit-learn decides
    nan, inf = X.copy(), X.copy()
    nan[3, 1], inf[5, 2] = np.nan, np.inf
    return {
        "float64": X,
        "float32": X.astype(np.float32),
        "fortran": np.asfortranarray(X),
        "big": big,
        "nan": nan,
        "inf": inf,
        "ints": np.arange(60).reshape(20, 3),
        "list": X.tolist(),
        "1-D": X[:, 0],
        "no samples": np.empty((0, 3)),
        "no features": np.empty((20, 0)),
        "frame": pd.DataFrame(X, columns=["a", "b", "c"]),
        "2 features": X[:, :2].copy(),
        "float16": X.astype(np.float16),
        "memmap-like subclass": X.view(np.matrix),
    }


XS = _xs()


@pytest.mark.parametrize("name", list(XS))
@pytest.mark.parametrize("cls", [FusedMLPClassifier, FusedMLPRegressor])
@pytest.mark.parametrize("state", ["fresh", "fitted on a frame", "fitted on an array"])
def test_predict_checks_are_validate_datas(name, cls, state):
    make = {
        "fresh": lambda: cls(),
        "fitted on a frame": _fitted_on_frame(cls),
        "fitted on an array": _fitted_on_array(cls),
    }[state]
    Xq = XS[name]
    _compare(
        make,
        lambda e: _checks.checked_X(e, Xq),
        lambda e: validate_data(e, Xq, accept_sparse=False, dtype=FLOATS, reset=False),
    )


def _ys(n):
    labels = (np.arange(n) % 3).astype(np.int64)
    nan = np.linspace(0, 1, n)
    nan[2] = np.nan
    return {
        "int labels": labels,
        "uint8 labels": labels.astype(np.uint8),
        "floats": np.linspace(0, 1, n),
        "float labels": labels.astype(float),
        "nan": nan,
        "strings": np.array(["a", "b"] * (n // 2)),
        "column": labels.reshape(-1, 1),
        "two columns": np.stack([labels, labels], axis=1),
        "short": labels[:-1],
        "list": labels.tolist(),
        "objects": labels.astype(object),
        "bools": labels > 0,
    }


@pytest.mark.parametrize("y_name", list(_ys(20)))
@pytest.mark.parametrize("x_name", ["float64", "float32", "nan", "list", "frame", "2 features"])
@pytest.mark.parametrize("cls", [FusedMLPClassifier, FusedMLPRegressor])
@pytest.mark.parametrize("reset", [True, False])
def test_fit_checks_are_validate_datas(y_name, x_name, cls, reset):
    Xq, y = XS[x_name], _ys(20)[y_name]
    make = _fitted_on_frame(cls) if reset else _fitted_on_array(cls)
    _compare(
        make,
        lambda e: _checks.checked_X_y(e, Xq, y, reset, e._Y_KINDS, **e._Y_CHECKS),
        lambda e: validate_data(
            e, Xq, y, accept_sparse=False, dtype=FLOATS, reset=reset, **e._Y_CHECKS
        ),
    )


def test_plain_input_comes_back_itself_without_validate_data(monkeypatch):
    est = FusedMLPRegressor()
    y = np.linspace(0, 1, 20)

    def refuse(*args, **kwargs):
        raise AssertionError("validate_data ran")

    monkeypatch.setattr(_checks, "validate_data", refuse)
    Xo, yo = _checks.checked_X_y(est, X, y, True, "iuf")
    assert Xo is X and yo is y and est.n_features_in_ == 3
    assert _checks.checked_X(est, X) is X
    with pytest.raises(AssertionError, match="validate_data ran"):
        _checks.checked_X(est, X[:, :2])  # a mismatch is scikit-learn's to report
