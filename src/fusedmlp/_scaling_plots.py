"""The plots of the scaling experiment: log-log time and memory against m.

``fusedmlp.scaling`` draws them after its sweep, from the rows it recorded;
``plot_time`` and ``plot_memory`` are public there. Each is a Figure on an Agg canvas (no
pyplot), titled with the machine, with the legend outside the axes, written as a PNG of
900 x 500 pixels.
"""

from __future__ import annotations

import statistics

from ._scaling_point import BACKENDS, DTYPES, MiB, data_bytes

FIGSIZE, DPI = (9.0, 5.0), 100
_COLORS = {"numba": "C0", "numpy": "C1"}
_STYLES = {"float64": ("o", "-"), "float32": ("s", "--")}  # marker, line of the points
_REF_STYLES = {"float64": "--", "float32": ":"}  # line of the grey reference


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
