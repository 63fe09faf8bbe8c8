"""Where a distributed run's samples come from: dask arrays, or shard files that the
workers open themselves. Each source says what the data is (m, n_x, dtypes, Y's form)
and makes, for samples [lo, hi), a future of the worker-side ``Piece`` (``_worker``),
which the scheduler can compute again from the source if its worker dies."""

from __future__ import annotations

import math
import os

import numpy as np

from . import _heldout, _worker


def make(X, Y, client):
    """The source of (X, Y)."""
    if isinstance(X, (list, tuple)):
        return Shards(X, Y, client)
    return DaskArrays(X, Y)


class DaskArrays:
    """X (n_x, m) and Y (n_y, m) or (m,) dask arrays, chunked along the samples in any
    way; a piece computes its slice of their graphs on a worker."""

    def __init__(self, X, Y) -> None:
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(
                f"X must be a 2-D dask array (n_x, m), one sample per column; got {X.ndim}-D "
                f"{X.shape}."
            )
        if any(math.isnan(n) for n in (*X.shape, *getattr(Y, "shape", ()))):
            raise ValueError(
                f"X or Y has chunks of unknown size (shape {X.shape}, "
                f"{getattr(Y, 'shape', None)}), as after boolean indexing; call "
                "X.compute_chunk_sizes() (and Y's) first."
            )
        if Y is None:
            raise ValueError(
                "Y is missing: give the targets beside a dask X, as a dask or NumPy array "
                "(n_y, m) or (m,) (Y=None is for .npz shard files, which hold both)."
            )
        if not isinstance(Y, da.Array):
            Y = np.asarray(Y)
            Y = da.from_array(Y, chunks=Y.shape[:-1] + (X.chunks[1],)) if Y.ndim else Y
        if Y.ndim not in (1, 2) or Y.shape[-1] != X.shape[1]:
            raise ValueError(
                f"Y must be (n_y, m) or (m,) with m = {X.shape[1]} samples, as X "
                f"{X.shape}; got {Y.shape}."
            )
        self.X, self.Y = X, Y
        self.m, self.n_x = int(X.shape[1]), int(X.shape[0])
        # the working dtype, as work_dtype: float32 stays, anything else is float64
        self.x_dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
        self.y_rows = None if Y.ndim == 1 else int(Y.shape[0])

    def top_label(self, client) -> float:
        return float(client.compute(self.Y.max()).result()) if self.m else -1.0

    def piece(self, client, lo: int, hi: int, spec: dict, worker: str, keep=None):
        import dask

        part = (self.X[:, lo:hi], self.Y[..., lo:hi])
        task = dask.delayed(_worker.build_piece, pure=False)(part, lo, hi, spec, keep)
        return client.compute(task, workers=[worker], allow_other_workers=True)

    def split(self, client, spec: dict, fraction: float, seed: int):
        """A future of the validation split's (train, val) indices, drawn on a worker
        from Y, which is computed there."""
        import dask

        task = dask.delayed(_heldout.split_samples, pure=False)(
            self.Y, self.m, spec, fraction, seed
        )
        return client.compute(task)


class Shards:
    """Shard files on storage every worker can read: a list of ``.npz`` paths (members X
    and Y, stored uncompressed), or a list of X ``.npy`` paths with the list of their Y
    ``.npy`` paths. Samples run through the shards in the order given. The workers
    read the headers and the data; the client opens nothing."""

    def __init__(self, X, Y, client) -> None:
        if Y is None:
            self.shards = [os.fspath(s) for s in X]
        else:
            if not isinstance(Y, (list, tuple)) or len(Y) != len(X):
                raise ValueError(
                    f"with X a list of {len(X)} .npy shard paths, Y must be the list of their "
                    f"{len(X)} Y .npy paths (or pass Y=None with .npz shards holding both); "
                    f"got {type(Y).__name__}."
                )
            self.shards = [(os.fspath(x), os.fspath(y)) for x, y in zip(X, Y, strict=True)]
        heads = client.gather(
            [
                client.submit(_worker.shard_header, i, s, pure=False)
                for i, s in enumerate(self.shards)
            ]
        )
        sizes = [self._check(i, h, heads[0]) for i, h in enumerate(heads)]
        self.starts = [0, *np.cumsum(sizes).tolist()]
        self.m, self.n_x = int(self.starts[-1]), int(heads[0][0][0])
        single = all(np.dtype(h[1]) == np.float32 for h in heads)  # as work_dtype
        self.x_dtype = np.dtype(np.float32 if single else np.float64)
        self.y_rows = None if len(heads[0][2]) == 1 else int(heads[0][2][0])

    def _check(self, i: int, head: tuple, first: tuple) -> int:
        (xs, _, ys, _), name = head, f"shard {i} ({self.shards[i]!r})"
        if len(xs) != 2 or xs[0] != first[0][0]:
            raise ValueError(
                f"{name} holds X of shape {xs}; every shard's X must be (n_x, m_i) with the "
                f"same n_x = {first[0][0]} as shard 0."
            )
        if len(ys) != len(first[2]) or ys[-1] != xs[1] or ys[:-1] != first[2][:-1]:
            raise ValueError(
                f"{name} holds Y of shape {ys} for X {xs}; Y must be (n_y, m_i) or (m_i,), "
                f"shaped as shard 0's {first[2]} in all but its samples."
            )
        return int(xs[1])

    def top_label(self, client) -> float:
        tops = [
            client.submit(_worker.labels_top, i, s, pure=False) for i, s in enumerate(self.shards)
        ]
        return max(client.gather(tops), default=-1.0)

    def piece(self, client, lo: int, hi: int, spec: dict, worker: str, keep=None):
        data = ("shards", self.shards, self.starts)
        return client.submit(
            _worker.build_piece, data, lo, hi, spec, keep, workers=[worker],
            allow_other_workers=True, pure=False,
        )  # fmt: skip

    def split(self, client, spec: dict, fraction: float, seed: int):
        """A future of the validation split's (train, val) indices, drawn on a worker
        from the shards' Y."""
        return client.submit(
            _heldout.split_shards, self.shards, self.starts, spec, fraction, seed, pure=False
        )
