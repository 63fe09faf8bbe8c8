"""What bench/test_sklearn.py times: FusedMLPClassifier / FusedMLPRegressor against
scikit-learn's MLPClassifier / MLPRegressor with the same parameters, on scikit-learn's
bundled data sets. Plain functions returning a ``run()`` closure, as in workloads.py;
tests/test_bench_smoke.py runs each once, small.

- ``DATASETS``: digits, wine and iris (classifiers), diabetes (the regressor); each
  split 70/30 (stratified for classes, random_state 0) and standardised with the
  training part's mean and deviation (the regressor's target too).
  ``POISSON`` ("diabetes-poisson"): the same split of diabetes for the Poisson loss
  (``loss="poisson"``), its target (> 0) divided by the training part's mean.
- ``make_fit``: one fit with 64 hidden relu units, the given solver and otherwise
  scikit-learn's defaults (batches of min(200, n), at most 200 epochs, tol 1e-4), on
  the data in the given dtype, optionally with sample weights (``weights``); ``run()``
  returns the test score (accuracy or R^2) and the epochs run.
- ``make_predict``: a model fitted as ``make_fit`` fits it (adam, float64), then
  ``run()`` predicts the test split, or scores it (``score``: predict, then accuracy or
  R^2), and returns what it gave.
- ``make_grid``: GridSearchCV over 24 settings on digits (3 folds, n_jobs=1 for both).
"""

from __future__ import annotations

import functools
import warnings

DATASETS = ("digits", "wine", "iris", "diabetes")
POISSON = "diabetes-poisson"
HIDDEN = (64,)
GRID = {
    "hidden_layer_sizes": [(32,), (64,), (100,)],
    "alpha": [1e-4, 1e-3],
    "learning_rate_init": [1e-3, 1e-2],
    "solver": ["adam", "sgd"],
}  # 3 x 2 x 2 x 2 = 24 settings


@functools.cache
def load(name: str, dtype: str = "float64"):
    """(X_train, X_test, y_train, y_test), standardised, X in dtype."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    poisson = name == POISSON
    X, y = getattr(datasets, "load_diabetes" if poisson else f"load_{name}")(return_X_y=True)
    regression = name.startswith("diabetes")
    parts = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=None if regression else y
    )
    Xtr, Xte, ytr, yte = parts
    mean, std = Xtr.mean(0), Xtr.std(0)
    std[std == 0] = 1.0
    Xtr, Xte = ((Xtr - mean) / std).astype(dtype), ((Xte - mean) / std).astype(dtype)
    if poisson:  # rates of about 1, all > 0
        ytr, yte = ytr / ytr.mean(), yte / ytr.mean()
    elif regression:
        m, s = ytr.mean(), ytr.std()
        ytr, yte = (ytr - m) / s, (yte - m) / s
    return Xtr, Xte, ytr, yte


def estimator(name: str, impl: str, **params):
    """The estimator of data set ``name`` from fusedmlp ("fused") or scikit-learn."""
    regression = name.startswith("diabetes")
    if name == POISSON:
        params = {"loss": "poisson", **params}
    if impl == "fused":
        from fusedmlp.sklearn import FusedMLPClassifier, FusedMLPRegressor

        cls = FusedMLPRegressor if regression else FusedMLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPRegressor if regression else MLPClassifier
    return cls(**params)


def weights(name: str, y):
    """Sample weights for the weighted fits: the classes balanced (scikit-learn's
    "balanced" weights, n / (k n_c)) for the classifiers, uniform on [0.5, 2) drawn
    from seed 0 for the regressor."""
    import numpy as np
    from sklearn.utils.class_weight import compute_sample_weight

    if name.startswith("diabetes"):
        return np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    return compute_sample_weight("balanced", y)


def make_fit(
    name: str, impl: str, solver: str, dtype: str = "float64", weighted: bool = False, **params
):
    """run() -> (test score, epochs): one fit from scratch (with ``weighted``, given the
    sample weights of ``weights``; the test score is then weighted too)."""
    from sklearn.exceptions import ConvergenceWarning

    Xtr, Xte, ytr, yte = load(name, dtype)
    params = dict({"hidden_layer_sizes": HIDDEN, "solver": solver, "random_state": 0}, **params)
    w_tr, w_te = (weights(name, ytr), weights(name, yte)) if weighted else (None, None)

    def run():
        model = estimator(name, impl, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xtr, ytr, sample_weight=w_tr)
        return float(model.score(Xte, yte, sample_weight=w_te)), model.n_iter_

    return run


def make_predict(name: str, impl: str, what: str, **params):
    """run() -> predict(X_test) (``what`` "predict") or score(X_test, y_test) ("score")
    of one model, fitted once here (64 relu units, adam, float64)."""
    from sklearn.exceptions import ConvergenceWarning

    Xtr, Xte, ytr, yte = load(name)
    params = dict({"hidden_layer_sizes": HIDDEN, "random_state": 0}, **params)
    model = estimator(name, impl, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xtr, ytr)
    if what == "predict":
        return lambda: model.predict(Xte)
    return lambda: model.score(Xte, yte)


def make_grid(impl: str, grid: dict | None = None, max_iter: int = 200):
    """run() -> (best setting, its cross-validated score): GridSearchCV on digits."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    Xtr, _, ytr, _ = load("digits")
    search = GridSearchCV(
        estimator("digits", impl, random_state=0, max_iter=max_iter),
        GRID if grid is None else grid, cv=3, n_jobs=1,
    )  # fmt: skip

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(Xtr, ytr)
        return search.best_params_, float(search.best_score_)

    return run
