"""The compiled kernels (through fusedmlp._compiled) against the NumPy reference.

Every comparison is with fusedmlp.reference evaluated in float64 on the same values (for
float32 cases: the float32 data and parameters converted exactly to float64), or with an
exact known value.
"""

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusedmlp import _compiled, reference
from fusedmlp import kernels as K

ACTIVATIONS = ["sigmoid", "tanh", "relu"]
LOSSES = ["mse", "cross_entropy"]
NAMES = ("W1", "b1", "W2", "b2")

# Tolerances. float64: rtol 1e-10; float32: rtol 1e-4 (float32 eps is 6e-8: a few
# hundred roundings of margin, and the float64 sums across blocks keep the long sums from
# adding more). A rounding error is not proportional to the value it lands in but to
# the magnitudes it was computed from: a sum with cancellation, or A2 (1 - A2) for a
# saturated A2, can be tiny while its error is not. So each entry is allowed
# rtol * (|reference| + scale), with scale the same formula evaluated on magnitudes
# (see _error_scales): that keeps the test tight (~1e-10 relative for typical entries)
# without failing on entries whose value is pure cancellation.
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


def _as64(d):
    return {k: np.asarray(v, dtype=np.float64) for k, v in d.items()}


def _error_scales(p, X, Y, activation, loss):
    """Magnitude bounds of every quantity the gradients are made of, pushed through the
    reference formulas with absolute values: Z1's scale is |W1| |X| + |b1|, A1's is |A1|
    plus what an error in Z1 does to it, and so on. Returns scales of A2 and the grads."""
    cache = reference.forward(p, X, activation)
    A1, A2 = cache["A1"], cache["A2"]
    m = X.shape[1]
    z1 = np.abs(p["W1"]) @ np.abs(X) + np.abs(p["b1"])
    a1 = np.abs(A1) + (0.25 if activation == "sigmoid" else 1.0) * z1
    z2 = np.abs(p["W2"]) @ a1 + np.abs(p["b2"])
    a2 = A2 + 0.25 * z2
    if loss == "mse":
        d2 = (2 / m) * (a2 + np.abs(Y)) * a2 * (1 + a2)
    else:
        d2 = (1 / m) * (a2 + np.abs(Y))
    g = {"sigmoid": a1 * (1 + a1), "tanh": 1 + a1 * a1, "relu": np.ones_like(a1)}[activation]
    d1 = (np.abs(p["W2"]).T @ d2) * g
    return {
        "A2": A2 * (1 + z2),
        "dW1": d1 @ np.abs(X).T,
        "db1": d1.sum(axis=1, keepdims=True),
        "dW2": d2 @ a1.T,
        "db2": d2.sum(axis=1, keepdims=True),
    }


def _assert_close(got, want, scale, rtol, what, atol=0.0):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, what
    bound = rtol * (np.abs(want) + scale) + atol
    bad = ~(np.abs(got - want) <= bound)  # also catches NaN
    assert not bad.any(), f"{what}: {np.count_nonzero(bad)} entries off, worst " + str(
        np.max(np.abs(got - want) - bound)
    )


def _make_case(n_x, n_h, n_y, m, dtype, seed, scale=0.75):
    rng = np.random.default_rng(seed)
    p = {
        "W1": rng.normal(size=(n_h, n_x)) * scale,
        "b1": rng.normal(size=(n_h, 1)) * scale,
        "W2": rng.normal(size=(n_y, n_h)) * scale,
        "b2": rng.normal(size=(n_y, 1)) * scale,
    }
    X = rng.normal(size=(n_x, m))
    Y = rng.random((n_y, m))
    hard = rng.random(m) < 0.5
    Y[:, hard] = np.round(Y[:, hard])  # some hard labels, some soft targets
    return {k: v.astype(dtype) for k, v in p.items()}, X.astype(dtype), Y.astype(dtype)


def _layout(A, layout):
    """The same values as C-ordered, F-ordered or a non-contiguous strided view."""
    if layout == "F":
        return np.asfortranarray(A)
    if layout == "strided":
        big = np.zeros((A.shape[0] * 2, A.shape[1] * 3), A.dtype)
        big[::2, ::3] = A
        return big[::2, ::3]
    return np.ascontiguousarray(A)


@st.composite
def cases(draw):
    n_x = draw(st.integers(1, 8))
    n_h = draw(st.integers(1, 64))
    n_y = draw(st.integers(1, 4))
    # m below the thread count, around and across block and chunk edges, and random
    special_m = [1, 2, 3, K.BLOCK - 1, K.BLOCK, K.BLOCK + 1, 3 * K.BLOCK + 5]
    m = draw(st.one_of(st.sampled_from(special_m), st.integers(1, 3000)))
    return {
        "shape": (n_x, n_h, n_y, m),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "loss": draw(st.sampled_from(LOSSES)),
        "dtype": draw(st.sampled_from([np.float64, np.float32])),
        "layout": draw(st.sampled_from(["C", "F", "strided"])),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "scale": draw(st.floats(0.5, 1.0)),
    }


def _check_loss_and_grads(case):
    dtype = case["dtype"]
    p, X, Y = _make_case(*case["shape"], dtype, case["seed"], case["scale"])
    act, loss = case["activation"], case["loss"]
    L, g = _compiled.loss_and_grads(
        p, _layout(X, case["layout"]), _layout(Y, case["layout"]), act, loss
    )

    p64, X64, Y64 = _as64(p), X.astype(np.float64), Y.astype(np.float64)
    L_ref, g_ref = reference.loss_and_grads(p64, X64, Y64, act, loss)
    scales = _error_scales(p64, X64, Y64, act, loss)
    rtol = RTOL[dtype]
    # the loss is a sum of non-negative terms: no cancellation, plain relative error
    assert isinstance(L, float) and math.isclose(L, L_ref, rel_tol=rtol), (L, L_ref)
    for k in ("dW1", "db1", "dW2", "db2"):
        _assert_close(g[k], g_ref[k], scales[k], rtol, k)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(cases())
def test_loss_and_grads_match_reference(case):
    _check_loss_and_grads(case)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_variant_matches_reference(activation, loss, dtype, layout):
    # every combination for sure (hypothesis samples them), across a block edge
    case = {"shape": (3, 7, 2, 2 * K.BLOCK + 3), "activation": activation, "loss": loss}
    _check_loss_and_grads(dict(case, dtype=dtype, layout=layout, seed=42, scale=0.8))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(cases())
def test_predict_proba_matches_reference(case):
    dtype = case["dtype"]
    p, X, _ = _make_case(*case["shape"], dtype, case["seed"], case["scale"])
    A2 = _compiled.predict_proba(p, _layout(X, case["layout"]), case["activation"])
    assert A2.dtype == dtype and A2.flags.c_contiguous

    p64, X64 = _as64(p), X.astype(np.float64)
    want = reference.predict_proba(p64, X64, case["activation"])
    scale = _error_scales(p64, X64, np.zeros_like(want), case["activation"], "mse")["A2"]
    # atol: below the smallest normal number A2 may flush to 0
    _assert_close(A2, want, scale, RTOL[dtype], "A2", atol=np.finfo(dtype).tiny)


# ---------------------------------------------------------------------------
# the classic planar training, 2-4-1 sigmoid + mse, lr 0.2, 3000 epochs


def _planar():
    try:
        from fusedmlp.datasets import planar

        return planar(400, 1)
    except ImportError:  # the same construction, inline
        rng = np.random.RandomState(1)
        N = 200
        X = np.zeros((400, 2))
        Y = np.zeros((400, 1))
        for j in range(2):
            ix = range(N * j, N * (j + 1))
            t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + rng.randn(N) * 0.2
            r = 4 * np.sin(4 * t) + rng.randn(N) * 0.2
            X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
            Y[ix] = j
        return X.T.copy(), Y.T.copy()


def _planar_init():
    rng = np.random.RandomState(2)
    W1 = rng.randn(4, 2) * 0.01
    W2 = rng.randn(1, 4) * 0.01
    return {"W1": W1, "b1": np.zeros((4, 1)), "W2": W2, "b2": np.zeros((1, 1))}


@pytest.fixture(scope="module")
def planar_reference_run():
    X, Y = _planar()
    p = _planar_init()
    losses = np.empty(3000)
    for e in range(3000):
        losses[e], g = reference.loss_and_grads(p, X, Y, "sigmoid", "mse")
        for k in NAMES:
            p[k] = p[k] - 0.2 * g["d" + k]
    return X, Y, losses, p


@pytest.mark.parametrize("path", ["serial", "parallel", "serial-in-chunks"])
def test_planar_3000_epochs_follow_reference_trajectory(planar_reference_run, path):
    X, Y, ref_losses, ref_p = planar_reference_run
    p = _planar_init()
    losses = np.full(3000, np.nan)
    if path == "serial-in-chunks":  # how a trainer reporting progress calls it
        done = 0
        for n in (1, 999, 1000, 1000):
            assert _compiled.train_epochs(p, X, Y, "sigmoid", "mse", 0.2, n, losses[done:]) == (
                n,
                0,
            )
            done += n
    else:
        assert _compiled.train_epochs(p, X, Y, "sigmoid", "mse", 0.2, 3000, losses, path=path) == (
            3000,
            0,
        )
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9, atol=0)
    # it did learn (0.25 -> 0.217) and the weights grew ~100x: a trajectory worth comparing
    assert ref_losses[-1] < ref_losses[0] - 0.03
    assert np.abs(ref_p["W2"]).max() > 50 * np.abs(_planar_init()["W2"]).max()
    for k in NAMES:
        np.testing.assert_allclose(p[k], ref_p[k], rtol=1e-9, atol=0, err_msg=k)


# ---------------------------------------------------------------------------
# determinism


def _run_all(p, X, Y):
    L, g = _compiled.loss_and_grads(p, X, Y, "tanh", "cross_entropy")
    A2 = _compiled.predict_proba(p, X, "tanh")
    q = {k: v.copy() for k, v in p.items()}
    losses = np.empty(3)
    status = _compiled.train_epochs(
        q, X, Y, "tanh", "cross_entropy", 0.3, 3, losses, path="parallel"
    )
    return L, g, A2, q, losses, status


def _assert_identical(a, b):
    L, g, A2, q, losses, status = a
    L2, g2, A22, q2, losses2, status2 = b
    assert L == L2 and status == status2
    assert np.array_equal(A2, A22) and np.array_equal(losses, losses2)
    for k in g:
        assert np.array_equal(g[k], g2[k]), k
    for k in q:
        assert np.array_equal(q[k], q2[k]), k


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bit_identical_on_repeat_and_for_any_thread_count(dtype):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    p, X, Y = _make_case(3, 9, 2, 50_003, dtype, seed=7)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        first = _run_all(p, X, Y)
        _assert_identical(first, _run_all(p, X, Y))
        numba.set_num_threads(1)
        _assert_identical(first, _run_all(p, X, Y))
    finally:
        numba.set_num_threads(before)
    # and the value itself is the reference's
    L_ref, _ = reference.loss_and_grads(
        _as64(p), X.astype(np.float64), Y.astype(np.float64), "tanh", "cross_entropy"
    )
    assert math.isclose(first[0], L_ref, rel_tol=RTOL[dtype])


# ---------------------------------------------------------------------------
# NaN, inf and divergence


def _reference_training(p, X, Y, activation, loss, lr, n_epochs):
    """Reference gradient descent with the documented stopping rule."""
    p = _as64(p)
    with np.errstate(all="ignore"):
        for e in range(n_epochs):
            L, g = reference.loss_and_grads(p, X, Y, activation, loss)
            if not (math.isfinite(L) and all(np.isfinite(v).all() for v in g.values())):
                return e, K.NONFINITE_GRADS, p
            new = {k: p[k] - lr * g["d" + k] for k in NAMES}
            if not all(np.isfinite(v).all() for v in new.values()):
                return e, K.UPDATE_OVERFLOW, p
            p = new
    return n_epochs, K.OK, p


@pytest.mark.parametrize("path", ["serial", "parallel"])
def test_nan_parameter_gives_nan_loss_and_stops_at_once(path):
    p, X, Y = _make_case(2, 5, 1, 300, np.float64, seed=3)
    p["W1"][1, 0] = np.nan
    L, g = _compiled.loss_and_grads(p, X, Y, "sigmoid", "mse")
    assert not np.isfinite(L)
    assert not np.isfinite(g["dW2"]).all()
    before = {k: v.copy() for k, v in p.items()}
    losses = np.zeros(10)
    assert _compiled.train_epochs(p, X, Y, "sigmoid", "mse", 0.1, 10, losses, path=path) == (
        0,
        K.NONFINITE_GRADS,
    )
    for k in NAMES:  # untouched: same bits, the NaN included
        assert np.array_equal(p[k], before[k], equal_nan=True)
    assert np.isnan(losses[0])


@pytest.mark.parametrize("path", ["serial", "parallel"])
@pytest.mark.parametrize("lr", [1e10, 1e20])
def test_divergence_stops_at_the_reference_epoch_with_finite_params(path, lr):
    # relu + cross-entropy with a huge step: the weights blow up until the loss overflows
    p, X, Y = _make_case(2, 3, 1, 50, np.float64, seed=5, scale=1.0)
    Y = np.round(Y)
    n_ref, status_ref, p_ref = _reference_training(p, X, Y, "relu", "cross_entropy", lr, 50)
    assert 0 < n_ref < 50 and status_ref == K.NONFINITE_GRADS  # the scenario is what we think
    losses = np.empty(50)
    assert _compiled.train_epochs(p, X, Y, "relu", "cross_entropy", lr, 50, losses, path=path) == (
        n_ref,
        status_ref,
    )
    for k in NAMES:
        assert np.isfinite(p[k]).all()
        np.testing.assert_allclose(p[k], p_ref[k], rtol=1e-9, err_msg=k)
    assert np.isfinite(losses[:n_ref]).all()


@pytest.mark.parametrize("path", ["serial", "parallel"])
def test_update_overflow_stops_with_status_2_and_finite_params(path):
    # one unit, worked by hand: a1 = relu(1 * 100) = 100, z2 = -100, A2 ~ 0, y = 1, so with
    # cross-entropy dW2 = (A2 - 1) * 100 = -100 and lr * dW2 = -1e309 overflows
    p = {
        "W1": np.array([[1.0]]),
        "b1": np.zeros((1, 1)),
        "W2": np.array([[-1.0]]),
        "b2": np.zeros((1, 1)),
    }
    X, Y = np.array([[100.0]]), np.array([[1.0]])
    _, g = reference.loss_and_grads(p, X, Y, "relu", "cross_entropy")
    assert math.isclose(g["dW2"][0, 0], -100.0)
    before = {k: v.copy() for k, v in p.items()}
    losses = np.empty(5)
    n, status = _compiled.train_epochs(
        p, X, Y, "relu", "cross_entropy", 1e307, 5, losses, path=path
    )
    assert (n, status) == (0, K.UPDATE_OVERFLOW)
    for k in NAMES:
        assert np.array_equal(p[k], before[k])
    assert math.isclose(losses[0], 100.0, rel_tol=1e-12)  # softplus(100) = 100 + 4e-44


def test_float32_parameters_that_would_overflow_stop_with_status_2():
    p, X, Y = _make_case(2, 3, 1, 40, np.float32, seed=11)
    before = {k: v.copy() for k, v in p.items()}
    losses = np.empty(3)
    # finite in float64, but p - 1e300 * dW is far beyond float32's 3.4e38
    assert _compiled.train_epochs(p, X, Y, "sigmoid", "mse", 1e300, 3, losses) == (
        0,
        K.UPDATE_OVERFLOW,
    )
    for k in NAMES:
        assert p[k].dtype == np.float32 and np.array_equal(p[k], before[k])
