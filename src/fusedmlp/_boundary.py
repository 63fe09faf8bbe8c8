"""The decision-boundary panel behind ``fusedmlp.plots``: probability field and samples.

``_draw_boundary`` draws one network's P(y = 1 | x) over a grid covering the data, the
P = 0.5 contour and the samples by class, into an axes; ``decision_boundary`` and each
panel of ``sweep_grid`` use it on inputs they have validated. ``_draw_classes`` does the
same for a softmax network with K outputs: the predicted class over the grid, the lines
between the classes' regions and the samples by true class. The colours and markers
are chosen here: a light field so the darker class markers show in every region, and a
shape as well as a colour per class.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, ListedColormap, Normalize
from matplotlib.lines import Line2D

from . import reference
from ._validation import _choice, check_params
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

OUTPUTS = ("sigmoid", "softmax")  # the output layers decision_boundary can draw
# Softmax classes take tab10's colours in turn: class k has colour k mod 10 and marker
# k mod 7, so no two of the first 70 classes look alike. From 11 classes on, region
# shades repeat (class 10's is class 0's); the boundary lines still separate them.
SOFTMAX_COLORS = tuple(colormaps["tab10"].colors)
SOFTMAX_MARKERS = ("o", "^", "s", "D", "v", "P", "X")
REGION_TINT = 0.35  # a class's region: its colour, 35% of the way from white
_SLICE_VALUES = 1 << 22  # hidden values per forward slice (32 MiB of float64)


def check_output(output: object) -> str:
    return _choice("output", output, OUTPUTS)


def _check_plane_model(params: object, output: str = "sigmoid") -> dict:
    """Validated params of a network with 2 inputs and 1 output (K >= 2 for softmax)."""
    p = check_params(params)
    n_h, n_x = p["W1"].shape
    n_y = p["W2"].shape[0]
    if n_x != 2:
        raise ValueError(
            f"a decision boundary can only be drawn for n_x = 2 inputs (points in the plane), "
            f"but W1 is {p['W1'].shape}, i.e. n_x = {n_x}; reduce the data to 2 features "
            "(e.g. two columns or a PCA projection) and train on those."
        )
    if output == "softmax" and n_y < 2:
        raise ValueError(
            f"a softmax decision boundary needs n_y >= 2 outputs, one per class, but W2 "
            f"is {p['W2'].shape}, i.e. n_y = {n_y}; for a single sigmoid output pass "
            "output='sigmoid'."
        )
    if output == "sigmoid" and n_y != 1:
        raise ValueError(
            f"a decision boundary can only be drawn for n_y = 1 output (binary labels 0/1), "
            f"but W2 is {p['W2'].shape}, i.e. n_y = {n_y}; plot one output at a time by "
            "keeping one row of W2 and b2, or pass output='softmax' for a softmax network."
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


def _grid(X, resolution):
    """A grid covering the data: (extent, GX, GY, points (2, res * res))."""
    (x_lo, x_hi), (y_lo, y_hi) = _grid_limits(X[0]), _grid_limits(X[1])
    gx = np.linspace(x_lo, x_hi, resolution)
    gy = np.linspace(y_lo, y_hi, resolution)
    GX, GY = np.meshgrid(gx, gy)  # row i is gy[i], column j is gx[j]
    return (x_lo, x_hi, y_lo, y_hi), GX, GY, np.vstack([GX.ravel(), GY.ravel()])


def _field(p, X, activation, resolution):
    """The grid over the data and P(y = 1) on it: (extent, GX, GY, P), P (res, res)."""
    extent, GX, GY, grid = _grid(X, resolution)
    P = predict_proba(p, grid, activation=activation).reshape(resolution, resolution)
    return extent, GX, GY, P


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


def _scatter_classes(ax, X, labels, colors, markers, max_points):
    """The samples by class index (labels (m,)), class c in colors[c] and markers[c], at
    most max_points of them; True when they are dense."""
    keep = _subsample(X.shape[1], max_points)
    Xs, labels = X[:, keep], labels[keep]
    dense = len(keep) > 1000
    # white rims separate sparse markers from the field; dense ones would merge into white
    size, rim = (7, 0.0) if dense else (22, 0.5)
    for c in range(len(colors)):
        pts = Xs[:, labels == c]
        ax.scatter(
            pts[0],
            pts[1],
            s=size,
            c=[colors[c]],
            marker=markers[c],
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
    labels = Y[0] > 0.5  # False, True compare equal to classes 0, 1
    dense = _scatter_classes(ax, X, labels, CLASS_COLORS, CLASS_MARKERS, max_points)
    _frame(ax, extent)
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


def _frame(ax, extent):
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")


def _legend_handles(ax: Axes, line: str = "P = 0.5") -> list:
    handles, _ = ax.get_legend_handles_labels()
    return [*handles, Line2D([], [], color="k", lw=1.5, label=line)]


# --------------------------------------------------------------------------- #
# softmax: K classes
# --------------------------------------------------------------------------- #
def class_colors(K: int) -> tuple[np.ndarray, np.ndarray]:
    """(sample colours, region colours) of K softmax classes, each (K, 3) RGB."""
    dark = np.array(SOFTMAX_COLORS)[np.arange(K) % len(SOFTMAX_COLORS)]
    return dark, 1 - REGION_TINT * (1 - dark)


def _true_classes(Y: np.ndarray, K: int) -> np.ndarray:
    """The class index (m,) of every sample of a checked Y: labels (1, m) or one-hot (K, m)."""
    if Y.shape[0] == 1:
        y = Y[0]
        bad = np.flatnonzero((y != np.floor(y)) | (y < 0) | (y > K - 1))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"Y holds class labels, which for a network with {K} outputs must be whole "
                f"numbers 0 to {K - 1}, but Y[{i}] = {y[i]:g}; pass integer labels in that "
                f"range, or Y one-hot with shape ({K}, m)."
            )
        return y.astype(np.int64)
    if Y.shape[0] != K:
        raise ValueError(
            f"Y has {Y.shape[0]} rows but the network has {K} outputs (W2 is {K} rows, one "
            f"per class); pass Y one-hot with shape ({K}, m), or the class labels as a "
            "vector of shape (m,)."
        )
    lo, hi = float(Y.min()), float(Y.max())
    if lo < 0 or hi > 1:
        raise ValueError(
            f"Y with {K} rows is read as one-hot (K, m), whose entries lie in [0, 1], but "
            f"it holds values from {lo:g} to {hi:g}; pass class labels as a vector (m,)."
        )
    return Y.argmax(axis=0)


def _softmax_forward(p, X, activation, scores=False):
    """(predicted class of each column of X (m,), Z2 (K, m) or None) by the reference
    network, a slice of columns at a time so no (n_h, m) hidden layer is ever made."""
    K, n_h = p["W2"].shape
    m = X.shape[1]
    step = max(1, _SLICE_VALUES // n_h)
    classes = np.empty(m, dtype=np.int64)
    Z2 = np.empty((K, m)) if scores else None
    for start in range(0, m, step):
        cols = slice(start, start + step)
        cache = reference.forward(p, X[:, cols], activation, output="softmax")
        classes[cols] = cache["A2"].argmax(axis=0)
        if scores:
            Z2[:, cols] = cache["Z2"]
    return classes, Z2


def _margins(Z2: np.ndarray) -> np.ndarray:
    """Z2_k - max_{j != k} Z2_j for every class k, (K, n): > 0 inside k's region, 0 on its
    edge. Smooth in x, so contour() puts the edge between grid points, not on a staircase."""
    top2 = np.partition(Z2, Z2.shape[0] - 2, axis=0)[-2:]  # runner-up, winner
    # the winner's best rival is the runner-up, everyone else's the winner (a tie gives 0)
    return Z2 - np.where(Z2 >= top2[1], top2[0], top2[1])


def _class_field(ax, p, X, activation, resolution):
    """The predicted class over the grid as an image, the region edges on top; (image,
    extent)."""
    K = p["W2"].shape[0]
    extent, GX, GY, grid = _grid(X, resolution)
    C, Z2 = _softmax_forward(p, grid, activation, scores=True)
    _, light = class_colors(K)
    image = ax.imshow(
        C.reshape(resolution, resolution),
        origin="lower",
        extent=extent,
        cmap=ListedColormap(light),
        norm=BoundaryNorm(np.arange(K + 1) - 0.5, K),  # class k -> colour k
        interpolation="nearest",  # blending class 0 and 2 would paint class 1
        aspect="auto",
    )
    for d in _margins(Z2):
        d = d.reshape(resolution, resolution)
        if d.min() < 0 < d.max():  # a region that exists and is not everything
            # each edge is drawn from both sides, on the same place
            ax.contour(GX, GY, d, levels=[0.0], colors="k", linewidths=1.2, zorder=4)
    return image, extent


def _draw_classes(ax, p, X, labels, activation, title, resolution, max_points, colorbar, legend):
    """decision_boundary's drawing for a softmax network, on validated inputs (labels (m,))."""
    K, n_h = p["W2"].shape
    image, extent = _class_field(ax, p, X, activation, resolution)
    markers = [SOFTMAX_MARKERS[k % len(SOFTMAX_MARKERS)] for k in range(K)]
    dense = _scatter_classes(ax, X, labels, class_colors(K)[0], markers, max_points)
    _frame(ax, extent)
    if title is None:
        acc = float(np.mean(_softmax_forward(p, X, activation)[0] == labels))
        title = f"2-{n_h}-{K} network, {activation} + softmax: accuracy {100 * acc:.1f}%"
    ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="predicted class", ticks=np.arange(K))
    if legend:
        ax.legend(
            handles=_legend_handles(ax, "boundary"),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncol=min(K + 1, 4),
            frameon=False,
            markerscale=2.0 if dense else 1.3,
        )
