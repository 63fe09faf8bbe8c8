"""Softmax, identity and exp outputs in the kernels, against the NumPy reference.

Tolerances and error scales as in test_kernels.py. Softmax targets are given both as
(K, m) probabilities / one-hot columns and as (m,) class indices, which the kernels read
as one-hot without building the matrix; both must give the reference's numbers.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels import ACTIVATIONS, RTOL, _assert_close

from fusedmlp import _compiled, reference
from fusedmlp.kernels import config

NAMES = ("W1", "b1", "W2", "b2")


def _case(n_x, n_h, n_y, m, output, dtype, seed, labels):
    rng = np.random.default_rng(seed)
    p = {
        "W1": rng.normal(size=(n_h, n_x)) / np.sqrt(n_x),
        "b1": rng.normal(size=(n_h, 1)) * 0.5,
        "W2": rng.normal(size=(n_y, n_h)) / np.sqrt(n_h),
        "b2": rng.normal(size=(n_y, 1)) * 0.5,
    }
    X = rng.normal(size=(n_x, m))
    if output == "softmax":
        y = rng.integers(0, n_y, m)
        Y = y if labels else np.eye(n_y)[:, y]
        if not labels:  # some soft targets too: probabilities summing to 1
            soft = rng.dirichlet(np.ones(n_y), size=m // 3).T
            Y[:, : m // 3] = soft
    elif output == "exp":
        Y = rng.poisson(1.5, size=(n_y, m)).astype(np.float64)  # counts, zeros among them
    else:
        Y = rng.normal(size=(n_y, m)) * 2
    p = {k: v.astype(dtype) for k, v in p.items()}
    X = X.astype(dtype)
    Y = Y if (output == "softmax" and labels) else Y.astype(dtype)
    return p, X, Y


def _dense(Y, n_y):
    return np.eye(n_y)[:, Y] if Y.ndim == 1 else Y.astype(np.float64)


@st.composite
def cases(draw):
    output = draw(st.sampled_from(["softmax", "identity", "exp"]))
    wide = draw(st.booleans())
    n_x = draw(st.integers(config.WIDE_MIN_X, 40) if wide else st.integers(1, 4))
    n_h = draw(st.integers(config.WIDE_MIN_H, 40) if wide else st.integers(1, 7))
    n_y = draw(st.integers(2, 12) if output == "softmax" else st.integers(1, 5))
    m = draw(st.sampled_from([1, 2, 255, 256, 257, 511, 512, 513, 1500]))
    return {
        "shape": (n_x, n_h, n_y, m),
        "output": output,
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "dtype": draw(st.sampled_from([np.float64, np.float32])),
        "labels": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@settings(max_examples=60, deadline=None, derandomize=True)
@given(cases())
def test_outputs_match_reference(case):
    n_x, n_h, n_y, m = case["shape"]
    output, act, dtype = case["output"], case["activation"], case["dtype"]
    loss = reference.OUTPUT_LOSSES[output][0]
    p, X, Y = _case(n_x, n_h, n_y, m, output, dtype, case["seed"], case["labels"])
    L, g = _compiled.loss_and_grads(p, X, Y, act, loss, output)
    p64, X64 = {k: v.astype(np.float64) for k, v in p.items()}, X.astype(np.float64)
    Y64 = _dense(Y, n_y)
    L_ref, g_ref = reference.loss_and_grads(p64, X64, Y64, act, loss, output)
    rtol = RTOL[dtype]
    assert abs(L - L_ref) <= rtol * (abs(L_ref) + 1e-3), (L, L_ref)
    for k in g:
        # magnitudes: the gradients of this network are O(1) per sample at most, and
        # float32 rounding lands on the largest terms summed; compare on their scale
        scale = np.abs(g_ref[k]).max() + 1e-12
        _assert_close(g[k], g_ref[k], scale, rtol, k)
    A2 = _compiled.predict_proba(p, X, act, output)
    want = reference.predict_proba(p64, X64, act, output)
    _assert_close(A2, want, np.abs(want).max() + 1e-12, rtol, "A2", atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_x, n_h", [(2, 5), (30, 20)])  # narrow, wide
def test_labels_and_one_hot_agree(n_x, n_h, dtype):
    # two compiled variants (labels read as one-hot, or a one-hot matrix): the same
    # arithmetic up to how LLVM contracts it, so agreement to a few ulps, not bits
    p, X, y = _case(n_x, n_h, 4, 700, "softmax", dtype, seed=3, labels=True)
    Y = np.eye(4, dtype=dtype)[:, y]
    a = _compiled.loss_and_grads(p, X, y, "tanh", "cross_entropy", "softmax")
    b = _compiled.loss_and_grads(p, X, Y, "tanh", "cross_entropy", "softmax")
    tol = 1e-13 if dtype == np.float64 else 1e-6
    assert a[0] == pytest.approx(b[0], rel=tol)
    for k in a[1]:
        np.testing.assert_allclose(a[1][k], b[1][k], rtol=tol, atol=tol * np.abs(b[1][k]).max())


def test_softmax_accuracy_is_the_argmax():
    p, X, y = _case(30, 20, 5, 1000, "softmax", np.float64, seed=4, labels=True)
    A2 = reference.predict_proba(p, X, "relu", "softmax")
    acc, nan = _compiled.accuracy(p, X, y, "relu", "softmax")
    assert nan == 0 and acc == np.mean(A2.argmax(axis=0) == y)


def test_softmax_never_overflows_in_the_kernels():
    p = {"W1": np.eye(2) * 1e3, "b1": np.zeros((2, 1)),
         "W2": np.array([[10.0, 0.0], [0.0, 10.0]]), "b2": np.zeros((2, 1))}  # fmt: skip
    X = np.array([[100.0, -100.0], [-100.0, 100.0]])  # Z2 of +-1e6
    y = np.array([1, 1])
    L, g = _compiled.loss_and_grads(p, X, y, "relu", "cross_entropy", "softmax")
    L_ref, g_ref = reference.loss_and_grads(
        p, X, np.eye(2)[:, y], "relu", "cross_entropy", "softmax"
    )
    assert np.isfinite(L) and L == pytest.approx(L_ref, rel=1e-12)
    for k in g:
        np.testing.assert_allclose(g[k], g_ref[k], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_y", [2, 10, 1000, 10**6])
@pytest.mark.parametrize("L", [1, 7, 8, 9, 124, 512])
def test_softmax_loss_logs_of_grouped_sums_equal_one_log_each(L, n_y, dtype):
    # elementwise._sum_lse takes one log per config.LSE_GROUP samples, of the product of
    # their sums of exps (each in [1, n_y]); it must equal a log per sample to a few
    # ulp of the total (relative 1e-14 on sums of L terms of magnitude up to log n_y)
    # and stay finite for sums up to n_y = 10^6 (a product of 8 up to 1e48)
    from fusedmlp.kernels.elementwise import _sum_lse

    rng = np.random.default_rng(L + n_y)
    T = np.empty((2, 512), dtype)
    T[0] = rng.normal(size=512) * 5
    T[1] = rng.uniform(1, n_y, 512)
    T[1, : min(L, 3)] = n_y  # the largest sums, in the first group
    want = sum(float(T[0, j]) + np.log(float(T[1, j])) for j in range(L))
    got = _sum_lse(T, L)
    assert np.isfinite(got)
    scale = sum(abs(float(T[0, j])) + np.log(float(T[1, j])) for j in range(L))
    assert abs(got - want) <= 1e-14 * scale
    T[1, L - 1] = np.nan  # a NaN sum (a NaN logit) still gives a NaN loss
    assert np.isnan(_sum_lse(T, L))
