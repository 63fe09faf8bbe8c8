"""Out of core: train on a data set bigger than comfortable in RAM, memory-mapped from disk.

Writes planar(m) (float32 by default: 12 bytes a sample, 12 GB at m = 10^9) as a pair of
.npy files chunk by chunk, opens them as read-only memory maps, trains full-batch epochs
with ``fusedmlp.train`` and reports the write rate, the time per epoch and the memory:
peak resident set (VmHWM), and how much of it was anonymous memory (RssAnon, really
held) versus file pages of the mapped data (RssFile, reclaimable at any time). Ends with
a Markdown snippet for bench/RESULTS.md. Run it on a quiet machine:

    .venv/bin/python bench/outofcore.py                    # m = 10^9, 3 epochs, /tmp
    .venv/bin/python bench/outofcore.py --m 1e8 --epochs 5 --trim 1 --cold
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext

import numba
import numpy as np

import fusedmlp
from fusedmlp import datasets, outofcore
from fusedmlp._validation import check_XY

GB = 1e9


def count(text: str) -> int:
    """An integer that may be written as 1e9 or 10**9."""
    try:
        if "**" in text:
            base, power = text.split("**")
            value = float(int(base) ** int(power))
        else:
            value = float(text)
    except ValueError:
        value = 0.5
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(value)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=count, default=10**9, help="samples (default 1e9)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--dir", help="where to write the files (default: a new folder in /tmp)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--chunk", type=count, default=2**20, help="columns written at a time")
    ap.add_argument(
        "--trim",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="release the mapped pages every SECONDS during training (outofcore.trimming), "
        "so the resident set stays small; 0 (default) leaves paging to the kernel",
    )
    ap.add_argument(
        "--cold",
        action="store_true",
        help="drop the data from the page cache before every epoch (release(evict=True)), "
        "so each epoch reads it from disk as it would for data beyond RAM",
    )
    ap.add_argument("--keep", action="store_true", help="keep the data files afterwards")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --dir: use the X.npy, Y.npy a --keep run left there if they match --m and "
        "--dtype (no writing; implies --keep)",
    )
    return ap.parse_args(argv)


def meminfo() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, rest = line.split(":", 1)
                out[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def size(m: int) -> str:
    """10^9 for powers of ten, else 123,456,789."""
    power = len(str(m)) - 1
    return f"10^{power}" if m == 10**power and power > 2 else f"{m:,}"


def as_arg(m: int) -> str:
    """1e9 for powers of ten, else the digits."""
    power = len(str(m)) - 1
    return f"1e{power}" if m == 10**power else str(m)


def gb(n: float) -> str:
    return f"{n / GB:.2f} GB"


def main(argv=None) -> int:
    args = parse(argv)
    itemsize = np.dtype(args.dtype).itemsize
    nbytes = 3 * args.m * itemsize + 256  # X (2, m), Y (1, m), two headers
    if args.reuse:
        if args.dir is None:
            print("refusing: --reuse needs --dir", file=sys.stderr)
            return 2
        x_path, y_path = os.path.join(args.dir, "X.npy"), os.path.join(args.dir, "Y.npy")
        reused = None
        if os.path.exists(x_path) and os.path.exists(y_path):
            X, Y = outofcore.open_pair(x_path, y_path)
            if X.shape == (2, args.m) and Y.shape == (1, args.m) and X.dtype == args.dtype:
                reused = X, Y
        if reused is None:
            print(f"refusing: no {args.dtype} data of m = {args.m} in {args.dir}", file=sys.stderr)
            return 2
        args.reuse, args.keep = reused, True
    made_dir = args.dir is None or not os.path.isdir(args.dir)
    folder = args.dir or tempfile.mkdtemp(prefix="fusedmlp-outofcore-")
    os.makedirs(folder, exist_ok=True)
    x_path, y_path = os.path.join(folder, "X.npy"), os.path.join(folder, "Y.npy")
    try:
        free_before = outofcore.check_disk(folder, 0 if args.reuse else nbytes)
    except OSError as exc:
        print(f"refusing: {exc}", file=sys.stderr)
        if made_dir:
            shutil.rmtree(folder, ignore_errors=True)
        return 2
    mem = meminfo()
    print(
        f"m = {size(args.m)} {args.dtype}: {gb(nbytes)} of data in {folder} "
        f"({gb(free_before)} free); RAM {gb(mem.get('MemTotal', 0))}, "
        f"available {gb(mem.get('MemAvailable', 0))}; {os.cpu_count()} CPUs, "
        f"{numba.get_num_threads()} numba threads",
        flush=True,
    )
    try:
        return run(args, x_path, y_path, nbytes, free_before)
    finally:
        if not args.keep:
            for path in (x_path, y_path):
                if os.path.exists(path):
                    os.remove(path)
            if made_dir:
                shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {x_path} and {y_path}")


def run(args, x_path, y_path, nbytes, free_before) -> int:
    # 1. write, chunk by chunk
    outofcore.reset_peak()
    t0 = time.perf_counter()
    if args.reuse:
        X, Y = args.reuse
    else:
        X, Y = datasets.write_planar(x_path, y_path, args.m, dtype=args.dtype, chunk=args.chunk)
    t_write = time.perf_counter() - t0
    write_mem = outofcore.memory_status()
    free_after = shutil.disk_usage(os.path.dirname(x_path)).free
    if args.reuse:
        wrote = f"reused {x_path} and {y_path}"
    else:
        wrote = (
            f"{t_write:.1f} s, {args.m / t_write / 1e6:.2f} M samples/s, peak RSS "
            f"{gb(write_mem.get('VmHWM', 0))}"
        )
    print(f"write: {wrote}", flush=True)

    # 2. load (or compile) the read-only kernel variants on a small read-only sample,
    #    so the timed run measures training only
    small = np.array(X[:, : min(args.m, 1 << 16)])
    small_y = np.array(Y[:, : small.shape[1]])
    small.flags.writeable = small_y.flags.writeable = False
    fusedmlp.train(small, small_y, epochs=1, seed=2)

    # 3. the validation scan alone (train does it once more, inside its first epoch)
    outofcore.release(X, Y, evict=args.cold)
    t0 = time.perf_counter()
    check_XY(X, Y, "mse")
    t_scan = time.perf_counter() - t0
    outofcore.release(X, Y, evict=args.cold)
    print(f"validation scan: {t_scan:.1f} s", flush=True)

    # 4. train; a callback after every epoch stamps the time (and with --cold drops the
    #    data from the page cache, outside the timed spans)
    ends, starts = [], []

    def stamp(epoch, loss, params):
        ends.append(time.perf_counter())
        if args.cold:
            outofcore.release(X, Y, evict=True)
        starts.append(time.perf_counter())

    trim = outofcore.trimming(X, Y, interval=args.trim) if args.trim > 0 else nullcontext()
    outofcore.reset_peak()
    t0 = time.perf_counter()
    with trim as trimmer:
        res = fusedmlp.train(
            X, Y, epochs=args.epochs, lr=0.2, seed=2, verbose=True, log_every=1, callback=stamp
        )
    t_train = time.perf_counter() - t0
    mem = outofcore.memory_status()
    epoch_times = np.subtract(ends, [t0, *starts[:-1]])
    later = epoch_times[1:] if len(epoch_times) > 1 else epoch_times
    print(
        f"trained {res.epochs} epochs in {t_train:.1f} s; losses {np.round(res.losses, 6)}",
        flush=True,
    )
    for i, dt in enumerate(epoch_times):
        note = " (includes train's validation scan)" if i == 0 else ""
        print(f"  epoch {i}: {dt:.2f} s, {args.m / dt / 1e6:.0f} M samples/s{note}")
    print(
        f"peak RSS during training (VmHWM) {gb(mem.get('VmHWM', 0))}; at the end RssAnon "
        f"{gb(mem.get('RssAnon', 0))}, RssFile {gb(mem.get('RssFile', 0))}, mapped data "
        f"resident {gb(outofcore.resident_bytes(X) + outofcore.resident_bytes(Y))}"
        + (f"; {trimmer.count} trims" if trimmer is not None else "")
    )

    # 5. the snippet for bench/RESULTS.md
    paging = []
    if args.trim > 0:
        paging.append(f"mapped pages released every {args.trim:g} s (`outofcore.trimming`)")
    if args.cold:
        paging.append("data dropped from the page cache before every epoch (read from disk)")
    flags = (f" --trim {args.trim:g}" if args.trim > 0 else "") + (" --cold" if args.cold else "")
    ram = meminfo().get("MemTotal", 0)
    print(
        f"""
### Out of core: m = {size(args.m)}, {args.dtype} ({gb(nbytes)} of data, {gb(ram)} RAM)

`bench/outofcore.py --m {as_arg(args.m)} --dtype {args.dtype} --epochs {args.epochs}{flags}`, \
{time.strftime("%Y-%m-%d")}, {platform.machine()}, {os.cpu_count()} CPUs, \
{numba.get_num_threads()} numba threads ({numba.threading_layer()}); data memory-mapped \
read-only from `.npy` files, full-batch 2-4-1 sigmoid/mse, lr 0.2; \
{"; ".join(paging) or "paging left to the kernel"}.

| | |
|---|---|
| write (`datasets.write_planar`, chunk {args.chunk}) | {wrote} |
| validation scan (once per `train` call) | {t_scan:.1f} s |
| epoch 0 (with the validation scan) | {epoch_times[0]:.2f} s |
| later epochs, mean (min) | {later.mean():.2f} s ({later.min():.2f} s), \
{args.m / later.mean() / 1e6:.0f} M samples/s |
| peak RSS during `train` (VmHWM) | {gb(mem.get("VmHWM", 0))} |
| RssAnon / RssFile at the end | {gb(mem.get("RssAnon", 0))} / {gb(mem.get("RssFile", 0))} |
| losses | {", ".join(f"{v:.6f}" for v in res.losses)} |
| disk free before / after writing | {gb(free_before)} / {gb(free_after)} |
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
