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

WINDOW_BYTES = 2**24  # a window's samples: few round trips, a few MB in flight


def window_size(spec: dict, batch: int, m: int) -> int:
    """Samples per window: whole batches of about WINDOW_BYTES (at least one batch), at
    most the epoch (spec: the engine's, with ``labels``: Y holds class indices)."""
    n_x, _, n_y = spec["sizes"]
    per_sample = (n_x + (1 if spec["labels"] else n_y)) * np.dtype(spec["dtype"]).itemsize + 4
    k = max(1, WINDOW_BYTES // (per_sample * batch))
    return min(k * batch, m)


def take(piece, order: np.ndarray, a: int, b: int, lo: int) -> tuple:
    """(X, Y, positions) of the samples of window [a, b) of ``order`` that the piece
    holds (its samples are lo, lo + 1, ...): their columns, in the window's order, and
    where in the window each goes."""
    local = order[a:b] - lo
    pos = np.flatnonzero((local >= 0) & (local < piece.X.shape[1]))
    cols = local[pos]
    return piece.X[:, cols], piece.Y[..., cols], pos.astype(np.int32)


def assemble(parts: list, n: int) -> tuple:
    """One window of n samples from the pieces' parts: (X, Y, idx) with the window's
    k-th sample in column idx[k] of X (and of Y)."""
    X = np.concatenate([x for x, _, _ in parts], axis=1)
    Y = np.concatenate([y for _, y, _ in parts], axis=-1)
    idx = np.full(n, -1, dtype=np.int64)
    at = 0
    for _, _, pos in parts:
        idx[pos] = np.arange(at, at + len(pos))
        at += len(pos)
    # the kernel reads X[:, idx[k]] unchecked: the parts must fill the window exactly
    if at != n or (n and idx.min() < 0):
        raise RuntimeError(f"a window of {n} samples came back with {at}: pieces overlap")
    return X, Y, idx


class Stream:
    """A dask actor that runs mini-batch epochs over samples held by ``holders`` (Holder
    actors, in sample order; ``starts``: each one's first sample, and m) in windows of
    ``w`` samples (``window_size``). Each ``call``
    starts from the parameters and optimizer state it is sent, so the client's copy
    stays the truth (a call made again after a lost worker gives the same bits)."""

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
        self.threads = _worker.worker_threads()

    def _ask(self, e: int, a: int) -> list:
        """Ask every holder for its samples of window [a, a + w) of epoch e (answers
        come later: the calls return at once, but for a holder on this worker)."""
        b = min(a + self.w, self.m)
        pairs = zip(self.holders, self.starts, strict=True)
        return [h.window(self.seed, e, a, b, lo, self.m) for h, lo in pairs]

    def _epochs(self, n: int, first: int, losses: np.ndarray) -> tuple[int, int]:
        from ..kernels import OK, SCHEDULE_STOP

        pending = self._ask(first, 0)
        for i in range(n):
            total = 0.0
            for a in range(0, self.m, self.w):
                parts = [f.result() for f in pending]
                b = min(a + self.w, self.m)
                if b < self.m:
                    pending = self._ask(first + i, b)
                elif i + 1 < n:
                    pending = self._ask(first + i + 1, 0)
                X, Y, idx = assemble(parts, b - a)
                status, total = self.step(X, Y, idx, losses, i, first, total, self.m, b == self.m)
                if status != OK:
                    return i + (status == SCHEDULE_STOP), status
        return n, OK

    def call(self, n: int, first: int, flat: np.ndarray, state: tuple) -> tuple:
        """n epochs from epoch ``first``: (losses, n_done, status, flat, state) after."""
        from ..trainer import _threads as numba_threads

        _worker.put(self.p, flat)
        mine = (self.state.moments, self.state.clock, self.state.hyper)
        for a, sent in zip(mine, state, strict=True):
            a[...] = sent
        losses = np.zeros(n)
        with numba_threads(self.threads):
            n_done, status = self._epochs(n, first, losses)
        after = tuple(a.copy() for a in mine)
        return losses, n_done, status, _worker.flatten(self.p), after
