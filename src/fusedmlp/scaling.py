"""The scaling experiment: time and memory of one epoch against the number of samples m.

``run_scaling`` (and the command ``fusedmlp scale``) sweeps m over the powers of ten from
``min_m`` to ``max_m`` for each backend and dtype asked for. Each point runs in a fresh
Python process, so its peak memory is its own: ``fusedmlp._scaling_point`` measures it
(``measure_point``) and says what each column means (seconds per epoch, samples per
second, peak RSS, data size, one streaming read of the data). The parent predicts each
point's memory first (``predict_bytes``) and skips, with the reason printed and recorded,
a point whose prediction exceeds the memory budget (default 60% of RAM): the NumPy
reference needs about 9 times the data. ``max_m`` whose numba point would not fit is
refused before anything runs.

After the sweep, thread scaling: the numba point at the largest m that ran (float64 if it
ran, else float32) is run again with 1 thread and with all of numba's threads
(``NUMBA_NUM_THREADS`` in the child), recorded as rows of ``experiment = "threads"``.

Outputs in ``out_dir``: ``scaling.csv`` (one row per point, written and flushed as each
finishes, so an interrupted sweep keeps every finished point; skipped and failed points
are rows too, with ``status`` and ``note``), ``scaling.json`` (rows, thread scaling, the
machine and the settings), ``scaling_time.png`` and ``scaling_memory.png`` (log-log
against m, drawn by ``fusedmlp._scaling_plots``), and a table on screen as points
finish. Memory is reported in MiB/GiB (powers of 1024).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil

from ._scaling_plots import plot_memory, plot_time
from ._scaling_point import (
    _HEADER,
    BACKENDS,
    BASE_BYTES,
    CSV_FIELDS,
    DTYPES,
    GEN_BYTES_PER_SAMPLE,
    INIT_SEED,
    LR,
    MIN_REPEAT_S,
    N_X,
    N_Y,
    NUMPY_TEMP_FACTOR,
    GiB,
    MiB,
    _launch_point,
    _line,
    _row,
    data_bytes,
    machine_info,
    measure_point,
    predict_bytes,
    total_ram,
)
from ._validation import check_activation, check_count, check_loss

__all__ = ["parse_bytes", "run_scaling"]
# re-exported: the first three live in _scaling_point, the plots in _scaling_plots
__all__ += ["machine_info", "measure_point", "predict_bytes", "plot_memory", "plot_time"]

OUTPUT_BYTES = 16 * MiB  # what the outputs need on disk, with room to spare

# ---------------------------------------------------------------------------
# parsing, sizes


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
# the sweep


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
    spec0 = dict(epochs=epochs, warmup=warmup, hidden=hidden, activation=activation, loss=loss)
    settings = _settings(spec0, min_m, max_m, backends, dtypes, budget)
    all_threads = numba.config.NUMBA_NUM_THREADS
    csv_path = os.path.join(out_dir, "scaling.csv")
    say(
        f"scaling sweep: m = {grid[0]} .. {grid[-1]}, {', '.join(backends)} x "
        f"{', '.join(dtypes)}, memory budget {_gib(budget)} of {_gib(ram)} RAM, "
        f"{machine['cpu_model']}, {all_threads} threads"
    )
    say(_HEADER)
    sweep = (grid, backends, dtypes, spec0, budget)
    rows, scaling, interrupted = _run_points(
        csv_path, sweep, machine, threads_scaling, all_threads, say
    )
    _write_results(out_dir, rows, interrupted, settings, machine, scaling)
    say(f"wrote {csv_path}, scaling.json and the plots scaling_time.png, scaling_memory.png")
    return rows, interrupted


def _settings(spec0: dict, min_m, max_m, backends, dtypes, budget) -> dict:
    """The settings of a sweep, as scaling.json records them."""
    hidden = spec0["hidden"]
    return {
        "min_m": min_m,
        "max_m": max_m,
        "backends": list(backends),
        "dtypes": list(dtypes),
        "epochs": spec0["epochs"],
        "warmup": spec0["warmup"],
        "memory_budget_bytes": budget,
        "network": f"{N_X}-{hidden}-{N_Y}",
        "activation": spec0["activation"],
        "loss": spec0["loss"],
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


def _run_points(csv_path, sweep, machine, threads_scaling, all_threads, say):
    """Run the sweep's points, then the thread scaling; (rows, its summary, interrupted).

    ``sweep`` is (grid, backends, dtypes, spec0, budget). Each row is written to csv_path
    and flushed as it finishes; a Ctrl-C stops the sweep with the finished rows kept.
    ``machine["numba_threading_layer"]`` is filled in from the points that report one.
    """
    grid, backends, dtypes, spec0, budget = sweep
    rows, scaling, interrupted = [], None, False
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
    return rows, scaling, interrupted


def _write_results(out_dir, rows, interrupted, settings, machine, scaling) -> None:
    """scaling.json, and the two plots when a point ran."""
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
# the command line: fusedmlp scale
