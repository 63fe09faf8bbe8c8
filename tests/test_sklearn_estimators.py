"""fusedmlp.sklearn against scikit-learn itself.

The yardstick is MLPClassifier / MLPRegressor fitted with the same parameters on the
same data: the loss curves and the fitted parameters must agree to 1e-9 relative in
float64. Both follow the same formulas in the same order of steps; what differs is the
order of the additions inside a step (BLAS against the fused kernels), about 1e-16
relative per step, which a few hundred steps leave far below 1e-9. Parameters near 0
are compared against the scale of their array (atol = 1e-9 x its largest magnitude).
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fusedmlp.sklearn import FusedMLPClassifier, FusedMLPRegressor

RTOL = 1e-9
SMALL = dict(hidden_layer_sizes=(7,), batch_size=32, max_iter=12, alpha=1e-3, random_state=0)


def _standard(X):
    return (X - X.mean(0)) / X.std(0)


@pytest.fixture(scope="module")
def data():
    X3, y3 = make_classification(150, 5, n_informative=3, n_classes=3, random_state=0)
    Xb, yb = make_classification(130, 4, n_informative=2, random_state=1)
    Xm, ym = make_multilabel_classification(120, 5, n_classes=3, random_state=2)
    Xr, yr = make_regression(140, 5, n_targets=1, noise=0.1, random_state=3)
    Xr2, yr2 = make_regression(140, 5, n_targets=2, noise=0.1, random_state=4)
    return {
        "multiclass": (_standard(X3), y3),
        "binary": (_standard(Xb), np.where(yb == 1, "yes", "no")),
        "multilabel": (_standard(Xm), ym),
        "regression": (_standard(Xr), yr / yr.std()),
        "regression2": (_standard(Xr2), yr2 / yr2.std(0)),
    }


def _pair(kind):
    if kind.startswith("regression"):
        return FusedMLPRegressor, MLPRegressor
    return FusedMLPClassifier, MLPClassifier


def _fit_both(kind, data, **kw):
    ours_cls, theirs_cls = _pair(kind)
    X, y = data[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**kw).fit(X, y)
        theirs = theirs_cls(**kw).fit(X, y)
    return ours, theirs


def assert_same_fit(ours, theirs, rtol=RTOL, curve=True):
    assert (ours.n_iter_, ours.t_) == (theirs.n_iter_, theirs.t_)
    assert ours.out_activation_ == theirs.out_activation_
    if curve:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):  # fmt: skip
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


# ---------------------------------------------------------------------------
# 1. the same numbers as scikit-learn


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_curves_and_parameters_match_scikit_learn(data, kind, solver, activation, shuffle):
    lr = 0.05 if solver == "sgd" else 0.01
    ours, theirs = _fit_both(
        kind, data, activation=activation, solver=solver, shuffle=shuffle,
        learning_rate_init=lr, **SMALL,
    )  # fmt: skip
    assert_same_fit(ours, theirs)
    X = data[kind][0]
    if kind == "regression":
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=RTOL, atol=1e-12)
    else:
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_multi_output_regression_parameters_match(data):
    # the steps agree; the loss scikit-learn reports averages the outputs' squared
    # errors, while its gradient (and so fusedmlp's) sums them: the curve is the sum's
    ours, theirs = _fit_both("regression2", data, solver="adam", learning_rate_init=0.01,
                             **SMALL)  # fmt: skip
    assert_same_fit(ours, theirs, curve=False)
    np.testing.assert_allclose(ours.predict(data["regression2"][0]),
                               theirs.predict(data["regression2"][0]), rtol=1e-8)  # fmt: skip


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_sgd_schedules_match(data, kind, schedule):
    kw = dict(SMALL, max_iter=40, tol=1e-2, n_iter_no_change=2)
    ours, theirs = _fit_both(kind, data, solver="sgd", learning_rate=schedule,
                             learning_rate_init=0.1, power_t=0.3, **kw)  # fmt: skip
    assert_same_fit(ours, theirs)
    assert ours._optimizer_rate() == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_early_stopping_matches(data, kind):
    ours, theirs = _fit_both(kind, data, early_stopping=True, validation_fraction=0.2,
                             n_iter_no_change=3, learning_rate_init=0.05,
                             **dict(SMALL, max_iter=60))  # fmt: skip
    assert_same_fit(ours, theirs)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=RTOL)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=RTOL)
    assert ours.best_loss_ is None and theirs.best_loss_ is None


def test_tol_stops_where_scikit_learn_stops(data):
    ours, theirs = _fit_both("multiclass", data, tol=0.05, n_iter_no_change=2,
                             learning_rate_init=0.02, **dict(SMALL, max_iter=100))  # fmt: skip
    assert ours.n_iter_ < 100
    assert_same_fit(ours, theirs)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=RTOL)


def test_warm_start_and_partial_fit_match(data):
    X, y = data["multiclass"]
    pairs = []
    for cls in (FusedMLPClassifier, MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = cls(warm_start=True, **dict(SMALL, max_iter=5)).fit(X, y)
            a.fit(X, y)  # five more epochs, a fresh optimizer (as scikit-learn)
            b = cls(**SMALL)
            for _ in range(4):
                b.partial_fit(X, y, classes=np.unique(y))
        pairs.append((a, b))
    (a1, b1), (a2, b2) = pairs
    assert len(a1.loss_curve_) == 10
    assert_same_fit(a1, a2)
    assert_same_fit(b1, b2)


def test_float32_trains_in_float32_and_follows_float64(data):
    X, y = data["multiclass"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f32 = FusedMLPClassifier(**SMALL).fit(X.astype(np.float32), y)
        f64 = FusedMLPClassifier(**SMALL).fit(X, y)
        forced = FusedMLPClassifier(dtype="float32", **SMALL).fit(X, y)
    assert f32.coefs_[0].dtype == np.float32 and forced.coefs_[0].dtype == np.float32
    # float32 rounding (about 6e-8 a step) over 60 steps of a well-conditioned fit
    np.testing.assert_allclose(f32.loss_curve_, f64.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(forced.loss_curve_, f32.loss_curve_, rtol=1e-6)


# ---------------------------------------------------------------------------
# 2. the scikit-learn surface


def test_predict_proba_and_log_proba(data):
    for kind in ("multiclass", "binary", "multilabel"):
        ours, theirs = _fit_both(kind, data, **SMALL)
        X = data[kind][0]
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8)
        np.testing.assert_allclose(
            ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-8
        )
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        assert ours.score(X, data[kind][1]) == theirs.score(X, data[kind][1])


def test_pipeline_grid_search_cross_val_clone_pickle(data):
    X, y = data["multiclass"]
    pipe = make_pipeline(StandardScaler(), FusedMLPClassifier(max_iter=30, random_state=0))
    grid = GridSearchCV(
        pipe, {"fusedmlpclassifier__hidden_layer_sizes": [(4,), (8,)],
               "fusedmlpclassifier__alpha": [1e-4, 1e-2]}, cv=3, n_jobs=2,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
        scores = cross_val_score(FusedMLPClassifier(max_iter=30, random_state=0), X, y, cv=3)
    assert grid.best_score_ > 0.5 and len(scores) == 3
    model = grid.best_estimator_
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    fresh = clone(model)
    assert not hasattr(fresh[-1], "coefs_")
    assert fresh.get_params()["fusedmlpclassifier__alpha"] == model[-1].alpha


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"solver": "lbfgs"}, "solver='lbfgs' is not supported"),
        ({"activation": "identity"}, "activation='identity' is not supported"),
        ({"hidden_layer_sizes": (5, 5)}, "has 2 hidden layers"),
        ({"hidden_layer_sizes": 0}, "hidden_layer_sizes must be one positive int"),
        ({"alpha": -1.0}, "The 'alpha' parameter of FusedMLPClassifier must be a float"),
        ({"momentum": 1.5}, "The 'momentum' parameter"),
        ({"batch_size": 0}, "The 'batch_size' parameter"),
        ({"max_iter": 0}, "The 'max_iter' parameter"),
        ({"solver": "newton"}, "The 'solver' parameter"),
        ({"dtype": "int8"}, "The 'dtype' parameter"),
        ({"dtype": "no such type"}, "The 'dtype' parameter"),
        ({"n_threads": 0}, "The 'n_threads' parameter"),
        ({"n_threads": 10_000}, "The 'n_threads' parameter .* in the range \\[1, "),
        ({"max_fun": 0}, "The 'max_fun' parameter of FusedMLPClassifier must be an int"),
    ],
)
def test_bad_parameters_are_refused_at_fit(data, kw, words):
    X, y = data["multiclass"]
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        FusedMLPClassifier(**kw).fit(X, y)


def test_parameters_are_scikit_learns_in_its_order(data):
    """Every parameter of MLPClassifier / MLPRegressor, in the same order (the regressor's
    ``loss`` first, as there), so that positional arguments and get_params carry over;
    ``max_fun`` (L-BFGS's) is kept (the Poisson loss: tests/test_poisson.py)."""
    import inspect

    for ours, theirs in ((FusedMLPClassifier, MLPClassifier), (FusedMLPRegressor, MLPRegressor)):
        names = list(inspect.signature(theirs).parameters)
        assert list(inspect.signature(ours).parameters)[: len(names)] == names
        assert ours(**theirs(hidden_layer_sizes=(5,), max_fun=7).get_params()).max_fun == 7
    X, y = data["regression"]
    with pytest.raises(ValueError, match=r"The 'loss' parameter of FusedMLPRegressor must be"):
        FusedMLPRegressor(loss="absolute_error").fit(X, y)
    reg = FusedMLPRegressor("squared_error", (6,), max_iter=3, random_state=0)
    assert reg.hidden_layer_sizes == (6,) and reg.loss == "squared_error"


def test_partial_fit_refuses_early_stopping_and_needs_classes(data):
    X, y = data["multiclass"]
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        FusedMLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        FusedMLPClassifier().partial_fit(X, y)


def test_continuing_with_another_shape_is_refused_clearly(data):
    # warm_start and partial_fit continue the same network: other targets or another
    # width are named, never an internal shape error
    X, y = data["regression2"]
    model = FusedMLPRegressor(**dict(SMALL, max_iter=2, warm_start=True))
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y[:, 0])
    with pytest.raises(ValueError, match="1 outputs; got 5 features, .* and 2 outputs"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="7 hidden units and 1 outputs; got 5 features, "
                                         "hidden_layer_sizes=9"):  # fmt: skip
        model.set_params(hidden_layer_sizes=(9,)).fit(X, y[:, 0])
    partial = FusedMLPRegressor(**SMALL).partial_fit(X, y[:, 0])
    with pytest.raises(ValueError, match="and 2 outputs"):
        partial.partial_fit(X, y)


def test_sparse_input_is_refused_clearly(data):
    from scipy import sparse

    X, y = data["multiclass"]
    with pytest.raises(TypeError, match="Sparse data was passed"):
        FusedMLPClassifier(max_iter=2).fit(sparse.csr_matrix(X), y)


# ---------------------------------------------------------------------------
# 3. scikit-learn's own estimator checks, every one (no expected failures)


@parametrize_with_checks(
    [FusedMLPClassifier(), FusedMLPRegressor(), FusedMLPRegressor(loss="poisson")]
)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_feature_names_from_a_data_frame(data):
    import pandas as pd

    X, y = data["multiclass"]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = FusedMLPClassifier(**SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(frame, y)
    assert list(model.feature_names_in_) == list(frame.columns)
    assert model.n_features_in_ == 5
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)


# ---------------------------------------------------------------------------
# 4. messages, warnings, interrupts, failures


def test_verbose_output_is_scikit_learn_s(data, capsys):
    kw = dict(SMALL, max_iter=40, verbose=True, early_stopping=True, n_iter_no_change=2,
              solver="sgd", learning_rate="adaptive", learning_rate_init=0.1)  # fmt: skip
    ours, theirs = _fit_both("multiclass", data, **kw)
    out = capsys.readouterr().out.splitlines()
    half = len(out) // 2
    assert out[:half] == out[half:] and "Validation score:" in out[1]
    assert ours.n_iter_ == theirs.n_iter_


def test_convergence_warning_where_scikit_learn_gives_one(data):
    X, y = data["multiclass"]
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        FusedMLPClassifier(**dict(SMALL, max_iter=3)).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stops on tol: no warning
        FusedMLPClassifier(**dict(SMALL, max_iter=500, tol=0.1, n_iter_no_change=1)).fit(X, y)


def _interrupted_fit(data, monkeypatch, press):
    """A 50-epoch fit whose kernel calls go through press(call number, real call), and
    the sizes of the calls it made."""
    from fusedmlp.sklearn import _loop

    X, y = data["multiclass"]
    real, calls = _loop.Loop._call, []

    def call(self, k, orders):
        calls.append(k)
        return press(len(calls), lambda: real(self, k, orders))

    monkeypatch.setattr(_loop.Loop, "_call", call)
    model = FusedMLPClassifier(**dict(SMALL, max_iter=50))
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        model.fit(X, y)
    monkeypatch.setattr(_loop.Loop, "_call", real)
    return model, calls


def _assert_is_a_fit_of_its_epochs(model, data):
    """model equals a fresh fit of exactly model.n_iter_ epochs, curve and parameters."""
    X, y = data["multiclass"]
    done = FusedMLPClassifier(**dict(SMALL, max_iter=model.n_iter_))
    with pytest.warns(ConvergenceWarning):
        done.fit(X, y)
    assert model.loss_curve_ == done.loss_curve_
    for a, b in zip(model.coefs_ + model.intercepts_, done.coefs_ + done.intercepts_,
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_keeps_the_epochs_done(data, monkeypatch):
    def press(n, call):
        if n == 3:
            raise KeyboardInterrupt
        return call()

    model, calls = _interrupted_fit(data, monkeypatch, press)
    assert model.n_iter_ == sum(calls[:2]) > 0
    _assert_is_a_fit_of_its_epochs(model, data)


def test_a_real_sigint_ends_the_fit_after_the_running_call(data, monkeypatch):
    # the signal lands while a call runs: its epochs are kept and recorded with the
    # parameters they produced, then training stops (as after Ctrl-C at a terminal)
    import signal

    def press(n, call):
        if n == 2:
            signal.raise_signal(signal.SIGINT)
        return call()

    model, calls = _interrupted_fit(data, monkeypatch, press)
    assert len(calls) == 2 and model.n_iter_ == sum(calls) == len(model.loss_curve_)
    _assert_is_a_fit_of_its_epochs(model, data)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_epochs_per_call_change_no_bit(data, kind, monkeypatch):
    # many epochs per kernel call (the default) against one per call (CALL_S = 0), with
    # a stop on tol inside a call; and the random stream left where scikit-learn's is
    from fusedmlp.sklearn import _loop

    X, y = data[kind]
    cls, theirs_cls = _pair(kind)
    kw = dict(SMALL, max_iter=300, tol=1e-3, n_iter_no_change=3, solver="sgd",
              learning_rate="adaptive", learning_rate_init=0.05)  # fmt: skip
    streams = [np.random.RandomState(5) for _ in range(3)]
    many = cls(**dict(kw, random_state=streams[0])).fit(X, y)
    monkeypatch.setattr(_loop, "CALL_S", 0.0)
    one = cls(**dict(kw, random_state=streams[1])).fit(X, y)
    theirs = theirs_cls(**dict(kw, random_state=streams[2])).fit(X, y)
    assert 3 < many.n_iter_ < 300
    assert many.loss_curve_ == one.loss_curve_
    for a, b in zip(many.coefs_ + many.intercepts_, one.coefs_ + one.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert_same_fit(many, theirs)
    assert many._optimizer_rate() == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    assert streams[0].random() == streams[1].random() == streams[2].random()


def test_non_finite_training_is_an_error_and_keeps_finite_weights(data):
    X, y = data["regression"]
    model = FusedMLPRegressor(**dict(SMALL, solver="sgd", learning_rate_init=10.0))
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        model.fit(X * 1e150, y * 1e150)
    assert all(np.isfinite(c).all() for c in model.coefs_ + model.intercepts_)
