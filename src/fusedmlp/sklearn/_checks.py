"""scikit-learn's ``validate_data`` for the estimators, without its work where the input
is plain.

``validate_data`` looks for data frames of every kind it knows (through narwhals),
checks the arrays and sets or checks ``n_features_in_``: 107 us for wine's training
arrays and 63 us for its test samples on the 2-core VM, about a tenth of a small fit
with its score, and most of a prediction. Where X is a 2-D NumPy float64 or float32
array of finite values (and y a 1-D NumPy array of integers, or of finite numbers for
the regressor), it would return them unchanged and say nothing; then these functions
do only what it would set (``n_features_in_``, and no ``feature_names_in_``) and return
them. Anything else, including every input it would refuse, convert or warn about,
goes to ``validate_data`` itself, so its errors and warnings stay
(tests/test_sklearn_checks.py holds the two to each other).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

FLOATS = (np.float64, np.float32)  # the dtypes the estimators train in
_FLOAT_DTYPES = tuple(np.dtype(t) for t in FLOATS)


def _finite(a: np.ndarray) -> bool:
    """Whether a float array's entries are all finite, as scikit-learn tests it first:
    by their sum (an overflowing sum says no: the caller then asks scikit-learn)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum()))


def _plain_X(est, X, reset: bool) -> bool:
    if type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in _FLOAT_DTYPES:
        return False
    if X.shape[0] < 1 or X.shape[1] < 1:
        return False
    if not reset and (
        getattr(est, "n_features_in_", None) != X.shape[1] or hasattr(est, "feature_names_in_")
    ):
        return False
    return _finite(X)


def _plain_y(y, n: int, kinds: str) -> bool:
    if type(y) is not np.ndarray or y.ndim != 1 or y.shape[0] != n or y.dtype.kind not in kinds:
        return False
    return y.dtype.kind != "f" or _finite(y)


def checked_X(est, X, reset: bool = False):
    """``validate_data(est, X, accept_sparse=False, dtype=FLOATS, reset=reset)``."""
    if _plain_X(est, X, reset):
        if reset:
            _reset(est, X)
        return X
    return validate_data(est, X, accept_sparse=False, dtype=FLOATS, reset=reset)


def checked_X_y(est, X, y, reset: bool, y_kinds: str, **y_checks) -> tuple:
    """``validate_data(est, X, y, accept_sparse=False, dtype=FLOATS, reset=reset,
    **y_checks)``; ``y_kinds``: the dtype kinds of a plain y ("iu" for labels, "iuf"
    for the regressor's values).

    >>> from fusedmlp.sklearn import FusedMLPRegressor
    >>> est = FusedMLPRegressor()
    >>> X, y = checked_X_y(est, np.ones((3, 2)), np.arange(3.0), True, "iuf")
    >>> est.n_features_in_
    2
    """
    if _plain_X(est, X, reset) and _plain_y(y, X.shape[0], y_kinds):
        if reset:
            _reset(est, X)
        return X, y
    return validate_data(est, X, y, accept_sparse=False, dtype=FLOATS, reset=reset, **y_checks)


def _reset(est, X: np.ndarray) -> None:
    """What validate_data(reset=True) sets for an array without feature names."""
    est.n_features_in_ = X.shape[1]
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
