"""What the benchmarks run, as plain functions: bench/test_speed.py times them and
tests/test_bench_smoke.py runs each once at a tiny size.

Every ``make_*`` builds its state (data, parameters, compiled functions) and returns a
``run()`` closure taking no arguments; the timing is of ``run()`` alone. The network is
the planar classic, 2-4-1, sigmoid hidden units, mse loss, on ``datasets.planar(m)``
(data seed 1) from ``init_params(2, 4, 1, seed=2)``.

The memory and start-up probes run in a fresh interpreter, so what they measure is that
one process's peak RSS and import time: ``run_memory_probe`` and ``run_startup_probe``
start it (``python -c`` calling ``_main``) and parse the JSON it prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

import fusedmlp
from fusedmlp import _compiled, datasets, outofcore, reference

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ("W1", "b1", "W2", "b2")
ACT, LOSS = "sigmoid", "mse"
N_H = 4
LR = 0.2
EPOCHS = 3000  # P1: the classic planar training
PLANAR_M = 400
DTYPES = {"float64": np.float64, "float32": np.float32}


# ---------------------------------------------------------------------------
# data and the compiled driver


def make_data(m: int, dtype=np.float64):
    """(X, Y) of the planar flower with m samples, C-contiguous, in dtype."""
    X, Y = datasets.planar(m)
    return np.ascontiguousarray(X, dtype), np.ascontiguousarray(Y, dtype)


def make_params(dtype=np.float64) -> dict:
    """The classic starting point, init_params(2, 4, 1, seed=2), in dtype."""
    return fusedmlp.init_params(2, N_H, 1, seed=2, dtype=dtype)


def copy_params(params: dict) -> dict:
    return {k: np.array(params[k]) for k in NAMES}


def threads() -> dict:
    """Thread counts of the libraries timed and the machine's load, for extra_info."""
    import numba

    info = {
        "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "numba_threads": numba.get_num_threads(),
    }
    try:
        info["numba_threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel function has run yet
        pass
    return info


# ---------------------------------------------------------------------------
# P1: the whole planar training, 3000 epochs; run() -> (params, losses)


def make_p1_train(X, Y, params, lr=LR, epochs=EPOCHS, backend="numba"):
    """The public fusedmlp.train: validation, then the backend's epoch runner."""

    def run():
        res = fusedmlp.train(X, Y, init=params, epochs=epochs, lr=lr, backend=backend)
        return res.params, res.losses

    return run


def make_p1_train_logged(X, Y, params, lr=LR, epochs=EPOCHS):
    """fusedmlp.train reporting every 100 epochs (a callback, as a progress display would):
    30 runner calls instead of a few, to show what progress reporting costs."""

    def run():
        seen = []
        res = fusedmlp.train(
            X, Y, init=params, epochs=epochs, lr=lr, log_every=100,
            callback=lambda epoch, loss, p: seen.append(loss),
        )  # fmt: skip
        return res.params, res.losses

    return run


def make_p1_numpy(X, Y, params, lr=LR, epochs=EPOCHS):
    """fusedmlp.train(backend="numpy"): the reference loop with its per-epoch checks."""
    return make_p1_train(X, Y, params, lr, epochs, backend="numpy")


def make_p1_compiled(X, Y, params, lr=LR, epochs=EPOCHS):
    """_compiled.train_epochs from a fresh copy of params on every run."""
    mod = _compiled

    def run():
        p = copy_params(params)
        losses = np.zeros(epochs)
        done, status = mod.train_epochs(p, X, Y, ACT, LOSS, lr, epochs, losses)
        if done != epochs or status != 0:
            raise RuntimeError(f"train_epochs stopped at {done} with status {status}")
        return p, losses

    return run


def make_p1_jax(X, Y, params, lr=LR, epochs=EPOCHS):
    """All epochs inside one jax.jit (lax.fori_loop)."""
    import peers

    return peers.make_jax_train(X, Y, params, lr, epochs)


# ---------------------------------------------------------------------------
# P2: one epoch (forward, loss, backward, update); run() -> the epoch's loss.
# Each run continues from the parameters the last one left: the same work every time.


def make_epoch_numpy(X, Y, params, lr=LR):
    p = copy_params(params)

    def run():
        L, g = reference.loss_and_grads(p, X, Y, ACT, LOSS)
        for k in NAMES:
            p[k] -= lr * g["d" + k]
        return L

    return run


def make_epoch_compiled(X, Y, params, lr=LR):
    """_compiled.train_epochs with n_epochs=1: the driver's own epoch path for this m."""
    mod = _compiled
    p = copy_params(params)
    losses = np.zeros(1)

    def run():
        done, status = mod.train_epochs(p, X, Y, ACT, LOSS, lr, 1, losses)
        if done != 1 or status != 0:
            raise RuntimeError(f"train_epochs stopped at {done} with status {status}")
        return float(losses[0])

    return run


def make_epoch_torch(X, Y, params, lr=LR):
    import peers

    return peers.make_torch_epoch(X, Y, params, lr)


def make_epoch_torch_compile(X, Y, params, lr=LR, backend="inductor"):
    import peers

    return peers.make_torch_epoch(X, Y, params, lr, compile=True, backend=backend)


def make_epoch_jax(X, Y, params, lr=LR):
    import peers

    return peers.make_jax_epoch(X, Y, params, lr)


EPOCH_MAKERS = {
    "numpy": make_epoch_numpy,
    "compiled": make_epoch_compiled,
    "torch": make_epoch_torch,
    "torch_compile": make_epoch_torch_compile,
    "jax": make_epoch_jax,
}


# ---------------------------------------------------------------------------
# forward and yardstick; run() -> A2 or a float


def make_forward_numpy(X, params):
    return lambda: reference.predict_proba(params, X, ACT)


def make_forward_compiled(X, params):
    mod = _compiled
    return lambda: mod.predict_proba(params, X, ACT)


# ---------------------------------------------------------------------------
# wide networks (bench/test_wide.py): random data of the shapes people train on


def make_wide_data(n_x: int, n_h: int, n_y: int, m: int, dtype=np.float64):
    """(X, Y, params): X ~ N(0, 1) (n_x, m), 0/1 targets (n_y, m), and init_params with
    weights of size 1/sqrt(n_x) so that Z1 is of order 1 however wide the input."""
    rng = np.random.default_rng(n_x * 1000 + n_h)
    X = rng.standard_normal((n_x, m)).astype(dtype)
    Y = (rng.random((n_y, m)) < 0.5).astype(dtype)
    p = fusedmlp.init_params(n_x, n_h, n_y, seed=2, scale=n_x**-0.5, dtype=dtype)
    return X, Y, p


def make_epochs_compiled(X, Y, params, epochs: int, lr=LR):
    """``epochs`` epochs per call through _compiled.epoch_runner, the trainer's own path
    (for small m the serial whole-training kernel: many epochs per kernel call)."""
    mod = _compiled
    p = copy_params(params)
    run_k = mod.epoch_runner(p, X, Y, ACT, LOSS, lr)
    losses = np.zeros(epochs)

    def run():
        done, status = run_k(epochs, losses)
        if done != epochs or status != 0:
            raise RuntimeError(f"epoch_runner stopped at {done} with status {status}")
        return float(losses[0])

    return run


def make_matmul(dtype, n: int = 2048):
    """NumPy's n x n matmul: the machine's practical GEMM peak (2 n^3 flops)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    return lambda: A @ B


def make_accuracy_public(X, Y, params):
    """fusedmlp.accuracy: validation (one scan of X and Y) and the fused count."""
    return lambda: fusedmlp.accuracy(params, X, Y, activation=ACT)


def make_accuracy_kernel(X, Y, params):
    """_compiled.accuracy: the fused forward-and-count kernel alone."""
    mod = _compiled
    return lambda: mod.accuracy(params, X, Y, ACT)[0]


def make_accuracy_numpy_style(X, Y, params):
    """What accuracy did before: the forward kernel's A2, then NumPy's comparisons."""
    mod = _compiled
    return lambda: float(np.mean((mod.predict_proba(params, X, ACT) > 0.5) == (Y > 0.5)))


def make_yardstick(X, params):
    return lambda: _compiled.sigmoid_yardstick(params, X)


# ---------------------------------------------------------------------------
# memory probe: peak RSS of one epoch beyond the data, in a fresh process


def memory_probe(backend: str, m: int, dtype: str = "float64", warm_m: int = 0) -> dict:
    """Peak RSS growth of the first epoch at size m, beyond the data already in memory.

    Compiles first on warm_m samples (0: twice the driver's SERIAL_MAX_M, so the warm-up
    takes the parallel path, as m does), then builds the m-sample data and measures the
    first full-size epoch, so a buffer of size m that the epoch allocated once (and kept)
    would count too. warm_m must be well below m: memory freed by a larger warm-up would
    be reused unseen. Run it in a fresh process.
    """
    if not warm_m:
        try:
            from fusedmlp.kernels import SERIAL_MAX_M
        except ImportError:
            SERIAL_MAX_M = 16384
        warm_m = 2 * SERIAL_MAX_M
    dt = DTYPES[dtype]
    make = EPOCH_MAKERS[backend]
    make(*make_data(warm_m, dt), make_params(dt))()  # compile / warm the thread pool
    X, Y = make_data(m, dt)
    run = make(X, Y, make_params(dt))
    import gc

    gc.collect()
    exact = outofcore.reset_peak()
    rss = outofcore.memory_status()["VmRSS"]
    t = time.perf_counter()
    run()
    seconds = time.perf_counter() - t
    peak = outofcore.memory_status()["VmHWM"]
    data = X.nbytes + Y.nbytes
    return {
        "backend": backend,
        "m": m,
        "dtype": dtype,
        "data_bytes": data,
        "rss_before_bytes": rss,
        "peak_bytes": peak,
        "growth_bytes": peak - rss,
        "growth_over_data": (peak - rss) / data,
        "epoch_s": seconds,
        "peak_reset": exact,  # False: the peak includes everything before the epoch
    }


# t0 is taken before anything is imported, so the start-up probe's times include the
# imports of numpy, numba and fusedmlp (not the interpreter's own start).
_PROLOGUE = (
    "import time; t0 = time.perf_counter(); import sys; sys.path.insert(0, {here!r}); "
    "import workloads; workloads._main(sys.argv[1:], t0)"
)


def _run_json(args: list[str], env: dict | None = None, timeout: float = 600) -> dict:
    """Run a probe in a fresh interpreter; return the JSON of its last stdout line."""
    # faulthandler: a crash in compiled code still prints where Python was
    cmd = [sys.executable, "-X", "faulthandler", "-c", _PROLOGUE.format(here=HERE), *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_memory_probe(backend: str, m: int, dtype: str = "float64", warm_m: int = 0):
    """memory_probe in a fresh process."""
    return _run_json(["memory", backend, str(m), dtype, str(warm_m)])


# ---------------------------------------------------------------------------
# start-up probe: import and first-call times, cold or warm numba cache


def startup_probe(t0: float, planar_epochs: int = EPOCHS, big_m: int = 100_000) -> dict:
    """Seconds from t0 (taken before any import) to each first call of the compiled path.

    Per dtype: the first 1-epoch train_epochs on the planar data (m=400, the serial
    whole-training kernel), then on big_m samples (the parallel kernel), then the first
    predict_proba. With an empty NUMBA_CACHE_DIR these are compile times; with a filled
    one, cache loads. ``import_to_planar_trained_s`` is what a user waits for the classic
    3000-epoch run in a new process.
    """
    out = {}

    def lap(key, since):
        now = time.perf_counter()
        out[key] = now - since
        return now

    from fusedmlp import _compiled

    t = lap("import_s", t0)
    for dtype, dt in DTYPES.items():
        X, Y = make_data(PLANAR_M, dt)
        p = make_params(dt)
        _compiled.train_epochs(p, X, Y, ACT, LOSS, LR, 1, np.zeros(1))
        t = lap(f"{dtype}_first_epoch_serial_s", t)
        if dtype == "float64":
            out["import_to_first_epoch_s"] = t - t0
            _compiled.train_epochs(p, X, Y, ACT, LOSS, LR, planar_epochs, np.zeros(planar_epochs))
            t = lap("planar_train_s", t)
            out["import_to_planar_trained_s"] = t - t0
        Xb, Yb = make_data(big_m, dt)
        _compiled.train_epochs(make_params(dt), Xb, Yb, ACT, LOSS, LR, 1, np.zeros(1))
        t = lap(f"{dtype}_first_epoch_parallel_s", t)
        _compiled.predict_proba(p, Xb, ACT)
        t = lap(f"{dtype}_first_predict_s", t)
    out["total_s"] = t - t0
    import numba

    out["numba_cache_dir"] = numba.config.CACHE_DIR
    return out


def run_startup_probe(
    cache_dir: str | None, planar_epochs: int = EPOCHS, big_m: int = 100_000
) -> dict:
    """startup_probe in a fresh process with NUMBA_CACHE_DIR=cache_dir (None: as is)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return _run_json(["startup", str(planar_epochs), str(big_m)], env=env)


def _main(argv: list[str], t0: float) -> None:
    kind, *args = argv
    if kind == "memory":
        backend, m, dtype, warm_m = args
        res = memory_probe(backend, int(m), dtype, int(warm_m))
    elif kind == "startup":
        res = startup_probe(t0, int(args[0]), int(args[1]))
    else:
        raise SystemExit(f"unknown probe {kind!r}: expected memory or startup")
    print(json.dumps(res))
