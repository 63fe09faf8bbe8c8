"""One point of the scaling experiment, measured in its own process.

``fusedmlp.scaling`` runs the sweep; each point runs ``measure_point`` in a fresh Python
process (``python -c``, see ``_launch_point``), so its peak memory is its own. A point
records:

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
  many threads as numba (so the 1-thread run of the thread scaling reads with one). On
  the 2-core development machine, m = 10^7 in float64, this read 55 GB/s against 28 in
  one thread.
- ``epoch_over_read`` = s_per_epoch / read_s: 1 would be an epoch as fast as merely
  reading its data. Below about m = 10^4 both are dominated by call costs (a numba
  repeat of k epochs is one kernel call, a read two NumPy calls), so ratios under 1
  there say nothing about bandwidth.

Here too are the memory model that predicts a point's peak (``predict_bytes``), a point's
row of the table (``CSV_FIELDS``, ``_row``, ``_line``) and what the experiment's modules
share (backends, dtypes, the network's shape, ``data_bytes``, ``total_ram``):
``fusedmlp.scaling`` (which re-exports the public names) and ``fusedmlp._scaling_plots``
import them from here, and this module imports neither.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from .outofcore import memory_status, reset_peak

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
#   kernels (LLVM) peaked at about 1.2 GiB when this was fitted, and at 1.9 GiB
#   (2,041,454,592 bytes) in a full test run from an empty cache on 2026-12-04, with
#   today's larger set of kernels (optimizers, mini-batches), so the base allows for that;
# - generating planar(m): X in float64 (16 m bytes) plus up to four float64 temporaries
#   of m/2 samples (16 m); for float32 the float64 arrays are cast and freed one at a
#   time, which peaks no higher. Measured 36-38 bytes a sample above the baseline;
# - an epoch of the NumPy reference allocates temporaries of (n_h, m) again and again:
#   measured peaks of 8.9 (float64) and 9.0 (float32) times the data above the baseline
#   at m = 10^6, data included; the compiled epoch allocates O(chunks) scratch only.
BASE_BYTES = 2304 * MiB
GEN_BYTES_PER_SAMPLE = 40
NUMPY_TEMP_FACTOR = 8.5  # temporaries over data: the numpy point needs 9.5 x data

MIN_REPEAT_S = 0.002  # a timed repeat runs at least this long (several epochs at small m)
MAX_EPOCHS_PER_REPEAT = 100_000
READ_REPEATS = 7

CSV_FIELDS = (  # a point's row of scaling.csv
    "experiment", "m", "backend", "dtype", "threads", "status", "note",
    "s_per_epoch", "samples_per_s",
    "peak_rss_bytes", "train_peak_rss_bytes", "baseline_rss_bytes", "data_bytes",
    "predicted_bytes", "read_s", "epoch_over_read", "read_method",
    "epochs_timed", "epochs_per_repeat", "warmup", "first_loss", "last_loss",
    "rss_anon_bytes", "rss_file_bytes", "wall_s",
)  # fmt: skip


def _itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def data_bytes(m: int, dtype: str) -> int:
    """X.nbytes + Y.nbytes of the planar data: 3 m itemsize."""
    return (N_X + N_Y) * m * _itemsize(dtype)


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


def predict_bytes(backend: str, m: int, dtype: str) -> int:
    """Predicted peak RSS of one point's process, in bytes.

    ``BASE_BYTES`` plus the larger of the data generation (40 bytes a sample, either
    dtype) and the training: the data alone for numba, the data and
    ``NUMPY_TEMP_FACTOR`` times it in temporaries for numpy.

    >>> predict_bytes("numba", 10**8, "float64") // GiB
    5
    >>> predict_bytes("numpy", 10**8, "float64") // GiB
    23
    """
    data = data_bytes(m, dtype)
    train = data * (1 + NUMPY_TEMP_FACTOR) if backend == "numpy" else data
    return int(BASE_BYTES + max(GEN_BYTES_PER_SAMPLE * m, train))


# ---------------------------------------------------------------------------
# timing


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


# ---------------------------------------------------------------------------
# one point, in its own process


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

    from . import datasets
    from .api import init_params

    t_start = time.perf_counter()
    dt = np.dtype(dtype).type
    net = (backend, activation, loss, lr)
    _warm_kernels(m, net, hidden, dt)
    baseline = memory_status().get("VmRSS", 0)

    X, Y = datasets.planar(m)
    if dt is not np.float64:  # cast and free one array at a time
        X = X.astype(dt)
        Y = Y.astype(dt)
    t_data = time.perf_counter()
    gen_peak = memory_status().get("VmHWM", 0)  # before the reset below clears it
    exact = reset_peak()

    p = init_params(N_X, hidden, N_Y, seed=INIT_SEED, dtype=dt)
    run = _runner(net, p, X, Y)
    losses = np.empty(MAX_EPOCHS_PER_REPEAT)
    s_epoch, k, first = _time_epochs(run, losses, warmup, epochs)
    last = float(losses[k - 1])
    threads = numba.get_num_threads()
    read_s, read_method = _stream_read(X, Y, threads)

    mem, ru_peak, layer = _end_counters()
    return {
        "m": m,
        "backend": backend,
        "dtype": dtype,
        "threads": threads,
        "s_per_epoch": s_epoch,
        "samples_per_s": m / s_epoch,
        "peak_rss_bytes": _peak(gen_peak, mem, ru_peak),
        "train_peak_rss_bytes": mem.get("VmHWM") if exact else None,
        "baseline_rss_bytes": baseline,
        "data_bytes": X.nbytes + Y.nbytes,
        "read_s": read_s,
        "epoch_over_read": s_epoch / read_s,
        "read_method": read_method,
        "epochs_timed": epochs,
        "epochs_per_repeat": k,
        "warmup": warmup,
        "first_loss": first,
        "last_loss": last,
        "rss_anon_bytes": mem.get("RssAnon"),
        "rss_file_bytes": mem.get("RssFile"),
        "data_s": t_data - t_start,
        "threading_layer": layer,
    }


def _warm_kernels(m: int, net: tuple, hidden: int, dt) -> None:
    """Compile, or load from the cache, the kernels of m's path, on small data."""
    from . import datasets
    from .api import init_params
    from .kernels import SERIAL_MAX_M

    warm_m = m if m <= SERIAL_MAX_M else SERIAL_MAX_M + 1
    if net[0] == "numpy":
        warm_m = min(m, 1000)
    Xw, Yw = (a.astype(dt) for a in datasets.planar(warm_m))
    _runner(net, init_params(N_X, hidden, N_Y, seed=INIT_SEED, dtype=dt), Xw, Yw)(2, np.empty(2))


def _runner(net: tuple, p, X, Y):
    """run(n_epochs, losses) -> (n_done, status) for net = (backend, activation, loss, lr)."""
    from . import _compiled, _driver

    backend, activation, loss, lr = net
    if backend == "numba":
        return _compiled.epoch_runner(p, X, Y, activation, loss, lr)

    def run(n, losses):
        return _driver.numpy_epochs(p, X, Y, activation, loss, lr, n, losses)

    return run


def _time_epochs(run, losses, warmup: int, epochs: int) -> tuple[float, int, float]:
    """(median seconds per epoch, epochs per repeat k, loss of the first epoch).

    ``warmup`` untimed epochs first, then ``epochs`` timed repeats of k epochs each; the
    losses of the last repeat are left in ``losses``.
    """
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
    return s_epoch, k, first[0]


def _peak(gen_peak: int, mem: dict, ru_peak: int) -> int:
    """The point's peak RSS: the larger VmHWM (data generation, then training), or where
    /proc has none (not Linux) getrusage's. Not getrusage's on Linux: a process started
    by vfork and exec (``subprocess``'s way) inherits in ru_maxrss its parent's peak,
    which the kernel takes from the parent's memory at the exec (a point launched from
    a 2.6 GB process reported 2.6 GB; its VmHWM said 105 MB)."""
    if "VmHWM" in mem:
        return max(gen_peak, mem["VmHWM"])
    return ru_peak


def _end_counters() -> tuple[dict, int, str | None]:
    """(memory_status(), peak RSS in bytes by getrusage, numba's threading layer or None)."""
    import resource

    import numba

    mem = memory_status()
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran (the serial path)
        layer = None
    return mem, ru_peak, layer


def _point_main(spec_json: str) -> None:
    """Entry of a point's process: measure the point, print its JSON as the last line."""
    spec = json.loads(spec_json)
    print(json.dumps(measure_point(**spec)), flush=True)


_CHILD = "import sys; from fusedmlp._scaling_point import _point_main; _point_main(sys.argv[1])"


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
# a point's row: in scaling.csv and on screen


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
