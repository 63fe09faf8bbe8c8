"""The scaling experiment: time and memory of one epoch against the number of samples m.

``run_scaling`` (and the command ``fusedmlp scale``) sweeps m over the powers of ten from
``min_m`` to ``max_m`` for each backend and dtype asked for, and records per point:

- ``s_per_epoch``: the median over ``epochs`` timed repeats, after ``warmup`` epochs, of
  the seconds per full-batch epoch (forward, loss, backward, update) of the 2-``hidden``-1
  network on ``datasets.planar(m)`` from ``init_params(2, hidden, 1, seed=2)``, lr 0.2.
  A repeat is ``epochs_per_repeat`` consecutive epochs, as many as make it last about
  ``MIN_REPEAT_S`` (just 1 once an epoch takes 2 ms), so that timer resolution and call
  cost do not swamp the smallest m. numba runs ``_compiled.epoch_runner``'s ``run(k, losses)``, the
  path the trainer takes (the serial whole-training kernel up to ``SERIAL_MAX_M``, one
  parallel epoch per kernel call above); numpy runs the trainer's reference runner.
- ``samples_per_s`` = m / s_per_epoch.
- ``peak_rss_bytes``: the peak resident memory (VmHWM) of the point's process, generation
  of the data included, and ``train_peak_rss_bytes``: the peak from just after the data
  were made (VmHWM reset through ``/proc/self/clear_refs``) to the end, i.e. what training
  on data already in memory costs. ``baseline_rss_bytes`` is the process before the data
  (interpreter, NumPy, Numba and the loaded kernels).
- ``data_bytes`` = X.nbytes + Y.nbytes = 3 m itemsize.
- ``read_s``: the median time of one streaming read of every byte of X and Y in the same
  process, as ``ndarray.sum`` of X and Y, once in one thread and once split in one
  contiguous slice per thread of a thread pool (NumPy releases the GIL in reductions);
  the faster of the two medians is kept (``read_method`` says which). The pool has as
  many threads as numba (so the 1-thread run below reads with one). On the 2-core
  development machine, m = 10^7 in float64, this read 55 GB/s against 28 in one thread.
- ``epoch_over_read`` = s_per_epoch / read_s: 1 would be an epoch as fast as merely
  reading its data. Below about m = 10^4 both are dominated by call costs (a numba
  repeat of k epochs is one kernel call, a read two NumPy calls), so ratios under 1
  there say nothing about bandwidth.

Every point runs in a fresh Python process (``python -c``, see ``measure_point``), so its
peak memory is its own. The parent predicts each point's memory first (``predict_bytes``)
and skips, with the reason printed and recorded, a point whose prediction exceeds the
memory budget (default 60% of RAM): the NumPy reference needs about 9 times the data.
``max_m`` whose numba point would not fit is refused before anything runs.

After the sweep, thread scaling: the numba point at the largest m that ran (float64 if it
ran, else float32) is run again with 1 thread and with all of numba's threads
(``NUMBA_NUM_THREADS`` in the child), recorded as rows of ``experiment = "threads"``.

Outputs in ``out_dir``: ``scaling.csv`` (one row per point, written and flushed as each
finishes, so an interrupted sweep keeps every finished point; skipped and failed points
are rows too, with ``status`` and ``note``), ``scaling.json`` (rows, thread scaling, the
machine and the settings), ``scaling_time.png`` and ``scaling_memory.png`` (log-log
against m), and a table on screen as points finish. Memory is reported in MiB/GiB
(powers of 1024).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from ._validation import check_activation, check_count, check_loss
from .outofcore import memory_status, reset_peak

__all__ = ["add_parser", "main", "measure_point", "parse_bytes", "predict_bytes", "run_scaling"]

BACKENDS = ("numba", "numpy")
DTYPES = ("float64", "float32")
N_X, N_Y = 2, 1  # planar data: X (2, m), Y (1, m)
LR = 0.2
INIT_SEED = 2  # the planar exercise's weight seed
MiB, GiB = 1 << 20, 1 << 30

# The memory model of one point's process, fitted on this project's 2-core machine
# (numba 0.68, numpy 2.4); the measured columns of a sweep check it anywhere else:
# - the process before any data: interpreter, numpy, numba and the loaded kernels,
#   about 160 MiB measured with numba's cache warm; with a cold cache, compiling the
#   kernels (LLVM) peaks at about 1.2 GiB, so the base allows for that;
# - generating planar(m): X in float64 (16 m bytes) plus up to four float64 temporaries
#   of m/2 samples (16 m); for float32 the float64 arrays are cast and freed one at a
#   time, which peaks no higher. Measured 36-38 bytes a sample above the baseline;
# - an epoch of the NumPy reference allocates temporaries of (n_h, m) again and again:
#   measured peaks of 8.9 (float64) and 9.0 (float32) times the data above the baseline
#   at m = 10^6, data included; the compiled epoch allocates O(chunks) scratch only.
BASE_BYTES = 1536 * MiB
GEN_BYTES_PER_SAMPLE = 40
NUMPY_TEMP_FACTOR = 8.5  # temporaries over data: the numpy point needs 9.5 x data
OUTPUT_BYTES = 16 * MiB  # what the outputs need on disk, with room to spare

MIN_REPEAT_S = 0.002  # a timed repeat runs at least this long (several epochs at small m)
MAX_EPOCHS_PER_REPEAT = 100_000
READ_REPEATS = 7

CSV_FIELDS = (
    "experiment",
    "m",
    "backend",
    "dtype",
    "threads",
    "status",
    "note",
    "s_per_epoch",
    "samples_per_s",
    "peak_rss_bytes",
    "train_peak_rss_bytes",
    "baseline_rss_bytes",
    "data_bytes",
    "predicted_bytes",
    "read_s",
    "epoch_over_read",
    "read_method",
    "epochs_timed",
    "epochs_per_repeat",
    "warmup",
    "first_loss",
    "last_loss",
    "rss_anon_bytes",
    "rss_file_bytes",
    "wall_s",
)


# ---------------------------------------------------------------------------
# sizes, budgets, predictions


def _itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def data_bytes(m: int, dtype: str) -> int:
    """X.nbytes + Y.nbytes of the planar data: 3 m itemsize."""
    return (N_X + N_Y) * m * _itemsize(dtype)


def predict_bytes(backend: str, m: int, dtype: str) -> int:
    """Predicted peak RSS of one point's process, in bytes.

    ``BASE_BYTES`` plus the larger of the data generation (40 bytes a sample, either
    dtype) and the training: the data alone for numba, the data and
    ``NUMPY_TEMP_FACTOR`` times it in temporaries for numpy.

    >>> predict_bytes("numba", 10**8, "float64") // GiB
    5
    >>> predict_bytes("numpy", 10**8, "float64") // GiB
    22
    """
    data = data_bytes(m, dtype)
    train = data * (1 + NUMPY_TEMP_FACTOR) if backend == "numpy" else data
    return int(BASE_BYTES + max(GEN_BYTES_PER_SAMPLE * m, train))


def total_ram() -> int:
    """Physical memory in bytes (MemTotal of /proc/meminfo, else sysconf)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str | int | float, *, ram: int | None = None) -> int:
    """A memory size: bytes, ``"8G"``/``"8GB"``/``"8GiB"``, ``"512M"`` or ``"60%"`` of RAM.

    K, M, G and T are powers of 1024 whether or not "B" or "iB" follows.

    >>> parse_bytes("8G") == 8 * 2**30, parse_bytes("1.5k"), parse_bytes("50%", ram=1000)
    (True, 1536, 500)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip()
        pct = re.fullmatch(r"([0-9.]+)\s*%", s)
        match = re.fullmatch(r"([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?", s)
        if pct:
            value = float(pct.group(1)) / 100 * (total_ram() if ram is None else ram)
        elif match:
            value = float(match.group(1)) * _UNITS[match.group(2).upper()]
        else:
            raise ValueError(
                f"memory size {text!r} not understood: give bytes, a size such as 8G or "
                "512M (powers of 1024), or a share of RAM such as 60%."
            )
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"memory size must be positive, got {text!r}.")
    return int(value)


def parse_m(text: str | int) -> int:
    """A sample count written as an integer or in scientific notation ("1e8", "10**8")."""
    s = str(text).strip().replace("_", "")
    try:
        if "**" in s:
            base, exp = s.split("**")
            value = int(base) ** int(exp)
        else:
            f = float(s)
            value = int(f)
            if value != f:
                raise ValueError
    except (ValueError, OverflowError):
        msg = f"m must be a whole number such as 100000 or 1e5, got {text!r}."
        raise ValueError(msg) from None
    return value


def sizes(min_m: int, max_m: int) -> list[int]:
    """The m of the sweep: the powers of ten from min_m to max_m, and the ends themselves.

    >>> sizes(100, 10**4), sizes(50, 3000)
    ([100, 1000, 10000], [50, 100, 1000, 3000])
    """
    out = {min_m, max_m}
    p = 1
    while p <= max_m:
        if p >= min_m:
            out.add(p)
        p *= 10
    return sorted(out)


def _gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


def _mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


# ---------------------------------------------------------------------------
# one point, in its own process


def _median_time(run_k, repeats: int) -> tuple[float, int]:
    """(median seconds per unit over ``repeats`` timings, units per timing k).

    ``run_k(k)`` does k units of work (k epochs, k reads). One untimed ``run_k(1)``
    first sizes k so that a timing lasts about MIN_REPEAT_S: a unit of a few
    microseconds is then not lost in the timer's resolution and call costs.
    """
    t = time.perf_counter()
    run_k(1)
    once = time.perf_counter() - t
    k = max(1, min(MAX_EPOCHS_PER_REPEAT, math.ceil(MIN_REPEAT_S / max(once, 1e-9))))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run_k(k)
        times.append((time.perf_counter() - t) / k)
    return statistics.median(times), k


def _repeat(fn):
    """run_k for a function of no arguments: call it k times."""

    def run_k(k):
        for _ in range(k):
            fn()

    return run_k


def _stream_read(X: np.ndarray, Y: np.ndarray, threads: int) -> tuple[float, str]:
    """Seconds of the fastest honest read of every byte of X and Y once, and how."""
    from concurrent.futures import ThreadPoolExecutor

    x, y = X.reshape(-1), Y.reshape(-1)  # views: both are C-contiguous

    def serial():
        return x.sum() + y.sum()

    best, how = _median_time(_repeat(serial), READ_REPEATS)[0], "ndarray.sum, 1 thread"
    if threads > 1:
        xs, ys = np.array_split(x, threads), np.array_split(y, threads)
        with ThreadPoolExecutor(threads) as pool:

            def part(i):
                return xs[i].sum() + ys[i].sum()

            def parallel():
                return sum(pool.map(part, range(threads)))

            t = _median_time(_repeat(parallel), READ_REPEATS)[0]
        if t < best:
            best, how = t, f"ndarray.sum, {threads} threads"
    return best, how


def measure_point(
    m: int,
    backend: str,
    dtype: str,
    *,
    epochs: int = 5,
    warmup: int = 1,
    hidden: int = 4,
    activation: str = "sigmoid",
    loss: str = "mse",
    lr: float = LR,
) -> dict:
    """Measure one point of the sweep in this process; a dict of plain numbers.

    Meant for a fresh process (``run_scaling`` starts one per point): its peak RSS is
    that of the whole process. Order of work: compile or load the kernels on small data
    (the path m will take), note the baseline RSS, make the data (planar(m) in float64,
    cast), reset the peak RSS, run ``warmup`` epochs, time ``epochs`` repeats, time the
    streaming read, read the memory counters.

    ``first_loss`` is the loss of the first epoch on the data from the initial
    parameters (before any update), ``last_loss`` that of the last epoch timed.

    Examples
    --------
    >>> r = measure_point(200, "numba", "float64", epochs=2)
    >>> r["data_bytes"], r["samples_per_s"] == 200 / r["s_per_epoch"]
    (4800, True)
    """
    import numba

    from . import _compiled, _driver, datasets
    from .api import init_params
    from .kernels import SERIAL_MAX_M

    t_start = time.perf_counter()
    dt = np.dtype(dtype).type

    def runner(p, X, Y):
        """run(n_epochs, losses) -> (n_done, status) for this backend."""
        if backend == "numba":
            return _compiled.epoch_runner(p, X, Y, activation, loss, lr)

        def run(n, losses):
            return _driver.numpy_epochs(p, X, Y, activation, loss, lr, n, losses)

        return run

    # compile or load from the cache the kernels of m's path, on small data
    warm_m = m if m <= SERIAL_MAX_M else SERIAL_MAX_M + 1
    if backend == "numpy":
        warm_m = min(m, 1000)
    Xw, Yw = (a.astype(dt) for a in datasets.planar(warm_m))
    runner(init_params(N_X, hidden, N_Y, seed=INIT_SEED, dtype=dt), Xw, Yw)(2, np.empty(2))
    del Xw, Yw
    baseline = memory_status().get("VmRSS", 0)

    X, Y = datasets.planar(m)
    if dt is not np.float64:  # cast and free one array at a time
        X = X.astype(dt)
        Y = Y.astype(dt)
    t_data = time.perf_counter()
    gen_peak = memory_status().get("VmHWM", 0)  # the reset below also resets ru_maxrss
    exact = reset_peak()

    p = init_params(N_X, hidden, N_Y, seed=INIT_SEED, dtype=dt)
    run = runner(p, X, Y)
    losses = np.empty(MAX_EPOCHS_PER_REPEAT)
    first = []

    def train(n):
        done, status = run(n, losses)
        if status != 0 or done != n:
            raise FloatingPointError(f"training stopped at epoch {done} (status {status})")
        if not first:
            first.append(float(losses[0]))

    for _ in range(warmup):
        train(1)
    # k epochs are one run(k) call: the serial path runs them in one kernel call, as the
    # trainer does; the sizing call of _median_time is one more warm-up epoch
    s_epoch, k = _median_time(train, epochs)
    last = float(losses[k - 1])
    threads = numba.get_num_threads()
    read_s, read_method = _stream_read(X, Y, threads)

    mem = memory_status()
    import resource

    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran (the serial path)
        layer = None
    return {
        "m": m,
        "backend": backend,
        "dtype": dtype,
        "threads": threads,
        "s_per_epoch": s_epoch,
        "samples_per_s": m / s_epoch,
        "peak_rss_bytes": max(gen_peak, ru_peak, mem.get("VmHWM", 0)),
        "train_peak_rss_bytes": mem.get("VmHWM") if exact else None,
        "baseline_rss_bytes": baseline,
        "data_bytes": X.nbytes + Y.nbytes,
        "read_s": read_s,
        "epoch_over_read": s_epoch / read_s,
        "read_method": read_method,
        "epochs_timed": epochs,
        "epochs_per_repeat": k,
        "warmup": warmup,
        "first_loss": first[0],
        "last_loss": last,
        "rss_anon_bytes": mem.get("RssAnon"),
        "rss_file_bytes": mem.get("RssFile"),
        "data_s": t_data - t_start,
        "threading_layer": layer,
    }


def _point_main(spec_json: str) -> None:
    """Entry of a point's process: measure the point, print its JSON as the last line."""
    spec = json.loads(spec_json)
    print(json.dumps(measure_point(**spec)), flush=True)


_CHILD = "import sys; from fusedmlp.scaling import _point_main; _point_main(sys.argv[1])"


def _launch_point(spec: dict, threads: int | None = None) -> dict:
    """Run measure_point(**spec) in a fresh interpreter; its result, or status "failed".

    ``threads`` sets NUMBA_NUM_THREADS in the child (None: numba's default, all cores).
    """
    env = dict(os.environ)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-X", "faulthandler", "-c", _CHILD, json.dumps(spec)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        if proc.returncode < 0:
            why = f"killed by signal {-proc.returncode}"
            if -proc.returncode == 9:
                why += " (out of memory?)"
        else:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            why = f"exit status {proc.returncode}: {tail[0]}"
        return {"status": "failed", "note": why, "wall_s": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(status="ok", note="", wall_s=wall)
    return out


# ---------------------------------------------------------------------------
# the machine


def machine_info() -> dict:
    """CPU model, cores, RAM, OS and the versions that matter, for scaling.json."""
    import matplotlib
    import numba

    from . import __version__

    model, cores = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            phys = None
            for line in f:
                key, _, val = (s.strip() for s in line.partition(":"))
                if key == "model name":
                    model = val
                elif key == "physical id":
                    phys = val
                elif key == "core id":
                    cores.add((phys, val))
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import llvmlite

        llvm = llvmlite.__version__
    except ImportError:
        llvm = None
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "physical_cores": len(cores) or None,
        "ram_bytes": total_ram(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": None,  # filled in from the points that ran in parallel
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "llvmlite": llvm,
        "matplotlib": matplotlib.__version__,
        "fusedmlp": __version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------
# the sweep


def _row(experiment: str, m: int, backend: str, dtype: str, predicted: int, fields: dict) -> dict:
    """A CSV row: the point's identity, then what was measured (or why not)."""
    row = dict.fromkeys(CSV_FIELDS)
    row.update({k: v for k, v in fields.items() if k in CSV_FIELDS})
    row.update(experiment=experiment, m=m, backend=backend, dtype=dtype, predicted_bytes=predicted)
    if row["data_bytes"] is None:
        row["data_bytes"] = data_bytes(m, dtype)
    return row


_HEADER = (
    f"{'m':>11} {'backend':7} {'dtype':7} {'thr':>3} {'s/epoch':>10} {'samples/s':>10} "
    f"{'peak MiB':>9} {'train MiB':>9} {'data MiB':>9} {'epoch/read':>10}"
)


def _line(row: dict) -> str:
    head = f"{row['m']:>11} {row['backend']:7} {row['dtype']:7}"
    if row["status"] != "ok":
        return f"{head}     {row['status']}: {row['note']}"
    train = row["train_peak_rss_bytes"]
    return (
        f"{head} {row['threads']:>3} {row['s_per_epoch']:>10.3g} {row['samples_per_s']:>10.3g} "
        f"{row['peak_rss_bytes'] / MiB:>9.1f} "
        f"{(train / MiB if train else float('nan')):>9.1f} "
        f"{row['data_bytes'] / MiB:>9.2f} {row['epoch_over_read']:>10.2f}"
    )


def _check_choices(name: str, values, valid: tuple) -> tuple:
    values = (values,) if isinstance(values, str) else tuple(values)
    bad = [v for v in values if v not in valid]
    if bad or not values:
        raise ValueError(f"{name} must be one or more of {', '.join(valid)}, got {values!r}.")
    return tuple(dict.fromkeys(values))


def _refuse_if_too_big(
    out_dir: str, grid: list[int], dtypes: tuple, budget: int, ram: int
) -> None:
    """ValueError, with the numbers, when max_m cannot fit memory or out_dir's disk."""
    max_m = grid[-1]
    need = {d: predict_bytes("numba", max_m, d) for d in dtypes}
    worst = max(need, key=need.get)
    if need[worst] > budget:
        fits = [
            10**k
            for k in range(2, 16)
            if all(predict_bytes("numba", 10**k, d) <= budget for d in dtypes)
        ]
        hint = f"--max-m {fits[-1]:.0e} is the largest power of ten that fits" if fits else ""
        raise ValueError(
            f"max_m = {max_m:.3g} needs about {_gib(need[worst])} for its numba {worst} point "
            f"(data {_gib(data_bytes(max_m, worst))}, generating it "
            f"{_gib(GEN_BYTES_PER_SAMPLE * max_m)}, the process {_gib(BASE_BYTES)}), more "
            f"than the memory budget of {_gib(budget)} (RAM {_gib(ram)}); "
            f"{hint or 'not even m = 100 fits'}, or raise --memory-budget."
        )
    existing = os.path.abspath(out_dir)
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)  # out_dir is created only once accepted
    free = shutil.disk_usage(existing).free
    if free < OUTPUT_BYTES:
        raise ValueError(
            f"{out_dir} has {_mib(free)} free on its disk; the outputs need about "
            f"{_mib(OUTPUT_BYTES)} (no data is written to disk, only the tables and plots)."
        )


def run_scaling(
    out_dir,
    *,
    min_m: int = 100,
    max_m: int = 10**8,
    backends=BACKENDS,
    dtypes=DTYPES,
    epochs: int = 5,
    warmup: int = 1,
    memory_budget: int | str | None = None,
    threads_scaling: bool = True,
    hidden: int = 4,
    activation: str = "sigmoid",
    loss: str = "mse",
    progress=print,
) -> list[dict]:
    """Run the scaling experiment and write its table, JSON and plots into ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output folder, created if missing; an existing ``scaling.csv`` is replaced.
    min_m, max_m : int
        The sweep runs the powers of ten from min_m to max_m (and min_m, max_m).
    backends : sequence of {"numba", "numpy"}
    dtypes : sequence of {"float64", "float32"}
    epochs : int
        Timed repeats per point (>= 1); the median is reported.
    warmup : int
        Untimed epochs on the point's data before timing (>= 0).
    memory_budget : int or str, optional
        Bytes, or a string for ``parse_bytes`` ("8G", "60%"). Default 60% of RAM.
        Points predicted to need more are skipped with the reason.
    threads_scaling : bool
        Also time the numba point at the largest m that ran with 1 and all threads.
    hidden, activation, loss
        The network: 2-hidden-1 on the planar data, lr 0.2.
    progress : callable or None
        Called with each line of the on-screen table; None for silence.

    Returns
    -------
    list of dict
        One row per point, finished, skipped or failed (``status``, with the reason in
        ``note``), with the ``CSV_FIELDS``. A Ctrl-C (KeyboardInterrupt) stops the
        sweep: the finished rows are returned and written, and scaling.json says
        ``"interrupted": true``.

    Raises
    ------
    ValueError
        Before anything runs, if the numba point at max_m is predicted not to fit the
        memory budget, if out_dir's disk cannot hold the outputs, or on bad arguments.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     rows = run_scaling(d, max_m=10**4, backends=["numba"], dtypes=["float32"])
    """
    rows, _ = _sweep(
        out_dir,
        min_m=min_m,
        max_m=max_m,
        backends=backends,
        dtypes=dtypes,
        epochs=epochs,
        warmup=warmup,
        memory_budget=memory_budget,
        threads_scaling=threads_scaling,
        hidden=hidden,
        activation=activation,
        loss=loss,
        progress=progress,
    )
    return rows


def _sweep(
    out_dir,
    *,
    min_m,
    max_m,
    backends,
    dtypes,
    epochs,
    warmup,
    memory_budget,
    threads_scaling,
    hidden,
    activation,
    loss,
    progress,
):
    """run_scaling's work; (rows, interrupted)."""
    import numba

    say = progress or (lambda line: None)
    min_m = check_count("min_m", min_m, minimum=1)
    max_m = check_count("max_m", max_m, minimum=1)
    if max_m < min_m:
        raise ValueError(f"max_m = {max_m} is below min_m = {min_m}.")
    backends = _check_choices("backends", backends, BACKENDS)
    dtypes = _check_choices("dtypes", dtypes, DTYPES)
    epochs = check_count("epochs", epochs, minimum=1)
    warmup = check_count("warmup", warmup, minimum=0)
    hidden = check_count("hidden", hidden, minimum=1)
    activation, loss = check_activation(activation), check_loss(loss)
    ram = total_ram()
    budget = int(0.6 * ram) if memory_budget is None else parse_bytes(memory_budget, ram=ram)
    grid = sizes(min_m, max_m)
    out_dir = os.fspath(out_dir)
    _refuse_if_too_big(out_dir, grid, dtypes, budget, ram)
    os.makedirs(out_dir, exist_ok=True)

    machine = machine_info()
    settings = {
        "min_m": min_m,
        "max_m": max_m,
        "backends": list(backends),
        "dtypes": list(dtypes),
        "epochs": epochs,
        "warmup": warmup,
        "memory_budget_bytes": budget,
        "network": f"{N_X}-{hidden}-{N_Y}",
        "activation": activation,
        "loss": loss,
        "lr": LR,
        "data": "datasets.planar(m), seed 1",
        "init": f"init_params(2, {hidden}, 1, seed={INIT_SEED})",
        "min_repeat_s": MIN_REPEAT_S,
        "memory_model": {
            "base_bytes": BASE_BYTES,
            "generation_bytes_per_sample": GEN_BYTES_PER_SAMPLE,
            "numpy_temporaries_over_data": NUMPY_TEMP_FACTOR,
        },
    }
    spec0 = {
        "epochs": epochs,
        "warmup": warmup,
        "hidden": hidden,
        "activation": activation,
        "loss": loss,
    }
    all_threads = numba.config.NUMBA_NUM_THREADS
    csv_path = os.path.join(out_dir, "scaling.csv")
    rows, scaling, interrupted = [], None, False
    say(
        f"scaling sweep: m = {grid[0]} .. {grid[-1]}, {', '.join(backends)} x "
        f"{', '.join(dtypes)}, memory budget {_gib(budget)} of {_gib(ram)} RAM, "
        f"{machine['cpu_model']}, {all_threads} threads"
    )
    say(_HEADER)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        f.flush()

        def record(row):
            rows.append(row)
            writer.writerow(row)
            f.flush()
            say(_line(row))
            return row

        def point(experiment, m, backend, dtype, threads=None):
            predicted = predict_bytes(backend, m, dtype)
            if predicted > budget:
                note = (
                    f"predicted {_gib(predicted)} > memory budget {_gib(budget)} "
                    f"(data {_gib(data_bytes(m, dtype))})"
                )
                skip = {"status": "skipped", "note": note, "threads": threads}
                return record(_row(experiment, m, backend, dtype, predicted, skip))
            spec = dict(spec0, m=m, backend=backend, dtype=dtype)
            res = _launch_point(spec, threads)
            if res.get("threading_layer"):
                machine["numba_threading_layer"] = res["threading_layer"]
            res.setdefault("threads", threads)
            return record(_row(experiment, m, backend, dtype, predicted, res))

        try:
            for m in grid:
                for backend in backends:
                    for dtype in dtypes:
                        point("size", m, backend, dtype)
            if threads_scaling:
                scaling = _thread_scaling(rows, all_threads, point, say)
        except KeyboardInterrupt:
            interrupted = True
            say(f"interrupted: {len(rows)} finished points kept in {csv_path}")

    payload = {
        "interrupted": interrupted,
        "settings": settings,
        "machine": machine,
        "thread_scaling": scaling,
        "skipped": [r for r in rows if r["status"] == "skipped"],
        "failed": [r for r in rows if r["status"] == "failed"],
        "points": rows,
    }
    with open(os.path.join(out_dir, "scaling.json"), "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    if any(r["status"] == "ok" for r in rows):
        plot_time(rows, os.path.join(out_dir, "scaling_time.png"), machine)
        plot_memory(rows, os.path.join(out_dir, "scaling_memory.png"), machine)
    say(f"wrote {csv_path}, scaling.json and the plots scaling_time.png, scaling_memory.png")
    return rows, interrupted


def _thread_scaling(rows, all_threads, point, say) -> dict | None:
    """Rows of 1 thread and all threads for numba at the largest m that ran; the summary."""
    done = [r for r in rows if r["backend"] == "numba" and r["status"] == "ok"]
    if not done:
        say("thread scaling: skipped, no numba point ran")
        return {"note": "skipped: no numba point ran"}
    if all_threads < 2:
        say("thread scaling: skipped, numba has 1 thread")
        return {"note": "skipped: numba has 1 thread"}
    m = max(r["m"] for r in done)
    ran = {r["dtype"] for r in done if r["m"] == m}
    dtype = "float64" if "float64" in ran else ran.pop()
    say(f"thread scaling at m = {m}, numba {dtype}:")
    one = point("threads", m, "numba", dtype, threads=1)
    everyone = point("threads", m, "numba", dtype, threads=all_threads)
    out = {"m": m, "dtype": dtype, "threads": all_threads}
    if one["status"] == everyone["status"] == "ok":
        out.update(
            s_per_epoch_1_thread=one["s_per_epoch"],
            s_per_epoch_all_threads=everyone["s_per_epoch"],
            speedup=one["s_per_epoch"] / everyone["s_per_epoch"],
            read_s_1_thread=one["read_s"],
            read_s_all_threads=everyone["read_s"],
        )
        say(
            f"thread scaling: {out['speedup']:.2f}x with {all_threads} threads "
            f"({one['s_per_epoch']:.3g} s per epoch with 1, {everyone['s_per_epoch']:.3g} "
            f"with {all_threads})"
        )
    return out


# ---------------------------------------------------------------------------
# plots


def _figure(machine: dict):
    """A log-log Figure (Agg canvas, no pyplot) titled with the machine; (fig, ax)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m (samples)")
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(
        f"{machine.get('cpu_model', '?')}, {machine.get('numba_threads', '?')} numba threads",
        fontsize="small",
    )
    return fig, ax


def _finish(fig, ax, ylabel: str, title: str, path) -> None:
    from .plots import save_png

    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.legend(loc="outside right upper", fontsize="small")  # never over the data
    save_png(fig, path)


FIGSIZE, DPI = (9.0, 5.0), 100
_COLORS = {"numba": "C0", "numpy": "C1"}
_STYLES = {"float64": ("o", "-"), "float32": ("s", "--")}  # marker, line of the points
_REF_STYLES = {"float64": "--", "float32": ":"}  # line of the grey reference


def _series(rows: list[dict]) -> dict:
    """{(backend, dtype): finished size-sweep rows by m}, float64 before float32."""
    out = {}
    for r in rows:
        if r["experiment"] == "size" and r["status"] == "ok":
            out.setdefault((r["backend"], r["dtype"]), []).append(r)
    order = sorted(out, key=lambda k: (BACKENDS.index(k[0]), DTYPES.index(k[1])))
    return {k: sorted(out[k], key=lambda r: r["m"]) for k in order}


def plot_time(rows: list[dict], path, machine: dict | None = None):
    """Log-log seconds per epoch against m, one line per backend/dtype, and the read bound.

    The grey line of each dtype is the time of one streaming read of X and Y (the median
    over that m's points); hollow triangles are the thread-scaling runs. Returns the
    Figure, also written to ``path`` as a PNG of 900 x 500 pixels.
    """
    fig, ax = _figure(machine or {})
    series = _series(rows)
    for (backend, dtype), rs in series.items():
        marker, ls = _STYLES[dtype]
        x, y = [r["m"] for r in rs], [r["s_per_epoch"] for r in rs]
        ax.plot(x, y, color=_COLORS[backend], marker=marker, ls=ls, label=f"{backend} {dtype}")
    for dtype in DTYPES:
        reads = {}
        for (_, d), rs in series.items():
            for r in rs if d == dtype else ():
                reads.setdefault(r["m"], []).append(r["read_s"])
        if reads:
            ms = sorted(reads)
            y = [statistics.median(reads[m]) for m in ms]
            label = f"one read of X, Y ({dtype})"
            ax.plot(ms, y, color="0.45", ls=_REF_STYLES[dtype], lw=1.2, label=label)
    for r in rows:
        if r["experiment"] == "threads" and r["status"] == "ok":
            n = r["threads"]
            label = f"numba {r['dtype']}, {n} thread{'s' if n > 1 else ''}"
            marker = "v" if n == 1 else "^"
            ax.plot(r["m"], r["s_per_epoch"], ls="none", color=_COLORS["numba"], marker=marker,
                    markersize=9, markerfacecolor="none", label=label)  # fmt: skip
    _finish(fig, ax, "seconds per epoch", "time per full-batch epoch", path)
    return fig


def plot_memory(rows: list[dict], path, machine: dict | None = None):
    """Log-log peak RSS against m per backend/dtype, with the data size for reference.

    Lines with markers: the peak of the whole point process, data generation included;
    thin dotted lines of the same colour: the peak while training on data already made.
    Grey: the bytes of X and Y. Returns the Figure, also written to ``path`` (900 x 500).
    """
    fig, ax = _figure(machine or {})
    series = _series(rows)
    for (backend, dtype), rs in series.items():
        marker, ls = _STYLES[dtype]
        color = _COLORS[backend]
        x, y = [r["m"] for r in rs], [r["peak_rss_bytes"] / MiB for r in rs]
        ax.plot(x, y, color=color, marker=marker, ls=ls, label=f"{backend} {dtype}")
        train = [
            (r["m"], r["train_peak_rss_bytes"] / MiB) for r in rs if r["train_peak_rss_bytes"]
        ]
        if train:
            ax.plot(*zip(*train, strict=True), color=color, ls=":", lw=1,
                    label=f"{backend} {dtype}, training only")  # fmt: skip
    for dtype in DTYPES:
        ms = sorted({r["m"] for (_, d), rs in series.items() if d == dtype for r in rs})
        if ms:
            y = [data_bytes(m, dtype) / MiB for m in ms]
            label = f"data X, Y ({dtype})"
            ax.plot(ms, y, color="0.45", ls=_REF_STYLES[dtype], lw=1.2, label=label)
    _finish(fig, ax, "peak RSS (MiB)", "peak memory of the run", path)
    return fig


# ---------------------------------------------------------------------------
# the command line: fusedmlp scale


def add_parser(subparsers, **kwargs) -> argparse.ArgumentParser:
    """Add the ``scale`` command to an argparse subparsers object; its parser.

    ``kwargs`` go to ``subparsers.add_parser`` (e.g. ``formatter_class``). The command
    calls ``main(args)`` through ``set_defaults(func=main)``.
    """
    p = subparsers.add_parser(
        "scale",
        help="time and memory of an epoch against m: table, CSV, JSON and plots",
        description=(
            "Sweep m over powers of ten (planar data, 2-4-1 sigmoid network, mse) for each\n"
            "backend and dtype, each point in a fresh process; record seconds per epoch,\n"
            "samples per second, peak RSS, data size and the ratio of an epoch to one\n"
            "streaming read of X and Y; then 1 thread vs all at the largest m. Writes\n"
            "scaling.csv (row by row: Ctrl-C keeps finished points), scaling.json,\n"
            "scaling_time.png and scaling_memory.png into --out. Points predicted to need\n"
            "more than --memory-budget are skipped; a --max-m too large is refused."
        ),
        **kwargs,
    )
    p.add_argument("--out", default="out", help="output folder, created if missing (default out)")
    p.add_argument("--min-m", type=parse_m, default=100, help="smallest m (default 1e2)")
    p.add_argument("--max-m", type=parse_m, default=10**8, help="largest m (default 1e8)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    p.add_argument("--epochs", type=int, default=5, help="timed repeats per point (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    p.add_argument(
        "--memory-budget",
        metavar="SIZE",
        help="skip points predicted to need more: bytes, 8G, 512M or 60%% (default 60%%)",
    )
    p.add_argument(
        "--no-thread-scaling",
        dest="threads_scaling",
        action="store_false",
        help="leave out the 1-thread vs all-threads runs",
    )
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run ``fusedmlp scale`` from parsed arguments: 0 done, 1 a point failed, 130 Ctrl-C.

    Bad arguments and a too-large --max-m raise ValueError (one line for the CLI).
    """
    rows, interrupted = _sweep(
        args.out,
        min_m=args.min_m,
        max_m=args.max_m,
        backends=args.backends,
        dtypes=args.dtypes,
        epochs=args.epochs,
        warmup=args.warmup,
        memory_budget=args.memory_budget,
        threads_scaling=args.threads_scaling,
        hidden=4,
        activation="sigmoid",
        loss="mse",
        progress=lambda line: print(line, flush=True),
    )
    if interrupted:
        return 130
    return 1 if any(r["status"] == "failed" for r in rows) else 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m fusedmlp.scaling")
    add_parser(_parser.add_subparsers(dest="command", required=True))
    _args = _parser.parse_args()
    try:
        sys.exit(_args.func(_args))
    except ValueError as exc:
        print(f"fusedmlp scale: error: {exc}", file=sys.stderr)
        sys.exit(2)
