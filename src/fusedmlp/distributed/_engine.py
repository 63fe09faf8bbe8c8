"""The client's side of a distributed run: the pieces on the workers and the epochs.

The samples are cut exactly as one process cuts them (``kernels.config.plan`` for all
m samples: blocks, then chunks of blocks); each worker gets a piece of whole chunks,
built once from the source and kept in its memory. An epoch sends every piece the
parameters (one small array), each worker returns one row of sums per chunk computed by
the compiled kernel, and the client adds the rows in chunk order, as the one-process
kernel adds its chunks' rows, and updates with the same compiled code
(``kernels.finish_epoch``). Neither the number of workers, nor which finishes first,
nor the source's own chunking changes a bit of the result.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from .. import _compiled as _c
from .. import kernels as _k
from .._holdout import Holdout
from .._optstate import PARAMS
from ..kernels import OK
from . import _heldout, _stream, _worker

RETRIES = 3  # failed calls in a row before an epoch gives up


def pieces(m: int, plan: tuple, n_workers: int) -> list[tuple[int, int, np.ndarray]]:
    """(lo, hi, bounds) per piece: samples [lo, hi) holding whole chunks of the plan, and
    each chunk's blocks counted from the piece's first; at most one piece per worker."""
    blk, _, n_chunk = plan
    n_block = -(-m // blk)
    first = [c * n_block // n_chunk for c in range(n_chunk + 1)]  # as mlp._chunk_blocks
    k = max(1, min(n_workers, n_chunk))
    out = []
    for w in range(k):
        c0, c1 = w * n_chunk // k, (w + 1) * n_chunk // k
        b0 = first[c0]
        bounds = np.array(first[c0 : c1 + 1], dtype=np.int64) - b0
        out.append((b0 * blk, min(first[c1] * blk, m), bounds))
    return out


class Engine:
    """The pieces of one run (futures on the workers) and its epochs' round trips."""

    def __init__(self, client, source, p: dict, settings) -> None:
        self.client, self.source, self.settings = client, source, settings
        n_h, n_x = p["W1"].shape
        self.sizes = (n_x, n_h, p["W2"].shape[0])
        self.dtype = p["W1"].dtype
        self.n_par = _worker.n_params(self.sizes)
        self.futures: list = []  # the pieces: dask keeps how to build them again
        self.ranges: list = []  # their samples [lo, hi)
        self.actors: list = []
        self.holders: list = []
        self.kept: list = []  # futures the pieces are made from (a split's)
        self._parts: list = []  # a split's held-out parts
        # evaluate(flat) -> (loss, score) on the held-out samples, and how to rebuild
        # its actor; the mini-batch epochs' actor and its future (when there is one)
        self._evaluate = self._rebuild_eval = self._stream = self._streamer = None
        self.starts: list = []  # each piece's first training sample
        self.retries = 0
        self._sized(source.m)

    def _sized(self, m: int) -> None:
        """The plan and the pieces' spec for m training samples."""
        s, dtype = self.settings, self.dtype
        self.m = m
        self.plan = _c.plan_for(*self.sizes, dtype.itemsize, m)
        self.spec = {
            "output": s.output,
            "loss": s.loss,
            "p": _worker.unflatten(np.zeros(self.n_par), self.sizes, np.float64),  # shapes
            "dtype": dtype,
            "kind": _c._kind(s.activation, s.loss, s.output),
            "plan": self.plan,
            "scale": dtype.type((2.0 if s.loss == "mse" else 1.0) / m),
            "sizes": self.sizes,
        }

    def load(self) -> None:
        """Build every piece on its worker and wait for them; a piece that fails raises
        its error here (a shard that cannot be read, bad values, ...)."""
        workers = self._workers()
        for i, (lo, hi, bounds) in enumerate(pieces(self.m, self.plan, len(workers))):
            spec = dict(self.spec, bounds=bounds)
            self.futures.append(self.source.piece(self.client, lo, hi, spec, workers[i]))
            self.ranges.append((lo, hi))
            self.starts.append(lo)
        self._hold()

    def load_split(self) -> None:
        """``load`` for a run with validation: the split drawn on a worker as one process
        draws it, the training samples in pieces cut as one process cuts them, and the
        held-out ones on one worker behind a ``_heldout.Held`` actor (see there)."""
        c, s = self.client, self.settings
        split = self.source.split(c, self.spec, s.validation_fraction, s.seed)
        self.kept.append(split)
        self._sized(c.submit(_heldout.n_train, split).result())  # a bad Y raises here
        workers = self._workers()
        cuts = pieces(self.m, self.plan, len(workers))
        ends = c.submit(_heldout.edges, split, [lo for lo, _, _ in cuts], self.source.m)
        ends = ends.result()
        for i, (_, _, bounds) in enumerate(cuts):
            a, b = ends[i], ends[i + 1]
            keep = c.submit(_heldout.keep_mask, split, a, b)
            both = self.source.piece(c, a, b, dict(self.spec, bounds=bounds), workers[i], keep)
            self.futures.append(c.submit(_heldout.piece_of, both))
            self._parts.append(c.submit(_heldout.held_of, both))
            self.kept += [keep, both]
            self.ranges.append((a, b))
            self.starts.append(cuts[i][0])
        self._hold()
        self._rebuild_held()

    def _rebuild_held(self) -> None:
        """The Held actor over the held-out parts (built, or built again)."""
        self._wait_pieces()
        shared = self.settings.to_dict()
        held = self.client.submit(_heldout.Held, self._parts, shared, actor=True, pure=False)
        self.kept.append(held)
        actor = self._actor(held)
        self._evaluate = lambda flat: actor.evaluate(flat, self.sizes).result()
        self._rebuild_eval = self._rebuild_held

    def _workers(self) -> list[str]:
        return workers_of(self.client)

    def _wait_pieces(self) -> None:
        """Wait for every piece; one that failed raises: our own checks' errors as they
        are (they name the samples), anything else (a dask graph that failed, a worker
        that ran out of memory) as a RuntimeError naming the piece's samples."""
        for f, (lo, hi) in zip(self.futures, self.ranges, strict=True):
            exc = f.exception()  # waits for it
            if exc is None:
                continue
            if isinstance(exc, (ValueError, TypeError)) and "samples [" in str(exc):
                raise exc
            raise RuntimeError(
                f"samples [{lo}, {hi}) of the training data could not be loaded on the "
                f"cluster: {type(exc).__name__}: {exc}"
            ) from exc

    def _hold(self) -> None:
        """Wait for the pieces (dask builds again any that a dead worker lost) and put
        an actor beside each, which the epochs call."""
        self._wait_pieces()
        where = self.client.who_has(self.futures)
        self.holders = []  # their futures keep the actors alive
        for f in self.futures:
            # beside its piece if it can, elsewhere if that worker is gone (the scheduler
            # may not yet know of a death when this runs after one)
            near = list(where.get(f.key, ()))[:1]
            place = dict(workers=near, allow_other_workers=True) if near else {}
            self.holders.append(
                self.client.submit(_worker.Holder, f, actor=True, pure=False, **place)
            )
        self.actors = [self._actor(h) for h in self.holders]

    def _actor(self, future):
        """The actor of a future submitted with actor=True."""
        with self.client.as_current():  # an actor binds to the current client
            return future.result()

    def grads(self, p: dict) -> tuple[np.ndarray, float]:
        """(sums, slowest piece's compute seconds): the loss and gradient sums of all m
        samples for the parameters p, added in chunk order. A call that fails (a worker
        died) is made again on actors rebuilt from the pieces, up to RETRIES times."""
        flat = _worker.flatten(p)

        def call():
            calls = [a.rows(flat) for a in self.actors]  # all sent before any is awaited
            return [c.result() for c in calls]

        out = self._retrying(call, self._hold)
        grad = np.zeros(self.n_par + 1)
        for rows, _ in out:
            for row in rows:  # one add per row, in chunk order: mlp._sum_partials's bits
                grad += row
        return grad, max(t for _, t in out)

    def runner(self, p: dict, state, stop, timings: list | None):
        """``run(n_epochs, losses, first)`` for the driver (``_driver``'s contract)."""
        W1, b1, W2, b2 = (p[k] for k in PARAMS)
        new = np.empty(self.n_par, W1.dtype)
        fresh = np.empty((2, self.n_par))
        opt = (state.codes, state.hyper, state.moments, state.clock)

        def run(n_epochs: int, losses: np.ndarray, first: int = 0) -> tuple[int, int]:
            for i in range(n_epochs):
                if i and stop():
                    return i, OK
                t0 = time.perf_counter()
                grad, busy = self.grads(p)
                done, status = _k.finish_epoch(
                    losses, i, grad, W1, b1, W2, b2, new, fresh, self.m, first, *opt
                )
                if timings is not None:
                    timings.append((time.perf_counter() - t0, busy))
                if done >= 0:
                    return int(done), int(status)
            return n_epochs, OK

        return run

    def stream_runner(self, p: dict, state):
        """``run(n_epochs, losses, first)`` for mini-batch epochs (call after ``load`` or
        ``load_split``): a ``_stream.Stream`` actor runs them, the samples streamed to it
        from the pieces; it starts from the parameters and state sent with each call.
        ``orders`` (n_epochs, m), when given, are the epochs' sample orders."""
        self._make_stream()

        def run(n_epochs: int, losses: np.ndarray, first: int = 0, orders=None) -> tuple:
            flat = _worker.flatten(p)
            mine = (state.moments, state.clock, state.hyper, state.codes)
            out = self._retrying(
                lambda: self._stream.call(n_epochs, first, flat, mine, orders).result(),
                self._rebuild_stream,
            )
            got, n_done, status, flat, after = out
            losses[:n_epochs] = got
            _worker.put(p, flat)
            for a, new in zip(mine, after, strict=True):
                a[...] = new
            return int(n_done), int(status)

        return run

    def holdout(self, history):
        """A ``Holdout`` whose samples stay on a worker (call after ``load_split``): the
        driver's record of the scores and the best parameters lives here, each epoch's
        evaluation runs there."""
        engine = self

        class Remote(Holdout):
            def evaluate(self, p: dict) -> tuple[float, float]:
                flat = _worker.flatten(p)
                return engine._retrying(lambda: engine._evaluate(flat), engine._rebuild_eval)

        return Remote(None, None, self.settings, "numba", history)

    def _retrying(self, call, rebuild):
        """call(); when it fails (a lost worker shows as one of many comm errors),
        rebuild() the actors and call again, up to RETRIES times in a row. A call starts
        from what the client sends, so a repeated one gives the same bits."""
        for attempt in range(RETRIES + 1):
            try:
                return call()
            except Exception as exc:
                if attempt == RETRIES:
                    raise RuntimeError(
                        f"a call failed {RETRIES + 1} times on the cluster (workers lost?); "
                        f"last error: {exc!r}"
                    ) from exc
                self.retries += 1
                rebuild()

    def _rebuild_stream(self) -> None:
        """After a failed call: the pieces' holders, then the Stream actor over them."""
        self._hold()
        self._make_stream()

    def _make_stream(self) -> None:
        """The Stream actor over the pieces' holders."""
        spec = dict(self.spec, labels=self.source.y_rows is None)
        shared = self.settings.to_dict()
        starts = [*self.starts, self.m]
        w = _stream.window_size(spec, self.settings.batch_size, self.m)
        self._streamer = self.client.submit(
            _stream.Stream, self.holders, starts, shared, spec, w, actor=True, pure=False
        )
        self._stream = self._actor(self._streamer)

    def close(self) -> None:
        """Let the workers drop the pieces and the actors (each ``Actor`` object holds a
        future of its own, so no reference to one may outlive the run)."""
        self.actors = []
        self._evaluate = self._rebuild_eval = self._stream = None
        streamer = [self._streamer] if self._streamer is not None else []
        self._streamer = None
        # released, not cancelled: another run may already want the same keys
        for f in streamer + self.holders + self.futures + self.kept + self._parts:
            f.release()
        self.futures, self.holders, self.ranges, self.kept, self._parts = [], [], [], [], []
        # an actor's method calls leave reference cycles inside distributed (a bound call
        # and its future), which would keep the Actor objects, their futures, and so the
        # pieces in the workers' memory until the next collection of cycles: collect now
        gc.collect()


def workers_of(client) -> list[str]:
    """The cluster's workers, asked of the scheduler now (not cached); none is an error."""
    workers = sorted(client.ncores())
    if not workers:
        raise RuntimeError(
            "the dask cluster has no workers; start some (or wait for them with "
            "client.wait_for_workers(n)) first."
        )
    return workers
