"""The training options of ``fusedmlp.train``, continued: bad input, validation, the
schedules' clocks, and predict/accuracy/score for the new outputs (the yardsticks and
helpers are test_training_options.py's)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_training_options import assert_params_close, by_hand, same

import fusedmlp
from fusedmlp import _data, _driver, optimizers, reference
from fusedmlp._compiled_train import train_epochs
from fusedmlp._optstate import COUNT, LR, STOPPED, OptState
from fusedmlp.kernels import SCHEDULE_STOP
from fusedmlp.kernels import optim as koptim

# ---------------------------------------------------------------------------
# 5. bad input: a clear error naming the value, before any kernel runs


@pytest.fixture
def no_kernel(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started: the input should have been refused")

    monkeypatch.setattr(_driver, "make_runner", refuse)


def _labels():
    return np.array([0, 1, 2, 1, 0, 2, 1, 0, 2, 1])


BAD = [
    # (Y, kwargs, error, words the message must hold)
    (np.array([0, 1, -1, 1, 0, 2, 1, 0, 2, 1]), {}, ValueError, "Y[2] = -1 is out of range"),
    (np.array([0, 1.5, 2, 1, 0, 2, 1, 0, 2, 1]), {}, ValueError, "Y[1] = 1.5"),
    (np.array([0, 1, 2, 1, 0, 2, 1, 0, np.nan, 1]), {}, ValueError, "Y[8] = nan"),
    (np.array(list("0121021021")), {}, TypeError, "Y must hold numbers, got dtype <U1"),
    (np.eye(3)[:, _labels()] * 0.9, {}, ValueError, "column 0 sums to 0.9"),
    (np.eye(3)[:, _labels()] + [[0.0], [0.0], [0.1]], {}, ValueError, "sums to 1.1"),
    (np.where(np.arange(10) == 3, [[1.5], [-0.5], [0.0]], np.eye(3)[:, _labels()]), {},
     ValueError, "Y[1, 3] = -0.5 < 0"),
    (_labels(), {"alpha": -0.1}, ValueError, "alpha (the L2 penalty) must be >= 0, got -0.1"),
    (_labels(), {"optimizer": "momentum", "momentum": 1.0}, ValueError,
     "momentum must be in [0, 1), got 1.0"),
    (_labels(), {"optimizer": "nesterov", "momentum": -0.1}, ValueError,
     "momentum must be in [0, 1), got -0.1"),
    (_labels(), {"optimizer": "adam", "beta1": 1.0}, ValueError,
     "beta1 must be in [0, 1), got 1.0"),
    (_labels(), {"optimizer": "adam", "beta2": -0.5}, ValueError,
     "beta2 must be in [0, 1), got -0.5"),
    (_labels(), {"optimizer": "adam", "beta2": 1.5}, ValueError,
     "beta2 must be in [0, 1), got 1.5"),
    (_labels(), {"optimizer": "adam", "epsilon": 0.0}, ValueError, "epsilon must be > 0, got 0.0"),
    (_labels(), {"optimizer": "adam", "epsilon": -1e-8}, ValueError,
     "epsilon must be > 0, got -1e-08"),
    (_labels(), {"validation_fraction": 0.0}, ValueError, "validation_fraction must be in (0, 1)"),
    (_labels(), {"validation_fraction": 1.0}, ValueError, "validation_fraction must be in (0, 1)"),
    (_labels(), {"validation_fraction": -0.2}, ValueError, "got -0.2"),
    (_labels(), {"validation_fraction": 0.01}, ValueError,
     "validation_fraction=0.01 leaves class 0 (3 samples) with 0 for validation"),
    (np.array([0, 1, 2, 1, 0, 0, 1, 0, 1, 1]), {"validation_fraction": 0.5}, ValueError,
     "leaves class 2 (1 samples) with 0 for validation and 1 for training"),
    (_labels(), {"optimizer": "adam", "momentum": 0.5}, ValueError,
     "momentum=0.5 is an option of momentum and nesterov, not of optimizer='adam'"),
    (_labels(), {"beta1": 0.8}, ValueError,
     "beta1=0.8 is an option of adam, not of optimizer='gd'"),
    (_labels(), {"optimizer": "momentum", "epsilon": 1e-6}, ValueError,
     "epsilon=1e-06 is an option of adam, not of optimizer='momentum'"),
    (_labels(), {"optimizer": "nesterov", "beta2": 0.9}, ValueError,
     "beta2=0.9 is an option of adam, not of optimizer='nesterov'"),
    (_labels(), {"power_t": 0.3}, ValueError,
     "power_t=0.3 is an option of lr_schedule='invscaling', not of 'constant'"),
    (_labels(), {"power_t": 0.3, "lr_schedule": "adaptive"}, ValueError,
     "not of 'adaptive'"),
    (_labels(), {"loss": "mse"}, ValueError, "loss='mse' does not go with output='softmax'"),
]  # fmt: skip


@pytest.mark.parametrize("Y, kwargs, exc, words", BAD)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_bad_softmax_input_is_refused_before_training(no_kernel, Y, kwargs, exc, words, backend):
    X = np.random.default_rng(0).normal(size=(2, Y.shape[-1]))
    with pytest.raises(exc) as err:
        fusedmlp.train(X, Y, output="softmax", epochs=2, seed=0, backend=backend, **kwargs)
    assert words in str(err.value), str(err.value)


def test_bad_identity_and_sigmoid_input_is_refused_before_training(no_kernel, planar):
    X, Y = planar
    with pytest.raises(ValueError) as err:
        fusedmlp.train(X, Y, output="identity", loss="cross_entropy", epochs=2)
    assert "loss='cross_entropy' does not go with output='identity'" in str(err.value)
    # regression: no classes, but each side needs a sample
    with pytest.raises(ValueError) as err:
        fusedmlp.train(X, Y, output="identity", validation_fraction=0.001, epochs=2)
    assert "validation_fraction=0.001 of 400 samples leaves 0 for validation" in str(err.value)
    # class indices beyond the outputs of the starting network
    init = fusedmlp.init_params(2, 4, 3, seed=0)
    y = np.array([0, 1, 2, 3, 1])
    with pytest.raises(ValueError) as err:
        fusedmlp.train(X[:, :5], y, init=init, output="softmax", epochs=2)
    assert "Y[3] = 3 is out of range: expected 0..2 (the network has 3 outputs)" in str(err.value)


def test_whole_float_labels_are_class_indices(spirals):
    X, y = spirals
    a = fusedmlp.train(X, y, output="softmax", epochs=5, seed=1)
    b = fusedmlp.train(X, y.astype(np.float64), output="softmax", epochs=5, seed=1)
    assert same(a.params, b.params)


# ---------------------------------------------------------------------------
# 6. validation


def _expected_stop(scores, tol, patience):
    """The first epoch after ``patience`` epochs in a row without beating the best score
    by more than tol; None when there is none."""
    best, count = -math.inf, 0
    for e, s in enumerate(scores):
        count = 0 if s > best + tol else count + 1
        best = max(best, s)
        if count >= patience:
            return e
    return None


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_validation_returns_the_best_epoch_of_the_held_out_split(planar, backend):
    X, Y = planar
    f, seed = 0.25, 6
    init = fusedmlp.init_params(2, 5, 1, seed=seed)
    res = fusedmlp.train(X, Y, init=init, epochs=150, seed=seed, lr=1.0, activation="tanh",
                         validation_fraction=f, patience=1000, backend=backend)  # fmt: skip
    assert len(res.val_losses) == len(res.val_scores) == res.epochs == 150
    assert res.stop_epoch is None
    assert res.best_epoch == int(np.argmax(res.val_scores))  # the first of the best
    assert res.best_epoch < res.epochs - 1  # else this test shows nothing
    Xt, Yt, Xv, Yv = _data.split(X, Y, f, seed, "sigmoid")
    assert Xv.shape[1] == 100 and Xt.shape[1] == 300
    # trained on the other samples alone: the same trajectory as by hand
    want = by_hand(init, Xt, Yt, 150, lr=1.0, activation="tanh")
    np.testing.assert_allclose(res.losses, want.losses, rtol=1e-10)
    assert_params_close(res.params, want.after[res.best_epoch], 1e-10)
    # the score and loss on the held-out samples, recomputed
    A2 = reference.predict_proba(res.params, Xv, "tanh")
    assert res.val_scores[res.best_epoch] == np.mean((A2 > 0.5) == (Yv > 0.5))
    L = reference.loss_and_grads(res.params, Xv, Yv, "tanh")[0]
    assert res.val_losses[res.best_epoch] == pytest.approx(L, rel=1e-10)
    for e in (0, 77, 149):
        A2 = reference.predict_proba(want.after[e], Xv, "tanh")
        assert res.val_scores[e] == np.mean((A2 > 0.5) == (Yv > 0.5))


@pytest.mark.parametrize("tol", [None, 0.0, 0.02])
def test_validation_stops_after_patience_epochs_without_improvement(spirals, tol):
    X, y = spirals
    res = fusedmlp.train(X, y, output="softmax", optimizer="adam", lr=0.05, hidden=8,
                         epochs=2000, seed=2, validation_fraction=0.2, patience=8,
                         tol=tol)  # fmt: skip
    stop = _expected_stop(res.val_scores, 1e-4 if tol is None else tol, 8)
    assert stop is not None and res.stop_epoch == stop
    assert res.epochs == len(res.val_scores) == len(res.val_losses) == stop + 1
    assert res.best_epoch == int(np.argmax(res.val_scores))
    _, _, Xv, yv = _data.split(X, y, 0.2, 2, "softmax")
    got = np.mean(reference.predict_proba(res.params, Xv, "sigmoid", "softmax").argmax(0) == yv)
    assert got == res.val_scores[res.best_epoch]


def test_stratified_split_keeps_every_class_share():
    y = np.repeat([0, 1, 2, 3], [40, 25, 12, 3])
    X = np.vstack([np.arange(80.0), np.zeros(80)])
    Xt, yt, Xv, yv = _data.split(X, y, 1 / 3, 5, "softmax")
    for c, n in zip(range(4), [40, 25, 12, 3], strict=True):
        assert np.sum(yv == c) == round(n / 3) and np.sum(yt == c) == n - round(n / 3)
    # a partition of the samples, each keeping its label
    cols = np.concatenate([Xt[0], Xv[0]]).astype(int)
    assert sorted(cols) == list(range(80))
    np.testing.assert_array_equal(y[Xv[0].astype(int)], yv)
    # one-hot columns split as their labels, the draw repeatable from the seed
    _, Yt, _, Yv = _data.split(X, np.eye(4)[:, y], 1 / 3, 5, "softmax")
    np.testing.assert_array_equal(Yv.argmax(0), yv)
    assert np.array_equal(_data.split(X, y, 1 / 3, 5, "softmax")[3], yv)
    assert not np.array_equal(_data.split(X, y, 1 / 3, 6, "softmax")[2], Xv)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_validation_score_of_identity_is_r2(backend):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(1, 200))
    Y = np.sin(X) + 0.1 * rng.normal(size=(1, 200))
    res = fusedmlp.train(X, Y, output="identity", activation="tanh", hidden=8, epochs=300,
                         optimizer="adam", lr=0.02, seed=3, validation_fraction=0.3,
                         patience=1000, backend=backend)  # fmt: skip
    _, _, Xv, Yv = _data.split(X, Y, 0.3, 3, "identity")
    assert Xv.shape[1] == 60
    A2 = reference.predict_proba(res.params, Xv, "tanh", "identity")
    r2 = 1 - np.sum((Yv - A2) ** 2) / np.sum((Yv - Yv.mean()) ** 2)
    assert res.val_scores[res.best_epoch] == pytest.approx(r2, rel=1e-10)
    assert res.val_scores[res.best_epoch] > 0.8  # a fit, not a constant
    assert res.val_losses[res.best_epoch] == pytest.approx(np.mean((A2 - Yv) ** 2), rel=1e-10)


# ---------------------------------------------------------------------------
# 7. schedules: the kernel's epoch_end, the reference's AdaptiveLR, the clock


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    losses=st.lists(
        st.one_of(st.floats(0.0, 2.0), st.sampled_from([1.0, 0.5, math.nan, math.inf])),
        min_size=1, max_size=60,
    ),
    lr=st.sampled_from([1e-3, 3e-5, 1e-5, 5e-6]),
    tol=st.sampled_from([0.0, 1e-4, 0.1]),
    patience=st.integers(1, 4),
)  # fmt: skip
def test_adaptive_epoch_end_matches_adaptive_lr(losses, lr, tol, patience):
    codes = np.array([0, koptim.ADAPTIVE, patience], np.int64)
    hyper = np.array([0.9, 0.9, 0.999, 1e-8, 0.0, lr, 0.5, tol])
    clock = np.array([0.0, lr, math.inf, 0.0, 0.0])
    sched = optimizers.AdaptiveLR(lr, tol=tol, patience=patience)
    for e, loss in enumerate(losses):
        stop = koptim.epoch_end(loss, e, 10, codes, hyper, clock)
        want = sched.update(loss)
        assert stop == (want is None), e
        if stop:
            break
        # FASTMATH's arcp lets the kernel divide by 5 as a product by 0.2: an ulp apart
        assert clock[LR] == pytest.approx(want, rel=1e-15) and clock[COUNT] == sched.count, e


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    losses=st.lists(
        st.one_of(st.floats(0.0, 2.0), st.sampled_from([1.0, 0.5, math.nan, math.inf])),
        min_size=1, max_size=60,
    ),
    tol=st.sampled_from([0.0, 1e-4, 0.1]),
    n_iter_no_change=st.integers(1, 4),
)  # fmt: skip
def test_plateau_epoch_end_is_scikit_learns_stopping_test(losses, tol, n_iter_no_change):
    # PLATEAU (the scikit-learn estimators'): count as _update_no_improvement_count does,
    # return True where trigger_stopping would be called, never touch the rate. A NaN
    # loss counts as a failure here (scikit-learn's test would reset the count); the
    # estimators never reach the test with one: a non-finite loss stops the kernel first.
    codes = np.array([0, koptim.PLATEAU, n_iter_no_change + 1], np.int64)
    hyper = np.array([0.9, 0.9, 0.999, 1e-8, 0.0, 0.1, 0.5, tol])
    clock = np.array([0.0, 0.1, math.inf, 0.0, 0.0])
    best, count = math.inf, 0
    for e, loss in enumerate(losses):
        stop = koptim.epoch_end(loss, e, 10, codes, hyper, clock)
        count = count + 1 if loss > best - tol or math.isnan(loss) else 0
        best = min(best, loss) if not math.isnan(loss) else best
        assert stop == (count > n_iter_no_change), e
        assert (clock[COUNT], clock[koptim.BEST], clock[LR]) == (count, best, 0.1), e
        if stop:
            break


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_adaptive_rate_sequence_and_stop_epoch(planar, backend):
    X, Y = planar
    kw = dict(seed=1, lr=1e-4, lr_schedule="adaptive", patience=2, backend=backend)
    whole = fusedmlp.train(X, Y, epochs=100, **kw)
    sched = optimizers.AdaptiveLR(1e-4, patience=2)
    rates = [sched.update(loss) for loss in whole.losses]
    # epoch 0 improves on inf; 1, 2 fail: 2e-5; 3, 4 fail: 4e-6; 5, 6 fail: below the floor
    assert rates[:6] == pytest.approx([1e-4, 1e-4, 2e-5, 2e-5, 4e-6, 4e-6], rel=1e-15)
    assert rates[6] is None
    assert whole.stop_epoch == 6 and whole.epochs == 7
    # one epoch a call: the clock after each holds the rate of the next
    res, seen = fusedmlp.train(X, Y, epochs=1, **kw), []
    while res.stop_epoch is None:
        seen.append(float(res.state["clock"][LR]))
        res = fusedmlp.train(X, Y, epochs=1, resume=res, backend=backend)
    assert seen == pytest.approx(rates[:6], rel=1e-15)  # see the test above
    assert res.stop_epoch == 6 and same(res.params, whole.params)
    assert res.state["clock"][STOPPED] == 1
    # underneath, the runner's status SCHEDULE_STOP after epoch 6 is what set stop_epoch
    if backend == "numba":
        p = fusedmlp.init_params(2, 4, 1, seed=1)
        state = OptState(whole.settings, p)
        losses = np.empty(100)
        assert train_epochs(p, X, Y, "sigmoid", "mse", None, 100, losses, state=state) == (
            7,
            SCHEDULE_STOP,
        )
        np.testing.assert_array_equal(losses[:7], whole.losses)
        assert same(p, whole.params)


def test_adaptive_with_a_tol_divides_the_rate_instead_of_stopping(planar):
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=300, seed=1, lr_schedule="adaptive", tol=1e-3,
                         patience=3)  # fmt: skip
    # only the schedule's floor may end the run, and not before the rate was divided
    assert res.stop_epoch is None or res.state["clock"][STOPPED] == 1


@pytest.mark.parametrize("batch_size", [None, 50])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_invscaling_rate_in_the_clock(planar, backend, batch_size):
    X, Y = planar
    kw = dict(seed=2, lr=0.3, lr_schedule="invscaling", power_t=0.4, backend=backend,
              batch_size=batch_size)  # fmt: skip
    for n in (1, 7, 40):
        res = fusedmlp.train(X, Y, epochs=n, **kw)
        assert res.state["clock"][LR] == pytest.approx(0.3 / (n * 400 + 1) ** 0.4, rel=1e-15)
    # with validation, m counts the training samples only
    res = fusedmlp.train(X, Y, epochs=7, validation_fraction=0.25, **kw)
    assert res.state["clock"][LR] == pytest.approx(0.3 / (7 * 300 + 1) ** 0.4, rel=1e-15)


# ---------------------------------------------------------------------------
# 8. predict, accuracy and score for the new outputs, and from a saved result


def test_softmax_predict_accuracy_score(spirals, tmp_path):
    X, y = spirals
    res = fusedmlp.train(X, y, output="softmax", optimizer="adam", lr=0.05, hidden=10,
                         activation="relu", epochs=200, seed=3)  # fmt: skip
    A2 = reference.predict_proba(res.params, X, "relu", "softmax")
    pred = res.predict(X)
    assert pred.dtype == np.int64 and pred.shape == (150,)
    np.testing.assert_array_equal(pred, A2.argmax(axis=0))
    acc = np.mean(pred == y)
    assert acc > 0.6  # trained, so the check below is not of a constant guess
    kw = dict(activation="relu", output="softmax")
    assert fusedmlp.accuracy(res.params, X, y, **kw) == acc
    assert fusedmlp.accuracy(res.params, X, np.eye(3)[:, y], **kw) == acc
    assert fusedmlp.accuracy(res.params, X, y, backend="numpy", **kw) == acc
    assert fusedmlp.score(res.params, X, y, **kw) == acc
    assert res.score(X, y) == acc
    np.testing.assert_allclose(res.predict_proba(X).sum(axis=0), 1.0, rtol=1e-12)
    back = fusedmlp.load(fusedmlp.save(tmp_path / "softmax.npz", res))
    assert back.output == "softmax" and back.activation == "relu"
    np.testing.assert_array_equal(back.predict(X), pred)
    assert back.score(X, y) == acc


def test_identity_predict_and_score(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 120))
    Y = np.vstack([X[0] * X[1], np.tanh(X[0])]) + 0.05 * rng.normal(size=(2, 120))
    res = fusedmlp.train(X, Y, output="identity", activation="tanh", hidden=12, epochs=300,
                         optimizer="adam", lr=0.03, seed=4)  # fmt: skip
    A2 = reference.predict_proba(res.params, X, "tanh", "identity")
    pred = res.predict(X)
    assert pred.shape == (2, 120) and pred.dtype == np.float64
    np.testing.assert_allclose(pred, A2, rtol=1e-12, atol=1e-12)
    # R^2 by hand, averaged over the two outputs
    r2 = np.mean(1 - ((Y - A2) ** 2).sum(1) / ((Y - Y.mean(1, keepdims=True)) ** 2).sum(1))
    assert r2 > 0.5
    assert fusedmlp.score(res.params, X, Y, activation="tanh", output="identity") == (
        pytest.approx(r2, rel=1e-12)
    )
    assert res.score(X, Y) == pytest.approx(r2, rel=1e-12)
    with pytest.raises(ValueError, match="use fusedmlp.score"):
        fusedmlp.accuracy(res.params, X, Y, activation="tanh", output="identity")
    back = fusedmlp.load(fusedmlp.save(tmp_path / "identity.npz", res))
    assert back.output == "identity" and back.optimizer == "adam"
    np.testing.assert_array_equal(back.predict(X), pred)
    assert back.score(X, Y) == res.score(X, Y)
