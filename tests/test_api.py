"""Tests for the public API: init_params, train, predict_proba, predict, accuracy.

Every expected value comes from an independent computation: a plain loop over
``reference.loss_and_grads``, hand-written formulas, or ``np.random.RandomState`` itself.
"""

import math

import numpy as np
import pytest

import fusedmlp
from fusedmlp import datasets, reference

NAMES = ("W1", "b1", "W2", "b2")


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ref_loop(p0, X, Y, activation="sigmoid", loss="mse", lr=0.2, epochs=10):
    """Plain gradient descent with the reference: (final params, losses before each step)."""
    p = {k: np.array(p0[k], copy=True) for k in NAMES}
    losses = []
    for _ in range(epochs):
        L, g = reference.loss_and_grads(p, X, Y, activation, loss)
        losses.append(L)
        for k in NAMES:
            p[k] = p[k] - lr * g["d" + k]
    return p, np.array(losses)


def _copy(p):
    return {k: np.array(v, copy=True) for k, v in p.items()}


def _assert_params_equal(a, b, rtol=1e-12):
    assert set(a) == set(NAMES) and set(b) == set(NAMES)
    for k in NAMES:
        assert a[k].shape == b[k].shape, k
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=0, err_msg=k)


@pytest.fixture(scope="module")
def data():
    X, Y = datasets.planar(m=40, seed=1)
    return X, Y


def _small():
    """X (2, 6), Y (1, 6) with labels in [0, 1] for the bad-input table."""
    X = np.array([[0.5, -1.0, 2.0, 0.0, 1.5, -0.5], [1.0, 0.3, -0.2, 0.7, -1.1, 0.4]])
    Y = np.array([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]])
    return X, Y


# --------------------------------------------------------------------------- #
# 1. init_params
# --------------------------------------------------------------------------- #
def test_init_params_original_exercise_value():
    expected = np.random.RandomState(2).randn(4, 2)[0, 0] * 0.01
    assert expected == -0.004167578474054706
    p = fusedmlp.init_params(2, 4, 1, seed=2)
    assert p["W1"][0, 0] == -0.004167578474054706


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", [(2, 4, 1), (3, 5, 2), (1, 1, 1)])
def test_init_params_shapes_dtypes_values(sizes, dtype):
    n_x, n_h, n_y = sizes
    p = fusedmlp.init_params(n_x, n_h, n_y, seed=7, scale=0.05, dtype=dtype)
    assert set(p) == set(NAMES)
    assert p["W1"].shape == (n_h, n_x)
    assert p["b1"].shape == (n_h, 1)
    assert p["W2"].shape == (n_y, n_h)
    assert p["b2"].shape == (n_y, 1)
    for k in NAMES:
        assert p[k].dtype == np.dtype(dtype), k
    assert np.all(p["b1"] == 0) and np.all(p["b2"] == 0)
    rng = np.random.RandomState(7)
    W1 = rng.randn(n_h, n_x) * 0.05  # W1 first, then W2: the exercise's order
    W2 = rng.randn(n_y, n_h) * 0.05
    np.testing.assert_array_equal(p["W1"], W1.astype(dtype))
    np.testing.assert_array_equal(p["W2"], W2.astype(dtype))


def test_init_params_default_scale_and_seed_reproducible():
    a = fusedmlp.init_params(3, 4, 2, seed=11)
    b = fusedmlp.init_params(3, 4, 2, seed=11)
    c = fusedmlp.init_params(3, 4, 2, seed=12)
    np.testing.assert_array_equal(a["W1"], np.random.RandomState(11).randn(4, 3) * 0.01)
    _assert_params_equal(a, b, rtol=0)
    assert not np.array_equal(a["W1"], c["W1"])


def test_init_params_scale_zero_gives_zeros():
    p = fusedmlp.init_params(2, 3, 1, seed=0, scale=0)
    assert all(np.all(p[k] == 0) for k in NAMES)


@pytest.mark.parametrize("seed", [0, None])
def test_init_params_leaves_global_rng_alone(seed):
    saved = np.random.get_state()  # noqa: NPY002 (the global RNG is the point)
    try:
        np.random.seed(1234)  # noqa: NPY002
        before = np.random.get_state()  # noqa: NPY002
        fusedmlp.init_params(5, 6, 2, seed=seed)
        after = np.random.get_state()  # noqa: NPY002
        assert before[0] == after[0]
        np.testing.assert_array_equal(before[1], after[1])
        assert before[2:] == after[2:]
        # and the next global draw is what seed 1234 gives first
        assert np.random.rand() == np.random.RandomState(1234).rand()  # noqa: NPY002
    finally:
        np.random.set_state(saved)  # noqa: NPY002


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((0, 4, 1), {}, ValueError, "n_x must be an integer >= 1"),
        ((2, 0, 1), {}, ValueError, "n_h must be an integer >= 1"),
        ((2, 4, -1), {}, ValueError, "n_y must be an integer >= 1"),
        ((2.0, 4, 1), {}, TypeError, "n_x must be an integer"),
        ((2, True, 1), {}, TypeError, "n_h must be an integer"),
        ((2, 4, "1"), {}, TypeError, "n_y must be an integer"),
        ((2, 4, 1), {"scale": -0.1}, ValueError, "scale must be a finite number >= 0"),
        ((2, 4, 1), {"scale": math.nan}, ValueError, "scale must be a finite number"),
        ((2, 4, 1), {"scale": math.inf}, ValueError, "scale must be a finite number"),
        ((2, 4, 1), {"scale": "0.01"}, ValueError, "scale must be a finite number"),
        ((2, 4, 1), {"scale": True}, ValueError, "scale must be a finite number"),
        ((2, 4, 1), {"dtype": np.float16}, TypeError, "float32 or float64"),
        ((2, 4, 1), {"dtype": np.int64}, TypeError, "float32 or float64"),
        ((2, 4, 1), {"dtype": np.complex128}, TypeError, "float32 or float64"),
    ],
)
def test_init_params_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fusedmlp.init_params(*args, **kwargs)


def test_init_params_numpy_integer_sizes_accepted():
    p = fusedmlp.init_params(np.int64(2), np.int32(3), np.uint8(1), seed=0)
    assert p["W1"].shape == (3, 2) and p["W2"].shape == (1, 3)


# --------------------------------------------------------------------------- #
# 2. train (numpy backend)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_train_matches_reference_loop(data, activation, loss, backend):
    X, Y = data
    init = fusedmlp.init_params(2, 5, 1, seed=3, scale=0.5)
    res = fusedmlp.train(
        X, Y, init=init, activation=activation, loss=loss, lr=0.7, epochs=25, backend=backend
    )
    p, losses = _ref_loop(init, X, Y, activation, loss, lr=0.7, epochs=25)
    assert isinstance(res, fusedmlp.TrainResult)
    assert res.losses.shape == (25,) and res.losses.dtype == np.float64
    assert res.epochs == 25
    # numpy runs the reference itself; the kernels sum in another order (blocks of
    # samples), which moves the last few bits: 1e-10 is the kernels' stated tolerance
    rtol = 1e-12 if backend == "numpy" else 1e-10
    np.testing.assert_allclose(res.losses, losses, rtol=rtol, atol=0)
    _assert_params_equal(res.params, p, rtol=rtol)
    for k in NAMES:
        assert res.params[k].dtype == np.float64
    assert res.sizes == (2, 5, 1)
    assert (res.activation, res.loss, res.backend, res.lr) == (activation, loss, backend, 0.7)


def test_train_first_losses_match_hand_formulas(data):
    """losses[0] is the cost at init, written out without the reference module."""
    X, Y = data
    init = fusedmlp.init_params(2, 4, 1, seed=2, scale=0.3)
    W1, b1, W2, b2 = (init[k] for k in NAMES)
    A2 = _sig(W2 @ np.tanh(W1 @ X + b1) + b2)
    m = X.shape[1]
    mse = np.sum((A2 - Y) ** 2) / m
    ce = -np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)) / m
    r1 = fusedmlp.train(X, Y, init=init, activation="tanh", loss="mse", epochs=1)
    r2 = fusedmlp.train(X, Y, init=init, activation="tanh", loss="cross_entropy", epochs=1)
    assert r1.losses[0] == pytest.approx(mse, rel=1e-12)
    assert r2.losses[0] == pytest.approx(ce, rel=1e-12)


def test_train_defaults_hidden_4_lr_0_2_and_seed(data):
    X, Y = data
    res = fusedmlp.train(X, Y, epochs=5, seed=2)
    init = fusedmlp.init_params(2, 4, 1, seed=2)
    p, losses = _ref_loop(init, X, Y, "sigmoid", "mse", lr=0.2, epochs=5)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-12, atol=0)
    _assert_params_equal(res.params, p)


def test_train_seed_reproducible_and_seed_matters(data):
    X, Y = data
    a = fusedmlp.train(X, Y, hidden=3, epochs=4, seed=9)
    b = fusedmlp.train(X, Y, hidden=3, epochs=4, seed=9)
    c = fusedmlp.train(X, Y, hidden=3, epochs=4, seed=10)
    _assert_params_equal(a.params, b.params, rtol=0)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert a.params["W1"].shape == (3, 2)


def test_train_zero_epochs_returns_init(data):
    X, Y = data
    init = fusedmlp.init_params(2, 4, 1, seed=5, scale=0.2)
    res = fusedmlp.train(X, Y, init=init, epochs=0)
    assert res.losses.shape == (0,)
    assert res.epochs == 0
    _assert_params_equal(res.params, init, rtol=0)
    res2 = fusedmlp.train(X, Y, hidden=6, epochs=0, seed=4)
    _assert_params_equal(res2.params, fusedmlp.init_params(2, 6, 1, seed=4), rtol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_train_never_modifies_init(data, dtype):
    X, Y = data
    X = X.astype(dtype)
    init = fusedmlp.init_params(2, 4, 1, seed=1, scale=0.5, dtype=dtype)
    saved = _copy(init)
    res = fusedmlp.train(X, Y, init=init, epochs=10, lr=1.0)
    assert set(init) == set(NAMES)
    _assert_params_equal(init, saved, rtol=0)
    for k in NAMES:
        assert init[k].dtype == np.dtype(dtype)
        assert not np.shares_memory(res.params[k], init[k]), k
    assert not np.array_equal(res.params["W1"], init["W1"])  # training did move
    # epoch 0's loss is the cost of init itself
    expected = reference.cost(reference.forward(saved, X.astype(np.float64)), Y)
    assert res.losses[0] == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_train_float32_data_trains_in_float32(data):
    X, Y = data
    X32 = X.astype(np.float32)
    init = fusedmlp.init_params(2, 4, 1, seed=2, scale=0.5)  # float64 init: cast to float32
    res = fusedmlp.train(X32, Y, init=init, epochs=15, lr=0.5)
    for k in NAMES:
        assert res.params[k].dtype == np.float32, k
    assert res.losses.dtype == np.float64
    init32 = {k: v.astype(np.float32) for k, v in init.items()}
    p, losses = _ref_loop(init32, X32, Y.astype(np.float32), lr=0.5, epochs=15)
    assert p["W1"].dtype == np.float32  # the loop itself stayed in float32
    np.testing.assert_allclose(res.losses, losses, rtol=1e-5)
    _assert_params_equal(res.params, p, rtol=1e-5)
    # and float32 X with a seed-drawn init is float32 too
    res2 = fusedmlp.train(X32, Y, epochs=2, seed=0)
    assert all(res2.params[k].dtype == np.float32 for k in NAMES)


def test_train_integer_X_is_float64():
    X = np.array([[0, 1, 2, 3, -1, -2], [1, 0, 1, 0, 2, -3]], dtype=np.int32)
    Y = np.array([[0, 1, 1, 1, 0, 0]], dtype=np.int64)  # integer labels too
    init = fusedmlp.init_params(2, 3, 1, seed=0, scale=0.5)
    res = fusedmlp.train(X, Y, init=init, epochs=6, lr=0.3)
    for k in NAMES:
        assert res.params[k].dtype == np.float64
    p, losses = _ref_loop(init, X.astype(np.float64), Y.astype(np.float64), lr=0.3, epochs=6)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-12, atol=0)
    _assert_params_equal(res.params, p)


def test_train_1d_Y_is_one_output(data):
    X, Y = data
    init = fusedmlp.init_params(2, 4, 1, seed=8, scale=0.4)
    res = fusedmlp.train(X, Y.ravel(), init=init, loss="cross_entropy", epochs=7, lr=0.5)
    p, losses = _ref_loop(init, X, Y.reshape(1, -1), "sigmoid", "cross_entropy", 0.5, 7)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-12, atol=0)
    _assert_params_equal(res.params, p)
    assert res.params["W2"].shape == (1, 4)
    res2 = fusedmlp.train(X, list(Y.ravel()), epochs=1, seed=0)  # a plain list works too
    assert res2.sizes == (2, 4, 1)


def test_train_several_outputs():
    rng = np.random.RandomState(0)
    X = rng.randn(3, 30)
    Y = rng.rand(3, 30)  # soft targets in [0, 1], three outputs
    init = fusedmlp.init_params(3, 5, 3, seed=1, scale=0.3)
    for loss in ("mse", "cross_entropy"):
        res = fusedmlp.train(X, Y, init=init, loss=loss, epochs=8, lr=0.9, activation="relu")
        p, losses = _ref_loop(init, X, Y, "relu", loss, 0.9, 8)
        np.testing.assert_allclose(res.losses, losses, rtol=1e-12, atol=0)
        _assert_params_equal(res.params, p)
        assert res.params["W2"].shape == (3, 5) and res.params["b2"].shape == (3, 1)
    res = fusedmlp.train(X, Y, hidden=2, epochs=1, seed=0)
    assert res.sizes == (3, 2, 3)
    assert res.predict_proba(X).shape == (3, 30)


def test_train_hidden_matching_init_is_fine_mismatch_raises(data):
    X, Y = data
    init = fusedmlp.init_params(2, 4, 1, seed=0)
    assert fusedmlp.train(X, Y, init=init, hidden=4, epochs=1).params["W1"].shape == (4, 2)
    with pytest.raises(ValueError, match=r"hidden=5.*4 hidden units.*leave hidden out"):
        fusedmlp.train(X, Y, init=init, hidden=5, epochs=1)


def test_result_methods_agree_with_functions(data):
    X, Y = data
    for activation in ("sigmoid", "relu"):
        res = fusedmlp.train(X, Y, activation=activation, epochs=30, lr=1.0, seed=2)
        X_new = np.random.RandomState(5).randn(2, 17)
        P = res.predict_proba(X_new)
        A2 = reference.forward(res.params, X_new, activation)["A2"]
        np.testing.assert_array_equal(
            P, fusedmlp.predict_proba(res.params, X_new, activation=activation)
        )
        np.testing.assert_allclose(P, A2, rtol=1e-10, atol=0)  # the kernels' tolerance
        np.testing.assert_array_equal(
            res.predict(X_new), fusedmlp.predict(res.params, X_new, activation=activation)
        )
        np.testing.assert_array_equal(res.predict(X_new), (A2 > 0.5).astype(np.int8))


# --------------------------------------------------------------------------- #
# 3. divergence
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergence_nonfinite_loss_keeps_last_finite_params(data, backend):
    """relu + cross-entropy + huge lr: weights blow up until Z2 overflows (loss NaN)."""
    X, Y = data
    init = fusedmlp.init_params(2, 4, 1, seed=3, scale=1.0)
    saved = _copy(init)
    lr = 1e150
    with np.errstate(all="ignore"), pytest.raises(fusedmlp.TrainingDiverged) as info:
        fusedmlp.train(
            X,
            Y,
            init=init,
            activation="relu",
            loss="cross_entropy",
            lr=lr,
            epochs=50,
            backend=backend,
        )
    e = info.value
    assert isinstance(e, FloatingPointError)
    assert type(e.epoch) is int and 0 < e.epoch < 50
    assert "epoch" in str(e) and f"epoch {e.epoch}" in str(e)
    assert "lr" in str(e)
    assert set(e.params) == set(NAMES)
    assert {k: e.params[k].shape for k in NAMES} == {k: saved[k].shape for k in NAMES}
    assert all(np.isfinite(e.params[k]).all() for k in NAMES)
    assert e.losses.shape == (e.epoch,) and np.isfinite(e.losses).all()
    # independent loop: e.epoch updates give e.params, with the same losses on the way,
    # and the loss of those params is where it breaks
    with np.errstate(all="ignore"):
        p, losses = _ref_loop(saved, X, Y, "relu", "cross_entropy", lr, e.epoch)
        L_next, _ = reference.loss_and_grads(p, X, Y, "relu", "cross_entropy")
    rtol = 1e-12 if backend == "numpy" else 1e-10  # kernels: another summation order
    _assert_params_equal(e.params, p, rtol=rtol)
    np.testing.assert_allclose(e.losses, losses, rtol=rtol, atol=0)
    assert not math.isfinite(L_next)
    _assert_params_equal(init, saved, rtol=0)  # init untouched even on failure


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergence_update_overflow_at_epoch_0(backend):
    """Gradient ~1e299 times lr=1e10 overflows: nothing trained, params are init."""
    X = np.array([[1e300, -1e300, 5e299]])
    Y = np.array([[1.0, 0.0, 1.0]])
    init = {
        "W1": np.array([[1e-300]]),
        "b1": np.zeros((1, 1)),
        "W2": np.array([[1.0]]),
        "b2": np.zeros((1, 1)),
    }
    saved = _copy(init)
    with np.errstate(all="ignore"), pytest.raises(fusedmlp.TrainingDiverged) as info:
        fusedmlp.train(X, Y, init=init, lr=1e10, epochs=5, backend=backend)
    e = info.value
    assert e.epoch == 0 and type(e.epoch) is int
    assert "epoch 0" in str(e) and "overflow" in str(e)
    assert e.losses.shape == (0,)
    _assert_params_equal(e.params, saved, rtol=0)
    # the same data with lr=1e9 does not overflow (the boundary is real, not a blanket check)
    res = fusedmlp.train(X, Y, init=init, lr=1e9, epochs=1, backend=backend)
    with np.errstate(all="ignore"):
        p, L = _ref_loop(init, X, Y, lr=1e9, epochs=1)
    np.testing.assert_allclose(res.losses, L, rtol=1e-12, atol=0)
    _assert_params_equal(res.params, p, rtol=1e-10)


# --------------------------------------------------------------------------- #
# 4. predict_proba / predict / accuracy
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_predict_proba_and_predict(activation):
    rng = np.random.RandomState(3)
    p = fusedmlp.init_params(3, 6, 2, seed=4, scale=1.5)
    p["b1"] = rng.randn(6, 1)
    p["b2"] = rng.randn(2, 1)
    X = rng.randn(3, 50)
    g = {"sigmoid": _sig, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}[activation]
    A2 = _sig(p["W2"] @ g(p["W1"] @ X + p["b1"]) + p["b2"])  # hand-written forward
    P = fusedmlp.predict_proba(p, X, activation=activation)
    assert P.shape == (2, 50) and P.dtype == np.float64
    np.testing.assert_allclose(P, A2, rtol=1e-12, atol=1e-15)
    labels = fusedmlp.predict(p, X, activation=activation)
    assert labels.shape == (2, 50) and labels.dtype == np.int8
    assert set(np.unique(labels).tolist()) <= {0, 1}
    np.testing.assert_array_equal(labels, (A2 > 0.5).astype(np.int8))
    assert 0 < labels.sum() < labels.size  # both classes appear, so the check has teeth


def test_predict_proba_float32_data_gives_float32():
    p = fusedmlp.init_params(2, 3, 1, seed=0, scale=1.0)
    X = np.random.RandomState(1).randn(2, 9).astype(np.float32)
    P = fusedmlp.predict_proba(p, X)
    assert P.dtype == np.float32
    expected = _sig(p["W2"] @ _sig(p["W1"] @ X.astype(np.float64) + p["b1"]) + p["b2"])
    np.testing.assert_allclose(P, expected, rtol=1e-5)


def test_predict_threshold_is_strictly_above_half():
    # all-zero params: A2 is exactly 0.5 everywhere, and 0.5 is not > 0.5
    p = {k: np.zeros_like(v) for k, v in fusedmlp.init_params(2, 3, 1).items()}
    X = np.ones((2, 4))
    np.testing.assert_array_equal(fusedmlp.predict_proba(p, X), np.full((1, 4), 0.5))
    np.testing.assert_array_equal(fusedmlp.predict(p, X), np.zeros((1, 4), dtype=np.int8))


def _perfect_model():
    """Output sigmoid(50 * tanh(100 * x0)): the label of x0 > 0 with certainty."""
    return {
        "W1": np.array([[100.0, 0.0]]),
        "b1": np.zeros((1, 1)),
        "W2": np.array([[50.0]]),
        "b2": np.zeros((1, 1)),
    }


def test_accuracy_of_perfect_and_inverted_model():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(2, 64))
    X[0] = np.where(np.abs(X[0]) < 0.05, 0.5, X[0])  # keep x0 away from the boundary
    Y = (X[0] > 0).astype(np.float64).reshape(1, -1)
    assert 0 < Y.sum() < 64
    p = _perfect_model()
    assert fusedmlp.accuracy(p, X, Y, activation="tanh") == 1.0
    assert fusedmlp.accuracy(p, X, 1 - Y, activation="tanh") == 0.0
    assert fusedmlp.accuracy(p, X, Y.ravel(), activation="tanh") == 1.0  # 1-D Y
    # flip exactly 5 labels: 59/64
    Y2 = Y.copy()
    Y2[0, :5] = 1 - Y2[0, :5]
    acc = fusedmlp.accuracy(p, X, Y2, activation="tanh")
    assert isinstance(acc, float) and acc == 59 / 64


def test_accuracy_matches_independent_count():
    rng = np.random.RandomState(7)
    p = fusedmlp.init_params(2, 4, 2, seed=6, scale=2.0)
    X = rng.randn(2, 41)
    Y = rng.rand(2, 41)  # soft targets: thresholded at 0.5
    A2 = _sig(p["W2"] @ _sig(p["W1"] @ X + p["b1"]) + p["b2"])
    hits = 0
    for i in range(2):
        for j in range(41):
            hits += int((A2[i, j] > 0.5) == (Y[i, j] > 0.5))
    acc = fusedmlp.accuracy(p, X, Y)
    assert acc == hits / 82
    assert 0 < acc < 1


def test_accuracy_output_count_mismatch():
    p = fusedmlp.init_params(2, 3, 2, seed=0)
    X, Y = _small()
    with pytest.raises(ValueError, match=r"Y has 1 rows but W2 is \(2, 3\)"):
        fusedmlp.accuracy(p, X, Y)
