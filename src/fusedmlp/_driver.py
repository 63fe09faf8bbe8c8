"""The epoch driver behind ``train``: runners, progress, stopping, Ctrl-C.

Python drives the epochs, the kernels do the arithmetic. Epochs run in calls of several
epochs each to a runner (the compiled ``_compiled.epoch_runner`` or the reference
``numpy_runner``), both with one contract: ``run(n_epochs, losses_out, first) ->
(n_done, status)``, the parameters and the optimizer's state updated in place, stopping
before the update of the first non-finite epoch. Between calls the driver logs, calls
the callback, checks early stopping, the data files and Ctrl-C; call lengths adapt so
that each takes about ``CALL_SECONDS``, which keeps the per-call cost negligible and
Ctrl-C prompt. Chunking never changes the arithmetic: a run gives the same bits however
it was cut.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time

import numpy as np

from . import _compiled, _compiled_train, outofcore, reference
from ._optstate import OptState
from ._validation import PARAM_NAMES
from .kernels import NONFINITE_GRADS as NONFINITE_LOSS  # status codes: the kernels' own
from .kernels import OK, SCHEDULE_STOP, UPDATE_OVERFLOW  # noqa: F401

CALL_SECONDS = 0.05  # target length of one runner call

# ---------------------------------------------------------------------------
# runners: run(n_epochs, losses_out, first) -> (n_done, status), params and state
# updated in place


def numpy_epochs(p, X, Y, activation, loss, lr, n_epochs, losses_out):
    """n_epochs of plain full-batch gradient descent by the reference (the benchmarks'
    and the scaling experiment's NumPy baseline); same contract as
    ``_compiled.train_epochs``."""
    from ._compiled_train import gd_state

    state = gd_state(p, activation, loss, "sigmoid", lr)
    return numpy_runner(p, X, Y, state)(n_epochs, losses_out)


def numpy_runner(p, X, Y, state: OptState, stop=None, weights=None):
    """The reference runner for ``state``'s settings: full batch, or shuffled
    mini-batches in the compiled runner's order (the same permutations, the same
    updates, so the two backends agree to rounding).

    ``stop()`` (optional) is asked between mini-batches: an epoch cut short is undone
    (parameters and optimizer state) and not counted, so that it can be run again whole
    and resuming gives the same bits. ``weights`` (m,): the samples' weights, or None.
    """
    s = state.settings
    m = X.shape[1]
    if Y.ndim == 1:  # class indices: the reference takes one-hot columns
        Y = reference.one_hot(Y, p["W2"].shape[0], X.dtype)
    batch = s.batch_size if s.batch_size is not None and s.batch_size < m else None

    if weights is not None and batch is None:
        _compiled_train.check_batch_weights(weights, None, m)
    # only a weight of 0 can leave a batch summing to 0 (train's weights are >= 0)
    zeros = weights is not None and not (weights > 0).all()

    def update(Xb, Yb, wb):
        """(loss, status) of one update from the samples Xb, Yb (weights wb or None)."""
        L, g = reference.loss_and_grads(p, Xb, Yb, s.activation, s.loss, s.output, s.alpha, wb)
        if not math.isfinite(L):
            return L, NONFINITE_LOSS
        return L, state.step(p, g)

    def epoch(i):
        """(loss, status) of epoch i; status None when stop() cut it short."""
        if batch is None:
            return update(X, Y, weights)
        order = np.random.default_rng([s.seed, i]).permutation(m)
        if zeros:
            _compiled_train.check_batch_weights(weights, order[None, :], batch)
        at_start = (_snapshot(p), state.arrays()) if stop is not None else None
        total = 0.0
        for start in range(0, m, batch):
            if start and stop is not None and stop():
                _restore(p, state, at_start)
                return 0.0, None
            idx = order[start : start + batch]
            L, status = update(X[:, idx], Y[:, idx], None if weights is None else weights[idx])
            if status != OK:
                return L, status
            total += L * len(idx)
        return total / m, OK

    def run(n_epochs, losses_out, first=0):
        # overflow is detected and reported by the driver; numpy's warnings would be noise
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for i in range(n_epochs):
                L, status = epoch(first + i)
                if status is None:
                    return i, OK
                losses_out[i] = L
                if status != OK:
                    return i, status
                if state.epoch_end(L, first + i, m):
                    return i + 1, SCHEDULE_STOP
        return n_epochs, OK

    return run


def make_runner(backend, p, X, Y, state: OptState, stop=None, weights=None):
    """The runner for these settings: ``run(n_epochs, losses_out, first)``; ``weights``
    the samples' weights, or None."""
    if backend == "numpy":
        return numpy_runner(p, X, Y, state, stop, weights)
    s = state.settings
    # prepared once: a call then costs ~1 us, so progress every few epochs is free
    return _compiled.epoch_runner(
        p, X, Y, s.activation, s.loss, output=s.output, state=state,
        batch_size=s.batch_size, seed=s.seed, weights=weights,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# the driver's helpers


class CtrlC:
    """Turns Ctrl-C into a flag the driver reads between runner calls.

    Only the main thread can own a signal handler; elsewhere a KeyboardInterrupt is
    caught between calls instead. A Python handler that was in place is told of every
    press too (the command line counts them), and one that reports a press still
    ``pending`` (pressed before training began) starts the flag set.
    """

    def __init__(self) -> None:
        self.hit = False
        self._old = None
        self._installed = False

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # embedded interpreters without signal support
                pass
        self.hit = bool(getattr(self._old, "pending", False))
        return self

    def _handler(self, signum, frame) -> None:
        self.hit = True
        # Python's default handler would raise KeyboardInterrupt: only others are told
        if callable(self._old) and self._old is not signal.default_int_handler:
            try:
                self._old(signum, frame)
            except KeyboardInterrupt:
                pass  # raising here would cut a parameter update in two; stop instead

    def __exit__(self, *exc) -> None:
        if self._installed:
            # None: the old handler was not set from Python; Python's own is the best guess
            old = self._old if self._old is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, old)
            self._installed = False


class Progress:
    """tqdm bar on a terminal, plain lines otherwise, nothing when not verbose."""

    def __init__(self, verbose: bool, total: int, start: int, m: int) -> None:
        self.bar = None
        self.lines = False
        self.m = m
        if not verbose:
            return
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, unit="epoch", dynamic_ncols=True)
        else:
            self.lines = True
        self.t0 = time.perf_counter()
        self.start = start

    def update(self, n_new: int, epoch: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(n_new)
            rate = (epoch + 1 - self.start) * self.m / (time.perf_counter() - self.t0 + 1e-12)
            self.bar.set_postfix(loss=f"{loss:.4g}", samples_per_s=f"{rate:.3g}")

    def line(self, epoch: int, loss: float) -> None:
        if self.lines:
            try:
                print(f"Epoch {epoch}: loss {loss:.6f}", flush=True)
            except (BrokenPipeError, ValueError):  # stdout closed (`| head`): train on
                self.lines = False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EarlyStop:
    """Finds the first epoch i at which the loss has not beaten its earlier best,
    min(losses[: i - patience + 1]), by more than tol anywhere in the last ``patience``
    epochs losses[i - patience + 1 : i + 1]. Vectorised over each call's new epochs,
    with the running best carried along, so the cost stays O(epochs) overall."""

    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.q, self.best = 0, math.inf  # best = min(losses[:q])

    def check(self, losses: np.ndarray, lo: int, upto: int) -> int:
        p = self.patience
        s = max(lo, p)
        if s >= upto:
            return -1
        e0 = s - p + 1  # prefix end for epoch s
        if e0 > self.q:
            self.best = min(self.best, float(losses[self.q : e0].min()))
            self.q = e0
        # best_before[t] for epoch s + t: min(best, losses[e0 : e0 + t])
        best_before = np.minimum.accumulate(np.concatenate([[self.best], losses[e0 : upto - p]]))
        window = np.lib.stride_tricks.sliding_window_view(losses[e0:upto], p).min(axis=1)
        hits = np.flatnonzero(window > best_before - self.tol)
        return int(s + hits[0]) if hits.size else -1


class Losses:
    """The losses array, grown by doubling as epochs run: its memory follows the epochs
    actually run, not the number asked for (epochs=10**9 with early stopping)."""

    def __init__(self, history: np.ndarray, total: int) -> None:
        self.total = total
        self.a = np.empty(min(total, len(history) + 1024))
        self.a[: len(history)] = history

    def ensure(self, upto: int) -> np.ndarray:
        """The array, with room for epochs [0, upto)."""
        if upto > len(self.a):
            bigger = np.empty(min(self.total, max(upto, 2 * len(self.a))))
            bigger[: len(self.a)] = self.a
            self.a = bigger
        return self.a

    def final(self, done: int) -> np.ndarray:
        """losses[:done] in an array of its own size (no larger buffer kept alive)."""
        return self.a if done == len(self.a) else self.a[:done].copy()


def _snapshot(p: dict) -> dict:
    return {k: v.copy() for k, v in p.items()}


def _restore(p: dict, state: OptState, saved: tuple) -> None:
    """Parameters and optimizer state back to a (_snapshot(p), state.arrays()) pair."""
    for k in p:
        p[k][...] = saved[0][k]
    state.restore(saved[1])


def drive(run, result, buf, X, Y, first, last, settings, ctrl_c, state, holdout=None):
    """Epochs [first, last) in runner calls; returns (epochs done in total, status).

    ``settings``: tol, patience, verbose, log_every, callback (as train's); ``ctrl_c`` the
    CtrlC in force; ``state`` the optimizer's (restored with the parameters when early
    stopping replays a call); ``holdout`` the validation (``_holdout.Holdout``), which
    makes every call one epoch long so that each epoch is scored. ``status`` is a
    kernels status code, or the FileWatch's message when a memory-mapped data file
    changed.
    """
    tol, patience, verbose, log_every, callback = settings
    p = result.params
    progress = Progress(verbose, last, first, X.shape[1])
    # tol stops on the training loss, unless validation or the adaptive schedule (whose
    # own tolerance it is) use it
    on_loss = tol is not None and holdout is None and not state.adaptive
    early = EarlyStop(tol, patience) if on_loss else None
    watch = outofcore.FileWatch(X=X, Y=Y)
    own = dict(p)  # the arrays the runner updates; a callback's replacements go into them
    aligned = callback is not None or progress.lines
    done, status, size = first, OK, 1
    if state.stopped and first:  # resumed after the adaptive schedule stopped: stay there
        result.stop_epoch, last = first - 1, first
    try:
        while done < last and status == OK and not ctrl_c.hit:
            n = 1 if holdout is not None else min(size, last - done)
            if aligned:
                # calls end right after each logged epoch (0, log_every, ...), so the
                # callback sees the parameters after that epoch's update
                next_log = -(-done // log_every) * log_every
                n = min(n, next_log + 1 - done)
            losses = buf.ensure(done + n)
            t0 = time.perf_counter()
            try:
                n_done, status = _call(run, early, p, state, losses, done, n, result)
            except KeyboardInterrupt:  # not the main thread: no handler of ours
                result.interrupted = True
                break
            took = time.perf_counter() - t0
            done += n_done
            if status == SCHEDULE_STOP:  # the adaptive rate reached its floor
                status, result.stop_epoch = OK, done - 1
            progress.update(n_done, done - 1, float(losses[done - 1]) if done else 0.0)
            last_epoch = done - 1
            if holdout is not None and n_done and status == OK:
                if holdout.record(last_epoch, p) and result.stop_epoch is None:
                    result.stop_epoch = last_epoch  # no better validation score for long
            if n_done and last_epoch % log_every == 0 and status == OK:
                progress.line(last_epoch, float(losses[last_epoch]))
                if callback is not None and _call_back(callback, last_epoch, losses, p, own):
                    result.stop_epoch = last_epoch  # the callback asked to stop
                    break
            if result.stop_epoch is not None:
                break
            changed = watch.changed() if watch else None
            if changed:
                return done, changed
            size = _next_size(size, n_done, took)
        if ctrl_c.hit and result.stop_epoch is None:
            result.interrupted = True  # also when Ctrl-C came before the first call
    finally:
        progress.close()
    return done, status


def _call(run, early, p, state, losses, done, n, result) -> tuple[int, int]:
    """One runner call of n epochs from epoch ``done``; with early stopping, cut back to
    the stop epoch when it falls inside the call: (epochs done, status)."""
    before = (_snapshot(p), state.arrays()) if early is not None else None
    n_done, status = run(n, losses[done : done + n], done)
    if early is not None:
        stop = early.check(losses, done, done + n_done)
        if stop >= 0:
            # replay from the snapshot so the result ends exactly at the stop epoch,
            # whatever the call boundaries were
            _restore(p, state, before)
            run(stop + 1 - done, losses[done : stop + 1], done)
            n_done, status = stop + 1 - done, OK
            result.stop_epoch = stop
    return n_done, status


def _next_size(size: int, n_done: int, took: float) -> int:
    """Epochs for the next call, aiming at CALL_SECONDS: prompt Ctrl-C, negligible call
    overhead; grows fast from 1 epoch (up to 64x a call), shrinks by halves."""
    if n_done and took < CALL_SECONDS / 2:
        grow = min(64.0, CALL_SECONDS / max(took, 1e-9))
        return min(int(size * grow), 1 << 20)
    if took > CALL_SECONDS * 2 and size > 1:
        return size // 2
    return size


def _call_back(callback, epoch: int, losses: np.ndarray, p: dict, own: dict) -> bool:
    """callback(epoch, loss, p); True when it asks to stop.

    The callback may change the parameters in place or replace entries of ``p``: a
    replacement is copied into the trainer's own array (same shape, cast to the training
    dtype), so both backends continue from it and the result holds the trainer's arrays.
    """
    answer = callback(epoch, float(losses[epoch]), p)
    if answer is not None and not isinstance(answer, (bool, np.bool_)):
        raise TypeError(
            f"callback returned {answer!r} ({type(answer).__name__}); it must return True "
            "to stop training, or False or None to go on."
        )
    if set(p) != set(own):
        raise ValueError(
            f"the callback changed the parameter keys to {sorted(p)}; it may change the "
            f"arrays of {list(PARAM_NAMES)} but not add or remove entries."
        )
    for k in PARAM_NAMES:
        mine = own[k]
        if p[k] is not mine:
            new = np.asarray(p[k])
            if new.shape != mine.shape or new.dtype.kind not in "biuf":
                raise ValueError(
                    f"the callback replaced {k} {mine.shape} by a {new.dtype} array of shape "
                    f"{new.shape}; a replacement must be real numbers of the same shape."
                )
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                mine[...] = new
            p[k] = mine
        if not np.isfinite(mine).all():
            raise ValueError(
                f"after the callback at epoch {epoch}, {k} holds NaN or inf (in "
                f"{mine.dtype}); a callback must leave the parameters finite."
            )
    return bool(answer)
