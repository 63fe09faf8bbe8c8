"""The pictures show what the model computes: right pixels, right sizes, right errors."""

import struct
import subprocess
import sys

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.table import Table

import fusedmlp
from fusedmlp import plots, reference

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk, which the PNG format puts first."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def planar_model():
    X, Y = fusedmlp.datasets.planar()
    res = fusedmlp.train(
        X, Y, hidden=4, activation="tanh", loss="cross_entropy", lr=1.2, epochs=500, seed=2
    )
    acc = fusedmlp.accuracy(res.params, X, Y, activation="tanh")
    assert acc > 0.8  # otherwise the two class regions below may not exist
    return X, Y, res, acc


# --------------------------------------------------------------------------- #
# decision_boundary
# --------------------------------------------------------------------------- #
def field_pixels(ax, X, p, height):
    """Grid points well inside ax and far from every sample: P, pixel rows, pixel columns.

    P comes from the NumPy reference, not the compiled kernel the plot used.
    """
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    gx = np.linspace(x0 + 0.05 * (x1 - x0), x1 - 0.05 * (x1 - x0), 80)
    gy = np.linspace(y0 + 0.05 * (y1 - y0), y1 - 0.05 * (y1 - y0), 80)
    G = np.array(np.meshgrid(gx, gy)).reshape(2, -1)
    P = reference.predict_proba(p, G, "tanh")[0]
    pix = ax.transData.transform(G.T)
    data_pix = ax.transData.transform(X.T)
    gap = np.min(np.linalg.norm(pix[:, None, :] - data_pix[None, :, :], axis=2), axis=1)
    ok = gap > 12  # markers are a few pixels across
    assert ok.sum() > 500
    rows = np.round(height - pix[ok, 1]).astype(int)  # PNG rows count from the top
    return P[ok], rows, np.round(pix[ok, 0]).astype(int)


def rgb_at(img, row, col):
    return img[row - 1 : row + 2, col - 1 : col + 2, :3].mean(axis=(0, 1))


def test_decision_boundary_pixels_follow_the_model(planar_model, tmp_path):
    X, Y, res, _ = planar_model
    path = tmp_path / "boundary.png"
    fig = plots.decision_boundary(res.params, X, Y, activation="tanh", path=path)
    assert png_size(path) == (640, 480)
    img = mpimg.imread(path)
    assert img.shape == (480, 640, 4)

    ax = fig.axes[0]  # savefig laid the figure out at the same dpi, so transData is final
    cmap = ax.images[0].cmap
    P, rows, cols = field_pixels(ax, X, res.params, img.shape[0])
    hi, lo = np.argmax(P), np.argmin(P)
    assert P[hi] > 0.9 and P[lo] < 0.1
    rgb_hi, rgb_lo = rgb_at(img, rows[hi], cols[hi]), rgb_at(img, rows[lo], cols[lo])
    assert np.abs(rgb_hi - rgb_lo).sum() > 0.5
    end0, end1 = np.array(cmap(0.0)[:3]), np.array(cmap(1.0)[:3])
    assert np.linalg.norm(rgb_hi - end1) < np.linalg.norm(rgb_hi - end0)
    assert np.linalg.norm(rgb_lo - end0) < np.linalg.norm(rgb_lo - end1)

    # everywhere off the samples and the black P = 0.5 line, a pixel has the colour of
    # its own probability: the field is neither shifted, stretched nor flipped
    off_line = np.abs(P - 0.5) > 0.15
    assert off_line.sum() > 500 and (P[off_line] < 0.5).any() and (P[off_line] > 0.5).any()
    err = [
        np.abs(rgb_at(img, r, c) - np.array(cmap(q)[:3])).max()
        for q, r, c in zip(P[off_line], rows[off_line], cols[off_line], strict=True)
    ]
    assert np.median(err) < 0.01 and np.percentile(err, 90) < 0.03


def test_decision_boundary_contents(planar_model):
    X, Y, res, acc = planar_model
    fig = plots.decision_boundary(res.params, X, Y, activation="tanh")
    ax, cbar_ax = fig.axes
    assert isinstance(fig, Figure)
    assert ax.get_xlabel() == "x1" and ax.get_ylabel() == "x2"
    assert cbar_ax.get_ylabel() == "P(y = 1)"
    title = ax.get_title()
    assert "2-4-1" in title and "tanh" in title and f"{100 * acc:.1f}%" in title

    # the grid covers the data with a margin of at least 0.5 on every side
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 <= X[0].min() - 0.5 and x1 >= X[0].max() + 0.5
    assert y0 <= X[1].min() - 0.5 and y1 >= X[1].max() + 0.5

    # the drawn line is where the reference network says P = 0.5
    (cs,) = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert list(cs.levels) == [0.5]
    verts = np.concatenate([path.vertices for path in cs.get_paths()])
    assert len(verts) > 50
    P = reference.predict_proba(res.params, verts.T, "tanh")[0]
    assert np.abs(P - 0.5).max() < 0.02

    # one scatter per class, holding exactly that class's samples, in different colours
    scatters = [c for c in ax.collections if not isinstance(c, ContourSet)]
    assert len(scatters) == 2
    for c, sc in enumerate(scatters):
        np.testing.assert_array_equal(sc.get_offsets(), X[:, Y[0] == c].T)
    assert not np.allclose(scatters[0].get_facecolor(), scatters[1].get_facecolor())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["class 0", "class 1", "P = 0.5"]


def test_decision_boundary_options(planar_model, tmp_path):
    X, Y, res, _ = planar_model
    path = tmp_path / "small.png"
    fig = plots.decision_boundary(
        res.params,
        X,
        Y,
        activation="tanh",
        title="mine",
        resolution=40,
        figsize=(4, 3),
        dpi=50,
        path=path,
    )
    assert png_size(path) == (200, 150)
    assert fig.axes[0].get_title() == "mine"
    assert fig.axes[0].images[0].get_array().shape == (40, 40)

    host = Figure()
    ax = host.add_subplot()
    assert plots.decision_boundary(res.params, X, Y, activation="tanh", ax=ax) is host
    assert len(ax.images) == 1


def test_decision_boundary_subsamples_large_data():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 12_000))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    p = fusedmlp.init_params(2, 3, 1, seed=0, scale=1.0)

    def drawn(fig):
        scatters = [c for c in fig.axes[0].collections if not isinstance(c, ContourSet)]
        return np.concatenate([s.get_offsets() for s in scatters])

    first = drawn(plots.decision_boundary(p, X, Y, resolution=20))
    again = drawn(plots.decision_boundary(p, X, Y, resolution=20))
    assert len(first) == plots.MAX_POINTS
    np.testing.assert_array_equal(first, again)  # the same subset every time
    assert len(np.unique(first, axis=0)) == len(first)
    # every drawn point is a real sample
    known = {tuple(c) for c in X.T}
    assert all(tuple(pt) in known for pt in first)
    assert len(drawn(plots.decision_boundary(p, X, Y, resolution=20, max_points=100))) == 100


def test_decision_boundary_rejects_what_it_cannot_draw():
    X, Y = fusedmlp.datasets.planar(m=20)
    with pytest.raises(ValueError, match=r"n_x = 2 inputs.*n_x = 3"):
        plots.decision_boundary(fusedmlp.init_params(3, 4, 1, seed=0), np.zeros((3, 20)), Y)
    with pytest.raises(ValueError, match=r"n_y = 1 output.*n_y = 2"):
        plots.decision_boundary(fusedmlp.init_params(2, 4, 2, seed=0), X, np.vstack([Y, Y]))
    p = fusedmlp.init_params(2, 4, 1, seed=0)
    with pytest.raises(ValueError, match="n_x = 2"):
        plots.decision_boundary(p, np.zeros((3, 20)), Y)  # data with 3 features
    with pytest.raises(ValueError, match=r"one row.*\(2, 20\)"):
        plots.decision_boundary(p, X, np.vstack([Y, Y]))
    with pytest.raises(ValueError, match="resolution"):
        plots.decision_boundary(p, X, Y, resolution=1)


# --------------------------------------------------------------------------- #
# decision_boundary, output="softmax"
# --------------------------------------------------------------------------- #
TAB10 = np.array(matplotlib.colormaps["tab10"].colors)


def region_rgb(k):
    """The documented shade of class k's region: tab10 colour k mod 10, 35% from white."""
    return 1 - 0.35 * (1 - TAB10[k % 10])


def band_class(x1):
    """The class the hand-made band network predicts: 0 left of -1.5, 2 right of 1.5."""
    return np.where(x1 < -1.5, 0, np.where(x1 > 1.5, 2, 1))


@pytest.fixture(scope="module")
def band_model():
    # relu hidden units a = max(x1 - 1, 0), b = max(-x1 - 1, 0); Z2 = (b, 0.5, a), so
    # class 0 wins for x1 < -1.5, class 2 for x1 > 1.5 and class 1 in between
    p = {
        "W1": np.array([[1.0, 0.0], [-1.0, 0.0]]),
        "b1": np.array([[-1.0], [-1.0]]),
        "W2": np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]),
        "b2": np.array([[0.0], [0.5], [0.0]]),
    }
    rng = np.random.default_rng(3)
    X = rng.uniform(-3, 3, size=(2, 150))
    y = band_class(X[0])
    y[:12] = (y[:12] + 1) % 3  # some mistakes, so the accuracy is not 100%
    return p, X, y


def test_softmax_boundary_pixels_show_the_predicted_class(band_model, tmp_path):
    p, X, y = band_model
    path = tmp_path / "classes.png"
    fig = plots.decision_boundary(p, X, y, activation="relu", output="softmax", path=path)
    assert png_size(path) == (640, 480)
    img = mpimg.imread(path)
    ax = fig.axes[0]

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    G = np.array(
        np.meshgrid(np.linspace(x0 + 0.1, x1 - 0.1, 90), np.linspace(y0 + 0.1, y1 - 0.1, 90))
    ).reshape(2, -1)
    pix = ax.transData.transform(G.T)
    data_pix = ax.transData.transform(X.T)
    gap = np.min(np.linalg.norm(pix[:, None, :] - data_pix[None, :, :], axis=2), axis=1)
    ok = (gap > 12) & (np.abs(np.abs(G[0]) - 1.5) > 0.15)  # off the samples and the lines
    rows = np.round(img.shape[0] - pix[ok, 1]).astype(int)
    cols = np.round(pix[ok, 0]).astype(int)
    want = band_class(G[0, ok])
    assert all((want == k).sum() > 100 for k in range(3))
    got = np.array([rgb_at(img, r, c) for r, c in zip(rows, cols, strict=True)])
    err = np.abs(got - np.array([region_rgb(k) for k in want])).max(axis=1)
    assert np.median(err) < 0.01 and np.percentile(err, 99) < 0.03
    # and each region is nearer its own shade than the others' (the shades are distinct)
    dist = np.linalg.norm(got[:, None, :] - np.array([region_rgb(k) for k in range(3)]), axis=2)
    assert np.array_equal(dist.argmin(axis=1), want)


def test_softmax_boundary_contents(band_model):
    p, X, y = band_model
    fig = plots.decision_boundary(p, X, y, activation="relu", output="softmax")
    ax, cbar_ax = fig.axes
    assert cbar_ax.get_ylabel() == "predicted class"
    acc = np.mean(band_class(X[0]) == y)
    assert 0.85 < acc < 0.95
    assert ax.get_title() == f"2-2-3 network, relu + softmax: accuracy {100 * acc:.1f}%"

    # the lines sit where two classes tie: x1 = -1.5 and x1 = 1.5, top to bottom
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    verts = np.concatenate([path.vertices for cs in contours for path in cs.get_paths()])
    assert np.abs(np.abs(verts[:, 0]) - 1.5).max() < 1e-9
    assert (verts[:, 0] < 0).any() and (verts[:, 0] > 0).any()
    (y0, y1) = ax.get_ylim()
    assert verts[:, 1].min() - y0 < 0.05 and y1 - verts[:, 1].max() < 0.05

    # one scatter per class holding exactly its samples, in tab10's colour for it
    scatters = [c for c in ax.collections if not isinstance(c, ContourSet)]
    assert len(scatters) == 3
    for k, sc in enumerate(scatters):
        np.testing.assert_array_equal(sc.get_offsets(), X[:, y == k].T)
        np.testing.assert_allclose(sc.get_facecolor()[0, :3], TAB10[k])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["class 0", "class 1", "class 2", "boundary"]


def test_softmax_boundary_takes_one_hot_and_label_rows(band_model):
    p, X, y = band_model

    def drawn(Y):
        ax = plots.decision_boundary(p, X, Y, activation="relu", output="softmax").axes[0]
        scatters = [c for c in ax.collections if not isinstance(c, ContourSet)]
        return ax.get_title(), ax.images[0].get_array(), [s.get_offsets() for s in scatters]

    title, field, points = drawn(y)
    for Y in (np.eye(3)[:, y], y.reshape(1, -1), y.astype(np.float64), y.astype(np.uint8)):
        t, f, pts = drawn(Y)
        assert t == title and np.array_equal(f, field)
        assert all(np.array_equal(a, b) for a, b in zip(pts, points, strict=True))


def test_softmax_boundary_colours_cycle_past_ten_classes():
    K = 12
    ang = 2 * np.pi * np.arange(K) / K
    # hidden units relu(+-x1), relu(+-x2): Z2_k = 3 (cos, sin)(ang_k) . x, a wedge each
    p = {
        "W1": np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]),
        "b1": np.zeros((4, 1)),
        "W2": 3 * np.stack([np.cos(ang), -np.cos(ang), np.sin(ang), -np.sin(ang)], axis=1),
        "b2": np.zeros((K, 1)),
    }
    X = 2 * np.stack([np.cos(ang), np.sin(ang)])  # one sample in the middle of each wedge
    fig = plots.decision_boundary(p, X, np.arange(K), activation="relu", output="softmax")
    ax = fig.axes[0]
    assert ax.get_title().endswith("accuracy 100.0%")
    image = ax.images[0]
    shade = [np.array(image.cmap(image.norm(k))[:3]) for k in range(K)]
    np.testing.assert_allclose(shade, [region_rgb(k) for k in range(K)])
    scatters = [c for c in ax.collections if not isinstance(c, ContourSet)]
    colour = [s.get_facecolor()[0, :3] for s in scatters]
    shape = [s.get_paths()[0].vertices for s in scatters]
    # class 10 has class 0's colour but another marker; the first ten all differ
    np.testing.assert_allclose(colour[10], colour[0])
    assert not np.array_equal(shape[10], shape[0])
    assert len({tuple(np.round(c, 6)) for c in colour[:10]}) == 10
    # the field shows every class, each in its wedge
    assert sorted(np.unique(image.get_array()).tolist()) == list(range(K))


def test_softmax_boundary_rejects_what_it_cannot_draw(band_model):
    p, X, y = band_model
    with pytest.raises(ValueError, match=r"unknown output 'softmx'.*Did you mean 'softmax'"):
        plots.decision_boundary(p, X, y, output="softmx")
    with pytest.raises(ValueError, match=r"n_y >= 2 outputs.*n_y = 1.*output='sigmoid'"):
        plots.decision_boundary(fusedmlp.init_params(2, 3, 1, seed=0), X, y, output="softmax")
    with pytest.raises(ValueError, match=r"n_y = 1 output.*output='softmax'"):
        plots.decision_boundary(p, X, y)  # a 3-output network drawn as sigmoid
    bad = y.copy()
    bad[5] = 3
    with pytest.raises(ValueError, match=r"whole numbers 0 to 2, but Y\[5\] = 3"):
        plots.decision_boundary(p, X, bad, activation="relu", output="softmax")
    with pytest.raises(ValueError, match=r"Y\[0\] = 0.5"):
        plots.decision_boundary(p, X, np.full(150, 0.5), activation="relu", output="softmax")
    with pytest.raises(ValueError, match=r"Y has 2 rows.*3 outputs.*\(3, m\)"):
        plots.decision_boundary(p, X, np.eye(2)[:, y % 2], activation="relu", output="softmax")
    with pytest.raises(ValueError, match=r"one-hot.*values from 0 to 2"):
        plots.decision_boundary(p, X, 2 * np.eye(3)[:, y], activation="relu", output="softmax")


# --------------------------------------------------------------------------- #
# loss_curve
# --------------------------------------------------------------------------- #
def test_loss_curve(planar_model, tmp_path):
    losses = planar_model[2].losses
    path = tmp_path / "loss.png"
    fig = plots.loss_curve(losses, stop_epoch=300, path=path)
    assert png_size(path) == (640, 480)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    curve, stop = ax.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), np.arange(len(losses)))
    np.testing.assert_array_equal(curve.get_ydata(), losses)
    assert list(stop.get_xdata()) == [300, 300] and stop.get_linestyle() == "--"
    assert "early stop (epoch 300)" in [t.get_text() for t in ax.get_legend().get_texts()]

    plain = plots.loss_curve(losses).axes[0]
    assert len(plain.get_lines()) == 1 and plain.get_legend() is None


def test_loss_curve_zero_losses_stay_on_the_log_scale(tmp_path):
    path = tmp_path / "zero.png"
    fig = plots.loss_curve([1.0, 0.1, 0.0, 0.02], path=path)  # rendering must not fail
    assert png_size(path) == (640, 480)
    y = fig.axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(y, [1.0, 0.1, 0.002, 0.02])  # 0 -> a decade below 0.02
    y = plots.loss_curve([0.0, 0.0]).axes[0].get_lines()[0].get_ydata()
    np.testing.assert_array_equal(y, [1e-16, 1e-16])


def test_loss_curve_errors():
    with pytest.raises(ValueError, match="empty"):
        plots.loss_curve([])
    with pytest.raises(ValueError, match="1-D"):
        plots.loss_curve(np.ones((2, 3)))
    with pytest.raises(ValueError, match="past the end"):
        plots.loss_curve([1.0, 0.5], stop_epoch=3)
    with pytest.raises(ValueError, match="stop_epoch"):
        plots.loss_curve([1.0, 0.5], stop_epoch=-1)


# --------------------------------------------------------------------------- #
# sweep_grid
# --------------------------------------------------------------------------- #
def test_sweep_grid(planar_model, tmp_path):
    X, Y, res4, _ = planar_model
    runs = [
        fusedmlp.train(
            X, Y, hidden=h, activation="tanh", loss="cross_entropy", lr=1.2, epochs=300, seed=2
        )
        for h in (1, 2)
    ]
    results = [*runs, (4, res4.params, "tanh")]  # both accepted forms
    path = tmp_path / "sweep.png"
    fig = plots.sweep_grid(results, X, Y, path=path, ncols=2)

    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    accs = [fusedmlp.accuracy(r.params, X, Y, activation="tanh") for r in (*runs, res4)]
    assert len(set(f"{a:.3f}" for a in accs)) > 1  # so the titles could be mixed up
    for ax, h, acc in zip(panels, (1, 2, 4), accs, strict=True):
        assert ax.get_title() == f"n_h = {h}: {100 * acc:.1f}%"

    (table,) = [c for ax in fig.axes for c in ax.get_children() if isinstance(c, Table)]
    texts = {cell.get_text().get_text() for cell in table.get_celld().values()}
    assert {f"{100 * a:.1f}%" for a in accs} <= texts and {"1", "2", "4"} <= texts

    w, h = png_size(path)
    assert (w, h) == tuple(np.round(fig.get_size_inches() * fig.dpi).astype(int))


def test_sweep_grid_errors():
    X, Y = fusedmlp.datasets.planar(m=20)
    p = fusedmlp.init_params(2, 3, 1, seed=0)
    with pytest.raises(ValueError, match="empty"):
        plots.sweep_grid([], X, Y)
    with pytest.raises(ValueError, match="hidden_size=5.*3 hidden units"):
        plots.sweep_grid([(5, p, "tanh")], X, Y)
    with pytest.raises(TypeError, match="results"):
        plots.sweep_grid([p], X, Y)
    with pytest.raises(ValueError, match="n_x = 2"):
        plots.sweep_grid([(3, fusedmlp.init_params(3, 3, 1, seed=0), "tanh")], X, Y)


# --------------------------------------------------------------------------- #
# saving, and staying out of global state
# --------------------------------------------------------------------------- #
def test_save_png_ignores_a_tight_bbox_setting(tmp_path):
    fig = plots.loss_curve([0.5, 0.25], dpi=80)
    with matplotlib.rc_context({"savefig.bbox": "tight"}):
        path = plots.save_png(fig, tmp_path / "a.png")
    assert png_size(path) == (512, 384)
    assert png_size(plots.save_png(fig, tmp_path / "b.png", dpi=50)) == (320, 240)


def test_no_pyplot_needed():
    code = (
        "import sys, fusedmlp.plots as pl\n"
        "pl.loss_curve([1.0, 0.5])\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_data_is_scanned_once_per_picture(planar_model, monkeypatch):
    # validation reads X and Y once per public call; the drawing must not read them again
    from fusedmlp import _validation

    X, Y, res, _ = planar_model
    params = res.params
    seen = []
    scan = _validation._scan
    monkeypatch.setattr(
        _validation, "_scan", lambda name, A, **kw: (seen.append(A), scan(name, A, **kw))[1]
    )
    plots.decision_boundary(params, X, Y, activation="tanh")
    assert sum(a is X or np.shares_memory(a, X) for a in seen) == 1
    seen.clear()
    three = fusedmlp.init_params(2, 4, 3, seed=0)
    plots.decision_boundary(three, X, Y[0].astype(int), activation="tanh", output="softmax")
    assert sum(a is X or np.shares_memory(a, X) for a in seen) == 1
    seen.clear()
    plots.sweep_grid([(4, params, "tanh")] * 3, X, Y)
    assert sum(a is X or np.shares_memory(a, X) for a in seen) == 1
