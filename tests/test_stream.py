"""Mini-batch epochs streamed in windows (fusedmlp.distributed._stream), in one process.

The cluster tests check the whole path against one process; these check its parts
without a cluster: the pieces' picking and the window's assembly against NumPy's fancy
indexing, and the window kernel (kernels.train_window) against the one-process
mini-batch kernel (kernels.train_batches) fed the same epochs, bit for bit.
"""

import numpy as np
import pytest

from fusedmlp import _compiled_train, datasets
from fusedmlp._optstate import OptState
from fusedmlp.distributed import _stream, _worker
from fusedmlp.kernels import OK, SCHEDULE_STOP
from fusedmlp.settings import Settings


def _pieces(X, Y, cuts):
    return [
        _worker.Piece(
            np.ascontiguousarray(X[:, a:b]),
            np.ascontiguousarray(Y[..., a:b]),
            None,
            None,
            None,
            None,
            None,
        )  # fmt: skip
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]


@pytest.mark.parametrize("labels", [False, True])
def test_windows_hold_the_samples_in_the_epochs_order(labels):
    rng = np.random.default_rng(0)
    m = 1000
    X = rng.normal(size=(3, m)).astype(np.float32)
    Y = rng.integers(0, 4, m) if labels else rng.normal(size=(2, m)).astype(np.float32)
    cuts = [0, 137, 600, 601, m]
    pieces = _pieces(X, Y, cuts)
    order = _compiled_train.epoch_order(5, 2, m)
    for a, b in [(0, 300), (300, 600), (600, 1000), (999, 1000)]:
        parts = [_stream.take(p, order, a, b, lo) for p, lo in zip(pieces, cuts, strict=False)]
        assert sum(len(pos) for _, _, pos in parts) == b - a
        Xw = np.empty((3, b - a), np.float32)
        Yw = np.empty(b - a, np.int64) if labels else np.empty((2, b - a), np.float32)
        _stream.assemble(parts, b - a, Xw, Yw)
        assert np.array_equal(Xw, X[:, order[a:b]])
        assert np.array_equal(Yw, Y[..., order[a:b]])


def test_a_window_filled_wrongly_is_refused():
    x, y = np.zeros((2, 3)), np.zeros((1, 3))
    Xw, Yw = np.empty((2, 4)), np.empty((1, 4))
    with pytest.raises(RuntimeError, match="out of range"):
        _stream.assemble([(x, y, np.array([0, 1, 4], np.int32))], 4, Xw, Yw)
    with pytest.raises(RuntimeError, match="came back with 3"):
        _stream.assemble([(x, y, np.array([0, 1, 2], np.int32))], 4, Xw, Yw)


def test_window_size_is_whole_batches_of_about_the_budget(monkeypatch):
    spec = {"sizes": (2, 4, 1), "labels": False, "dtype": np.float64}
    monkeypatch.setattr(_stream, "WINDOW_BYTES", 10 * 200 * (3 * 8 + 4))
    assert _stream.window_size(spec, 200, 10**6) == 2000
    assert _stream.window_size(spec, 200, 1500) == 1500  # at most the epoch
    assert _stream.window_size(spec, 10**5, 10**6) == 10**5  # at least one batch


def _windows(p, X, Y, kind, state, batch, w, n_epochs, seed, losses):
    """train_window over windows of w samples, each gathered in the epoch's order."""
    step = _compiled_train.window_runner(p, Y[..., :0], kind, state, batch)
    m = X.shape[1]
    for e in range(n_epochs):
        order, total = _compiled_train.epoch_order(seed, e, m), 0.0
        for a in range(0, m, w):
            b = min(a + w, m)
            Xw = np.ascontiguousarray(X[:, order[a:b]])
            Yw = np.ascontiguousarray(Y[..., order[a:b]])
            ident = np.arange(b - a, dtype=np.int64)
            status, total = step(Xw, Yw, ident, losses, e, 0, total, m, b == m)
            if status:
                return e + (status == SCHEDULE_STOP), status
    return n_epochs, OK


@pytest.mark.parametrize(
    "case",
    [
        dict(dtype=np.float64, optimizer="adam", lr_schedule="constant", w=600),
        dict(dtype=np.float32, optimizer="nesterov", lr_schedule="invscaling", w=200),
        dict(dtype=np.float64, optimizer="gd", lr_schedule="adaptive", w=1400, labels=True),
    ],
)
def test_window_kernel_equals_the_mini_batch_kernel(case):
    """Windows of whole batches (the last one short) give train_batches' bits: losses,
    parameters, optimizer state, and the adaptive schedule's stop."""
    case = dict(case)
    w, labels, dtype = case.pop("w"), case.pop("labels", False), case.pop("dtype")
    X, Y = datasets.planar(m=1300, seed=2)
    X, Y = X.astype(dtype), Y.astype(dtype)  # targets in the working dtype, as pieces hold them
    n_y = 1
    if labels:
        Y = (Y[0] > 0.5).astype(np.int64) + (X[0] > 1)
        n_y = 3
    out = ("softmax", "cross_entropy") if labels else ("sigmoid", "mse")
    s = Settings(activation="tanh", output=out[0], loss=out[1], lr=0.05, alpha=1e-3,
                 batch_size=200, seed=4, tol=0.5, patience=1, **case)  # fmt: skip
    kind = _compiled_train._c._kind("tanh", out[1], out[0])
    rng = np.random.default_rng(1)
    start = {"W1": rng.normal(size=(4, 2)), "b1": np.zeros((4, 1)),
             "W2": rng.normal(size=(n_y, 4)), "b2": np.zeros((n_y, 1))}  # fmt: skip
    start = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in start.items()}
    results = []
    for way in ("batches", "windows"):
        p = {k: v.copy() for k, v in start.items()}
        state, losses = OptState(s, p), np.zeros(12)
        if way == "batches":
            run = _compiled_train.epoch_runner(p, X, Y, "tanh", out[1], output=out[0],
                                               state=state, batch_size=200, seed=4)  # fmt: skip
            done = run(12, losses)
        else:
            done = _windows(p, X, Y, kind, state, 200, w, 12, 4, losses)
        results.append((done, losses, p, state.moments.copy(), state.clock.copy()))
    (d1, l1, p1, m1, c1), (d2, l2, p2, m2, c2) = results
    assert d1 == d2
    assert np.array_equal(l1, l2)
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)
    assert np.array_equal(m1, m2) and np.array_equal(c1, c2)
    if case["lr_schedule"] == "adaptive":  # tol 0.5: the schedule stops it early
        assert d1[0] < 12 and d1[1] == SCHEDULE_STOP
