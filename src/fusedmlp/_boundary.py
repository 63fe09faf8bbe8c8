"""The decision-boundary panel behind ``fusedmlp.plots``: probability field and samples.

``_draw_boundary`` draws one network's P(y = 1 | x) over a grid covering the data, the
P = 0.5 contour and the samples by class, into an axes; ``decision_boundary`` and each
panel of ``sweep_grid`` use it on inputs they have validated. The colours and markers
are chosen here: a light field so the dark class markers show in either region, and a
shape as well as a colour per class.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.lines import Line2D

from ._validation import check_params
from .api import _accuracy, predict_proba

# The field uses the middle of RdBu_r (blue = class 0, red = class 1) so it stays light
# enough for the darker class markers drawn on top to show in either region.
FIELD_CMAP = LinearSegmentedColormap.from_list(
    "fusedmlp_field",
    [
        (0.0, "#4393c3"),
        (0.25, "#a6cde3"),
        (0.5, "#f7f7f7"),
        (0.75, "#f4a98a"),
        (1.0, "#d6604d"),
    ],
)
CLASS_COLORS = ("#08306b", "#67000d")  # class 0, class 1: the dark ends of the same hues
CLASS_MARKERS = ("o", "^")  # shape as well as colour, for readers who can't tell them apart
MAX_POINTS = 5000  # beyond this a scatter is a smear and slow to draw


def _check_plane_model(params: object) -> dict:
    """Validated params of a network with 2 inputs and 1 output, the only ones we can draw."""
    p = check_params(params)
    n_h, n_x = p["W1"].shape
    n_y = p["W2"].shape[0]
    if n_x != 2:
        raise ValueError(
            f"a decision boundary can only be drawn for n_x = 2 inputs (points in the plane), "
            f"but W1 is {p['W1'].shape}, i.e. n_x = {n_x}; reduce the data to 2 features "
            "(e.g. two columns or a PCA projection) and train on those."
        )
    if n_y != 1:
        raise ValueError(
            f"a decision boundary can only be drawn for n_y = 1 output (binary labels 0/1), "
            f"but W2 is {p['W2'].shape}, i.e. n_y = {n_y}; plot one output at a time by "
            "keeping one row of W2 and b2."
        )
    return p


def _subsample(m: int, k: int) -> np.ndarray:
    """Sorted indices of min(m, k) samples, the same ones on every call."""
    if m <= k:
        return np.arange(m)
    return np.sort(np.random.default_rng(0).choice(m, size=k, replace=False))


def _grid_limits(x: np.ndarray) -> tuple[float, float]:
    lo, hi = float(x.min()), float(x.max())
    pad = max(0.05 * (hi - lo), 0.5)
    return lo - pad, hi + pad


def _field(p, X, activation, resolution):
    """The grid over the data and P(y = 1) on it: (extent, GX, GY, P), P (res, res)."""
    (x_lo, x_hi), (y_lo, y_hi) = _grid_limits(X[0]), _grid_limits(X[1])
    gx = np.linspace(x_lo, x_hi, resolution)
    gy = np.linspace(y_lo, y_hi, resolution)
    GX, GY = np.meshgrid(gx, gy)  # row i is gy[i], column j is gx[j]
    grid = np.vstack([GX.ravel(), GY.ravel()])
    P = predict_proba(p, grid, activation=activation).reshape(resolution, resolution)
    return (x_lo, x_hi, y_lo, y_hi), GX, GY, P


def _draw_field(ax, extent, GX, GY, P):
    """The probability field as an image, with the boundary P = 0.5 on top; the image."""
    image = ax.imshow(
        P,
        origin="lower",
        extent=extent,
        cmap=FIELD_CMAP,
        norm=Normalize(vmin=0.0, vmax=1.0),
        interpolation="bilinear",
        aspect="auto",
    )
    if P.min() < 0.5 < P.max():  # contour() warns when the level is never crossed
        # above the samples: with thousands of them the boundary would vanish underneath
        ax.contour(GX, GY, P, levels=[0.5], colors="k", linewidths=1.5, zorder=4)
    return image


def _scatter_classes(ax, X, Y, max_points):
    """The samples by label, at most max_points of them; True when they are dense."""
    keep = _subsample(X.shape[1], max_points)
    Xs, labels = X[:, keep], Y[0, keep] > 0.5
    dense = len(keep) > 1000
    # white rims separate sparse markers from the field; dense ones would merge into white
    size, rim = (7, 0.0) if dense else (22, 0.5)
    for c in (0, 1):
        pts = Xs[:, labels == bool(c)]
        ax.scatter(
            pts[0],
            pts[1],
            s=size,
            c=CLASS_COLORS[c],
            marker=CLASS_MARKERS[c],
            edgecolors="white",
            linewidths=rim,
            label=f"class {c}",
            zorder=3,
        )
    return dense


def _draw_boundary(ax, p, X, Y, activation, title, resolution, max_points, colorbar, legend):
    """decision_boundary's drawing, on inputs it has validated (X, Y read once)."""
    extent, GX, GY, P = _field(p, X, activation, resolution)
    image = _draw_field(ax, extent, GX, GY, P)
    dense = _scatter_classes(ax, X, Y, max_points)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    if title is None:
        acc = _accuracy(p, X, Y, activation)
        n_h = p["W1"].shape[0]
        title = f"2-{n_h}-1 network, {activation}: accuracy {100 * acc:.1f}%"
    ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="P(y = 1)", ticks=[0, 0.25, 0.5, 0.75, 1])
    if legend:
        # below the axes, so it never hides a sample
        ax.legend(
            handles=_legend_handles(ax),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncol=3,
            frameon=False,
            markerscale=2.0 if dense else 1.3,
        )


def _legend_handles(ax: Axes) -> list:
    handles, _ = ax.get_legend_handles_labels()
    return [*handles, Line2D([], [], color="k", lw=1.5, label="P = 0.5")]
