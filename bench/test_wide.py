"""Wide networks: one epoch at the shapes people train on, against NumPy and torch eager.

    .venv/bin/python -m pytest bench/test_wide.py

Groups ``wide-<n_x>-<n_h>-<n_y>-<m>`` (sigmoid + mse, full batch, random data from
workloads.make_wide_data), each with the NumPy reference, the compiled path the trainer
takes (``_compiled.epoch_runner``: for 64-32-10 at m = 1797 the serial whole-training
kernel, 100 epochs per call, timed per epoch) and torch eager (hand-written gradients,
its own thread pool: 2 threads here); and ``matmul``, NumPy's 2048 x 2048 product in the
same run, the GEMM peak the epochs are measured against. Every case checks its first loss
against the reference. The summary prints numpy / compiled, torch / compiled, and the
compiled epoch's GFLOP/s, counted as the issue counts them (6 m (n_x n_h + n_h n_y) per
epoch), with its share of the matmul peak.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import workloads as W
from test_speed import _time

from fusedmlp import reference

SHAPES = {
    "784-128-10-60000": ((784, 128, 10, 60000), 1),  # MNIST
    "64-32-10-1797": ((64, 32, 10, 1797), 100),  # scikit-learn's digits
    "30-64-1-100000": ((30, 64, 1, 10**5), 1),
    "100-256-1-100000": ((100, 256, 1, 10**5), 1),
}
RTOL = {"float64": 1e-9, "float32": 1e-4}


@functools.cache
def _data(name: str, dtype: str):
    (n_x, n_h, n_y, m), _ = SHAPES[name]
    return W.make_wide_data(n_x, n_h, n_y, m, W.DTYPES[dtype])


@functools.cache
def _first_loss(name: str) -> float:
    X, Y, p = _data(name, "float64")
    return reference.loss_and_grads(p, X, Y, W.ACT, W.LOSS)[0]


@pytest.fixture(scope="module", autouse=True)
def _free_data():
    yield
    _data.cache_clear()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl", ["numpy", "compiled", "torch"])
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.benchmark(group=f"wide-{n}")) for n in SHAPES],
)
def test_wide_epoch(benchmark, medians, name, impl, dtype):
    if impl == "torch":
        pytest.importorskip("torch")
    (n_x, n_h, n_y, m), epochs = SHAPES[name]
    X, Y, p = _data(name, dtype)
    if impl == "numpy":
        run, per_call = W.make_epoch_numpy(X, Y, p), 1
    elif impl == "compiled":
        run, per_call = W.make_epochs_compiled(X, Y, p, epochs), epochs
    else:
        import peers

        run, per_call = peers.make_torch_epoch(X, Y, p, W.LR), 1
        benchmark.extra_info["torch_threads"] = peers.torch_threads()
    benchmark.extra_info.update(epochs_per_call=per_call, flops=6 * m * (n_x * n_h + n_h * n_y))
    first = _time(benchmark, medians, run, m * per_call, f"wide-{name}/{impl}-{dtype}",
                  heavy=m * n_x * n_h > 10**9, per_call=per_call)  # fmt: skip
    np.testing.assert_allclose(first, _first_loss(name), rtol=RTOL[dtype])


@pytest.mark.benchmark(group="matmul")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matmul_peak(benchmark, medians, dtype):
    run = W.make_matmul(W.DTYPES[dtype])
    C = _time(benchmark, medians, run, 2048, f"matmul/{dtype}", heavy=True)
    assert C.shape == (2048, 2048)
