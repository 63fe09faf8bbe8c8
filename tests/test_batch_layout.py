"""Mini-batches gathered sample-major (kernels.config.BY_SAMPLE_MIN_BYTES).

A wide network whose samples span at least BY_SAMPLE_MIN_BYTES of features gathers each
batch column-major (a sample's features contiguous) and hands BLAS the transposed
operand. What is checked:

- the BLAS helpers take a column-major operand (against NumPy, to rounding);
- the layout follows the sizes only (the rule, and the scratch the runner makes);
- a run's bits do not depend on X's own layout: the same epochs from feature-major X
  and from sample-major X (the transpose of scikit-learn's data, as the estimators pass
  it) are identical, on both sides of the rule, serial batches and batches on threads;
- sample-major batches against the NumPy reference fed the same batches, to the
  tolerances of tests/test_sample_weight.py (float64 1e-12, float32 1e-5 relative).
"""

import numpy as np
import pytest

from fusedmlp import _compiled_train, reference
from fusedmlp._optstate import OptState
from fusedmlp.kernels import blas, config
from fusedmlp.settings import Settings


def test_blas_helpers_take_a_column_major_operand():
    rng = np.random.default_rng(2)
    for dt, tol in ((np.float64, 1e-12), (np.float32, 1e-4)):
        for n_x in (1, 7):  # one feature: a column-major block is also a row
            X = np.asfortranarray(rng.normal(size=(n_x, 90)).astype(dt))
            Xb = X[:, 11:40]  # a block of samples: column stride n_x
            A = rng.normal(size=(5, n_x)).astype(dt)
            D = rng.normal(size=(5, 29)).astype(dt)
            C = np.empty((5, 29), dt)
            assert blas.mm(C, A, Xb, 0.0) == 0
            np.testing.assert_allclose(C, A @ Xb, rtol=tol, atol=tol)
            G = np.ones((5, n_x), dt)
            assert blas.mm_nt(G, D, Xb, 1.0) == 0
            np.testing.assert_allclose(G, D @ Xb.T + 1, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "n_x, itemsize, wide, want",
    [(24, 8, 1, True), (23, 8, 1, False), (48, 4, 1, True), (47, 4, 1, False), (64, 8, 0, False)],
)
def test_the_layout_follows_the_sizes(n_x, itemsize, wide, want):
    assert config.by_sample(n_x, itemsize, wide) is want
    dtype = np.float64 if itemsize == 8 else np.float32
    n_h = 32 if wide else 4  # below WIDE_MIN_H: the loops
    W1, W2 = np.zeros((n_h, n_x), dtype), np.zeros((3, n_h), dtype)
    X, Y = np.zeros((n_x, 500), dtype), np.zeros(500, np.int64)
    plan, _, _, Xb, _ = _compiled_train._batch_setup(W1, W2, X, Y, 100)
    assert plan[1] == wide
    assert (Xb.ndim == 2 and Xb.flags.f_contiguous) is want  # else the flat scratch


def _problem(n_x, n_h, n_y, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_x, m)).astype(dtype)
    labels = rng.integers(0, n_y, m)
    p = {
        "W1": rng.normal(size=(n_h, n_x)) / np.sqrt(n_x),
        "b1": rng.normal(size=(n_h, 1)) * 0.1,
        "W2": rng.normal(size=(n_y, n_h)) / np.sqrt(n_h),
        "b2": rng.normal(size=(n_y, 1)) * 0.1,
    }
    return p, X, labels


def _epochs(p64, X, labels, batch, n_epochs=3, orders=None, optimizer="adam", lr=0.01):
    """n_epochs of compiled mini-batches (relu, softmax); (losses, parameters)."""
    p = {k: v.astype(X.dtype) for k, v in p64.items()}
    s = Settings.make(dict(activation="relu", loss="cross_entropy", output="softmax",
                           optimizer=optimizer, lr=lr, alpha=1e-3))  # fmt: skip
    run = _compiled_train.epoch_runner(
        p, X, labels, "relu", "cross_entropy", output="softmax", state=OptState(s, p),
        batch_size=batch, seed=5,
    )  # fmt: skip
    losses = np.empty(n_epochs)
    assert run(n_epochs, losses, orders=orders) == (n_epochs, 0)
    return losses, p


@pytest.mark.parametrize(
    "n_x, n_h, dtype, batch",
    [
        (64, 40, np.float64, 100),  # sample-major, serial batches
        (64, 40, np.float32, 100),
        (30, 40, np.float64, 64),  # 240 bytes a sample: sample-major
        (30, 40, np.float32, 64),  # 120 bytes: feature-major
        (10, 40, np.float64, 64),  # feature-major (diabetes' shape)
        (70, 130, np.float64, 400),  # sample-major, batches cut into chunks on threads
    ],
)
def test_a_run_does_not_depend_on_the_layout_of_x(n_x, n_h, dtype, batch):
    p, X, labels = _problem(n_x, n_h, 4, 1000, dtype)
    by_feature = _epochs(p, np.ascontiguousarray(X), labels, batch)
    by_sample = _epochs(p, np.ascontiguousarray(X.T).T, labels, batch)  # a view, F order
    assert np.array_equal(by_feature[0], by_sample[0])
    for key in p:
        assert np.array_equal(by_feature[1][key], by_sample[1][key]), key


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_sample_major_batches_match_the_reference(dtype, rtol, order):
    n_x, n_h, n_y, m, batch = 64, 40, 4, 500, 96
    assert config.by_sample(n_x, np.dtype(dtype).itemsize, 1)
    p, X, labels = _problem(n_x, n_h, n_y, m, dtype, seed=3)
    Xo = np.asfortranarray(X) if order == "F" else X
    shuffle = np.random.default_rng(9).permutation(m)
    got_loss, got = _epochs(p, Xo, labels, batch, 1, shuffle[None, :], "gd", 0.1)
    # the reference, batch by batch in the same order (float64)
    X64, Y = X.astype(np.float64), reference.one_hot(labels, n_y, np.float64)
    want, total = dict(p), 0.0
    for s in range(0, m, batch):
        j = shuffle[s : s + batch]
        L, g = reference.loss_and_grads(
            want, X64[:, j], Y[:, j], "relu", "cross_entropy", "softmax", 1e-3
        )
        total += L * j.shape[0]
        want = {k: want[k] - 0.1 * g["d" + k] for k in want}
    assert got_loss[0] == pytest.approx(total / m, rel=rtol)
    for key in p:
        np.testing.assert_allclose(
            got[key], want[key], rtol=rtol, atol=rtol * np.abs(want[key]).max()
        )
