"""The distributed engine on this machine: its overhead, a large epoch, and a model.
(Not named distributed.py: bench/ is on the tests' path, and a module of that name
would hide dask's ``distributed`` package from the workers.)

    .venv/bin/python bench/cluster.py            # about 3 minutes, 2.4 GB of disk
    .venv/bin/python bench/cluster.py --m 1e7    # a smaller large point

1. Overhead (the issue's target: at most 5 ms an epoch, 2 workers x 1 thread, small
   data): planar data, m = 4000, the 2-4-1 network, on LocalClusters of 1, 2 and 3
   workers of 1 thread (``fusedmlp.distributed.local_cluster``); 300 epochs each, the
   first 50 dropped. Per epoch, ``timings=`` gives the wall time and the slowest
   piece's compute; the overhead is their difference. Beside it, the naive loop (one
   ``client.submit`` per piece and a ``gather`` per epoch, on the same pieces).
2. A large epoch (target: within 1.2x of one process with 2 threads): planar float32,
   m = 10^8, written once to .npy files; one process with 2 threads (the trainer's
   epoch runner on the memory maps) against 2 workers x 1 thread reading the files as
   one shard; median over 5 epochs after one warm-up, each side.
3. A model of an epoch on a cluster, fitted to these points (see ``model``).
4. Validation with full batches (the training samples stay spread, the held-out ones
   are scored on one worker each epoch): planar float32, m = 10^6, 2 workers x 1
   thread, epochs with validation_fraction=0.1 against epochs without, beside the same
   pair in one process with 2 threads; median of 20 epochs after 2 (from the times
   between callbacks).
5. Mini-batches (the samples stay spread; each epoch streams to one worker a window at
   a time, ``fusedmlp.distributed._stream``): planar float32, m = 10^6, batches of 200,
   adam, 2 workers x 1 thread against one process with 2 threads; and a 64-64-10
   softmax network (digits' shape), m = 10^5, float32, batches of 200. Median of 20
   epochs after 2, as in 4.

Writes bench/results/distributed.json and bench/results/distributed.md (the section
make_results.py puts in RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
from distributed import Client

import fusedmlp
from fusedmlp import _compiled_train, datasets, outofcore
from fusedmlp._scaling_point import machine_info
from fusedmlp.distributed import _engine, _sources, _worker, local_cluster

OUT = Path(__file__).resolve().parent / "results"
SMALL_M, EPOCHS, DROP = 4000, 300, 50


def overhead(n_workers: int) -> dict:
    """Median ms per epoch (wall, slowest compute, overhead) of the engine and of the
    naive submit/gather loop, small data, n_workers x 1 thread."""
    X, Y = datasets.planar(m=SMALL_M)
    with local_cluster(n_workers) as cluster, Client(cluster) as client:
        timings: list = []
        Xd = da.from_array(X, chunks=(2, SMALL_M // 2))
        fusedmlp.distributed.train(Xd, Y, epochs=EPOCHS, seed=1, timings=timings)
        t = np.array(timings[DROP:]) * 1e3
        naive = _naive(client, X, Y)
    wall, busy = np.median(t[:, 0]), np.median(t[:, 1])
    return {"workers": n_workers, "wall_ms": float(wall), "compute_ms": float(busy),
            "overhead_ms": float(np.median(t[:, 0] - t[:, 1])), "naive_ms": naive}  # fmt: skip


def _naive(client, X, Y) -> float:
    """Median ms per epoch of one submit per piece and a gather (no actors)."""
    res = fusedmlp.train(X, Y, epochs=0, seed=1)
    source = _sources.DaskArrays(da.from_array(X, chunks=(2, SMALL_M // 2)), Y)
    engine = _engine.Engine(client, source, res.params, res.settings)
    engine.load()
    flat = _worker.flatten(res.params)
    times = []
    for _ in range(EPOCHS):
        t0 = time.perf_counter()
        client.gather([client.submit(_worker.piece_rows, f, flat, pure=False)
                       for f in engine.futures])  # fmt: skip
        times.append(time.perf_counter() - t0)
    engine.close()
    return float(np.median(times[DROP:]) * 1e3)


def large(m: int, folder: Path) -> dict:
    """Median seconds per epoch at m, float32: one process 2 threads, 2 workers x 1."""
    xp, yp = folder / "X.npy", folder / "Y.npy"
    if not (xp.exists() and yp.exists()):
        datasets.write_planar(xp, yp, m)
    X, Y = outofcore.open_pair(xp, yp)
    res = fusedmlp.train(X, Y, epochs=0, seed=1)
    run = _compiled_train.epoch_runner(res.params, X, Y, "sigmoid", "mse", 0.2)
    losses, one = np.empty(1), []
    for _ in range(6):
        t0 = time.perf_counter()
        run(1, losses)
        one.append(time.perf_counter() - t0)
    with local_cluster(2) as cluster, Client(cluster):
        timings: list = []
        fusedmlp.distributed.train([xp], [yp], epochs=6, seed=1, timings=timings)
    walls = [w for w, _ in timings[1:]]
    busy = [b for _, b in timings[1:]]
    out = {"m": m, "one_process_s": float(np.median(one[1:]))}
    out.update(cluster_s=float(np.median(walls)), cluster_compute_s=float(np.median(busy)))
    return out


def _epoch_s(X, Y, client=None, **kw) -> float:
    """Median seconds between the callbacks of 22 epochs, the first 2 dropped."""
    marks: list = []

    def mark(epoch, loss, p) -> bool:
        marks.append(time.perf_counter())
        return False

    fusedmlp.train(X, Y, epochs=22, seed=1, log_every=1, client=client, callback=mark, **kw)
    return float(np.median(np.diff(marks)[2:]))


def validation(m: int) -> dict:
    """Seconds per epoch with and without validation_fraction=0.1, float32 planar: one
    process (2 threads) and 2 workers x 1 thread."""
    X, Y = datasets.planar(m=m, seed=1)
    X = X.astype(np.float32)
    out = {"m": m, "one_s": _epoch_s(X, Y), "one_val_s": _epoch_s(X, Y, validation_fraction=0.1)}
    with local_cluster(2) as cluster, Client(cluster) as client:
        Xd = da.from_array(X, chunks=(2, m // 4))
        out["cluster_s"] = _epoch_s(Xd, Y, client)
        out["cluster_val_s"] = _epoch_s(Xd, Y, client, validation_fraction=0.1)
    return out


def batches(m: int) -> dict:
    """Seconds per mini-batch epoch (batches of 200, adam), one process (2 threads)
    against 2 workers x 1 thread: planar float32 at m, and 64-64-10 softmax at m / 10."""
    X, Y = datasets.planar(m=m, seed=1)
    X = X.astype(np.float32)
    rng = np.random.default_rng(1)
    Xw = rng.normal(size=(64, m // 10)).astype(np.float32)
    labels = (Xw[:10].argmax(axis=0) + (Xw[10] > 1)) % 10
    wide = dict(hidden=64, output="softmax", activation="relu")
    kw = dict(batch_size=200, optimizer="adam", lr=0.001)
    out = {"m": m, "one_s": _epoch_s(X, Y, **kw), "wide_one_s": _epoch_s(Xw, labels, **kw, **wide)}
    with local_cluster(2) as cluster, Client(cluster) as client:
        out["cluster_s"] = _epoch_s(da.from_array(X, chunks=(2, m // 4)), Y, client, **kw)
        Xd = da.from_array(Xw, chunks=(64, m // 40))
        out["wide_cluster_s"] = _epoch_s(Xd, labels, client, **kw, **wide)
    return out


LAN_RTT_S = 2e-4  # assumed extra round trip per worker call on a real network (10 GbE)
ROW_BYTES_PER_S = 1e9  # assumed bandwidth into the client for the gradient rows


def model(points: list[dict], big: dict | None) -> dict:
    """Epoch time on a cluster: T(m, W, t) = c m / (W t) + a + b W + W LAN_RTT_S + rows.

    c: thread-seconds per sample, from the one-process epoch at the large m (2 threads),
    which predicts the cluster point, and from the workers' slowest piece there, which
    the estimates for 10^10 samples use (the larger of the two here);
    a + b W: the engine's overhead, least squares over the overhead points (loopback:
    the client's calls and replies, the kernels' launches); W LAN_RTT_S: what a real
    network adds per worker; rows: 64 chunk rows of the 2-4-1 network's 18 float64,
    negligible here (for 784-128-10, 64 x 0.8 MB = 51 MB: 0.05 s at ROW_BYTES_PER_S).
    """
    W = np.array([p["workers"] for p in points], float)
    o = np.array([p["overhead_ms"] for p in points]) / 1e3
    b, a = np.polyfit(W, o, 1) if len(W) > 1 else (0.0, float(o[0]))
    out = {"a_s": float(a), "b_s": float(b)}
    if big is None:
        return out
    c = 2 * big["one_process_s"] / big["m"]
    out["c_thread_s_per_sample"] = c
    out["predicted_2x1_s"] = c * big["m"] / 2 + a + 2 * b
    # the workers' own rate (their slowest piece, 1 thread each): per thread slower than
    # one process's two threads here, so the cluster's estimates use it
    c = out["c_worker_thread_s_per_sample"] = big["cluster_compute_s"] / (big["m"] / 2)
    for t in (8, 16, 32):
        for w in range(1, 100000):
            if c * 1e10 / (w * t) + a + b * w + w * LAN_RTT_S <= 1.0:
                out[f"workers_for_1e10_in_1s_t{t}"] = w
                break
    return out


def markdown(points: list[dict], big: dict | None, fit: dict, machine: dict) -> str:
    lines = [
        f"Measured {machine['date'][:16]} on {machine['cpu_model']}, "
        f"{machine['logical_cpus']} logical CPUs, numba {machine['numba']}.",
        "",
        "| workers x threads | epoch (ms) | slowest piece (ms) | engine overhead (ms) | "
        "naive submit/gather (ms) |",
        "|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(f"| {p['workers']} x 1 | {p['wall_ms']:.2f} | {p['compute_ms']:.3f} | "
                     f"{p['overhead_ms']:.2f} | {p['naive_ms']:.2f} |")  # fmt: skip
    lines += ["", f"Fitted overhead: {fit['a_s'] * 1e3:.2f} ms + {fit['b_s'] * 1e3:.2f} ms per "
              "worker (loopback)."]  # fmt: skip
    if big is not None:
        ratio = big["cluster_s"] / big["one_process_s"]
        lines += [
            "",
            f"m = {big['m']:.0e}, float32: one process (2 threads) {big['one_process_s']:.3f} s "
            f"per epoch, 2 workers x 1 thread {big['cluster_s']:.3f} s (slowest piece "
            f"{big['cluster_compute_s']:.3f} s): {ratio:.2f}x. The model predicts "
            f"{fit['predicted_2x1_s']:.3f} s for the cluster point.",
            "",
            f"Model: c = {fit['c_thread_s_per_sample'] * 1e9:.2f} thread-ns per sample in one "
            f"process, {fit['c_worker_thread_s_per_sample'] * 1e9:.2f} on the workers (the "
            "prediction above uses the first; the estimates below the second). With the "
            "second, 10^10 samples in one second per epoch need "
            + ", ".join(f"{fit[f'workers_for_1e10_in_1s_t{t}']} workers of {t} threads"
                        for t in (8, 16, 32) if f"workers_for_1e10_in_1s_t{t}" in fit)
            + f" (assuming {LAN_RTT_S * 1e3:.1f} ms more per worker call on a real network, "
            f"and {10**10 * 12 / 1e9:.0f} GB of float32 planar data spread over them).",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


def held_markdown(v: dict) -> str:
    one, clu = v["one_val_s"] / v["one_s"], v["cluster_val_s"] / v["cluster_s"]
    return (
        f"\nValidation (validation_fraction=0.1), m = {v['m']:.0e} float32: one process "
        f"{v['one_s'] * 1e3:.1f} ms per epoch without, {v['one_val_s'] * 1e3:.1f} ms with "
        f"({one:.2f}x); 2 workers x 1 thread {v['cluster_s'] * 1e3:.1f} ms without, "
        f"{v['cluster_val_s'] * 1e3:.1f} ms with ({clu:.2f}x): the training samples stay "
        "spread, the held-out ones are scored on one worker after each epoch.\n"
    )


def batches_markdown(b: dict) -> str:
    return (
        f"\nMini-batches (batches of 200, adam; the samples stay spread and stream to one "
        f"worker, a window of batches at a time): planar float32, m = {b['m']:.0e}: one "
        f"process {b['one_s'] * 1e3:.1f} ms per epoch, 2 workers x 1 thread "
        f"{b['cluster_s'] * 1e3:.1f} ms ({b['cluster_s'] / b['one_s']:.2f}x); 64-64-10 "
        f"softmax float32, m = {b['m'] // 10:.0e}: {b['wide_one_s'] * 1e3:.1f} ms against "
        f"{b['wide_cluster_s'] * 1e3:.1f} ms ({b['wide_cluster_s'] / b['wide_one_s']:.2f}x). "
        "The batches run on one worker either way; the difference is moving the data: "
        "each epoch every sample is picked from its piece and placed in its window, and "
        "half of them cross between processes, which for the planar network's 17 "
        "parameters costs more than the batches themselves.\n"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--m", type=float, default=1e8, help="samples of the large point")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument(
        "--val-m", type=float, default=1e6, help="samples of the validation and batch points"
    )
    args = ap.parse_args()
    points = [overhead(w) for w in args.workers]
    for p in points:
        print(p, flush=True)
    big = None
    if not args.skip_large:
        with tempfile.TemporaryDirectory(dir=os.environ.get("FUSEDMLP_BENCH_TMP")) as d:
            big = large(int(args.m), Path(d))
        print(big, flush=True)
    held = validation(int(args.val_m))
    print(held, flush=True)
    mini = batches(int(args.val_m))
    print(mini, flush=True)
    fit = model(points, big)
    machine = machine_info()
    OUT.mkdir(exist_ok=True)
    record = {"overhead": points, "large": big, "model": fit, "validation": held,
              "batches": mini, "machine": machine}  # fmt: skip
    (OUT / "distributed.json").write_text(json.dumps(record, indent=1))
    page = markdown(points, big, fit, machine) + held_markdown(held) + batches_markdown(mini)
    (OUT / "distributed.md").write_text(page)
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
