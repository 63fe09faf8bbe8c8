"""Validation on a cluster whose training samples stay spread over the workers.

One process holds out ``validation_fraction`` of the samples (``_data.split_index``:
stratified by class, drawn from the seed, both parts kept in the samples' order) and
trains on the rest. A cluster does the same without bringing the data together:

- ``split_samples`` draws the same indices on one worker, from the targets alone (a
  small array beside X), and they stay there as a future;
- the training samples are cut into pieces as one process cuts its training part, so
  piece k holds training samples [lo_k, hi_k); those lie in one run of the original
  samples, ``edges`` k to k + 1, which the worker building the piece reads whole, keeping
  the training samples (``keep_mask``) and setting the held-out ones aside;
- the held-out parts, in order, meet on one worker behind a ``Held`` actor, which scores
  every epoch's parameters as one process's ``Holdout`` does (the same arrays, the same
  code, so the same bits).
"""

from __future__ import annotations

import numpy as np

from .. import _data
from . import _worker


def split_samples(Y, m: int, spec: dict, fraction: float, seed: int) -> tuple:
    """(train, val) indices of the m samples of targets Y, as one process draws them;
    Y is checked first as ``train`` checks it (a bad label is refused here, by name)."""
    n_h = spec["sizes"][1]
    p = dict(spec["p"], W1=np.zeros((n_h, 1)))  # X is a stand-in of one row
    fake = np.broadcast_to(np.zeros(1, spec["dtype"]), (1, m))
    try:
        Y = _data.check_targets(fake, Y, spec["output"], spec["loss"], p=p)[1]
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"the targets of the training data: {exc}") from None
    return _data.split_index(Y, m, fraction, seed, spec["output"])


def split_shards(shards: list, starts: list, spec: dict, fraction: float, seed: int) -> tuple:
    """``split_samples`` of the targets of shard files laid end to end."""
    ys = []
    for i, shard in enumerate(shards):
        try:
            ys.append(np.array(_worker.open_shard(shard)[1]))
        except (OSError, ValueError, EOFError) as exc:
            name = _worker.shard_name(shard)
            raise ValueError(f"shard {i} ({name}) could not be read: {exc}") from None
    return split_samples(np.concatenate(ys, axis=-1), starts[-1], spec, fraction, seed)


def n_train(split: tuple) -> int:
    return len(split[0])


def edges(split: tuple, starts: list, m: int) -> list:
    """Where each piece's run of original samples begins (the first, 0), and m: piece k
    with training samples from ``starts[k]`` on reads originals [edges k, edges k+1)."""
    return [0, *(int(split[0][i]) for i in starts[1:]), m]


def keep_mask(split: tuple, a: int, b: int) -> np.ndarray:
    """Which of the original samples [a, b) are trained on (False: held out)."""
    val = split[1]
    i, j = np.searchsorted(val, [a, b])
    keep = np.ones(b - a, dtype=bool)
    keep[val[i:j] - a] = False
    return keep


def piece_of(both: tuple):
    return both[0]


def held_of(both: tuple):
    return both[1]


class Held:
    """A dask actor holding the held-out samples (the parts set aside by the pieces, in
    order) and one process's ``Holdout`` over them."""

    def __init__(self, parts: list, settings: dict) -> None:
        from .._holdout import Holdout
        from ..settings import Settings

        Xv = np.concatenate([x for x, _ in parts], axis=-1)
        Yv = np.concatenate([y for _, y in parts], axis=-1)
        self.holdout = Holdout(Xv, Yv, Settings.from_dict(settings), "numba")
        self.threads = _worker.worker_threads()

    def evaluate(self, flat: np.ndarray, sizes: tuple) -> tuple[float, float]:
        """(loss, score) on the held-out samples of the parameters ``flat``."""
        from ..trainer import _threads as numba_threads

        p = _worker.unflatten(flat, sizes, self.holdout.Xv.dtype)
        with numba_threads(self.threads):
            return self.holdout.evaluate(p)
