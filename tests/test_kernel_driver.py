"""The compiled kernels' driver (fusedmlp._compiled) and their bounds: what reaches a
kernel, and the kernels run where indexing is checked (numba checks none). Cases and the
reference training are test_kernels.py's."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_kernels import NAMES, _make_case, _reference_training

from fusedmlp import _compiled

# ---------------------------------------------------------------------------
# driver behaviour


def test_params_updated_in_place_and_converted_entries_replaced():
    p, X, Y = _make_case(2, 4, 1, 64, np.float64, seed=1)
    W1 = p["W1"]
    p["b2"] = np.asfortranarray(p["b2"].astype(np.float32))  # wrong dtype: gets replaced
    ref_n, _, ref_p = _reference_training(p, X, Y, "sigmoid", "mse", 0.5, 4)
    assert _compiled.train_epochs(p, X, Y, "sigmoid", "mse", 0.5, 4, np.empty(4)) == (ref_n, 0)
    assert p["W1"] is W1  # updated in place
    assert p["b2"].dtype == np.float64
    for k in NAMES:
        np.testing.assert_allclose(p[k], ref_p[k], rtol=1e-12, err_msg=k)


def test_wrong_shapes_never_reach_a_kernel():
    p, X, Y = _make_case(2, 4, 1, 64, np.float64, seed=1)
    bad = dict(p, W2=np.zeros((1, 5)))
    with pytest.raises(AssertionError, match="W2"):
        _compiled.loss_and_grads(bad, X, Y)
    with pytest.raises(AssertionError, match="Y"):
        _compiled.loss_and_grads(p, X, Y[:, :10])
    with pytest.raises(AssertionError, match="b1"):
        _compiled.predict_proba(dict(p, b1=np.zeros(4)), X)
    with pytest.raises(AssertionError, match="float32 or float64"):
        _compiled.predict_proba(p, X.astype(np.int64))
    with pytest.raises(AssertionError, match="losses_out"):
        _compiled.train_epochs(p, X, Y, "sigmoid", "mse", 0.1, 5, np.empty(4))


def test_zero_epochs_is_a_no_op():
    p, X, Y = _make_case(2, 4, 1, 64, np.float64, seed=1)
    before = {k: v.copy() for k, v in p.items()}
    assert _compiled.train_epochs(p, X, Y, "sigmoid", "mse", 0.1, 0, np.empty(0)) == (0, 0)
    for k in NAMES:
        assert np.array_equal(p[k], before[k])


# ---------------------------------------------------------------------------
# bounds: numba does no bounds checks, so run the kernels once where indexing is checked

_CHECKED_RUN = textwrap.dedent(
    """
    import math, sys
    import numpy as np
    from fusedmlp import _compiled, reference
    from fusedmlp.kernels import BLOCK

    PATHS = sys.argv[1].split(",")
    # n_x, n_h, n_y, m: narrow (loops), then wide (BLAS) with sizes that are no multiple
    # of anything and m across block edges
    SHAPES = [(1, 1, 1, 1), (3, 5, 2, BLOCK + 3), (8, 7, 4, 2 * BLOCK), (40, 24, 3, 777),
              (7, 9, 2, 130)]
    from fusedmlp.kernels import config
    assert [config.plan(*s[:3], 8, s[3])[1] for s in SHAPES] == [0, 0, 0, 1, 1]
    for i, (n_x, n_h, n_y, m) in enumerate(SHAPES):
        rng = np.random.default_rng(i)
        act = ("sigmoid", "tanh", "relu")[i % 3]
        loss = ("mse", "cross_entropy")[i % 2]
        for dtype in (np.float64, np.float32):
            p = {"W1": rng.normal(size=(n_h, n_x)) / n_x**0.5, "b1": rng.normal(size=(n_h, 1)),
                 "W2": rng.normal(size=(n_y, n_h)) / n_h**0.5, "b2": rng.normal(size=(n_y, 1))}
            p = {k: v.astype(dtype) for k, v in p.items()}
            X = rng.normal(size=(n_x, m)).astype(dtype)
            Y = (rng.random((n_y, m)) > 0.5).astype(dtype)
            ref = {k: v.astype(np.float64) for k, v in p.items()}
            X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
            want = []
            for e in range(2):
                L, g = reference.loss_and_grads(ref, X64, Y64, act, loss)
                want.append(L)
                ref = {k: ref[k] - 0.1 * g["d" + k] for k in ref}
            for path in PATHS:
                if path == "predict":
                    A2 = _compiled.predict_proba(p, X, act)
                    p64 = {k: v.astype(np.float64) for k, v in p.items()}
                    A2_ref = reference.predict_proba(p64, X64, act)
                    assert np.allclose(A2, A2_ref, rtol=1e-4, atol=1e-6), path
                    continue
                q = {k: v.copy() for k, v in p.items()}
                losses = np.empty(2)
                done = _compiled.train_epochs(q, X, Y, act, loss, 0.1, 2, losses, path=path)
                assert done == (2, 0), (path, done)
                assert np.allclose(losses, want, rtol=1e-4), (path, losses, want)
    print("checked")
    """
)


def _run_checked(env_extra, paths, tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), **env_extra)
    proc = subprocess.run(
        [sys.executable, "-c", _CHECKED_RUN, paths],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checked" in proc.stdout


def test_serial_kernels_in_bounds_with_numba_boundscheck(tmp_path):
    # NUMBA_BOUNDSCHECK=1 compiles every index with a check that raises IndexError; a fresh
    # cache dir makes sure nothing unchecked is loaded from disk. (Inside prange an
    # IndexError is lost, so the serial path is the one checked here.)
    _run_checked({"NUMBA_BOUNDSCHECK": "1"}, "serial", tmp_path)


def test_all_kernels_in_bounds_as_plain_python(tmp_path):
    # NUMBA_DISABLE_JIT=1 runs the kernels as Python on NumPy arrays, which checks every
    # index (prange becomes range), so the parallel kernels are covered too.
    _run_checked({"NUMBA_DISABLE_JIT": "1"}, "serial,parallel,predict", tmp_path)


@pytest.mark.parametrize("path", ["serial", "parallel"])
def test_epoch_runner_refuses_a_short_losses_buffer(path):
    # the serial kernel writes losses[0 .. n): a view shorter than n must never reach it
    rng = np.random.default_rng(0)
    p = {"W1": rng.normal(size=(4, 2)), "b1": np.zeros((4, 1)),
         "W2": rng.normal(size=(1, 4)), "b2": np.zeros((1, 1))}  # fmt: skip
    X, Y = rng.normal(size=(2, 300)), (rng.random((1, 300)) > 0.5) * 1.0
    run = _compiled.epoch_runner(p, X, Y, "sigmoid", "mse", 0.1, path=path)
    buf = np.full(8, -1.0)
    for n, losses in ((6, buf[:2]), (-1, buf), (2, buf[::2]), (2, buf.astype(np.float32))):
        with pytest.raises(AssertionError, match="losses must be"):
            run(n, losses)
    np.testing.assert_array_equal(buf, -1.0)  # nothing written anywhere
    assert run(3, buf) == (3, 0) and (buf[:3] != -1.0).all() and (buf[3:] == -1.0).all()


@pytest.mark.parametrize("m", [1, 7, 400, 1000, 4097])
def test_serial_and_parallel_paths_agree_to_the_bit(m):
    # the two paths share the chunk code and summation order; the mean is one exact
    # division in both (no reciprocal hoisted out of the serial epoch loop), so the
    # recorded losses and the parameters are the same bits
    rng = np.random.default_rng(m)
    p = {"W1": rng.normal(size=(4, 2)), "b1": np.zeros((4, 1)),
         "W2": rng.normal(size=(1, 4)), "b2": np.zeros((1, 1))}  # fmt: skip
    X, Y = rng.normal(size=(2, m)), (rng.random((1, m)) > 0.5) * 1.0
    out = {}
    for path in ("serial", "parallel"):
        q = {k: v.copy() for k, v in p.items()}
        losses = np.empty(50)
        assert _compiled.train_epochs(q, X, Y, "sigmoid", "mse", 0.3, 50, losses, path=path) == (
            50,
            0,
        )
        out[path] = (losses, q)
    np.testing.assert_array_equal(out["serial"][0], out["parallel"][0])
    for k in p:
        np.testing.assert_array_equal(out["serial"][1][k], out["parallel"][1][k])
