"""Sample weights (scikit-learn's ``sample_weight``): the reference, the kernels, the
estimators.

With weights w, a batch's loss is sum_j w_j loss_j / sum_j w_j plus the L2 term
alpha / (2 sum_j w_j) ||W||^2, and its gradient that loss's: MLPClassifier's and
MLPRegressor's definition. The chain of checks:

- the reference against central differences of its own weighted loss, and against a
  worked example (integer weights are repeated samples);
- the compiled epochs (full batch, mini-batches serial and on threads; narrow and wide
  blocks; every output; both dtypes) against the reference fed the same batches;
- the estimators against scikit-learn itself, to the same 1e-9 as without weights
  (tests/test_sklearn_estimators.py), and scikit-learn's own sample-weight checks run
  there in ``parametrize_with_checks``.

Tolerances: float64 kernels against the reference 1e-12 relative (one epoch: sums in
another order, measured at most 2e-15); float32 1e-5 (the kernels' float32 block sums,
measured at most 6e-7).
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from fusedmlp import _compiled_train, reference
from fusedmlp._optstate import OptState
from fusedmlp.settings import Settings
from fusedmlp.sklearn import FusedMLPClassifier, FusedMLPRegressor

NETS = [  # (output, loss, n_y)
    ("softmax", "cross_entropy", 3),
    ("sigmoid", "cross_entropy", 2),
    ("sigmoid", "mse", 1),
    ("identity", "mse", 2),
    ("exp", "poisson", 2),
]


def _problem(output, n_y, n_x, n_h, m, seed, dtype=np.float64):
    """(params (float64), X, Y as the kernels read it, Y dense, weights)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_x, m)).astype(dtype)
    if output == "softmax":
        labels = rng.integers(0, n_y, m)
        Y, Yd = labels.astype(np.int64), reference.one_hot(labels, n_y, dtype)
    elif output == "identity":
        Y = Yd = rng.normal(size=(n_y, m)).astype(dtype)
    elif output == "exp":
        Y = Yd = rng.poisson(1.5, (n_y, m)).astype(dtype)
    else:
        Y = Yd = (rng.random((n_y, m)) < 0.5).astype(dtype)
    p = {
        "W1": rng.normal(size=(n_h, n_x)) * 0.3,
        "b1": rng.normal(size=(n_h, 1)) * 0.1,
        "W2": rng.normal(size=(n_y, n_h)) * 0.3,
        "b2": rng.normal(size=(n_y, 1)) * 0.1,
    }
    if output == "exp":  # small Z2 at first, so that steps of 0.1 do not overflow exp
        p["W2"] *= 0.1
    w = (rng.random(m) * 3).astype(dtype)
    return p, X, Y, Yd, w


# ---------------------------------------------------------------------------
# 1. the reference


@pytest.mark.parametrize("output, loss, n_y", NETS)
def test_reference_weighted_gradient_against_finite_differences(output, loss, n_y):
    p, X, _, Yd, w = _problem(output, n_y, 3, 5, 40, seed=1)
    alpha = 0.7
    _, g = reference.loss_and_grads(p, X, Yd, "tanh", loss, output, alpha, w)
    eps = 1e-6
    for key in p:
        fd = np.zeros_like(p[key])
        for i in np.ndindex(p[key].shape):
            q = {k: v.copy() for k, v in p.items()}
            q[key][i] += eps
            up = reference.loss_and_grads(q, X, Yd, "tanh", loss, output, alpha, w)[0]
            q[key][i] -= 2 * eps
            down = reference.loss_and_grads(q, X, Yd, "tanh", loss, output, alpha, w)[0]
            fd[i] = (up - down) / (2 * eps)
        # central differences: truncation O(eps^2 f''') and rounding O(1e-16 / eps),
        # about 1e-10 here against gradients of order 0.1
        np.testing.assert_allclose(g["d" + key], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("output, loss, n_y", NETS)
def test_integer_weights_are_repeated_samples(output, loss, n_y):
    """A worked example: weights (2, 0, 1, 3, ...) give the loss and gradients of the
    unweighted data with each sample repeated that many times."""
    p, X, _, Yd, _ = _problem(output, n_y, 3, 4, 12, seed=2)
    w = np.array([2, 0, 1, 3, 1, 1, 0, 2, 1, 1, 4, 1], float)
    rep = np.repeat(np.arange(12), w.astype(int))
    L, g = reference.loss_and_grads(p, X, Yd, "relu", loss, output, 0.5, w)
    L_rep, g_rep = reference.loss_and_grads(p, X[:, rep], Yd[:, rep], "relu", loss, output, 0.5)
    assert L == pytest.approx(L_rep, rel=1e-14)
    for key in g:
        np.testing.assert_allclose(g[key], g_rep[key], rtol=1e-13, atol=1e-16)


def test_reference_without_weights_unchanged():
    """weights=None is the unweighted reference, and unit weights agree with it."""
    p, X, _, Yd, _ = _problem("sigmoid", 2, 3, 4, 30, seed=3)
    L, g = reference.loss_and_grads(p, X, Yd, "sigmoid", "mse", "sigmoid", 0.2)
    L1, g1 = reference.loss_and_grads(p, X, Yd, "sigmoid", "mse", "sigmoid", 0.2, np.ones(30))
    assert L1 == pytest.approx(L, rel=1e-15)
    for key in g:
        np.testing.assert_allclose(g1[key], g[key], rtol=1e-14)


# ---------------------------------------------------------------------------
# 2. the compiled epochs against the reference


def _one_epoch(p64, X, Y, w, output, loss, batch, alpha=0.3, lr=0.1):
    """One compiled epoch of gradient descent; (loss, parameters after)."""
    p = {k: v.astype(X.dtype) for k, v in p64.items()}
    state = OptState(
        Settings.make(dict(activation="tanh", loss=loss, output=output, lr=lr, alpha=alpha)), p
    )
    run = _compiled_train.epoch_runner(
        p, X, Y, "tanh", loss, output=output, state=state, batch_size=batch, weights=w
    )
    losses = np.empty(1)
    if batch is None:
        assert run(1, losses) == (1, 0)
    else:
        assert run(1, losses, orders=np.arange(X.shape[1])[None, :]) == (1, 0)
    return losses[0], p


def _reference_epoch(p, X, Yd, w, output, loss, batch, alpha=0.3, lr=0.1):
    """The same epoch in the reference, batch by batch: (mean batch loss, parameters)."""
    m = X.shape[1]
    batch = batch or m
    X, Yd, w = (a.astype(np.float64) for a in (X, Yd, w))
    p, total = dict(p), 0.0
    for s in range(0, m, batch):
        j = slice(s, min(m, s + batch))
        L, g = reference.loss_and_grads(p, X[:, j], Yd[:, j], "tanh", loss, output, alpha, w[j])
        total += L * X[:, j].shape[1]  # as scikit-learn: each batch's loss times its size
        p = {k: p[k] - lr * g["d" + k] for k in p}
    return total / m, p


@pytest.mark.parametrize("output, loss, n_y", NETS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize(
    "n_x, n_h, batch",
    [(4, 16, None), (4, 16, 64), (70, 130, None), (70, 130, 64), (70, 130, 250)],
    ids=["narrow-full", "narrow-batches", "wide-full", "wide-batches", "wide-threads"],
)
def test_weighted_epochs_against_reference(output, loss, n_y, dtype, rtol, n_x, n_h, batch):
    """wide-threads: batches of 250 samples of a wide network cost more than a thread
    launch, so their chunks run on threads (kernels.config.batch_plan)."""
    p, X, Y, Yd, w = _problem(output, n_y, n_x, n_h, 600, seed=4, dtype=dtype)
    got_loss, got = _one_epoch(p, X, Y, w, output, loss, batch)
    want_loss, want = _reference_epoch(p, X, Yd, w, output, loss, batch)
    assert got_loss == pytest.approx(want_loss, rel=rtol)
    for key in p:
        np.testing.assert_allclose(
            got[key], want[key], rtol=rtol, atol=rtol * np.abs(want[key]).max()
        )


def test_unit_weights_are_no_weights():
    """Weights of 1 train as no weights do (the weighted loops are separate code: the
    same sums in the same order, so the same numbers to rounding)."""
    p, X, Y, _, _ = _problem("softmax", 3, 4, 16, 300, seed=5)
    for batch in (None, 64):
        a_loss, a = _one_epoch(p, X, Y, None, "softmax", "cross_entropy", batch)
        b_loss, b = _one_epoch(p, X, Y, np.ones(300), "softmax", "cross_entropy", batch)
        assert b_loss == pytest.approx(a_loss, rel=1e-15)
        for key in p:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-14)


def test_weights_of_the_wrong_length_never_reach_a_kernel():
    """The kernels read the weights unchecked; the runner's guard (an internal error:
    the estimators check sample_weight first) stops a wrong length."""
    p, X, Y, _, _ = _problem("sigmoid", 1, 2, 3, 20, seed=6)
    with pytest.raises(
        AssertionError, match=r"weights must be one per sample, shape \(20,\), got \(19,\)"
    ):
        _compiled_train.epoch_runner(p, X, Y, "sigmoid", "mse", 0.1, weights=np.ones(19))


# ---------------------------------------------------------------------------
# 3. the estimators against scikit-learn


def _fit_pair(ours_cls, theirs_cls, X, y, w, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**kw).fit(X, y, sample_weight=w)
        theirs = theirs_cls(**kw).fit(X, y, sample_weight=w)
    return ours, theirs


def _assert_same(ours, theirs, rtol=1e-9):
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.fixture(scope="module")
def weighted():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, 5))
    return (
        X,
        rng.random(150) * 2,
        {
            "multiclass": rng.integers(0, 3, 150),
            "binary": np.where(rng.random(150) < 0.5, "yes", "no"),
            "multilabel": (rng.random((150, 3)) < 0.5).astype(int),
            "regression": X[:, 0] - X[:, 1] ** 2,
        },
    )


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize(
    "extra",
    [{"shuffle": False}, {"batch_size": 40}, {"early_stopping": True}],
    ids=["full-batch", "mini-batches", "early-stopping"],
)
def test_estimators_weigh_as_scikit_learn(weighted, kind, solver, extra):
    X, w, ys = weighted
    pair = (FusedMLPRegressor, MLPRegressor) if kind == "regression" else (
        FusedMLPClassifier, MLPClassifier)  # fmt: skip
    kw = dict(hidden_layer_sizes=(8,), solver=solver, random_state=0, max_iter=30,
              learning_rate_init=0.01, **extra)  # fmt: skip
    ours, theirs = _fit_pair(*pair, X, ys[kind], w, **kw)
    _assert_same(ours, theirs)
    if extra.get("early_stopping"):  # scored with the held-out samples' weights
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-12)


def test_weights_change_the_fit_and_partial_fit_takes_them(weighted):
    X, w, ys = weighted
    y = ys["multiclass"]
    kw = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = FusedMLPClassifier(**kw).fit(X, y)
        heavy = FusedMLPClassifier(**kw).fit(X, y, sample_weight=w)
    assert not np.allclose(plain.coefs_[0], heavy.coefs_[0])
    ours, theirs = FusedMLPClassifier(**kw), MLPClassifier(**kw)
    for _ in range(3):  # sample_weight before classes, as in MLPClassifier.partial_fit
        ours.partial_fit(X, y, w, np.unique(y))
        theirs.partial_fit(X, y, w, np.unique(y))
    _assert_same(ours, theirs)


def test_bad_sample_weight_refused_as_scikit_learn(weighted):
    X, w, ys = weighted
    est = FusedMLPRegressor(max_iter=2)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(149,\), expected \(150,\)"):
        est.fit(X, ys["regression"], sample_weight=w[:-1])
    with pytest.raises(ValueError, match="Input sample_weight contains NaN"):
        est.fit(X, ys["regression"], sample_weight=np.where(np.arange(150) == 3, np.nan, w))
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero"):
        est.fit(X, ys["regression"], sample_weight=np.zeros(150))


def test_sample_weight_with_a_dask_x_is_refused_before_any_cluster(weighted):
    """Weights are not built for a cluster's pieces: a clear error, raised while checking
    the input (no client needed), that names the way out."""
    import dask.array as da

    X, w, ys = weighted
    with pytest.raises(ValueError, match=r"sample_weight is not supported when X is a dask array"):
        FusedMLPClassifier(max_iter=2).fit(
            da.from_array(X, chunks=50), ys["binary"], sample_weight=w
        )


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_batch_whose_weights_add_up_to_zero_is_a_clear_error(shuffle):
    """scikit-learn's MLP raises ZeroDivisionError from np.average there; the estimators
    say which batch and what to do, before the kernel divides by 0."""
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(100, 3)), rng.integers(0, 2, 100)
    w = np.where(np.arange(100) < 50, 0.0, 1.0)
    est = FusedMLPClassifier((4,), batch_size=10 if not shuffle else 2, shuffle=shuffle)
    with pytest.raises(
        ValueError,
        match=r"sample weights of a batch add up to 0 \(places 0 to 9 "
        if not shuffle
        else r"sample weights of a batch add up to 0 \(places",
    ):
        est.fit(X, y, sample_weight=w)
    ok = FusedMLPClassifier((4,), batch_size=60, shuffle=False, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ok.fit(X, y, sample_weight=w)  # no batch of zeros: trains
    assert np.isfinite(ok.loss_curve_).all()


def test_weights_pass_through_scikit_learns_tools(weighted):
    """GridSearchCV.fit(..., sample_weight=), cross_val_score(params=) and a Pipeline's
    step__sample_weight reach the estimator as they reach MLPClassifier: the same
    scores and losses."""
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, w, ys = weighted
    y = ys["multiclass"]
    got = []
    for cls in (FusedMLPClassifier, MLPClassifier):
        est = cls(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            grid = GridSearchCV(est, {"alpha": [1e-4, 1e-1]}, cv=3).fit(X, y, sample_weight=w)
            cv = cross_val_score(est, X, y, cv=3, params={"sample_weight": w})
            pipe = make_pipeline(StandardScaler(), est)
            pipe.fit(X, y, **{f"{cls.__name__.lower()}__sample_weight": w})
        got.append((grid.cv_results_["mean_test_score"], cv, pipe[-1].loss_))
    (g1, c1, l1), (g2, c2, l2) = got
    np.testing.assert_allclose(g1, g2, rtol=1e-12)
    np.testing.assert_allclose(c1, c2, rtol=1e-12)
    assert l1 == pytest.approx(l2, rel=1e-9)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_float32_weighted_fits_follow_scikit_learns_float32(weighted, kind):
    """float32 X and weights train in float32 on both sides (scikit-learn converts the
    weights to X's dtype, as the estimators do); 30 epochs of mini-batches agree to
    1e-5 relative (measured 7e-7: float32 rounding, summed in another order)."""
    X, w, ys = weighted
    pair = (FusedMLPRegressor, MLPRegressor) if kind == "regression" else (
        FusedMLPClassifier, MLPClassifier)  # fmt: skip
    kw = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=30, learning_rate_init=0.01,
              batch_size=40)  # fmt: skip
    ours, theirs = _fit_pair(*pair, X.astype(np.float32), ys[kind], w.astype(np.float32), **kw)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float32
    _assert_same(ours, theirs, rtol=1e-5)
