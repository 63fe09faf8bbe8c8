"""The exp output with the Poisson loss (half the Poisson deviance): the trainer on both
backends, prediction and scoring, bad input, and FusedMLPRegressor(loss="poisson")
against scikit-learn's MLPRegressor(loss="poisson").

The reference's gradients against finite differences, the kernels against the reference
(every activation, both dtypes, narrow and wide blocks, weights) and gradcheck's hints run
with the other outputs: tests/test_reference.py, test_outputs.py, test_sample_weight.py,
test_trainer_weights.py and test_diagnostics_outputs.py take every pair of
reference.OUTPUT_LOSSES. Tolerances as there: numba against numpy 1e-10 in float64 (the
same arithmetic summed in another order), 1e-9 against scikit-learn (its own tests' bound
for the estimators; measured about 1e-14).
"""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from test_sample_weight import _assert_same as same_fit
from test_sample_weight import _fit_pair as fit_both

import fusedmlp
from fusedmlp import reference
from fusedmlp.sklearn import FusedMLPRegressor


def _counts(m=300, n_y=1, seed=0):
    """(X (3, m), Y (n_y, m)): counts drawn from rates exp(linear in X), zeros among them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, m))
    rate = np.exp(0.6 * X[:1] - 0.4 * X[1:2] + 0.2 * np.arange(n_y)[:, None])
    return X, rng.poisson(rate).astype(float)


OPTIONS = dict(hidden=8, activation="tanh", output="exp", optimizer="adam", lr=0.01, seed=1)


def test_the_loss_is_half_the_poisson_deviance():
    """reference.cost against the definition written out here: mean over the samples of
    Y log(Y / A2) - Y + A2 (0 log 0 = 0), summed over the outputs; and sklearn's value."""
    from sklearn.metrics import mean_poisson_deviance

    X, Y = _counts(n_y=2)
    p = fusedmlp.init_params(3, 5, 2, seed=0)
    cache = reference.forward(p, X, "relu", "exp")
    A2 = cache["A2"]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(Y > 0, Y * np.log(Y / A2), 0.0) - Y + A2
    want = terms.sum() / X.shape[1]
    assert reference.cost(cache, Y, "poisson", "exp") == pytest.approx(want, rel=1e-13)
    half = sum(mean_poisson_deviance(Y[o], A2[o]) / 2 for o in range(2))
    assert reference.cost(cache, Y, "poisson", "exp") == pytest.approx(half, rel=1e-12)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
@pytest.mark.parametrize("batch_size", [None, 64])
@pytest.mark.parametrize("n_y", [1, 3])
def test_both_backends_train_the_same_run(dtype, rtol, batch_size, n_y):
    """float32: the kernels sum in float64, the reference in float32 (as in
    test_training_options.py)."""
    X, Y = _counts(n_y=n_y)
    kw = dict(OPTIONS, epochs=40, batch_size=batch_size, alpha=0.01)
    a = fusedmlp.train(X.astype(dtype), Y, **kw)
    b = fusedmlp.train(X.astype(dtype), Y, backend="numpy", **kw)
    assert a.settings.loss == "poisson"  # the exp output's default
    np.testing.assert_allclose(a.losses, b.losses, rtol=rtol)
    for key in a.params:
        scale = np.abs(b.params[key]).max()
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=rtol, atol=rtol * scale)
    assert a.losses[-1] < a.losses[0]


def test_predict_is_the_rate_and_score_is_r2(tmp_path):
    X, Y = _counts(m=400, n_y=2)
    res = fusedmlp.train(X, Y, epochs=300, **OPTIONS)
    A2 = reference.predict_proba(res.params, X, "tanh", "exp")
    pred = res.predict(X)
    assert pred.shape == (2, 400) and (pred > 0).all()
    np.testing.assert_allclose(pred, A2, rtol=1e-12)
    r2 = r2_score(Y.T, A2.T)
    assert r2 > 0.2  # the rates explain part of the counts' spread
    assert res.score(X, Y) == pytest.approx(r2, rel=1e-10)
    assert fusedmlp.score(res.params, X, Y, activation="tanh", output="exp") == pytest.approx(
        r2, rel=1e-10
    )
    with pytest.raises(ValueError, match="an exp output predicts values: use fusedmlp.score"):
        fusedmlp.accuracy(res.params, X, Y, activation="tanh", output="exp")
    back = fusedmlp.load(fusedmlp.save(tmp_path / "exp.npz", res))
    assert (back.output, back.settings.loss) == ("exp", "poisson")
    np.testing.assert_array_equal(back.predict(X), pred)  # no flags repeated


def test_validation_scores_r2_without_stratifying():
    X, Y = _counts(m=400)
    kw = dict(OPTIONS, epochs=30, validation_fraction=0.25, patience=100)
    a = fusedmlp.train(X, Y, **kw)
    b = fusedmlp.train(X, Y, backend="numpy", **kw)
    np.testing.assert_allclose(a.val_losses, b.val_losses, rtol=1e-10)
    np.testing.assert_allclose(a.val_scores, b.val_scores, rtol=1e-10)
    assert a.val_scores[-1] > a.val_scores[0]


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(loss="mse"), "loss='mse' does not go with output='exp': use loss='poisson'"),
        (dict(output="identity", loss="poisson"), "does not go with output='identity'"),
        (dict(output="sigmoid", loss="poisson"), "does not go with output='sigmoid'"),
    ],
)
def test_mismatched_pairs_are_refused(kw, words):
    X, Y = _counts(m=20)
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        fusedmlp.train(X, Y, **{**OPTIONS, "epochs": 1, **kw})


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_negative_targets_are_refused_before_training(backend):
    X, Y = _counts(m=50)
    Y[0, 7] = -2.0
    with pytest.raises(ValueError, match=r"needs targets >= 0.*Y\[0, 7\] is -2 \(1 negative"):
        fusedmlp.train(X, Y, epochs=1, backend=backend, **OPTIONS)


def test_negative_targets_are_found_in_any_slice_of_the_scan():
    """The check reads Y in column slices (no mask the size of Y): a negative target past
    the first slice is found, with its place, and all of them counted."""
    from fusedmlp._validation import _SCAN_COLUMNS

    m = 2 * _SCAN_COLUMNS + 10
    X, Y = np.zeros((1, m)), np.ones((2, m))
    Y[1, _SCAN_COLUMNS + 3] = -0.5
    Y[0, 2 * _SCAN_COLUMNS + 1] = -1.0
    with pytest.raises(ValueError, match=rf"Y\[1, {_SCAN_COLUMNS + 3}\] is -0.5 \(2 negative"):
        fusedmlp.train(X, Y, epochs=1, output="exp")


# ---------------------------------------------------------------------------
# FusedMLPRegressor(loss="poisson") against scikit-learn's


def _sk_data(n_y=1, m=240, seed=3):
    X, Y = _counts(m=m, n_y=n_y, seed=seed)
    return X.T.copy(), (Y[0] if n_y == 1 else Y.T.copy())


def _fit_pair(X, y, sample_weight=None, **kw):
    kw = dict(loss="poisson", hidden_layer_sizes=(12,), random_state=0, max_iter=25, **kw)
    return fit_both(FusedMLPRegressor, MLPRegressor, X, y, sample_weight, **kw)


def _assert_same(ours, theirs, rtol=1e-9):
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.t_ == theirs.t_
    same_fit(ours, theirs, rtol)  # epochs, loss curve, parameters


@pytest.mark.parametrize("n_y", [1, 2])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_regressor_gives_scikit_learns_poisson_fit(n_y, solver, activation):
    X, y = _sk_data(n_y)
    ours, theirs = _fit_pair(
        X, y, solver=solver, activation=activation, learning_rate_init=0.01, batch_size=64
    )
    _assert_same(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-9)


@pytest.mark.parametrize("extra", [{}, {"early_stopping": True}, {"shuffle": False}])
def test_regressor_weighted_poisson_fit_is_scikit_learns(extra):
    X, y = _sk_data()
    w = np.random.default_rng(5).uniform(0.3, 2.0, len(y))
    ours, theirs = _fit_pair(X, y, sample_weight=w, **extra)
    _assert_same(ours, theirs)
    if extra.get("early_stopping"):  # held-out R^2, weighted
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)


def test_regressor_partial_fit_and_float32():
    X, y = _sk_data()
    kw = dict(loss="poisson", hidden_layer_sizes=(12,), random_state=0)
    ours, theirs = FusedMLPRegressor(**kw), MLPRegressor(**kw)
    for _ in range(3):
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    _assert_same(ours, theirs)
    # float32 data: both compute in float32 (fusedmlp sums in float64)
    a, b = _fit_pair(X.astype(np.float32), y.astype(np.float32))
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-5)


def test_regressor_refuses_negative_targets():
    X, y = _sk_data()
    with pytest.raises(ValueError, match="Some value.s. of y are negative"):
        FusedMLPRegressor(loss="poisson").fit(X, y - 1.0)
    with pytest.warns(ConvergenceWarning):  # squared_error takes them
        FusedMLPRegressor(max_iter=2).fit(X, y - 1.0)


# ---------------------------------------------------------------------------
# the command line


def test_cli_trains_explains_and_predicts_an_exp_output(capsys, tmp_path):
    import json

    from test_cli import run

    X, Y = _counts(m=120)
    np.savez(tmp_path / "counts.npz", X=X, Y=Y)
    ref = fusedmlp.train(X, Y, output="exp", hidden=5, lr=0.05, epochs=60, seed=2)
    r2 = fusedmlp.score(ref.params, X, Y, output="exp")
    rc, out, err = run(
        capsys, "train", "--data", tmp_path / "counts.npz", "--output", "exp", "--hidden", 5,
        "--lr", 0.05, "--epochs", 60, "--out", tmp_path / "o",
    )  # fmt: skip
    assert rc == 0, err
    assert f"R^2: {r2:.6f}" in out and "decision_boundary.png skipped: an exp output" in out
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert (s["output"], s["loss"], s["r2"], s["accuracy"]) == ("exp", "poisson", r2, None)
    rc, out, err = run(capsys, "predict", tmp_path / "o" / "model.npz", tmp_path / "counts.npz")
    assert rc == 0, err
    rates = fusedmlp.predict(ref.params, X, output="exp")
    assert np.array_equal(np.array([float(v) for v in out.split()]), rates[0])
    rc, out, _ = run(capsys, "explain", "--output", "exp")
    assert rc == 0 and "exp output, poisson" in out and "(A2 - Y) / m" in out
