"""Distributed points of the scaling experiment (``fusedmlp scale --workers/--cluster``).

For each dtype and m of the sweep, the planar data is written to ``.npy`` files under
the output folder (``datasets.write_planar``, chunk by chunk), which the workers open
as one shard; ``fusedmlp.distributed.train`` runs warm-up plus timed epochs of the 2-4-1
sigmoid network on them, and its ``timings`` give, per epoch, the wall time and the
slowest piece's compute. A row records the medians over the timed epochs: seconds per
epoch, samples per second, and the engine's overhead (epoch minus slowest compute).
The files are deleted after each point. With a cluster of other machines, the output
folder must be on storage the workers can read at the same path.

Rows go to ``cluster.csv`` (written as points finish) and ``cluster.json``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics

from . import datasets
from ._scaling_point import INIT_SEED, LR, MiB, data_bytes

FIELDS = (
    "m", "dtype", "workers", "threads", "status", "note", "s_per_epoch", "samples_per_s",
    "compute_s", "overhead_s", "epochs_timed",
)  # fmt: skip
HEADER = (
    f"{'m':>11} {'dtype':7} {'workers':>7} {'thr':>3} {'s/epoch':>10} {'samples/s':>10} "
    f"{'compute s':>10} {'overhead ms':>11}"
)


def run_points(out_dir, grid, dtypes, client, *, epochs: int, warmup: int, say) -> list[dict]:
    """One row per (dtype, m) on ``client``'s cluster; see the module docstring."""
    workers = client.ncores()
    n_workers, threads = len(workers), sum(workers.values())
    say(f"distributed points: {n_workers} workers, {threads} threads in all")
    say(HEADER)
    rows = []
    path = os.path.join(out_dir, "cluster.csv")
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, FIELDS)
        out.writeheader()
        for dtype in dtypes:
            for m in grid:
                row = _point(out_dir, m, dtype, client, epochs, warmup)
                row.update(workers=n_workers, threads=threads)
                rows.append(row)
                out.writerow(row)
                f.flush()
                say(_line(row))
    with open(os.path.join(out_dir, "cluster.json"), "w") as f:
        json.dump({"rows": rows, "workers": workers}, f, indent=1)
    say(f"wrote {path} and cluster.json")
    return rows


def _point(out_dir, m: int, dtype: str, client, epochs: int, warmup: int) -> dict:
    import fusedmlp.distributed

    row = dict.fromkeys(FIELDS)
    row.update(m=m, dtype=dtype)
    need = data_bytes(m, dtype) + 16 * MiB
    if shutil.disk_usage(out_dir).free < need:
        row.update(status="skipped", note=f"needs {need / MiB:.0f} MiB of disk in {out_dir}")
        return row
    folder = os.path.join(out_dir, "cluster-data")
    os.makedirs(folder, exist_ok=True)
    xp, yp = os.path.join(folder, "X.npy"), os.path.join(folder, "Y.npy")
    try:
        datasets.write_planar(xp, yp, m, dtype=dtype)
        timings: list = []
        fusedmlp.distributed.train(
            [xp], [yp], client=client, epochs=warmup + epochs, seed=INIT_SEED, lr=LR,
            timings=timings,
        )  # fmt: skip
    except (OSError, RuntimeError, ValueError) as exc:
        row.update(status="failed", note=f"{type(exc).__name__}: {exc}")
        return row
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    timed = timings[warmup:]
    wall = statistics.median(w for w, _ in timed)
    busy = statistics.median(b for _, b in timed)
    over = statistics.median(w - b for w, b in timed)
    row.update(status="ok", note="", s_per_epoch=wall, samples_per_s=m / wall)
    row.update(compute_s=busy, overhead_s=over, epochs_timed=len(timed))
    return row


def _line(row: dict) -> str:
    head = f"{row['m']:>11} {row['dtype']:7} {row['workers']:>7} {row['threads']:>3}"
    if row["status"] != "ok":
        return f"{head}     {row['status']}: {row['note']}"
    return (
        f"{head} {row['s_per_epoch']:>10.3g} {row['samples_per_s']:>10.3g} "
        f"{row['compute_s']:>10.3g} {row['overhead_s'] * 1e3:>11.2f}"
    )
