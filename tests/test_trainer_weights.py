"""``fusedmlp.train(..., sample_weight=)``: sample weights in the trainer.

The weighted arithmetic itself (kernels against the reference, the reference against
finite differences) is tested in tests/test_sample_weight.py; here the trainer's use of
it: both backends agree (to 1e-10 in float64: the same updates, sums in another
order), integer weights train as repeated samples, the held-out samples are scored
with their weights, resume continues the same run, and bad weights are refused.
"""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, r2_score

import fusedmlp
from fusedmlp import _holdout, reference
from fusedmlp._data import split_index as _data_split


def _data(output, m=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, m))
    if output == "softmax":
        Y = (X[0] > 0).astype(int) + (X[1] > 0.5)  # 3 classes, labels (m,)
    elif output == "identity":
        Y = (X[:1] - X[1:2] ** 2) + 0.1 * rng.normal(size=(1, m))
    elif output == "exp":
        Y = rng.poisson(np.exp(0.5 * X[:2] - 0.2 * X[2:])).astype(float)  # 2 count outputs
    else:
        Y = (X[:2] > 0).astype(float)  # 2 sigmoid outputs
    return X, Y, rng.uniform(0.2, 3.0, m)


OPTIONS = dict(hidden=6, activation="tanh", optimizer="adam", lr=0.01, alpha=0.1, seed=3)


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
@pytest.mark.parametrize("batch_size", [None, 50])
def test_both_backends_train_the_same_weighted_run(output, batch_size):
    X, Y, w = _data(output)
    kw = dict(OPTIONS, output=output, epochs=30, batch_size=batch_size)
    a = fusedmlp.train(X, Y, sample_weight=w, **kw)
    b = fusedmlp.train(X, Y, sample_weight=w, backend="numpy", **kw)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-10)
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-10, atol=1e-12)
    plain = fusedmlp.train(X, Y, **kw)  # and the weights do change the run
    assert not np.allclose(plain.losses, a.losses)


def test_integer_weights_train_as_repeated_samples():
    """Full batches: weights (0, 1, 2, 3, ...) give the run of the data with each sample
    repeated that many times (the same initialisation: same sizes, same seed)."""
    X, Y, _ = _data("softmax", m=60)
    w = np.arange(60) % 4
    rep = np.repeat(np.arange(60), w)
    kw = dict(OPTIONS, output="softmax", epochs=40)
    a = fusedmlp.train(X, Y, sample_weight=w, **kw)
    b = fusedmlp.train(X[:, rep], Y[rep], **kw)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)
    for key in a.params:
        np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
def test_held_out_samples_are_scored_with_their_weights(output):
    X, Y, w = _data(output)
    kw = dict(OPTIONS, output=output, epochs=15, validation_fraction=0.25, patience=100)
    a = fusedmlp.train(X, Y, sample_weight=w, **kw)
    b = fusedmlp.train(X, Y, sample_weight=w, backend="numpy", **kw)
    np.testing.assert_allclose(a.val_losses, b.val_losses, rtol=1e-10)
    np.testing.assert_allclose(a.val_scores, b.val_scores, rtol=1e-10)
    # the best epoch's record, recomputed here from the parameters returned (that
    # epoch's) on the held-out samples the split draws, with their weights
    _, val = _data_split(Y, X.shape[1], 0.25, OPTIONS["seed"], output)
    Yv = reference.one_hot(Y[val], 3) if output == "softmax" else Y[:, val]
    cache = reference.forward(a.params, X[:, val], "tanh", output)
    loss = a.settings.loss
    want = reference.cost(cache, Yv, loss, output, weights=w[val])
    assert a.val_losses[a.best_epoch] == pytest.approx(want, rel=1e-10)
    A2 = cache["A2"]
    if output == "softmax":
        want = accuracy_score(Y[val], A2.argmax(axis=0), sample_weight=w[val])
    elif output in ("identity", "exp"):
        want = r2_score(Yv.T, A2.T, sample_weight=w[val])
    else:
        want = np.average(((A2 > 0.5) == (Yv > 0.5)).mean(axis=0), weights=w[val])
    assert a.val_scores[a.best_epoch] == pytest.approx(want, rel=1e-10)


def test_weighted_scores_are_scikit_learns():
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 2.0, 50)
    A = rng.random((3, 50))
    labels = rng.integers(0, 3, 50)
    want = accuracy_score(labels, A.argmax(axis=0), sample_weight=w)
    assert _holdout.score(A, labels, "softmax", w) == pytest.approx(want, rel=1e-14)
    Y = rng.normal(size=(2, 50))
    want = r2_score(Y.T, A[:2].T, sample_weight=w)
    assert _holdout.score(A[:2], Y, "identity", w) == pytest.approx(want, rel=1e-12)
    T = (rng.random((2, 50)) < 0.5).astype(float)  # sigmoid: each entry of a sample
    right = ((A[:2] > 0.5) == (T > 0.5)).mean(axis=0)
    assert _holdout.score(A[:2], T, "sigmoid", w) == pytest.approx(np.sum(w * right) / w.sum())


@pytest.mark.parametrize("batch_size", [None, 64])
def test_resume_with_the_same_weights_continues_the_run(batch_size):
    X, Y, w = _data("identity")
    kw = dict(OPTIONS, output="identity", batch_size=batch_size)
    whole = fusedmlp.train(X, Y, sample_weight=w, epochs=30, **kw)
    half = fusedmlp.train(X, Y, sample_weight=w, epochs=12, **kw)
    rest = fusedmlp.train(X, Y, sample_weight=w, epochs=18, resume=half)
    np.testing.assert_array_equal(rest.losses, whole.losses)
    for key in whole.params:
        np.testing.assert_array_equal(rest.params[key], whole.params[key])


@pytest.mark.parametrize(
    "w, words",
    [
        (np.ones(239), r"sample_weight must be 240 real numbers, one per sample .* \(239,\)"),
        (np.ones((1, 240)), r"must be 240 real numbers.*shape \(1, 240\)"),
        (np.where(np.arange(240) == 7, np.nan, 1.0), r"finite and >= 0; sample 7 has nan"),
        (np.where(np.arange(240) == 9, -1.0, 1.0), r"finite and >= 0; sample 9 has -1.0"),
        (np.zeros(240), "sample_weight is 0 for every sample"),
        (np.array(["a"] * 240), "must be 240 real numbers"),
    ],
)
def test_bad_weights_are_refused(w, words):
    X, Y, _ = _data("sigmoid")
    with pytest.raises(ValueError, match=words):
        fusedmlp.train(X, Y, sample_weight=w, epochs=1)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_batch_of_zero_weights_is_refused_before_training(backend):
    X, Y, _ = _data("sigmoid")
    w = np.where(np.arange(240) < 200, 0.0, 1.0)
    with pytest.raises(ValueError, match="sample weights of a batch add up to 0"):
        fusedmlp.train(X, Y, sample_weight=w, epochs=2, batch_size=10, backend=backend)
    res = fusedmlp.train(X, Y, sample_weight=w, epochs=2, backend=backend)  # full batch
    assert np.isfinite(res.losses).all()


def test_cluster_data_with_weights_is_refused_before_any_cluster():
    import dask.array as da

    X, Y, w = _data("sigmoid")
    with pytest.raises(ValueError, match="sample_weight is not supported for data on a dask"):
        fusedmlp.train(da.from_array(X), Y, sample_weight=w, epochs=1)
