"""Speed of the fused kernels against the NumPy reference, JAX and PyTorch.

Run the whole suite and save it for later comparison (from the repository root)::

    .venv/bin/python -m pytest bench --benchmark-autosave --benchmark-storage=bench/.benchmarks

then, after a change, compare with the last saved run (and fail on a 10% slower median)::

    .venv/bin/python -m pytest bench --benchmark-autosave --benchmark-storage=bench/.benchmarks \\
        --benchmark-compare --benchmark-compare-fail=median:10%

``--quick`` skips the m=10^7 cases; ``--benchmark-json bench/results.json`` writes one JSON
file; ``-k P1`` (or ``-k "P2 and 1e6"``) picks groups. JAX and torch cases skip when those
are not installed (``pip install -e ".[peers]"`` or see bench/README.md); the compiled
cases skip while ``fusedmlp._compiled`` lacks what they call.

Groups:

    P1           the classic: planar m=400, 2-4-1 sigmoid + mse, lr 0.2, 3000 epochs
                 (numpy reference, _compiled.train_epochs, fusedmlp.train(backend="numba"),
                 JAX with the whole loop in one jit)
    P2-1e6/1e7   one epoch (forward, loss, backward, update) at m = 10^6 / 10^7
    m-1e3..1e5   the same epoch at smaller m, numpy and compiled, float64 and float32
    forward      predict_proba at m = 10^6
    yardstick    only the network's 5 sigmoids per sample: the floor for an epoch
    memory       peak RSS of one m-sample epoch beyond the data (fresh process)
    compile      first calls with an empty numba cache, then with a filled one

Every case first runs once untimed (compilation, first touch of memory) and checks that
its first loss equals the reference's, so every timing is of the same, correct work.
The summary at the end prints the ratios (of medians and of mins), the memory and start-up
figures, and how busy other processes kept the CPUs (timings need that near 0).
The workloads themselves are in bench/workloads.py and bench/peers.py.
"""

from __future__ import annotations

import functools
import json
import tempfile

import numpy as np
import pytest
import workloads as W

from fusedmlp import reference

P1 = pytest.mark.benchmark(group="P1")
SIZES = [
    pytest.param(10**6, id="1e6"),
    pytest.param(10**7, id="1e7", marks=pytest.mark.heavy),
]
# float32 first losses agree with float64 ones to about float32's epsilon times a few
RTOL = {"float64": 1e-9, "float32": 1e-4}
PEER_LIBS = {"torch": "torch", "torch_compile": "torch", "jax": "jax"}


def _label(m: int) -> str:
    return f"1e{len(str(m)) - 1}"


def _need(impl: str) -> None:
    """Skip unless impl (a peer: JAX or torch, an optional extra) is installed."""
    if impl in PEER_LIBS:
        pytest.importorskip(PEER_LIBS[impl])


@functools.cache
def _data(m: int, dtype: str):
    """(X, Y, params) for m samples, made once per session (10^7 float64 is 240 MB)."""
    dt = W.DTYPES[dtype]
    X, Y = W.make_data(m, dt)
    return X, Y, W.make_params(dt)


@functools.cache
def _first_loss(m: int) -> float:
    """The reference's loss of the first epoch at size m (float64)."""
    X, Y, p = _data(m, "float64")
    return reference.loss_and_grads(p, X, Y, W.ACT, W.LOSS)[0]


@pytest.fixture(scope="module", autouse=True)
def _free_data():
    yield
    _data.cache_clear()


def _time(benchmark, medians, run, m, key, heavy=False, per_call=1):
    """Warm run() up once, then time it; record its median and min under key.

    m: samples x epochs one run() processes (for the ns per sample-epoch in extra_info);
    per_call: epochs one run() does (the recorded median and min are per epoch).
    """
    result = run()
    benchmark.extra_info.update(W.threads(), sample_epochs=m)
    if heavy:
        benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=0)
    else:
        benchmark(run)
    if benchmark.stats is not None:  # None with --benchmark-disable
        medians(key, benchmark.stats.stats, per_call)
        ns = 1e9 * benchmark.stats.stats.median / m
        benchmark.extra_info["median_ns_per_sample_epoch"] = ns
    return result


# ---------------------------------------------------------------------------
# P1: the whole planar training


@pytest.fixture(scope="module")
def planar():
    X, Y = W.make_data(W.PLANAR_M)
    p = W.make_params()
    final = W.make_p1_numpy(X, Y, p)()[1][-1]
    return X, Y, p, final


@P1
@pytest.mark.parametrize("impl", ["numpy", "compiled", "train_numba", "train_logged", "jax"])
def test_P1(benchmark, medians, planar, impl):
    """numpy: fusedmlp.train(backend="numpy"); compiled: _compiled.train_epochs directly;
    train_numba: fusedmlp.train(backend="numba"), the public path with its validation;
    train_logged: the same with a callback every 100 epochs (progress reporting)."""
    _need(impl)
    X, Y, p, final = planar
    make = {
        "numpy": W.make_p1_numpy,
        "compiled": W.make_p1_compiled,
        "train_numba": W.make_p1_train,
        "train_logged": W.make_p1_train_logged,
        "jax": W.make_p1_jax,
    }
    if impl == "jax":
        benchmark.extra_info["jax"] = "whole loop in one jax.jit (lax.fori_loop), float64"
    _, losses = _time(benchmark, medians, make[impl](X, Y, p), W.PLANAR_M * W.EPOCHS, f"P1/{impl}")
    benchmark.extra_info["final_loss"] = float(losses[-1])
    np.testing.assert_allclose(losses[-1], final, rtol=1e-8)


# ---------------------------------------------------------------------------
# P2: one epoch at large m

P2_CASES = [
    ("numpy", "float64"),
    ("compiled", "float64"),
    ("compiled", "float32"),
    ("torch", "float64"),
    ("torch", "float32"),
    ("torch_compile", "float64"),
    ("torch_compile", "float32"),
    ("jax", "float64"),
    ("jax", "float32"),
]


@pytest.mark.parametrize(("impl", "dtype"), P2_CASES, ids=[f"{i}-{d}" for i, d in P2_CASES])
@pytest.mark.parametrize(
    "m",
    [
        pytest.param(10**6, id="1e6", marks=pytest.mark.benchmark(group="P2-1e6")),
        pytest.param(
            10**7, id="1e7", marks=[pytest.mark.heavy, pytest.mark.benchmark(group="P2-1e7")]
        ),
    ],
)
def test_P2_epoch(benchmark, medians, m, impl, dtype):
    _need(impl)
    X, Y, p = _data(m, dtype)
    run = W.EPOCH_MAKERS[impl](X, Y, p)
    if impl in PEER_LIBS and impl.startswith("torch"):
        import peers

        benchmark.extra_info["torch_threads"] = peers.torch_threads()
    first = _time(benchmark, medians, run, m, f"P2-{_label(m)}/{impl}-{dtype}", heavy=m >= 10**7)
    np.testing.assert_allclose(first, _first_loss(m), rtol=RTOL[dtype])


# ---------------------------------------------------------------------------
# m sweep: one epoch from 10^3 to 10^5 samples, both backends and dtypes (P2 has 10^6 and
# 10^7; `fusedmlp scale` goes further, one process per point, with memory)

SWEEP_CASES = [(i, d) for i in ("numpy", "compiled") for d in ("float64", "float32")]


@pytest.mark.parametrize(("impl", "dtype"), SWEEP_CASES, ids=[f"{i}-{d}" for i, d in SWEEP_CASES])
@pytest.mark.parametrize(
    "m",
    [
        pytest.param(10**k, id=f"1e{k}", marks=pytest.mark.benchmark(group=f"m-1e{k}"))
        for k in (3, 4, 5)
    ],
)
def test_m_sweep(benchmark, medians, m, impl, dtype):
    _need(impl)
    X, Y, p = _data(m, dtype)
    first = _time(
        benchmark, medians, W.EPOCH_MAKERS[impl](X, Y, p), m, f"m-{_label(m)}/{impl}-{dtype}"
    )
    np.testing.assert_allclose(first, _first_loss(m), rtol=RTOL[dtype])


# ---------------------------------------------------------------------------
# forward and yardstick


@pytest.mark.benchmark(group="forward")
@pytest.mark.parametrize(
    ("impl", "dtype"), [("numpy", "float64"), ("compiled", "float64"), ("compiled", "float32")]
)
def test_forward(benchmark, medians, impl, dtype):
    m = 10**6
    X, _, p = _data(m, dtype)
    make = W.make_forward_numpy if impl == "numpy" else W.make_forward_compiled
    A2 = _time(benchmark, medians, make(X, p), m, f"forward/{impl}-{dtype}")
    X64, _, p64 = _data(m, "float64")
    expect = reference.predict_proba(p64, X64, W.ACT)
    np.testing.assert_allclose(A2, expect, rtol=RTOL[dtype])


ACCURACY = {
    "public": W.make_accuracy_public,
    "kernel": W.make_accuracy_kernel,
    "forward-then-numpy": W.make_accuracy_numpy_style,
}


@pytest.mark.heavy
@pytest.mark.benchmark(group="accuracy-1e7")
@pytest.mark.parametrize("impl", list(ACCURACY))
def test_accuracy(benchmark, medians, impl):
    # the tester's case: accuracy at m = 10^7 took 4 epochs; compare with P2-1e7's epoch
    m = 10**7
    X, Y, p = _data(m, "float64")
    acc = _time(benchmark, medians, ACCURACY[impl](X, Y, p), m, f"accuracy-1e7/{impl}", heavy=True)
    expect = float(np.mean((reference.predict_proba(p, X, W.ACT) > 0.5) == (Y > 0.5)))
    assert acc == expect


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "m",
    [
        pytest.param(10**6, id="1e6", marks=pytest.mark.benchmark(group="yardstick-1e6")),
        pytest.param(
            10**7,
            id="1e7",
            marks=[pytest.mark.heavy, pytest.mark.benchmark(group="yardstick-1e7")],
        ),
    ],
)
def test_yardstick(benchmark, medians, m, dtype):
    X, _, p = _data(m, dtype)
    run = W.make_yardstick(X, p)
    total = _time(benchmark, medians, run, m, f"yardstick-{_label(m)}/{dtype}", heavy=m >= 10**7)
    assert 0 < total < (W.N_H + 1) * m  # a sum of n_h + n_y sigmoids per sample


# ---------------------------------------------------------------------------
# memory: one epoch in a fresh process


@pytest.mark.benchmark(group="memory")
@pytest.mark.parametrize(
    ("impl", "dtype"), [("compiled", "float64"), ("compiled", "float32"), ("numpy", "float64")]
)
@pytest.mark.parametrize("m", SIZES)
def test_memory(benchmark, report, m, impl, dtype):
    """Peak RSS growth of an epoch beyond its data; compiled must stay under 5% at 10^7."""
    _need(impl)
    res = {}
    benchmark.pedantic(
        lambda: res.update(W.run_memory_probe(impl, m, dtype)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(res)
    mb = 2.0**20
    report(
        f"memory {impl:8s} {dtype} m={_label(m)}: data {res['data_bytes'] / mb:7.1f} MiB, "
        f"epoch peak growth {res['growth_bytes'] / mb:7.1f} MiB "
        f"({100 * res['growth_over_data']:6.1f}% of data), epoch {res['epoch_s']:.3f} s"
        + ("" if res["peak_reset"] else " [peak not reset: upper bound]")
    )
    if impl == "compiled" and m >= 10**7:
        assert res["growth_bytes"] < 0.05 * res["data_bytes"], res


# ---------------------------------------------------------------------------
# compile time: empty numba cache, then the filled one


@pytest.mark.benchmark(group="compile")
def test_compile_time(benchmark, report):
    """Time to first results in a new process, cold (compiling) and warm (cache loads).

    Reported, not asserted: the aim for the warm planar run (import to trained) is < 2 s.
    """
    with tempfile.TemporaryDirectory(prefix="fusedmlp-numba-cache-") as cache:
        cold = {}
        benchmark.pedantic(lambda: cold.update(W.run_startup_probe(cache)), rounds=1, iterations=1)
        warm = W.run_startup_probe(cache)
    benchmark.extra_info["cold"] = cold
    benchmark.extra_info["warm"] = warm
    keys = [k for k in cold if k.endswith("_s")]
    report("start-up in a new process, seconds   cold cache   warm cache")
    for k in keys:
        report(f"  {k:36s} {cold[k]:10.2f} {warm[k]:12.2f}")
    report(f"  (NUMBA_CACHE_DIR: fresh temp dir; {json.dumps(W.threads())})")
