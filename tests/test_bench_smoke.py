"""Every benchmark workload runs once, untimed, at a tiny size, and computes the right thing.

The suite in bench/ is only run on request (``python -m pytest bench``); this keeps its
code from rotting in between. The JAX and torch twins are checked against the reference
here, value by value, so the benchmarks compare like with like. Peer tests skip when the
library is absent; compiled ones while ``fusedmlp._compiled`` lacks what they call.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

from fusedmlp import reference

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


def _load(name):
    # by file, not by putting bench/ on sys.path, so bench's modules cannot shadow
    # anything of tests/
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # workloads does "import peers"
        spec.loader.exec_module(module)
    return sys.modules[name]


peers = _load("peers")
W = _load("workloads")

M, EPOCHS = 1000, 10
TOL = {"float64": 1e-12, "float32": 2e-5}  # relative, on values of order 0.1 to 1


@pytest.fixture(scope="module")
def data():
    out = {}
    for name, dt in W.DTYPES.items():
        X, Y = W.make_data(M, dt)
        out[name] = (X, Y, W.make_params(dt))
    return out


def _need(impl):
    if impl in ("torch", "torch_compile", "jax"):
        pytest.importorskip("jax" if impl == "jax" else "torch")


def _close(a, b, dtype, what):
    # float32 gradients are small differences of O(1) terms: compare on the scale of
    # the largest entry, not entry by entry
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(b).max(), 1e-300)
    err = np.abs(a - b).max() / scale
    assert err <= TOL[dtype], f"{what}: max error {err:.2e} of scale {scale:.2e}"


# ---------------------------------------------------------------------------
# peers agree with the reference: loss and every gradient


@pytest.mark.parametrize("peer", ["jax", "torch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_peer_loss_and_grads_match_reference(data, peer, dtype):
    _need(peer)
    X, Y, p = data[dtype]
    # a starting point away from the symmetric init, so every gradient is sizeable
    rng = np.random.default_rng(0)
    p = {k: (v + rng.normal(size=v.shape)).astype(v.dtype) for k, v in p.items()}
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    L_ref, g_ref = reference.loss_and_grads(p64, X64, Y64, "sigmoid", "mse")
    f = peers.jax_loss_and_grads if peer == "jax" else peers.torch_loss_and_grads
    L, g = f(p, X, Y)
    _close(L, L_ref, dtype, "loss")
    assert set(g) == set(g_ref)
    for k in g_ref:
        assert g[k].shape == g_ref[k].shape, k
        assert g[k].dtype == np.dtype(dtype), (k, g[k].dtype)
        _close(g[k], g_ref[k], dtype, k)


# ---------------------------------------------------------------------------
# P1 runners: 10 epochs give the reference's losses and parameters


@pytest.mark.parametrize("impl", ["compiled", "train_numba", "train_logged", "jax"])
def test_p1_runner_matches_numpy(data, impl):
    _need(impl)
    X, Y, p = data["float64"]
    # the oracle is the reference itself, not fusedmlp.train(backend="numpy"), which
    # shares the trainer with two of the runners under test
    p_ref, L_ref = W.copy_params(p), np.empty(EPOCHS)
    for e in range(EPOCHS):
        L_ref[e], g = reference.loss_and_grads(p_ref, X, Y, W.ACT, W.LOSS)
        for k in W.NAMES:
            p_ref[k] = p_ref[k] - W.LR * g["d" + k]
    make = {
        "compiled": W.make_p1_compiled,
        "train_numba": W.make_p1_train,
        "train_logged": W.make_p1_train_logged,
    }.get(impl, W.make_p1_jax)
    run = make(X, Y, p, epochs=EPOCHS)
    for _ in range(2):  # each run starts again from p
        p_out, L = run()
        np.testing.assert_allclose(L, L_ref, rtol=1e-12)
        for k in W.NAMES:
            np.testing.assert_allclose(p_out[k], p_ref[k], rtol=1e-10, atol=1e-15)
    for k in W.NAMES:  # the input was not modified
        np.testing.assert_array_equal(p[k], W.make_params()[k])


# ---------------------------------------------------------------------------
# P2 epoch runners: the same losses as the reference, epoch after epoch


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl", ["numpy", "compiled", "torch", "torch_compile", "jax"])
def test_epoch_runner_matches_reference(data, impl, dtype):
    _need(impl)
    X, Y, p = data[dtype]
    if impl == "torch_compile":
        # backend="eager" traces with dynamo but skips inductor's C++ build (~20 s cold);
        # the benchmark itself uses inductor
        run = W.make_epoch_torch_compile(X, Y, p, backend="eager")
    else:
        run = W.EPOCH_MAKERS[impl](X, Y, p)
    q = {k: v.astype(np.float64) for k, v in p.items()}
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    for _ in range(3):
        L_ref, g = reference.loss_and_grads(q, X64, Y64, "sigmoid", "mse")
        for k in W.NAMES:
            q[k] = q[k] - W.LR * g["d" + k]
        _close(run(), L_ref, dtype, "loss")


def test_epoch_runners_leave_params_alone(data):
    X, Y, p = data["float64"]
    before = {k: v.copy() for k, v in p.items()}
    W.make_epoch_numpy(X, Y, p)()
    W.make_epoch_compiled(X, Y, p)()
    for k in W.NAMES:
        np.testing.assert_array_equal(p[k], before[k])


# ---------------------------------------------------------------------------
# forward, yardstick, memory and start-up probes


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_runners(data, dtype):
    _need("compiled")
    X, _, p = data[dtype]
    A2 = W.make_forward_compiled(X, p)()
    expect = W.make_forward_numpy(X.astype(np.float64), data["float64"][2])()
    assert A2.dtype == np.dtype(dtype)
    _close(A2, expect, dtype, "A2")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_accuracy_runners_agree_with_the_reference(data, dtype):
    X, Y, p = data[dtype]
    p64 = data["float64"][2]
    A2 = reference.predict_proba(p64, X.astype(np.float64), W.ACT)
    expect = float(np.mean((A2 > 0.5) == (Y > 0.5)))
    for make in (W.make_accuracy_public, W.make_accuracy_kernel, W.make_accuracy_numpy_style):
        assert make(X, Y, p)() == expect


def test_yardstick_is_the_sum_of_the_sigmoids(data):
    X, _, p = data["float64"]
    expect = sum(
        reference.sigmoid(p[w][u, 0] * X[0] + p[b][u, 0]).sum()
        for w, b in (("W1", "b1"), ("W2", "b2"))
        for u in range(p[w].shape[0])
    )
    np.testing.assert_allclose(W.make_yardstick(X, p)(), expect, rtol=1e-12)


def test_memory_probe():
    # warmed up on 2 x SERIAL_MAX_M samples (the parallel path, as m takes)
    m = 200_000
    data = 3 * m * 8
    res = {impl: W.run_memory_probe(impl, m, "float64") for impl in ("numpy", "compiled")}
    for r in res.values():
        assert r["data_bytes"] == data
        if not r["peak_reset"]:
            pytest.skip("this kernel cannot reset the peak RSS (/proc/self/clear_refs)")
    # the reference holds Z1, A1, delta1 (4 x m each) and more: several times the data
    # (measured about 8x); the kernels allocate O(chunks) scratch (measured 0)
    assert res["numpy"]["growth_bytes"] > 4 * data
    assert res["compiled"]["growth_bytes"] < data // 4


def test_startup_probe():
    _need("compiled")
    # the numba cache as it is; 40_000 samples take the parallel path (> SERIAL_MAX_M)
    res = W.run_startup_probe(None, planar_epochs=EPOCHS, big_m=40_000)
    # timings are only reported; what can be checked is that every stage ran and was
    # timed (a stage that crashed or was skipped leaves its key out)
    stages = {"import_s", "import_to_first_epoch_s", "planar_train_s", "total_s"}
    stages |= {"import_to_planar_trained_s"}
    for dt in ("float64", "float32"):
        stages |= {f"{dt}_first_epoch_serial_s", f"{dt}_first_epoch_parallel_s"}
        stages |= {f"{dt}_first_predict_s"}
    assert stages <= set(res)
    assert all(isinstance(res[k], float) for k in stages)


def test_results_page_renders_from_the_recorded_outputs():
    # bench/make_results.py rebuilds bench/RESULTS.md from bench/results/; check the
    # page it would write has every section and the recorded numbers, without running
    # anything heavy (render() only reads files)
    mr = _load("make_results")
    page = mr.render()
    for heading in (
        "## Machine",
        "## Summary",
        "## All benchmark groups",
        "## Scaling",
        "## The scikit-learn estimators against scikit-learn",
        "## Out of core",
        "## On a dask cluster",
    ):
        assert heading in page
    assert "P1 numpy / compiled" in page
    assert "| threads |" in page and "m = 10^9" in page
    assert "Validation (validation_fraction=0.1)" in page  # the cluster section's last part


def test_wide_workloads_agree_with_the_reference():
    # bench/test_wide.py's workloads, once, on a small wide network
    for dtype in (np.float64, np.float32):
        X, Y, p = W.make_wide_data(40, 24, 3, 700, dtype)
        want = reference.loss_and_grads(
            {k: v.astype(np.float64) for k, v in p.items()}, X.astype(np.float64),
            Y.astype(np.float64), W.ACT, W.LOSS,
        )[0]  # fmt: skip
        for run in (W.make_epochs_compiled(X, Y, p, 3), W.make_epoch_numpy(X, Y, p)):
            _close(run(), want, np.dtype(dtype).name, "loss")
    C = W.make_matmul(np.float32, n=64)()
    assert C.shape == (64, 64) and C.dtype == np.float32


def test_optimizer_and_digits_workloads():
    # bench/test_optim.py's workloads, once each, small: each run starts afresh, so two
    # runs give the same first loss; every optimizer starts from the same loss
    T = _load("training")
    firsts = set()
    for optimizer in ("gd", "momentum", "nesterov", "adam"):
        run = T.make_optimizer_epochs(300, optimizer, 5)
        first = run()
        assert run() == first
        firsts.add(first)
    assert len(firsts) == 1
    for batch in (None, 64):
        run = T.make_digits_epochs(batch, 3, m=300)
        first = run()
        assert np.isfinite(first) and run() == first
    p = T.glorot(64, 64, 10, seed=0)
    bound = np.sqrt(6 / 128)
    assert p["W1"].shape == (64, 64) and np.abs(p["W1"]).max() <= bound
    for dtype in (np.float64, np.float32):  # the products' floor, on odd sample counts
        X = np.random.default_rng(0).random((301, 64)).astype(dtype)
        assert T.make_products_floor((X, None, None, None), 2)() == 2


def test_epochs_to_finds_the_first_run_that_reaches_the_target():
    # with a fake trainer whose accuracy after n epochs is min(1, n / 100)
    T = _load("training")

    def make(data, n):
        return lambda: min(1.0, n / 100)

    assert T.epochs_to(make, None, 0.97, start=16) == 97
    with pytest.raises(RuntimeError, match="not reached"):
        T.epochs_to(make, None, 1.5, start=16, limit=500)


def test_mnist_table_ratios_and_share_of_peak(tmp_path, monkeypatch):
    # the per-process table of make_results: ratios of medians, and the compiled epoch's
    # GFLOP/s over the matmul's, from a made-up benchmark file with round numbers
    mr = _load("make_results")
    monkeypatch.setattr(mr, "OUT", tmp_path)
    flops, matmul = 3e10, 2 * 2048**3 / 100e9  # a matmul at 100 GFLOP/s takes this long
    med = {"compiled-float64": 0.2, "numpy-float64": 0.4, "torch-float64": 0.3}
    rows = [{"name": f"test_wide_epoch[784-128-10-60000-{k}]", "stats": {"median": v},
             "extra_info": {"flops": flops}} for k, v in med.items()]  # fmt: skip
    rows.append({"name": "test_matmul_peak[float64]", "stats": {"median": matmul},
                 "extra_info": {}})  # fmt: skip
    (tmp_path / "mnist-shape-0.json").write_text(json.dumps({"benchmarks": rows}))
    table = mr.mnist_table()
    # 0.4 / 0.2, 0.3 / 0.2, (3e10 / 0.2 = 150 GFLOP/s) / 100; float32 absent
    assert table[2] == "| 0 | 2.00x | 1.50x | 150% | - | - | - |"
    assert table[-1] == "| median | 2.00x | 1.50x | 150% | - | - | - |"


def test_estimator_workloads_agree_with_scikit_learn():
    # bench/test_sklearn.py's workloads, once each, small: the same test score and
    # epochs from both libraries; the grid search finds the same best setting
    E = _load("estimators")
    for name in E.DATASETS:
        if name == "digits":
            continue  # the biggest: covered by the grid below
        for dtype in ("float64", "float32"):
            ours = E.make_fit(name, "fused", "adam", dtype, max_iter=20)()
            theirs = E.make_fit(name, "sklearn", "adam", dtype, max_iter=20)()
            assert ours[1] == theirs[1] == 20
            assert ours[0] == pytest.approx(theirs[0], rel=1e-6)
        # the weighted fits (bench/test_sklearn.py's sk-w-*), float64
        ours = E.make_fit(name, "fused", "adam", weighted=True, max_iter=20)()
        theirs = E.make_fit(name, "sklearn", "adam", weighted=True, max_iter=20)()
        assert ours[1] == theirs[1] == 20 and ours[0] == pytest.approx(theirs[0], rel=1e-9)
    for name in ("iris", "diabetes"):  # early stopping (sk-es-*)
        ours = E.make_fit(name, "fused", "adam", early_stopping=True, max_iter=30)()
        theirs = E.make_fit(name, "sklearn", "adam", early_stopping=True, max_iter=30)()
        assert ours[1] == theirs[1] and ours[0] == pytest.approx(theirs[0], rel=1e-9)
    for solver in ("adam", "sgd"):  # the Poisson regressor (sk-poisson-*)
        ours = E.make_fit(E.POISSON, "fused", solver, max_iter=20)()
        theirs = E.make_fit(E.POISSON, "sklearn", solver, max_iter=20)()
        assert ours[1] == theirs[1] == 20 and ours[0] == pytest.approx(theirs[0], rel=1e-9)
    for name in ("iris", "diabetes"):  # predict and score (sk-predict-*, sk-score-*)
        for what in ("predict", "score"):
            ours, theirs = (
                E.make_predict(name, i, what, max_iter=20)() for i in ("fused", "sklearn")
            )
            np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    grid = {"alpha": [1e-4, 1e-2], "solver": ["adam", "sgd"]}
    best = [E.make_grid(impl, grid, max_iter=5)() for impl in ("fused", "sklearn")]
    assert best[0][0] == best[1][0] and best[0][1] == pytest.approx(best[1][1], rel=1e-9)


def test_handoff_measures_two_positive_times():
    # bench/handoff.py, a few rounds: both regions take time, and make_results reads the
    # printed figure back
    H = _load("handoff")
    same, moved = H.measure(reps=20)
    assert same > 0 and moved > 0
