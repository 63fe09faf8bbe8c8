"""What runs on the workers: opening shards, building a piece, an epoch's rows of it.

Everything here is a plain function of its arguments (dask may run it again on another
worker after a fault, and must get the same bits): a piece is built from its source
(shard files or a dask array's chunks), checked, and kept in the worker's memory as a
future of the client's; every epoch, ``piece_rows`` turns the parameters it is sent
into the piece's gradient rows with the compiled kernel ``kernels.piece_grads``.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np

from .. import _data, outofcore
from .._optstate import PARAMS

__all__ = ["Holder", "Piece", "build_piece", "labels_top", "piece_rows"]
__all__ += ["flatten", "n_params", "open_shard", "put", "shard_header", "shard_name", "unflatten"]
__all__ += ["worker_threads"]


def flatten(p: dict) -> np.ndarray:
    """W1, b1, W2, b2 raveled into one array: what a call to a worker carries."""
    return np.concatenate([p[k].ravel() for k in PARAMS])


def n_params(sizes: tuple) -> int:
    """Parameters of a (n_x, n_h, n_y) network: the length of ``flatten``'s array."""
    n_x, n_h, n_y = sizes
    return n_h * n_x + n_h + n_y * n_h + n_y


def unflatten(flat: np.ndarray, sizes: tuple, dtype) -> dict:
    """The parameters of a (n_x, n_h, n_y) network from ``flatten``'s array: views of
    our own C-contiguous copy in ``dtype`` (the kernels take them as they are)."""
    n_x, n_h, n_y = sizes
    flat = np.array(flat, dtype=dtype)  # our own, writable, C-contiguous
    shapes = ((n_h, n_x), (n_h, 1), (n_y, n_h), (n_y, 1))
    ends = np.cumsum([a * b for a, b in shapes])
    parts = np.split(flat, ends[:-1])
    return {k: a.reshape(s) for k, a, s in zip(PARAMS, parts, shapes, strict=True)}


def put(p: dict, flat: np.ndarray) -> None:
    """``flatten``'s array written into p's own arrays, in place."""
    at = 0
    for k in PARAMS:
        a = p[k]
        a[...] = flat[at : at + a.size].reshape(a.shape)
        at += a.size


class Piece:
    """A worker's samples [lo, hi), C-contiguous in the working dtype, and what an epoch
    needs of the plan: ``bounds`` (the piece's blocks of each of its chunks), ``kind``
    (the kernel codes), ``plan`` and ``scale`` (D2's factor for all m samples)."""

    __slots__ = ("X", "Y", "bounds", "kind", "plan", "scale", "sizes")

    def __init__(self, X, Y, bounds, kind, plan, scale, sizes):
        self.X, self.Y = X, Y
        self.bounds, self.kind, self.plan, self.scale, self.sizes = (
            bounds, kind, plan, scale, sizes,
        )  # fmt: skip

    def __getstate__(self):
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, state):
        for k, v in zip(self.__slots__, state, strict=True):
            setattr(self, k, v)


def open_shard(shard) -> tuple:
    """(X, Y) memory maps of a shard: an .npz path (members X and Y) or an (X.npy, Y.npy)
    pair of paths."""
    if isinstance(shard, (tuple, list)):
        return outofcore.open_pair(*shard)
    return outofcore.open_npz(shard)


def shard_name(shard) -> str:
    if isinstance(shard, (tuple, list)):
        return " and ".join(repr(os.fspath(s)) for s in shard)
    return repr(os.fspath(shard))


def shard_header(i: int, shard) -> tuple:
    """(X's shape, X's dtype, Y's shape, Y's dtype) of shard i, from its headers only;
    a shard that cannot be opened is a ValueError naming it."""
    try:
        X, Y = open_shard(shard)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"shard {i} ({shard_name(shard)}) could not be opened: {exc}") from None
    return X.shape, X.dtype.str, Y.shape, Y.dtype.str


def labels_top(i: int, shard) -> float:
    """The largest value of shard i's Y (its class indices), -1 when it has none."""
    try:
        Y = open_shard(shard)[1]
        return float(np.max(Y)) if Y.size else -1.0
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"shard {i} ({shard_name(shard)}) could not be read: {exc}") from None


def _columns(A, lo: int, hi: int):
    return A[..., lo:hi]


def load_shards(shards: list, starts: list, lo: int, hi: int) -> tuple:
    """(X, Y) of samples [lo, hi) of the shards laid end to end (``starts[i]``: shard i's
    first sample), copied out of their memory maps."""
    xs, ys = [], []
    for i, shard in enumerate(shards):
        a, b = max(lo, starts[i]), min(hi, starts[i + 1])
        if a >= b:
            continue
        try:
            X, Y = open_shard(shard)
            xs.append(np.array(_columns(X, a - starts[i], b - starts[i])))
            ys.append(np.array(_columns(Y, a - starts[i], b - starts[i])))
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"shard {i} ({shard_name(shard)}) could not be read: {exc}") from None
    return np.concatenate(xs, axis=-1), np.concatenate(ys, axis=-1)


def build_piece(data, lo: int, hi: int, spec: dict, keep=None):
    """The piece of samples [lo, hi): ``data`` is (X, Y) already computed (a dask
    array's slice) or ("shards", shards, starts); checked as ``fusedmlp.train`` checks
    its data (for the network ``spec["p"]``), then made C-contiguous in the working
    dtype. An error names the samples it is about. With ``keep`` (a mask of the
    samples trained on), (piece of those, (X, Y) of the others): the held-out part."""
    if isinstance(data[0], str) and data[0] == "shards":
        X, Y = load_shards(data[1], data[2], lo, hi)
    else:
        X, Y = np.asarray(data[0]), np.asarray(data[1])
    try:
        X, Y = _data.check_targets(X, Y, spec["output"], spec["loss"], p=spec["p"])
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"samples [{lo}, {hi}) of the training data: {exc}") from None
    X = np.ascontiguousarray(X, dtype=spec["dtype"])
    Y = np.ascontiguousarray(Y, dtype=np.int64 if Y.ndim == 1 else spec["dtype"])
    held = None
    if keep is not None:  # C-contiguous, as one process's split (indexing may give F)
        held = (np.ascontiguousarray(X[:, ~keep]), np.ascontiguousarray(Y[..., ~keep]))
        X, Y = np.ascontiguousarray(X[:, keep]), np.ascontiguousarray(Y[..., keep])
    piece = Piece(X, Y, spec["bounds"], spec["kind"], spec["plan"], spec["scale"], spec["sizes"])
    return piece if keep is None else (piece, held)


def worker_threads() -> int:
    """The worker's thread count, as numba may use it."""
    import numba
    from distributed import get_worker

    try:
        n = get_worker().state.nthreads
    except (ValueError, AttributeError):  # not on a worker (tests call it directly)
        n = numba.get_num_threads()
    return max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


class Holder:
    """A dask actor that keeps one piece on its worker and answers ``rows`` calls: an
    actor's call goes from the client to the worker and back, not through the
    scheduler (measured, 2 workers on one machine: 2.2 ms a round trip against 11.5 ms
    for submit and gather)."""

    def __init__(self, piece: Piece) -> None:
        self.piece = piece
        self.threads = worker_threads()  # here, in a task: the actor's own calls run elsewhere
        self._order, self._order_of = None, None  # the last mini-batch epoch's order

    def rows(self, flat: np.ndarray) -> tuple:
        return piece_rows(self.piece, flat, self.threads)

    def window(self, seed: int, e: int, a: int, b: int, lo: int, m: int) -> tuple:
        """This piece's samples of window [a, b) of mini-batch epoch e over m samples
        (the piece's first is sample lo): ``_stream.take``. The epoch's order is drawn
        here once, as one process draws it."""
        from .._compiled_train import epoch_order
        from ._stream import take

        if self._order_of != (seed, e, m):
            self._order, self._order_of = epoch_order(seed, e, m), (seed, e, m)
        return take(self.piece, self._order, a, b, lo)

    def window_of(self, samples: np.ndarray, lo: int) -> tuple:
        """``window`` for a window given as its samples (an order the client drew)."""
        from ._stream import take

        return take(self.piece, samples, 0, len(samples), lo)


def piece_rows(piece: Piece, flat: np.ndarray, threads: int = 1) -> tuple:
    """(rows, seconds): the piece's chunks' loss and gradient sums for the parameters
    ``flat`` (W1, b1, W2, b2 raveled, in the working dtype), and the compute time, on
    ``threads`` of numba's threads."""
    from .. import _compiled as _c
    from .. import kernels as _k
    from ..trainer import _threads as numba_threads

    t0 = time.perf_counter()
    q = unflatten(flat, piece.sizes, piece.X.dtype)
    rows = np.empty((len(piece.bounds) - 1, n_params(piece.sizes) + 1))
    parallel = threads > 1 and rows.shape[0] > 1 and not _c._SERIAL_ONLY
    kernel = _k.piece_grads if parallel else _k.piece_grads_serial
    turn = _c._LOCK if parallel else contextlib.nullcontext()
    with numba_threads(threads), turn, _c._blas_threads(piece.plan):
        kernel(
            rows, q["W1"], q["b1"], q["W2"], q["b2"], piece.X, piece.Y, piece.bounds,
            piece.kind, piece.scale, piece.plan,
        )  # fmt: skip
    return rows, time.perf_counter() - t0
