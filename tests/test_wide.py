"""Wide networks: the BLAS block code (kernels/wide.py) against the NumPy reference.

Tolerances and error scales are those of test_kernels.py (rtol 1e-10 in float64, 1e-4 in
float32, on the magnitudes a value was computed from). Wide cases go up to n_x 1024,
n_h 512, n_y 16, with m around block edges; the plan (block size, BLAS or loops, chunks)
is checked to be the one the test means to exercise.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels import (
    ACTIVATIONS,
    LOSSES,
    RTOL,
    _as64,
    _assert_close,
    _error_scales,
    _layout,
    _make_case,
)

from fusedmlp import _compiled, reference
from fusedmlp.kernels import config

NAMES = ("W1", "b1", "W2", "b2")


def _plan(n_x, n_h, n_y, m, dtype):
    return config.plan(n_x, n_h, n_y, np.dtype(dtype).itemsize, m)


@st.composite
def wide_cases(draw):
    n_x = draw(st.sampled_from([config.WIDE_MIN_X, 7, 31, 64, 100, 257, 1024]))
    n_h = draw(st.sampled_from([config.WIDE_MIN_H, 9, 33, 128, 255, 512]))
    n_y = draw(st.sampled_from([1, 2, 10, 16]))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    # around the edges of this network's blocks, and below one block
    blk = _plan(n_x, n_h, n_y, 10**6, dtype)[0]
    m = draw(st.sampled_from([1, 3, blk - 1, blk, blk + 1, 2 * blk + 5, 8 * blk + 1]))
    return {
        "shape": (n_x, n_h, n_y, m),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "loss": draw(st.sampled_from(LOSSES)),
        "dtype": dtype,
        "layout": draw(st.sampled_from(["C", "F", "strided"])),
        "seed": draw(st.integers(0, 2**32 - 1)),
        # weights of size ~1/sqrt(n_x) keep Z1 of order 1 however wide the input
        "scale": draw(st.floats(0.5, 1.0)) / np.sqrt(n_x),
    }


@settings(max_examples=40, deadline=None, derandomize=True)
@given(wide_cases())
def test_wide_loss_and_grads_match_reference(case):
    n_x, n_h, n_y, m = case["shape"]
    dtype = case["dtype"]
    assert _plan(n_x, n_h, n_y, m, dtype)[1] == 1  # the BLAS block code
    p, X, Y = _make_case(n_x, n_h, n_y, m, dtype, case["seed"], case["scale"])
    act, loss = case["activation"], case["loss"]
    L, g = _compiled.loss_and_grads(
        p, _layout(X, case["layout"]), _layout(Y, case["layout"]), act, loss
    )
    p64, X64, Y64 = _as64(p), X.astype(np.float64), Y.astype(np.float64)
    L_ref, g_ref = reference.loss_and_grads(p64, X64, Y64, act, loss)
    scales = _error_scales(p64, X64, Y64, act, loss)
    assert abs(L - L_ref) <= RTOL[dtype] * abs(L_ref), (L, L_ref)
    for k in ("dW1", "db1", "dW2", "db2"):
        _assert_close(g[k], g_ref[k], scales[k], RTOL[dtype], k)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(wide_cases())
def test_wide_forward_and_accuracy_match_reference(case):
    n_x, n_h, n_y, m = case["shape"]
    dtype = case["dtype"]
    p, X, Y = _make_case(n_x, n_h, n_y, m, dtype, case["seed"], case["scale"])
    A2 = _compiled.predict_proba(p, _layout(X, case["layout"]), case["activation"])
    p64, X64 = _as64(p), X.astype(np.float64)
    want = reference.predict_proba(p64, X64, case["activation"])
    scale = _error_scales(p64, X64, np.zeros_like(want), case["activation"], "mse")["A2"]
    _assert_close(A2, want, scale, RTOL[dtype], "A2", atol=np.finfo(dtype).tiny)
    # accuracy thresholds the very A2 predict_proba gives (same block code)
    acc, nan = _compiled.accuracy(p, X, Y, case["activation"])
    assert nan == 0
    assert acc == np.mean((A2 > 0.5) == (Y > 0.5))


# ---------------------------------------------------------------------------
# the same bits: any thread count, serial or parallel, run after run

SHAPES = [(64, 32, 10, 1797), (30, 64, 1, 5000), (100, 33, 3, 3000)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_wide_serial_and_parallel_paths_agree_to_the_bit(shape, dtype):
    n_x, n_h, n_y, m = shape
    p, X, Y = _make_case(n_x, n_h, n_y, m, dtype, seed=3, scale=0.3 / np.sqrt(n_x))
    assert _plan(n_x, n_h, n_y, m, dtype)[1] == 1
    out = {}
    for path in ("serial", "parallel"):
        q = {k: v.copy() for k, v in p.items()}
        losses = np.empty(20)
        done = _compiled.train_epochs(q, X, Y, "tanh", "cross_entropy", 0.5, 20, losses, path=path)
        assert done == (20, 0)
        out[path] = (losses, q)
    np.testing.assert_array_equal(out["serial"][0], out["parallel"][0])
    for k in NAMES:
        np.testing.assert_array_equal(out["serial"][1][k], out["parallel"][1][k])


_THREADS = textwrap.dedent(
    """
    import sys
    import numba, numpy as np
    from fusedmlp import _compiled
    rng = np.random.default_rng(0)
    out = []
    for n_x, n_h, n_y, m, dt in [(64, 32, 10, 1797, np.float64), (100, 130, 4, 9000, np.float32)]:
        p = {"W1": rng.normal(size=(n_h, n_x)) / 10, "b1": rng.normal(size=(n_h, 1)),
             "W2": rng.normal(size=(n_y, n_h)) / 10, "b2": rng.normal(size=(n_y, 1))}
        p = {k: v.astype(dt) for k, v in p.items()}
        X = rng.normal(size=(n_x, m)).astype(dt)
        Y = (rng.random((n_y, m)) > 0.5).astype(dt)
        for threads in (1, 2):
            numba.set_num_threads(threads)
            L, g = _compiled.loss_and_grads(p, X, Y, "sigmoid", "mse")
            A2 = _compiled.predict_proba(p, X, "relu")
            out.append([L, *g.values(), A2])
        numba.set_num_threads(2)
    same = all(np.array_equal(a, b) for i in range(0, len(out), 2)
               for a, b in zip(out[i], out[i + 1]))
    print("same" if same else "differ", numba.get_num_threads())
    """
)


def test_wide_results_do_not_depend_on_the_thread_count():
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-c", _THREADS], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["same", "2"]


def test_wide_runs_are_repeatable():
    p, X, Y = _make_case(257, 65, 5, 4000, np.float64, seed=9, scale=0.05)
    first = _compiled.loss_and_grads(p, X, Y, "relu", "cross_entropy")
    for _ in range(3):
        again = _compiled.loss_and_grads(p, X, Y, "relu", "cross_entropy")
        assert again[0] == first[0]
        for k in first[1]:
            np.testing.assert_array_equal(again[1][k], first[1][k])


# ---------------------------------------------------------------------------
# what the plan chooses


def test_plan_choices():
    # narrow: the planar network, two inputs at any width, too few hidden units
    for n_x, n_h in [(2, 4), (2, 512), (784, 4), (config.WIDE_MIN_X - 1, 64)]:
        assert config.plan(n_x, n_h, 1, 8, 10**5)[:2] == (config.BLOCK, 0)
    blk, wide, n_chunk = config.plan(784, 128, 10, 8, 60000)
    assert wide == 1 and blk % 64 == 0 and n_chunk == config.WIDE_CHUNKS
    # the cache budget, or the smallest block BLAS is worth calling for
    assert (
        blk == config.WIDE_BLOCK_MIN or (2 * 128 + 10) * 8 * (blk - 64) < config.WIDE_BLOCK_BYTES
    )
    # a small data set still gets several blocks for the threads to share
    blk, _, n_chunk = config.plan(64, 32, 10, 8, 1797)
    assert -(-1797 // blk) >= config.WIDE_MIN_BLOCKS - 1 and n_chunk >= 7
    # rows too long for BLAS's int leading dimension: the loops (no copy, no overflow)
    X = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(64, 2**31), strides=(0, 0))
    p = {"W1": np.zeros((128, 64)), "W2": np.zeros((10, 128))}
    assert _compiled._plan(p["W1"], p["W2"], X)[1] == 0


def test_blas_helpers_match_numpy_on_strided_views():
    from fusedmlp.kernels import blas

    rng = np.random.default_rng(1)
    for dt in (np.float64, np.float32):
        X = rng.normal(size=(7, 100)).astype(dt)
        A = rng.normal(size=(5, 7)).astype(dt)
        D = rng.normal(size=(5, 27)).astype(dt)
        W = rng.normal(size=(5, 3)).astype(dt)
        E = rng.normal(size=(5, 27)).astype(dt)
        Xb = X[:, 13:40]  # a block: row stride 100
        big = np.full((8, 50), 7.0, dt)
        C = big[2:7, 3:30]  # a strided output; what is around it must stay 7
        tol = 1e-12 if dt == np.float64 else 1e-4
        assert blas.mm(C, A, Xb, 0.0) == 0
        np.testing.assert_allclose(C, A @ Xb, rtol=tol, atol=tol)
        G = np.ones((5, 7), dt)
        blas.mm_nt(G, D, Xb, 1.0)
        np.testing.assert_allclose(G, D @ Xb.T + 1, rtol=tol, atol=tol)
        P = np.empty((3, 27), dt)
        blas.mm_tn(P, W, E, 0.0)
        np.testing.assert_allclose(P, W.T @ E, rtol=tol, atol=tol)
        big[2:7, 3:30] = 7.0
        assert (big == 7.0).all()


@pytest.mark.parametrize("extra", [0, 1, 3])
def test_float32_sums_reach_the_row_every_flush_group(extra):
    # chunks of many blocks, so float32 sums gather in G over FLUSH_BLOCKS blocks at a
    # time and a last, partial group is flushed at the chunk's end: a group lost or
    # counted twice would be off by a block's share, far beyond float32's tolerance
    from fusedmlp.kernels import wide

    n_x, n_h, n_y = 64, 256, 1
    blk, _, n_chunk = _plan(n_x, n_h, n_y, 10**6, np.float32)
    m = n_chunk * blk * (2 * wide.FLUSH_BLOCKS + extra) - 7
    blocks_per_chunk = -(-m // blk) / n_chunk
    assert blocks_per_chunk > wide.FLUSH_BLOCKS
    p, X, Y = _make_case(n_x, n_h, n_y, m, np.float32, seed=extra, scale=0.75 / 8)
    L, g = _compiled.loss_and_grads(p, X, Y, "tanh", "mse")
    p64, X64, Y64 = _as64(p), X.astype(np.float64), Y.astype(np.float64)
    L_ref, g_ref = reference.loss_and_grads(p64, X64, Y64, "tanh", "mse")
    assert abs(L - L_ref) <= RTOL[np.float32] * abs(L_ref)
    # against the largest entry: the error scales of the other tests bound every term's
    # magnitude, and a group of blocks lost from a long sum hides under them (measured:
    # a lost last group errs by 10-30% of the largest entry; float32 rounding by 1e-6)
    for k in ("dW1", "db1", "dW2", "db2"):
        err = np.abs(g[k] - g_ref[k]).max() / np.abs(g_ref[k]).max()
        assert err <= 1e-4, (k, err)


def test_blas_runs_one_thread_during_a_wide_call_and_gets_its_count_back():
    """_compiled._blas_threads: every BLAS library at 1 thread inside a wide kernel call
    (the kernels call BLAS from each of their own threads), its own count after, and
    nothing touched for a narrow call."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from fusedmlp._blas_threads import blas_libraries

    def counts():
        blas_libraries()  # numba's BLAS loaded: every count below sees it
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        outside = counts()
        with _compiled._blas_threads((256, 1, 2)):
            assert counts() == [1] * len(outside)
        assert counts() == outside
        with _compiled._blas_threads((256, 0, 2)):
            assert counts() == outside


@pytest.mark.parametrize("m", [1, 5, 23, 54, 135, 540, 1797, 5000, 40000])
def test_prediction_plan_balances_blocks_and_predicts_as_the_reference(m):
    """config.forward_plan: the blocks cover m; the chunks number a multiple of 4 unless
    halved for blocks of at least FORWARD_MIN samples; a narrow network keeps its plan;
    and predict_proba on it gives the reference's outputs."""
    blk, wide, n_chunk = config.forward_plan(64, 64, 10, 8, m)
    n_block = -(-m // blk)
    assert wide == 1 and blk % 8 == 0 and n_block * blk >= m > (n_block - 1) * blk
    assert n_chunk == min(n_block, config.WIDE_CHUNKS)
    if m >= config.FORWARD_MIN * config.FORWARD_BLOCKS:  # the threads' shares: chunks
        assert n_chunk % config.FORWARD_BLOCKS == 0
    assert config.forward_plan(2, 4, 1, 8, m) == config.plan(2, 4, 1, 8, m)
    rng = np.random.default_rng(m)
    p = {"W1": rng.normal(size=(64, 64)) / 8, "b1": rng.normal(size=(64, 1)),
         "W2": rng.normal(size=(10, 64)) / 8, "b2": rng.normal(size=(10, 1))}  # fmt: skip
    X = rng.normal(size=(64, m))
    A2 = _compiled.predict_proba(p, X, "tanh", "softmax")
    np.testing.assert_allclose(A2, reference.predict_proba(p, X, "tanh", "softmax"), rtol=1e-12)


@pytest.mark.parametrize("m", [13, 200, 3000])
def test_small_predictions_run_serially_with_the_parallel_kernels_bits(m, monkeypatch):
    """Below config.serial_max_m samples predict_proba runs the serial twin (no thread
    launch, no lock), above it the parallel kernel: the same bits either way."""
    from fusedmlp import kernels

    called = []
    for name in ("forward", "forward_serial"):
        kernel = getattr(kernels, name)
        monkeypatch.setattr(
            kernels, name, lambda *a, _k=kernel, _n=name: called.append(_n) or _k(*a)
        )
    rng = np.random.default_rng(m)
    p = {"W1": rng.normal(size=(64, 13)), "b1": rng.normal(size=(64, 1)),
         "W2": rng.normal(size=(3, 64)), "b2": rng.normal(size=(3, 1))}  # fmt: skip
    X = rng.normal(size=(13, m))
    A2 = _compiled.predict_proba(p, X, "relu", "softmax")
    serial = m <= config.serial_max_m(13, 64, 3)
    assert called == ["forward_serial" if serial else "forward"]
    plan = config.forward_plan(13, 64, 3, 8, m)
    other = np.empty_like(A2)
    with _compiled._blas_threads(plan):
        (kernels.forward if serial else kernels.forward_serial)(
            other, *(np.ascontiguousarray(p[k]) for k in ("W1", "b1", "W2", "b2")), X,
            _compiled._kind("relu", output="softmax"), plan,
        )  # fmt: skip
    assert np.array_equal(A2, other)
