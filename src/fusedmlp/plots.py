"""Pictures of a trained network: decision boundaries, loss curves, hidden-size sweeps.

Everything uses matplotlib's object-oriented API (``Figure`` with an Agg canvas), never
``pyplot``: no display is needed, no backend is switched and no global state changes, so
these functions are safe in scripts, tests and servers. Each returns the ``Figure``; pass
``path`` to also write it as a PNG of exactly ``figsize * dpi`` pixels.

Shapes follow the rest of fusedmlp: X is (n_x, m) and Y is (n_y, m), one sample per
column; a picture of a decision boundary needs n_x = 2 (the plane) and either n_y = 1
(a sigmoid output) or n_y = K >= 2 (a softmax over K classes, ``output="softmax"``).
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from ._atomic import write_atomically
from ._boundary import CLASS_COLORS as CLASS_COLORS
from ._boundary import CLASS_MARKERS as CLASS_MARKERS
from ._boundary import FIELD_CMAP as FIELD_CMAP
from ._boundary import (
    MAX_POINTS,
    _check_plane_model,
    _draw_boundary,
    _draw_classes,
    _legend_handles,
    _true_classes,
    check_output,
)
from ._validation import check_activation, check_count, check_params, check_XY, params_in
from .api import _accuracy
from .trainer import TrainResult

__all__ = ["decision_boundary", "loss_curve", "save_png", "sweep_grid"]

FIGSIZE = (6.4, 4.8)
DPI = 100

PathLike = str | os.PathLike


def _new_figure(figsize: tuple[float, float], dpi: float) -> Figure:
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def save_png(fig: Figure, path: PathLike, *, dpi: float | None = None) -> pathlib.Path:
    """Write a figure to a PNG file of exactly ``figsize * dpi`` pixels.

    The whole figure is written whatever ``rcParams["savefig.bbox"]`` says (a "tight"
    setting would crop it to a size that depends on the labels), and the parent folder
    must already exist. The file is written whole or not at all (a temporary file
    renamed over ``path``, as ``fusedmlp.save`` does).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
        Where to write; the PNG format is used whatever the suffix.
    dpi : float, optional
        Dots per inch; defaults to the figure's own dpi.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile
    >>> fig = loss_curve([0.7, 0.4, 0.2])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_png(fig, pathlib.Path(d) / "loss.png")
    ...     p.read_bytes()[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    path = pathlib.Path(path)
    dpi = fig.dpi if dpi is None else float(dpi)
    # whole or not at all: a temporary file renamed over the target, as checkpoints
    write_atomically(
        path,
        lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches=fig.bbox_inches),
        what="picture",
    )
    return path


def decision_boundary(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activation: str = "sigmoid",
    path: PathLike | None = None,
    title: str | None = None,
    resolution: int = 300,
    ax: Axes | None = None,
    figsize: tuple[float, float] = FIGSIZE,
    dpi: float = DPI,
    max_points: int = MAX_POINTS,
    colorbar: bool = True,
    legend: bool = True,
    output: str = "sigmoid",
) -> Figure:
    """Draw the data over the network's probability field P(y = 1 | x) = A2, or its classes.

    The field is evaluated with ``fusedmlp.predict_proba`` (the compiled forward kernel)
    on a ``resolution x resolution`` grid covering the data plus a margin (5% of each
    axis' span, at least 0.5), drawn blue (P = 0) to red (P = 1) with the decision
    boundary P = 0.5 as a black line. Samples are drawn by label (Y > 0.5), class 0 as
    dark blue circles and class 1 as dark red triangles; above ``max_points`` samples a
    fixed random subset of that size is drawn (the accuracy still uses all of them).

    With ``output="softmax"`` the network has K >= 2 outputs, one per class, and the field
    shows the predicted class, the argmax of A2 = softmax(Z2) from the NumPy reference
    network (``fusedmlp.reference.forward``): one light colour per class (tab10's
    colours), with black lines between the regions, and the samples in their true class's
    full colour, each class with its own marker too. Class k takes tab10 colour k mod 10
    and marker k mod 7: past 10 classes the colours repeat (class 10's region has class
    0's shade, told apart by the lines between regions and by the markers), and no two
    of the first 70 classes share both colour and marker. The colour bar then maps the
    shades to the predicted class, and the accuracy is argmax(A2) against the true class.

    Parameters
    ----------
    params : dict
        Trained {"W1", "b1", "W2", "b2"} of a network with n_x = 2 and n_y = 1 (n_y = K
        >= 2 for ``output="softmax"``).
    X : array (2, m)
        Samples, one per column.
    Y : array (1, m) or (m,)
        Labels 0/1. For ``output="softmax"``: integer class labels 0..K-1, shape (m,) or
        (1, m), or one-hot (K, m), whose largest entry in a column names its class.
    activation : {"sigmoid", "tanh", "relu"}
        The hidden activation the network was trained with.
    path : str or os.PathLike, optional
        Also write the whole figure to this PNG file.
    title : str, optional
        Replaces the default title "n_x-n_h-n_y network, <activation>: accuracy N%".
    resolution : int
        Grid points per axis (>= 2).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (e.g. a panel of a larger figure) instead of a new figure;
        ``figsize`` and ``dpi`` are then ignored.
    figsize : (float, float)
        Size of a new figure in inches; the PNG is ``figsize * dpi`` pixels (640 x 480).
    dpi : float
        Dots per inch of a new figure and of the PNG.
    max_points : int
        Most samples drawn (>= 1).
    colorbar, legend : bool
        Draw the colour bar and the class legend (a grid of panels shares one of each).
    output : {"sigmoid", "softmax"}
        The network's output layer: one sigmoid output, or a softmax over K classes.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (``ax.figure`` when ``ax`` is given).

    Raises
    ------
    ValueError
        If the network does not have 2 inputs and 1 output (K >= 2 outputs for softmax),
        or X, Y do not match it.

    Examples
    --------
    >>> import fusedmlp
    >>> X, Y = fusedmlp.datasets.planar(m=40)
    >>> res = fusedmlp.train(X, Y, hidden=3, epochs=20, seed=2)
    >>> fig = decision_boundary(res.params, X, Y, activation=res.activation)
    >>> fig.axes[0].get_xlabel(), fig.axes[1].get_ylabel()
    ('x1', 'P(y = 1)')
    >>> X, y = fusedmlp.datasets.spirals(m=30)  # 3 classes, labels (m,)
    >>> p = fusedmlp.init_params(2, 5, 3, seed=0)
    >>> fig = decision_boundary(p, X, y, activation="tanh", output="softmax")
    >>> fig.axes[1].get_ylabel()
    'predicted class'
    """
    output = check_output(output)
    p = _check_plane_model(params, output)
    activation = check_activation(activation)
    resolution = check_count("resolution", resolution, minimum=2)
    max_points = check_count("max_points", max_points, minimum=1)
    X, Y = check_XY(X, Y, "mse", n_x=2)
    if output == "softmax":
        labels = _true_classes(Y, p["W2"].shape[0])
    elif Y.shape[0] != 1:
        raise ValueError(
            f"Y must have one row of 0/1 labels, shape (1, m), got shape {Y.shape}; "
            "a decision boundary is drawn for a single binary output."
        )

    if ax is None:
        fig = _new_figure(figsize, dpi)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    if output == "softmax":
        p = params_in(p, np.float64)
        _draw_classes(
            ax, p, X, labels, activation, title, resolution, max_points, colorbar, legend
        )
    else:
        _draw_boundary(ax, p, X, Y, activation, title, resolution, max_points, colorbar, legend)
    if path is not None:
        save_png(fig, path)
    return fig


class _PlainLog(LogFormatter):
    """Log-axis labels as short plain numbers: 0.25, 0.003, 1e-05."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:.3g}"


def _check_losses(losses, stop_epoch) -> tuple[np.ndarray, int | None]:
    """loss_curve's losses as a float64 vector, and its stop_epoch, validated."""
    try:
        L = np.array(losses, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"losses must be a 1-D sequence of numbers: {exc}") from exc
    if L.ndim != 1:
        raise ValueError(
            f"losses must be 1-D (one loss per epoch), got shape {L.shape}; "
            "pass np.ravel(losses) if it holds a single curve."
        )
    if L.size == 0:
        raise ValueError("losses is empty: nothing to plot; train for at least one epoch.")
    if stop_epoch is not None:
        stop_epoch = check_count("stop_epoch", stop_epoch, minimum=0)
        if stop_epoch > L.size:
            raise ValueError(
                f"stop_epoch={stop_epoch} is past the end of the curve: losses has "
                f"{L.size} epochs (0 to {L.size - 1})."
            )
    return L, stop_epoch


def _floored(L: np.ndarray) -> np.ndarray:
    """L with values <= 0 raised to a decade below its smallest positive value; NaN kept."""
    positive = L[L > 0]
    floor = positive.min() / 10 if positive.size else 1e-16
    with np.errstate(invalid="ignore"):  # NaN compares False and stays NaN
        return np.where(L > 0, L, np.where(np.isnan(L), np.nan, floor))


def loss_curve(
    losses: Sequence[float] | np.ndarray,
    *,
    path: PathLike | None = None,
    stop_epoch: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = FIGSIZE,
    dpi: float = DPI,
) -> Figure:
    """Plot the training loss against the epoch on a log scale.

    ``losses[i]`` is drawn at epoch i. A loss can be exactly 0 (a perfect fit), which a
    log axis cannot show: values <= 0 are drawn at a floor one decade below the smallest
    positive loss (1e-16 when none is positive), so the axis keeps a sensible range and
    the curve visibly bottoms out there. NaN values leave a gap.

    Parameters
    ----------
    losses : 1-D array-like of float
        One loss per epoch, e.g. ``TrainResult.losses``; at least one.
    path : str or os.PathLike, optional
        Also write the whole figure to this PNG file.
    stop_epoch : int, optional
        Draw a dashed vertical line at this epoch, labelled "early stop (epoch N)";
        between 0 and ``len(losses)``.
    title : str, optional
        Replaces the default title "training loss (final ...)".
    ax : matplotlib.axes.Axes, optional
        Draw into this axes instead of a new figure.
    figsize : (float, float)
        Size of a new figure in inches.
    dpi : float
        Dots per inch of a new figure and of the PNG.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``losses`` is empty or not 1-D, or ``stop_epoch`` is outside the curve.

    Examples
    --------
    >>> fig = loss_curve([0.69, 0.5, 0.3, 0.31], stop_epoch=2)
    >>> ax = fig.axes[0]
    >>> ax.get_yscale(), ax.get_legend().get_texts()[1].get_text()
    ('log', 'early stop (epoch 2)')
    """
    L, stop_epoch = _check_losses(losses, stop_epoch)
    L = _floored(L)
    if ax is None:
        fig = _new_figure(figsize, dpi)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    epochs = np.arange(L.size)
    ax.plot(epochs, L, color="C0", lw=1.5, marker="o" if L.size == 1 else None, label="loss")
    with np.errstate(over="ignore"):  # huge losses: matplotlib's log transform overflows
        ax.set_yscale("log")
    # plain numbers (0.25, 0.22) rather than 2.5 x 10^-1 on the narrow ranges losses span;
    # LogFormatter still decides which minor ticks get a label
    ax.yaxis.set_major_formatter(_PlainLog(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)
    if stop_epoch is not None:
        ax.axvline(
            stop_epoch, color="C3", ls="--", lw=1.2, label=f"early stop (epoch {stop_epoch})"
        )
        ax.legend(loc="upper right")
    if title is None:
        last = L[~np.isnan(L)]
        title = f"training loss (final {last[-1]:.4g})" if last.size else "training loss"
    ax.set_title(title)
    if path is not None:
        save_png(fig, path)
    return fig


def _unpack(item: object, i: int) -> tuple[dict, str]:
    """(params, activation) from a TrainResult or a (hidden_size, params, activation)."""
    if isinstance(item, TrainResult):
        return item.params, item.activation
    if isinstance(item, (tuple, list)) and len(item) == 3:
        n_h, params, activation = item
        p = check_params(params)
        if check_count("hidden_size", n_h, minimum=1) != p["W1"].shape[0]:
            raise ValueError(
                f"results[{i}] says hidden_size={n_h} but its W1 is {p['W1'].shape}, "
                f"i.e. {p['W1'].shape[0]} hidden units."
            )
        return params, activation
    raise TypeError(
        f"results[{i}] must be a TrainResult or a (hidden_size, params, activation) "
        f"tuple, got {type(item).__name__}."
    )


def sweep_grid(
    results: Sequence[TrainResult | tuple[int, dict, str]],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    path: PathLike | None = None,
    ncols: int = 3,
    resolution: int = 150,
    panel_size: tuple[float, float] = (3.2, 2.9),
    dpi: float = DPI,
) -> Figure:
    """One decision-boundary panel per trained network: the hidden-layer-size experiment.

    Panels follow the order of ``results``, ``ncols`` to a row, each titled with its
    hidden size and accuracy ("n_h = 5: 91.2%"); they share one colour bar and one
    legend, and a table under the grid lists n_h, activation and accuracy of each.

    Parameters
    ----------
    results : sequence of TrainResult or (hidden_size, params, activation)
        The networks to compare, all with 2 inputs and 1 output, trained on X, Y.
    X : array (2, m)
    Y : array (1, m) or (m,)
    path : str or os.PathLike, optional
        Also write the whole figure to this PNG file.
    ncols : int
        Panels per row (>= 1).
    resolution : int
        Grid points per axis in each panel.
    panel_size : (float, float)
        Inches per panel; the figure adds room for the table.
    dpi : float
        Dots per inch of the figure and of the PNG.

    Returns
    -------
    matplotlib.figure.Figure
        The panels are the axes that hold an image, in the order of ``results``.

    Examples
    --------
    >>> import fusedmlp
    >>> X, Y = fusedmlp.datasets.planar(m=40)
    >>> runs = [fusedmlp.train(X, Y, hidden=h, epochs=20, seed=2) for h in (1, 2)]
    >>> fig = sweep_grid(runs, X, Y)
    >>> [ax.get_title()[:7] for ax in fig.axes if ax.images]
    ['n_h = 1', 'n_h = 2']
    """
    if isinstance(results, TrainResult) or not isinstance(results, Sequence):
        raise TypeError(
            "results must be a list of TrainResult or (hidden_size, params, activation) "
            f"tuples, got {type(results).__name__}; wrap a single result as [result]."
        )
    if len(results) == 0:
        raise ValueError("results is empty: pass at least one trained network.")
    ncols = min(check_count("ncols", ncols, minimum=1), len(results))
    nrows = math.ceil(len(results) / ncols)
    models = [_unpack(item, i) for i, item in enumerate(results)]
    X, Y = check_XY(X, Y, "mse", n_x=2)

    table_h = 0.35 + 0.22 * 3  # header and three rows, in inches
    fig = _new_figure((panel_size[0] * ncols + 1.0, panel_size[1] * nrows + table_h), dpi)
    outer = fig.add_gridspec(2, 1, height_ratios=[panel_size[1] * nrows, table_h])
    cells = outer[0].subgridspec(nrows, ncols)
    panels, rows = _sweep_panels(fig, cells, ncols, models, X, Y, resolution)
    fig.colorbar(panels[0].images[0], ax=panels, label="P(y = 1)", shrink=0.9)
    fig.legend(
        handles=_legend_handles(panels[0]), loc="outside upper center", ncol=3, markerscale=1.3
    )
    _sweep_table(fig.add_subplot(outer[1]), rows)
    if path is not None:
        save_png(fig, path)
    return fig


def _sweep_panels(fig, cells, ncols, models, X, Y, resolution) -> tuple[list, list]:
    """sweep_grid's panels, one per (params, activation), and its table's rows."""
    panels, rows = [], []
    for i, (params, activation) in enumerate(models):
        ax = fig.add_subplot(cells[i // ncols, i % ncols])
        p = _check_plane_model(params)
        n_h = p["W1"].shape[0]
        acc = _accuracy(p, X, Y, activation)
        title = f"n_h = {n_h}: {100 * acc:.1f}%"
        # X, Y were checked once above: draw without scanning them again per panel
        _draw_boundary(ax, p, X, Y, activation, title, resolution, MAX_POINTS, False, False)
        ax.title.set_fontsize("medium")
        if i % ncols:
            ax.set_ylabel("")
        if i + ncols < len(models):
            ax.set_xlabel("")
        panels.append(ax)
        rows.append((str(n_h), activation, f"{100 * acc:.1f}%"))
    return panels, rows


def _sweep_table(tab_ax: Axes, rows: list) -> None:
    """The table under sweep_grid's panels: n_h, activation and accuracy of each."""
    tab_ax.set_axis_off()
    table = tab_ax.table(
        cellText=[list(col) for col in zip(*rows, strict=True)],
        rowLabels=["n_h", "activation", "accuracy"],
        cellLoc="center",
        bbox=(0.14, 0.05, 0.78, 0.9),  # leaves room on the left for the row labels
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
