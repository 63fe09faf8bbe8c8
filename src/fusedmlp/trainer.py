"""The epoch driver: ``train``, its result, and what happens around the kernels.

Python drives the epochs, the kernels do the arithmetic. Epochs run in calls of several
epochs each to a runner (the compiled ``_compiled.train_epochs`` or the reference
``_numpy_epochs``), both with one contract: ``run(params, X, Y, activation, loss, lr,
n_epochs, losses_out) -> (n_done, status)``, params updated in place, stopping before
the update of the first non-finite epoch. Between calls the driver logs, calls the
callback, checks early stopping and Ctrl-C; call lengths adapt so that each takes about
``_CALL_SECONDS``, which keeps the per-call cost negligible and Ctrl-C prompt. Chunking
never changes the arithmetic: a run gives the same bits however it was cut.
"""

from __future__ import annotations

import math
import numbers
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from . import _compiled, outofcore, reference
from ._validation import (
    PARAM_NAMES,
    check_activation,
    check_backend,
    check_count,
    check_data_for,
    check_loss,
    check_lr,
    check_network_size,
    check_params,
    check_seed,
    check_XY,
    params_in,
    warn_copy,
    work_dtype,
)
from .kernels import NONFINITE_GRADS as NONFINITE_LOSS  # status codes: the kernels' own
from .kernels import OK, UPDATE_OVERFLOW

_CALL_SECONDS = 0.05  # target length of one runner call


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Attributes
    ----------
    epoch : int
        The epoch at which it happened (0-based, counting any resumed epochs).
    params : dict
        The parameters at the start of the failing epoch. They are all finite: the
        update that would have overflowed is never applied, so nothing trained before
        the failure is lost (their own loss may be the non-finite one).
    losses : ndarray
        The losses of the epochs before ``epoch``.
    result : TrainResult
        Everything up to the failure as a result, ready for ``fusedmlp.save``.
    """

    def __init__(self, message: str, *, epoch: int, result: TrainResult):
        super().__init__(message)
        self.epoch = epoch
        self.result = result
        self.params = result.params
        self.losses = result.losses


class DataChanged(RuntimeError):
    """A memory-mapped data file changed while training read it.

    Training stops at the next check (every call of about 50 ms) instead of going on
    with changed data (a truncated file would kill the process with SIGBUS; see
    ``fusedmlp.outofcore``). ``.result`` holds everything trained up to ``.epoch``.
    """

    def __init__(self, message: str, *, epoch: int, result: TrainResult):
        super().__init__(message)
        self.epoch = epoch
        self.result = result


@dataclass
class TrainResult:
    """What ``train`` returns (and ``fusedmlp.load`` reads back).

    Attributes
    ----------
    params : dict
        Trained parameters {"W1", "b1", "W2", "b2"}.
    losses : ndarray of float64, shape (epochs,)
        ``losses[i]`` is the cost of the forward pass of epoch i, before its update (with
        mini-batches: the mean over the epoch's batches, each before its own update).
    interrupted : bool
        True when Ctrl-C stopped training early; params and losses are consistent.
    stop_epoch : int or None
        The epoch at which early stopping (``tol``/``patience``) ended training.
    """

    params: dict
    losses: np.ndarray
    activation: str
    loss: str
    lr: float
    backend: str = "numba"
    seed: int | None = None
    batch_size: int | None = None
    interrupted: bool = False
    stop_epoch: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """Number of epochs run (including resumed ones)."""
        return len(self.losses)

    @property
    def sizes(self) -> tuple:
        """(n_x, n_h, n_y)."""
        n_h, n_x = self.params["W1"].shape
        return (n_x, n_h, self.params["W2"].shape[0])

    @property
    def dtype(self) -> np.dtype:
        """The dtype training ran in."""
        return self.params["W1"].dtype

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """A2 for new data; see ``fusedmlp.predict_proba``."""
        from .api import predict_proba

        return predict_proba(self.params, X, activation=self.activation)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 labels for new data; see ``fusedmlp.predict``."""
        from .api import predict

        return predict(self.params, X, activation=self.activation)


# ---------------------------------------------------------------------------
# runners: n_epochs of gradient descent, params updated in place -> (n_done, status)


def _numpy_epochs(p, X, Y, activation, loss, lr, n_epochs, losses_out):
    """The reference runner; same contract as ``_compiled.train_epochs``."""
    # overflow is detected and reported by the driver; numpy's warnings would be noise
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(n_epochs):
            L, g = reference.loss_and_grads(p, X, Y, activation, loss)
            losses_out[i] = L
            status = _apply(p, g, lr, L)
            if status != OK:
                return i, status
    return n_epochs, OK


def _apply(p, g, lr, L):
    """p -= lr g, all or nothing; the status says why not."""
    if not (math.isfinite(L) and all(np.isfinite(v).all() for v in g.values())):
        return NONFINITE_LOSS
    new = {k: p[k] - lr * g["d" + k] for k in PARAM_NAMES}
    if not all(np.isfinite(v).all() for v in new.values()):
        return UPDATE_OVERFLOW
    for k in PARAM_NAMES:
        p[k][...] = new[k]
    return OK


def _minibatch_runner(backend, batch_size, seed):
    """A runner doing mini-batch epochs: a fresh permutation per epoch from (seed, epoch)."""

    def step(p, Xb, Yb, activation, loss, lr, out):
        """One gradient step on one batch: (status); out[0] = the batch's loss."""
        if backend == "numpy":
            return _numpy_epochs(p, Xb, Yb, activation, loss, lr, 1, out)[1]
        # the compiled runner picks the serial kernel for small batches: no thread
        # launch per batch
        return _compiled.train_epochs(p, Xb, Yb, activation, loss, lr, 1, out)[1]

    def run(first, p, X, Y, activation, loss, lr, n_epochs, losses_out):
        m = X.shape[1]
        out = np.zeros(1)
        for i in range(n_epochs):
            # the permutation depends on (seed, epoch) only, so a resumed run
            # shuffles exactly as an uninterrupted one
            order = np.random.default_rng([seed, first + i]).permutation(m)
            total = 0.0
            for start in range(0, m, batch_size):
                idx = order[start : start + batch_size]
                status = step(p, X[:, idx], Y[:, idx], activation, loss, lr, out)
                if status != OK:
                    losses_out[i] = out[0]
                    return i, status
                total += out[0] * len(idx)
            losses_out[i] = total / m
        return n_epochs, OK

    return run


# ---------------------------------------------------------------------------
# the driver's helpers


class _CtrlC:
    """Turns Ctrl-C into a flag the driver reads between runner calls.

    Only the main thread can own a signal handler; elsewhere a KeyboardInterrupt is
    caught between calls instead.
    """

    def __init__(self) -> None:
        self.hit = False
        self._old = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
            except ValueError:  # embedded interpreters without signal support
                self._old = None
        return self

    def _handler(self, signum, frame) -> None:
        self.hit = True
        # a Python handler of the caller's (the command line counts presses) hears of
        # it too; Python's default one would raise KeyboardInterrupt, so it does not
        if callable(self._old) and self._old is not signal.default_int_handler:
            self._old(signum, frame)

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _Progress:
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


class _EarlyStop:
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


class _Losses:
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


def _check_resume(resume: object) -> dict:
    """A TrainResult's settings, each checked as train checks its own arguments."""
    if not isinstance(resume, TrainResult):
        raise TypeError(
            f"resume must be a TrainResult (from train or fusedmlp.load), got "
            f"{type(resume).__name__}."
        )
    losses = np.asarray(resume.losses)
    if losses.ndim != 1 or losses.dtype.kind not in "biuf":
        raise ValueError(f"resume.losses must be a 1-D array of numbers, got {losses.shape}.")
    batch = resume.batch_size
    return {
        "params": check_params(resume.params),
        "losses": losses.astype(np.float64),
        "activation": check_activation(resume.activation),
        "loss": check_loss(resume.loss),
        "lr": check_lr(resume.lr),
        "seed": None if resume.seed is None else check_seed(resume.seed),
        "batch_size": None if batch is None else check_count("batch_size", batch, minimum=1),
    }


def _snapshot(p: dict) -> dict:
    return {k: v.copy() for k, v in p.items()}


def _check_threads(threads: object) -> int:
    n = check_count("threads", threads, minimum=1)
    top = numba.config.NUMBA_NUM_THREADS
    if n > top:
        raise ValueError(
            f"threads={n} but numba was started with at most {top} threads "
            f"(NUMBA_NUM_THREADS); pass threads <= {top}."
        )
    return n


def _check_tol(tol: object) -> float | None:
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a number >= 0 or None, got {tol!r}.")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}.")
    return float(tol)


# ---------------------------------------------------------------------------
# train


def train(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    hidden: int | None = None,
    activation: str | None = None,
    loss: str | None = None,
    epochs: int = 1000,
    lr: float | None = None,
    init: dict | None = None,
    seed: int | None = None,
    backend: str = "numba",
    batch_size: int | None = None,
    tol: float | None = None,
    patience: int = 10,
    verbose: bool = False,
    log_every: int = 100,
    callback=None,
    threads: int | None = None,
    resume: TrainResult | None = None,
) -> TrainResult:
    """Train a one-hidden-layer network by gradient descent.

    Parameters
    ----------
    X : array (n_x, m)
        Inputs, one sample per column. float32 data is trained in float32, anything
        else in float64.
    Y : array (n_y, m), or (m,) for one output
        Targets in [0, 1] (required for cross-entropy).
    hidden : int, default 4
        Hidden units; taken from ``init``/``resume`` when one is given.
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
        Hidden activation; the output is always a sigmoid.
    loss : {"mse", "cross_entropy"}, default "mse"
    epochs : int
        Epochs to run in this call (>= 0); with ``resume``, epochs *more*.
    lr : float, default 0.2
        Learning rate (> 0).
    init : dict, optional
        Starting parameters {"W1", "b1", "W2", "b2"}; copied, never modified.
    seed : int, optional
        Seed for ``init_params`` (when ``init`` is not given) and for the mini-batch
        shuffles. None draws one, recorded in the result so the run can be repeated.
    backend : {"numba", "numpy"}
        "numba" runs the fused compiled kernels; "numpy" the plain reference.
    batch_size : int, optional
        Mini-batch gradient descent with batches of this size, reshuffled every epoch
        from (seed, epoch); None (default) is full-batch.
    tol, patience : float, int
        Early stopping: stop once the loss has not improved on its best by more than
        ``tol`` for ``patience`` epochs. The result holds exactly the epochs up to and
        including that one (``stop_epoch``). None (default) never stops early.
    verbose : bool
        Progress: a tqdm bar when stderr is a terminal, otherwise a line
        "Epoch 100: loss 0.2432" every ``log_every`` epochs. Silent by default.
    log_every : int
        Epochs between log lines and callback calls.
    callback : callable, optional
        ``callback(epoch, loss, params)`` after epochs 0, log_every, 2 log_every, ...:
        the epoch's loss and the parameters after its update. Returning True stops
        training there.
    threads : int, optional
        Kernel threads for this call (``numba.set_num_threads``), restored afterwards.
    resume : TrainResult, optional
        Continue a previous result (from ``train`` or ``fusedmlp.load``): its
        parameters, activation, loss, lr, seed and batch size, its losses kept in front.
        Gives the same bits as one uninterrupted run with the same backend and threads.

    Returns
    -------
    TrainResult
        ``.params``, ``.losses`` (``losses[i]`` is the cost before epoch i's update),
        ``.interrupted``, ``.stop_epoch`` and the configuration.

    Raises
    ------
    TrainingDiverged
        If the loss or a parameter stops being finite; ``.epoch`` says when and
        ``.params`` holds the last finite parameters.

    Notes
    -----
    Ctrl-C during training stops at the next runner call boundary (well under a
    second) and returns the result so far with ``interrupted=True``.

    Examples
    --------
    >>> from fusedmlp import datasets
    >>> X, Y = datasets.planar()
    >>> res = train(X, Y, epochs=10, seed=2)
    >>> res.losses.shape
    (10,)
    """
    from .api import init_params

    backend = check_backend(backend)
    epochs = check_count("epochs", epochs, minimum=0)
    log_every = check_count("log_every", log_every, minimum=1)
    patience = check_count("patience", patience, minimum=1)
    tol = _check_tol(tol)
    if batch_size is not None:
        batch_size = check_count("batch_size", batch_size, minimum=1)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
    if threads is not None:
        threads = _check_threads(threads)

    history = np.zeros(0)
    if resume is not None:
        if init is not None:
            raise ValueError("pass either init or resume, not both: resume carries params.")
        kept = _check_resume(resume)
        for name, given in (("activation", activation), ("loss", loss)):
            if given is not None and given != kept[name]:
                raise ValueError(
                    f"{name}={given!r} but the resumed run used {kept[name]!r}; leave "
                    f"{name} out to continue it."
                )
        activation, loss = kept["activation"], kept["loss"]
        lr = kept["lr"] if lr is None else lr
        seed = kept["seed"] if seed is None else seed
        batch_size = kept["batch_size"] if batch_size is None else batch_size
        init, history = kept["params"], kept["losses"]
    activation = check_activation("sigmoid" if activation is None else activation)
    loss = check_loss("mse" if loss is None else loss)
    lr = check_lr(0.2 if lr is None else lr)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    else:
        seed = check_seed(seed)

    if init is not None:
        p = check_params(init)
        n_h, n_x = p["W1"].shape
        if hidden is not None and check_count("hidden", hidden, minimum=1) != n_h:
            raise ValueError(
                f"hidden={hidden!r} but the starting parameters have W1 of shape "
                f"{p['W1'].shape}, i.e. {n_h} hidden units; leave hidden out."
            )
        X, Y = check_data_for(p, X, Y, loss, training=True)
    else:
        n_h = check_count("hidden", 4 if hidden is None else hidden, minimum=1)
        X, Y = check_XY(X, Y, loss, training=True)
        check_network_size(X.shape[0], n_h, Y.shape[0], name="hidden")
        p = init_params(X.shape[0], n_h, Y.shape[0], seed=seed)
    dtype = work_dtype(X)
    p = {k: np.array(v, order="C") for k, v in params_in(p, dtype).items()}  # our own copy
    if backend == "numba":
        # once here, not in every runner call: the kernels want C-contiguous data
        for name, a in (("X", X), ("Y", Y)):
            if not a.flags.c_contiguous:
                warn_copy(name, a, "not C-contiguous (a transposed or strided view)")
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y, dtype=dtype)

    first = len(history)
    if batch_size is not None:
        run = _minibatch_runner(backend, batch_size, seed)
    elif backend == "numpy":

        def run(first, *args):  # full batch: every epoch is the same computation
            return _numpy_epochs(*args)

    else:
        # prepared once: a call then costs ~1 us, so progress every few epochs is free
        compiled_run = _compiled.epoch_runner(p, X, Y, activation, loss, lr)

        def run(first, p, X, Y, activation, loss, lr, n, losses_out):
            return compiled_run(n, losses_out)

    losses = _Losses(history, first + epochs)

    result = TrainResult(
        params=p,
        losses=history,
        activation=activation,
        loss=loss,
        lr=lr,
        backend=backend,
        seed=seed,
        batch_size=batch_size,
    )
    old_threads = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(threads)
    try:
        done, status = _drive(
            run,
            result,
            losses,
            X,
            Y,
            first,
            first + epochs,
            tol,
            patience,
            verbose,
            log_every,
            callback,
        )
    finally:
        if threads is not None:
            numba.set_num_threads(old_threads)
    result.losses = losses.final(done)
    if isinstance(status, str):  # the message of the FileWatch
        raise DataChanged(
            f"{status}: training stopped after epoch {done - 1}. Data files must not change "
            "while training reads them; the result so far is in the exception's .result.",
            epoch=done,
            result=result,
        )
    if status != OK:
        what = "the loss or its gradients became non-finite"
        if status == UPDATE_OVERFLOW:
            what = "the update overflowed a parameter to inf"
        raise TrainingDiverged(
            f"training diverged at epoch {done}: {what} (lr={lr} is probably too large; "
            "try a smaller lr). The last finite parameters are in the exception's "
            ".params, the losses so far in .losses, and all of it in .result.",
            epoch=done,
            result=result,
        )
    return result


def _drive(run, result, buf, X, Y, first, last, tol, patience, verbose, log_every, callback):
    """Epochs [first, last) in runner calls; returns (epochs done in total, status)."""
    p = result.params
    act, loss, lr = result.activation, result.loss, result.lr
    progress = _Progress(verbose, last, first, X.shape[1])
    early = None if tol is None else _EarlyStop(tol, patience)
    watch = outofcore.FileWatch(X=X, Y=Y)
    own = dict(p)  # the arrays the runner updates; a callback's replacements go into them
    aligned = callback is not None or progress.lines
    done, status, size = first, OK, 1
    try:
        with _CtrlC() as ctrl_c:
            while done < last and status == OK:
                n = min(size, last - done)
                if aligned:
                    # calls end right after each logged epoch (0, log_every, ...), so the
                    # callback sees the parameters after that epoch's update
                    next_log = -(-done // log_every) * log_every
                    n = min(n, next_log + 1 - done)
                losses = buf.ensure(done + n)
                before = _snapshot(p) if early is not None else None
                t0 = time.perf_counter()
                try:
                    n_done, status = run(done, p, X, Y, act, loss, lr, n, losses[done : done + n])
                except KeyboardInterrupt:  # not the main thread: no handler of ours
                    result.interrupted = True
                    break
                took = time.perf_counter() - t0
                if early is not None:
                    stop = early.check(losses, done, done + n_done)
                    if stop >= 0:
                        # replay from the snapshot so the result ends exactly at the
                        # stop epoch, whatever the call boundaries were
                        for k in p:
                            p[k][...] = before[k]
                        n = stop + 1 - done
                        run(done, p, X, Y, act, loss, lr, n, losses[done : stop + 1])
                        n_done, status = stop + 1 - done, OK
                        result.stop_epoch = stop
                done += n_done
                progress.update(n_done, done - 1, float(losses[done - 1]) if done else 0.0)
                last_epoch = done - 1
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
                if ctrl_c.hit:
                    result.interrupted = True
                    break
                size = _next_size(size, n_done, took)
    finally:
        progress.close()
    return done, status


def _next_size(size: int, n_done: int, took: float) -> int:
    """Epochs for the next call, aiming at _CALL_SECONDS: prompt Ctrl-C, negligible call
    overhead; grows fast from 1 epoch (up to 64x a call), shrinks by halves."""
    if n_done and took < _CALL_SECONDS / 2:
        grow = min(64.0, _CALL_SECONDS / max(took, 1e-9))
        return min(int(size * grow), 1 << 20)
    if took > _CALL_SECONDS * 2 and size > 1:
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
