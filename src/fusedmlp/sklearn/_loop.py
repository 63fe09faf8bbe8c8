"""scikit-learn's epoch loop (``_fit_stochastic``) over the compiled epochs.

The order of everything that draws from the random stream or decides when to stop is
scikit-learn's: the early-stopping split, then per epoch one shuffle of the sample
order, the epoch, the no-improvement count, the schedule's end-of-epoch rate, and the
stopping rule. The rate lives in the optimizer state's clock, set here between epochs.

Two ways to run the epochs, with the same results:

- many epochs per kernel call (the usual case: Adam, or "sgd" with a constant or
  adaptive rate, no early stopping, not verbose): the kernel counts the epochs without
  improvement itself (kernels.optim's PLATEAU schedule) and returns at the first epoch
  where scikit-learn would stop or divide the rate; the shuffles of the epochs it did
  not reach are taken back from the random stream. A call runs at most about
  ``CALL_S`` seconds, so that Ctrl-C is seen soon. Measured on iris (105 samples, 64
  hidden units, adam, 200 epochs, the fit of bench/estimators.py): 8.1 ms per fit with
  a call per epoch, 4.4 ms with calls of many epochs (1, 16, then 183);
- one epoch per call, the bookkeeping in Python after each (early stopping needs the
  validation score of every epoch; the "invscaling" rate changes every epoch; verbose
  prints every epoch).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from .. import _compiled_train
from .. import kernels as _k
from .._blas_threads import one_blas_thread
from .._driver import CtrlC
from ..kernels import optim as koptim
from ..kernels.optim import BEST, COUNT, LR, PATIENCE, SCHEDULE, TOL
from . import _shuffle

CALL_S = 0.2  # the longest a call of many epochs should run (Ctrl-C waits for it)

MIN_LR = 1e-6  # scikit-learn's floor of the adaptive schedule
NONFINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large "
    "values and need to be preprocessed."
)


class Loop:
    """One call of fit or partial_fit: the data prepared once, then ``run()``."""

    def __init__(self, est, X, T, y, params: dict, incremental: bool, weights=None):
        self.est, self.params, self.incremental = est, params, incremental
        self.weights, self.w_val = weights, None  # sample_weight: checked, or None
        self.val_score = None  # early stopping: the held-out score (_no_improvement)
        if est.early_stopping:
            train, val = _split(est, X.shape[0], y)
            # the validation samples in the kernels' layout once, not once per epoch
            self.Xk_val, self.y_val = np.ascontiguousarray(np.asarray(X[val]).T), y[val]
            X, T = X[train], T[..., train]
            if weights is not None:  # split as scikit-learn splits them, with X and y
                self.weights, self.w_val = weights[train], weights[val]
        self.n = X.shape[0]
        batch = _batch(est.batch_size, self.n)
        self.mini = batch < self.n
        self.run_k = self._runner(X, T, batch if self.mini else None)
        self.order = np.arange(self.n)
        self.stream = _shuffle.Stream(est._random_state)  # the shuffles' stream
        self.losses = np.empty(1)  # grown to the epochs of a call

    def _runner(self, X, T, batch: int | None):
        """``run_k(k, losses[, orders=])``: k epochs (of mini-batches of ``batch``, in
        the orders given) from the parameters and the estimator's optimizer state."""
        s = self.est._settings_
        # mini-batches are gathered from X's transpose, a view (the runner copies it to
        # feature rows only where it gathers by feature); full batches read rows
        Xk = X.T if batch else np.ascontiguousarray(X.T)
        return _compiled_train.epoch_runner(
            self.params, Xk, T, s.activation, s.loss, output=s.output,
            state=self.est._state, batch_size=batch, weights=self.weights,
        )  # fmt: skip

    def run(self) -> None:
        est = self.est
        many = not (est.early_stopping or est.verbose or self._invscaling())
        # Ctrl-C becomes a flag read between calls (the trainer's CtrlC), so that a call's
        # epochs are always recorded with the parameters they produced; off the main
        # thread a KeyboardInterrupt is caught instead
        try:
            with CtrlC() as ctrl_c, self._blas():
                est.n_iter_ = 0
                self._calls(many, ctrl_c)
            if ctrl_c.hit:
                warnings.warn("Training interrupted by user.", stacklevel=4)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        finally:
            est._keep(self.params)
        if est.early_stopping:
            est.coefs_, est.intercepts_ = est._best

    def _blas(self):
        """BLAS at one thread for the whole loop (a context): the kernel calls inside
        then only count themselves in (``one_blas_thread`` nests), instead of setting
        and restoring the libraries' counts each call, about 3 us, twice an epoch with
        early stopping. Nothing in the loop's own Python calls BLAS."""
        return one_blas_thread()

    def _calls(self, many: bool, ctrl_c: CtrlC) -> None:
        """Kernel calls until scikit-learn's loop would end (or Ctrl-C)."""
        est = self.est
        k = 1
        while est.n_iter_ < est.max_iter and not ctrl_c.hit:
            k = min(k, est.max_iter - est.n_iter_)
            start = time.perf_counter()
            stop = self._epochs(k) if many else self._epoch()
            if stop or self.incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached "
                    f"and the optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=6,
                )
            # next call: about CALL_S seconds of epochs, at most 16 times as many as this
            # one (the first call's single epoch, with the call's own cost, is a rough
            # measure): 1, 16, then what CALL_S allows
            per = (time.perf_counter() - start) / k
            k = max(1, min(16 * k, int(CALL_S / max(per, 1e-9))))

    def _invscaling(self) -> bool:
        return self.est.solver == "sgd" and self.est.learning_rate == "invscaling"

    def _shuffled(self, k: int) -> np.ndarray | None:
        """The sample orders of the next k epochs (k shuffles from the stream); None for
        full-batch epochs, whose kernel takes no order (the shuffles are drawn all the
        same, to keep the stream where scikit-learn's is)."""
        if self.est.shuffle:
            self.order = self.order.copy()  # shuffled in place; _epochs may keep the old
            kept = self.stream.orders(self.order, k, self.mini)
            return kept if self.mini else None
        return np.tile(self.order, (k, 1)) if self.mini else None

    def _call(self, k: int, orders: np.ndarray) -> tuple[int, int]:
        if self.mini:
            done, status = self.run_k(k, self.losses[:k], orders=orders)
        else:
            done, status = self.run_k(k, self.losses[:k])
        if status in (_k.NONFINITE_GRADS, _k.UPDATE_OVERFLOW):
            self._record(done)
            raise ValueError(NONFINITE)
        return done, status

    def _epochs(self, k: int) -> bool:
        """Up to k epochs in one call, returning at scikit-learn's stopping test; True
        when training stops."""
        est, state = self.est, self.est._state
        if self.losses.shape[0] < k:
            self.losses = np.empty(k)
        s = est._scale()
        state.codes[SCHEDULE] = koptim.PLATEAU
        state.codes[PATIENCE] = est.n_iter_no_change + 1  # count > n_iter_no_change
        state.hyper[TOL] = est.tol * s
        state.clock[BEST] = est.best_loss_ * s
        state.clock[COUNT] = est._no_improvement_count
        stream, order = self.stream.save(), self.order
        done, status = self._call(k, self._shuffled(k))
        if done < k and est.shuffle:  # give back the shuffles of the epochs not run
            self.stream.restore(stream)
            self.order = order
            self._shuffled(done)
        self._record(done)
        est.best_loss_ = float(state.clock[BEST]) / s
        est._no_improvement_count = int(state.clock[COUNT])
        if status == _k.SCHEDULE_STOP:
            if self._stop():
                return True
            est._no_improvement_count = 0
        return False

    def _record(self, done: int) -> None:
        """The losses of ``done`` epochs into the estimator's counters and curve."""
        est = self.est
        curve = (self.losses[:done] / est._scale()).tolist()  # as float(l) / s, l by l
        for e, loss in enumerate(curve if est.verbose else ()):
            print(f"Iteration {est.n_iter_ + e + 1}, loss = {loss:.8f}")
        if curve:
            est.loss_ = curve[-1]
        est.n_iter_ += done
        est.t_ += self.n * done
        est.loss_curve_.extend(curve)

    def _epoch(self) -> bool:
        """One epoch and scikit-learn's bookkeeping after it; True when training stops."""
        est = self.est
        est._state.codes[SCHEDULE] = koptim.CONSTANT
        self._call(1, self._shuffled(1))
        self._record(1)
        self._no_improvement()
        if self._invscaling():
            self._set_lr(est.learning_rate_init / (est.t_ + 1) ** est.power_t)
        if est._no_improvement_count > est.n_iter_no_change:
            if self._stop():
                return True
            est._no_improvement_count = 0
        return False

    def _no_improvement(self) -> None:
        """scikit-learn's ``_update_no_improvement_count``."""
        est = self.est
        if est.early_stopping:
            if self.val_score is None:  # prepared once, on the live parameters
                self.val_score = est._val_scorer(self.Xk_val, self.y_val, self.w_val, self.params)
            score = self.val_score()
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._keep(self.params)  # fresh copies, never written in place: kept as
                est._best = (est.coefs_, est.intercepts_)  # they are (no second copy)
        else:
            if est.loss_curve_[-1] > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            est.best_loss_ = min(est.best_loss_, est.loss_curve_[-1])

    def _stop(self) -> bool:
        """scikit-learn's ``trigger_stopping``: stop, or (sgd, adaptive) divide the rate."""
        est = self.est
        what = "Validation score" if est.early_stopping else "Training loss"
        msg = (
            f"{what} did not improve more than tol={est.tol:f} for "
            f"{est.n_iter_no_change} consecutive epochs."
        )
        if est.solver != "sgd" or est.learning_rate != "adaptive":
            _say(est, msg + " Stopping.")
            return True
        lr = self._lr()
        if lr <= MIN_LR:
            _say(est, msg + " Learning rate too small. Stopping.")
            return True
        self._set_lr(lr / 5.0)
        _say(est, msg + f" Setting learning rate to {lr / 5.0:f}")
        return False

    def _lr(self) -> float:
        return float(self.est._state.clock[LR]) * self.est._scale()

    def _set_lr(self, lr: float) -> None:
        self.est._state.clock[LR] = lr / self.est._scale()


def _say(est, msg: str) -> None:
    if est.verbose:
        print(msg)


def _batch(batch_size, n: int) -> int:
    if batch_size == "auto":
        return min(200, n)
    if batch_size > n:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
            stacklevel=6,
        )
    return int(np.clip(batch_size, 1, n))


def _split(est, n: int, y) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's early-stopping split from the estimator's stream: indices of the
    training and validation samples (stratified for single-output classifiers)."""
    train, val = train_test_split(
        np.arange(n), random_state=est._random_state,
        test_size=est.validation_fraction, stratify=est._stratify(y),
    )  # fmt: skip
    if val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' or the size "
            "of your dataset."
        )
    return train, val
