"""The width experiment: GFLOP/s of an epoch against the layer sizes, beside the GEMM peak.

``run_width`` (and ``fusedmlp scale --width``) trains one epoch at a time of networks of
growing width at a fixed m, in two sweeps: the hidden layer n_h over ``n_h`` with
``n_x_fixed`` inputs, and the input n_x over ``n_x`` with ``n_h_fixed`` hidden units
(``n_y`` outputs throughout, sigmoid + mse, full batch, random data as
bench/workloads.make_wide_data makes it). Per point and backend and dtype: the median
seconds per epoch over ``repeats`` timings (each as many epochs as last about 0.1 s,
after one untimed epoch), and the GFLOP/s counted as 6 m (n_x n_h + n_h n_y) per epoch.
In the same process, NumPy's 2048 x 2048 matmul in each dtype gives the machine's GEMM
peak the curves are drawn against. Writes ``width.csv`` (row by row, so Ctrl-C keeps
the finished points), ``width.json`` and ``width.png`` into ``out_dir``.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

N_H = (4, 8, 16, 32, 64, 128, 256, 512)
N_X = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
FIELDS = ("sweep", "n_x", "n_h", "n_y", "m", "backend", "dtype", "plan", "s_per_epoch")
FIELDS += ("epochs_per_timing", "gflops", "share_of_peak")
_TIMING_S = 0.1


def flops(n_x: int, n_h: int, n_y: int, m: int) -> int:
    """Floating-point operations counted per epoch: 6 m (n_x n_h + n_h n_y).

    >>> flops(784, 128, 10, 60000)
    36587520000
    """
    return 6 * m * (n_x * n_h + n_h * n_y)


def _median_epoch(run, repeats: int) -> tuple[float, int]:
    """(median seconds per epoch, epochs per timing) of run(k) doing k epochs."""
    t = time.perf_counter()
    run(1)  # untimed: compile or load, first touch
    once = max(time.perf_counter() - t, 1e-6)
    k = max(1, math.ceil(_TIMING_S / once))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(k)
        times.append((time.perf_counter() - t) / k)
    return statistics.median(times), k


def matmul_peak(dtype: str, repeats: int = 5, n: int = 2048) -> float:
    """GFLOP/s of NumPy's n x n matmul in dtype: the practical GEMM peak."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)

    def run(k):
        for _ in range(k):
            A @ B

    s, _ = _median_epoch(run, repeats)
    return 2 * n**3 / s / 1e9


def _runner(backend: str, X, Y, p):
    """run(k): k epochs of full-batch descent, the trainer's own path for the backend."""
    from . import _compiled, _driver

    if backend == "numba":
        run_k = _compiled.epoch_runner(p, X, Y, "sigmoid", "mse", 0.1)
        return lambda k: run_k(k, np.empty(k))
    return lambda k: _driver.numpy_epochs(p, X, Y, "sigmoid", "mse", 0.1, k, np.empty(k))


def measure(n_x: int, n_h: int, n_y: int, m: int, backend: str, dtype: str, repeats: int):
    """(seconds per epoch, epochs per timing, plan) of one network on random data."""
    from . import _compiled
    from .api import init_params

    rng = np.random.default_rng(n_x * 1000 + n_h)
    X = rng.standard_normal((n_x, m)).astype(dtype)
    Y = (rng.random((n_y, m)) < 0.5).astype(dtype)
    p = init_params(n_x, n_h, n_y, seed=2, scale=n_x**-0.5, dtype=dtype)
    plan = _compiled._plan(p["W1"], p["W2"], X) if backend == "numba" else None
    s, k = _median_epoch(_runner(backend, X, Y, p), repeats)
    return s, k, plan


def _row(sweep, n_x, n_h, n_y, m, backend, dtype, repeats, peak) -> dict:
    s, k, plan = measure(n_x, n_h, n_y, m, backend, dtype, repeats)
    g = flops(n_x, n_h, n_y, m) / s / 1e9
    return dict(sweep=sweep, n_x=n_x, n_h=n_h, n_y=n_y, m=m, backend=backend, dtype=dtype,
                plan=plan, s_per_epoch=s, epochs_per_timing=k, gflops=g,
                share_of_peak=g / peak)  # fmt: skip


def run_width(
    out_dir: str | Path,
    *,
    n_h: tuple = N_H,
    n_x: tuple = N_X,
    n_x_fixed: int = 64,
    n_h_fixed: int = 128,
    n_y: int = 1,
    m: int = 65536,
    backends: tuple = ("numba", "numpy"),
    dtypes: tuple = ("float64", "float32"),
    repeats: int = 3,
    progress=print,
) -> list[dict]:
    """Run both sweeps; the rows (also in width.csv / width.json / width.png).

    Examples
    --------
    >>> import tempfile
    >>> rows = run_width(tempfile.mkdtemp(), n_h=(8,), n_x=(8,), m=512,
    ...                  backends=("numba",), dtypes=("float64",), repeats=1,
    ...                  progress=lambda line: None)
    >>> [(r["sweep"], r["n_x"], r["n_h"]) for r in rows]
    [('n_h', 64, 8), ('n_x', 8, 128)]
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    peaks = {d: matmul_peak(d) for d in dtypes}
    said = ", ".join(f"{d} {g:.0f} GFLOP/s" for d, g in peaks.items())
    progress(f"matmul peak (NumPy, 2048 x 2048): {said}")
    points = [("n_h", n_x_fixed, h) for h in n_h] + [("n_x", x, n_h_fixed) for x in n_x]
    rows = []
    with open(out / "width.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for sweep, x, h in points:
            for backend in backends:
                for dtype in dtypes:
                    row = _row(sweep, x, h, n_y, m, backend, dtype, repeats, peaks[dtype])
                    rows.append(row)
                    writer.writerow(row)
                    f.flush()
                    progress(
                        f"{x:>5}-{h}-{n_y} m={m} {backend:5s} {dtype}: "
                        f"{1e3 * row['s_per_epoch']:9.3f} ms, {row['gflops']:6.1f} GFLOP/s "
                        f"({100 * row['share_of_peak']:.0f}% of peak)"
                    )
    info = {"m": m, "n_y": n_y, "n_x_fixed": n_x_fixed, "n_h_fixed": n_h_fixed}
    (out / "width.json").write_text(json.dumps({"peaks": peaks, **info, "rows": rows}, indent=1))
    plot(rows, peaks, out / "width.png", n_x_fixed, n_h_fixed)
    return rows


def plot(rows: list[dict], peaks: dict, path, n_x_fixed: int, n_h_fixed: int):
    """GFLOP/s against n_h and against n_x (log2 axes), with the matmul peaks."""
    from matplotlib.figure import Figure

    from .plots import save_png

    fig = Figure(figsize=(11, 4.5), dpi=100)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, sweep, fixed in ((axes[0], "n_h", f"n_x = {n_x_fixed}"),
                             (axes[1], "n_x", f"n_h = {n_h_fixed}")):  # fmt: skip
        for backend, color in (("numba", "C0"), ("numpy", "C1")):
            for dtype, style in (("float64", "o-"), ("float32", "s--")):
                pts = [r for r in rows if (r["sweep"], r["backend"], r["dtype"]) ==
                       (sweep, backend, dtype)]  # fmt: skip
                if pts:
                    xs = [r[sweep] for r in pts]
                    label = f"{'fused' if backend == 'numba' else 'NumPy'} {dtype}"
                    ax.plot(xs, [r["gflops"] for r in pts], style, color=color, label=label)
        for dtype, ls in (("float64", "--"), ("float32", ":")):
            if dtype in peaks:
                ax.axhline(peaks[dtype], color="grey", ls=ls, lw=1, label=f"matmul {dtype}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"{sweep} ({fixed}, m = {rows[0]['m'] if rows else '?'})")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("GFLOP/s, 6 m (n_x n_h + n_h n_y) per epoch")
    axes[0].legend(fontsize=8)
    fig.suptitle("One epoch's GFLOP/s against the width of the network")
    save_png(fig, path)
    return fig
