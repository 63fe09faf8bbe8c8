"""Mini-batch epochs on a cluster: the samples stay spread, each epoch streams to one worker.

A mini-batch's update needs the parameters the batch before it left, and a batch (a few
hundred samples: microseconds of compute) costs far less than a round trip between
workers (about 2 ms here), so an epoch's batches run one after another on one worker,
as in one process. What moves is the data: each epoch's samples, in that epoch's
shuffled order (``_compiled_train.epoch_order``), go a window of whole batches at a time
from the workers holding them (the pieces of full-batch training, ``Holder`` actors) to
a ``Stream`` actor, which runs the window's batches with one process's batch code
(``kernels.train_window``) and closes each epoch with its code. So the bits are one
process's, and no worker holds more than its piece and a few windows: data larger than
any one worker trains with mini-batches too. The next window is asked for before the
current one is computed, so the moving and the computing overlap.
"""

from __future__ import annotations

import numpy as np

from .._optstate import OptState
from . import _worker

WINDOW_BYTES = 2**22  # a window's samples: few round trips, a few MB in flight


def window_size(spec: dict, batch: int, m: int) -> int:
    """Samples per window: whole batches of about WINDOW_BYTES (at least one batch), at
    most the epoch (spec: the engine's, with ``labels``: Y holds class indices)."""
    n_x, _, n_y = spec["sizes"]
    per_sample = (n_x + (1 if spec["labels"] else n_y)) * np.dtype(spec["dtype"]).itemsize + 4
    k = max(1, WINDOW_BYTES // (per_sample * batch))
    return min(k * batch, m)


def _rows(A: np.ndarray) -> np.ndarray:
    """A as (rows, samples): class indices (m,) as one row (a view)."""
    return A.reshape(1, -1) if A.ndim == 1 else A


def take(piece, order: np.ndarray, a: int, b: int, lo: int) -> tuple:
    """(X, Y, positions) of the samples of window [a, b) of ``order`` that the piece
    holds (its samples are lo, lo + 1, ...): their columns, in the window's order, and
    where in the window each goes."""
    from .. import kernels as _k

    X, Y = piece.X, _rows(piece.Y)
    pos = np.empty(b - a, np.int32)
    Xo = np.empty((X.shape[0], b - a), X.dtype)
    Yo = np.empty((Y.shape[0], b - a), Y.dtype)
    k = _k.take_columns(Xo, Yo, pos, X, Y, order, a, b, lo)
    # what travels: only the samples taken
    Xo, Yo = np.ascontiguousarray(Xo[:, :k]), np.ascontiguousarray(Yo[:, :k])
    return Xo, (Yo[0] if piece.Y.ndim == 1 else Yo), pos[:k].copy()


def assemble(parts: list, n: int, X: np.ndarray, Y: np.ndarray) -> None:
    """Window of n samples from the pieces' parts: each part's columns into their
    places in X (n_x, >= n) and Y (its rows or class indices)."""
    from .. import kernels as _k

    count = 0
    for x, y, pos in parts:
        # place_columns writes out[:, pos] unchecked: out of range must stop here
        if len(pos) and (pos.min() < 0 or pos.max() >= n):
            raise RuntimeError(f"a window of {n} samples came back with places out of range")
        _k.place_columns(X, x, pos)
        _k.place_columns(_rows(Y), _rows(y), pos)
        count += len(pos)
    if count != n:  # the pieces cover the samples once: a window is filled exactly
        raise RuntimeError(f"a window of {n} samples came back with {count}")


class Stream:
    """A dask actor that runs mini-batch epochs over samples held by ``holders`` (Holder
    actors, in sample order; ``starts``: each one's first sample, and m) in windows of
    ``w`` samples (``window_size``). Each ``call`` starts from the parameters and
    optimizer state it is sent, so the client's copy stays the truth (a call made again
    after a lost worker gives the same bits)."""

    def __init__(self, holders: list, starts: list, settings: dict, spec: dict, w: int) -> None:
        from .._compiled_train import window_runner
        from ..settings import Settings

        s = Settings.from_dict(settings)
        for h in holders:
            # A holder's proxy, when a call to a lost worker fails, waits for the
            # holder's key to be computed again, through its future of it; a future
            # of a worker's client never hears of that, so the wait never ends (a worker
            # killed mid-epoch hung the run about once in 5; 30 runs in a row passed
            # after this), and it holds this worker's one actor thread. Bound to the
            # worker's client now (not at its first call, which would make the future
            # again) and without the future, a failed call raises at once and the
            # client's retry takes over.
            h._try_bind_worker_client()
            h._future = None
        self.holders, self.starts, self.m = holders, starts[:-1], starts[-1]
        self.seed, self.sizes = s.seed, spec["sizes"]
        self.p = _worker.unflatten(np.zeros(_worker.n_params(self.sizes)), self.sizes,
                                   spec["dtype"])  # fmt: skip
        self.state = OptState(s, self.p)
        n_y = self.sizes[2]
        Y0 = np.empty(0, np.int64) if spec["labels"] else np.empty((n_y, 0), spec["dtype"])
        self.step = window_runner(self.p, Y0, spec["kind"], self.state, s.batch_size)
        self.w = w
        # a window in its order (flat: a window of n is a C-contiguous view of the
        # first n_x * n, as the kernels take it), and the identity order to read it in
        self.Xw = np.empty(self.sizes[0] * w, spec["dtype"])
        self.Yw = np.empty(w, np.int64) if spec["labels"] else np.empty(n_y * w, spec["dtype"])
        self.labels = spec["labels"]
        self.ident = np.arange(w, dtype=np.int64)
        self._ahead = None  # (epoch, the asks for its first window) made ahead of a call
        self.threads = _worker.worker_threads()

    def _ask(self, e: int, a: int, orders=None) -> list:
        """Ask every holder for its samples of window [a, a + w) of epoch e (answers
        come later: the calls return at once, but for a holder on this worker): of the
        order each holder draws from (seed, epoch), or of ``orders[e]`` when given."""
        b = min(a + self.w, self.m)
        pairs = zip(self.holders, self.starts, strict=True)
        if orders is not None:
            return [h.window_of(orders[e, a:b], lo) for h, lo in pairs]
        return [h.window(self.seed, e, a, b, lo, self.m) for h, lo in pairs]

    def _window(self, n: int) -> tuple:
        """X (n_x, n) and Y (n_y, n) or (n,): C-contiguous views of the window buffers."""
        X = self.Xw[: self.sizes[0] * n].reshape(self.sizes[0], n)
        Y = self.Yw[:n] if self.labels else self.Yw[: self.sizes[2] * n].reshape(-1, n)
        return X, Y

    def _epochs(self, n: int, first: int, losses: np.ndarray, orders) -> tuple[int, int]:
        """n epochs from epoch ``first``, of the orders the holders draw from the seed, or
        of ``orders`` (n, m) when given (the scikit-learn estimators' shuffles)."""
        from ..kernels import OK, SCHEDULE_STOP

        ahead, self._ahead = self._ahead, None
        given = orders is not None
        if given:
            pending = self._ask(0, 0, orders)
        else:
            pending = ahead[1] if ahead and ahead[0] == first else self._ask(first, 0)
        for i in range(n):
            total = 0.0
            for a in range(0, self.m, self.w):
                parts = [f.result() for f in pending]
                b = min(a + self.w, self.m)
                # the next window, asked for now: it travels while this one computes
                # (after the call's last window, the next call's first: the data do
                # not depend on the parameters, and the call is almost always made)
                e = i + (b == self.m)
                if not given:
                    pending = self._ask(first + e, b % self.m)
                elif e < n:
                    pending = self._ask(e, b % self.m, orders)
                X, Y = self._window(b - a)
                assemble(parts, b - a, X, Y)
                status, total = self.step(
                    X, Y, self.ident[: b - a], losses, i, first, total, self.m, b == self.m
                )
                if status != OK:
                    return i + (status == SCHEDULE_STOP), status
        if not given:
            self._ahead = (first + n, pending)
        return n, OK

    def call(self, n: int, first: int, flat: np.ndarray, state: tuple, orders=None) -> tuple:
        """n epochs from epoch ``first`` (of ``orders`` (n, m) when given), from the
        parameters ``flat`` and the optimizer state (moments, clock, hyper, codes):
        (losses, n_done, status, flat, state) after."""
        from ..trainer import _threads as numba_threads

        _worker.put(self.p, flat)
        mine = (self.state.moments, self.state.clock, self.state.hyper, self.state.codes)
        for a, sent in zip(mine, state, strict=True):
            a[...] = sent
        losses = np.zeros(n)
        with numba_threads(self.threads):
            n_done, status = self._epochs(n, first, losses, orders)
        after = tuple(a.copy() for a in mine)
        return losses, n_done, status, _worker.flatten(self.p), after
