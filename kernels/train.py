"""Whole-training kernels: many epochs per call, the optimizer's state in the call.

    train_epochs           full batch, serial: the fast path for small m
    train_epochs_parallel  full batch, each epoch's chunks in parallel
    train_batches          mini-batches: each epoch visits the samples in the order given
                           for it, a batch at a time (gathered into a small contiguous
                           copy), one update per batch; a batch's chunks run serially, or
                           on threads when a batch costs more than a thread launch

Each epoch (or batch) runs the chunk code of mlp.py, records the loss (plus the L2
term) of the parameters it started from, and updates them with optim.update; after the
epoch, optim.epoch_end moves the learning-rate schedule. Arguments (legend of mlp.py and
optim.py): losses (>= n_epochs,) float64 output; partials (n_chunk, n_par + 1) float64
scratch; kind, plan as for loss_and_grads; wt (m,) the samples' weights in X's dtype, or
(0,) for none (with weights, a batch's sums are divided by its weights' sum instead of
its size: scikit-learn's sample_weight); first, the number of epochs run before this
call (for the schedule); codes, hyper, moments, clock, the optimizer's. Returns
(n_done, status): OK, NONFINITE_GRADS or UPDATE_OVERFLOW (the parameters are those
before the failing update, losses[n_done] holds its loss) or SCHEDULE_STOP (the
adaptive schedule's rate would fall below its floor after epoch n_done - 1).
"""

import numpy as np
from numba import prange
from numba.core import config as _numba_config
from numba.extending import overload

from .config import jit
from .mlp import (
    OK,
    SCHEDULE_STOP,
    _chunk_blocks,
    _chunk_grads,
    _delta_scale,
    _mean,
    _scratch,
    _sum_all,
    _sum_partials,
    weight_sum,
)
from .optim import ALPHA, epoch_end, penalty, update

_inner = jit()
_serial = jit(nogil=True)
_parallel = jit(nogil=True, parallel=True)


@_inner
def _finish_epoch(
    losses, e, grad, W1, b1, W2, b2, new, fresh, sw, m, first, codes, hyper, moments, clock
):  # fmt: skip
    """After full-batch epoch e's sums are in grad: its loss (with the L2 term), the
    update, the schedule. (n_done, status) to stop with, or (-1, OK) to go on. sw: what
    the sums are divided by (m, or the sum of the sample weights), m the samples."""
    losses[e] = _mean(grad[-1], sw) + penalty(W1, W2, hyper[ALPHA], sw)
    status = update(W1, b1, W2, b2, new, fresh, grad, sw, codes, hyper, moments, clock)
    if status != OK:
        return e, status
    if epoch_end(losses[e], first + e, m, codes, hyper, clock):
        return e + 1, SCHEDULE_STOP
    return -1, OK


@_serial
def train_epochs(
    losses, partials, W1, b1, W2, b2, X, Y, wt, kind, plan, n_epochs, first, codes, hyper,
    moments, clock,
):  # fmt: skip
    """n_epochs of full-batch training in one thread; (n_done, status)."""
    m, n_chunk = X.shape[1], partials.shape[0]
    sw = weight_sum(wt, m)
    scale = _delta_scale(X, kind[1], sw)
    scratch = _scratch(W1, W2, X, plan)
    grad = np.empty(partials.shape[1])
    new = np.empty(partials.shape[1] - 1, W1.dtype)
    fresh = np.empty((2, partials.shape[1] - 1))
    for e in range(n_epochs):
        for c in range(n_chunk):
            _chunk_grads(
                partials[c], scratch, W1, b1, W2, b2, X, Y, wt, c, n_chunk, kind, scale, plan
            )
        _sum_partials(grad, partials, 0, grad.shape[0])
        done, status = _finish_epoch(
            losses, e, grad, W1, b1, W2, b2, new, fresh, sw, m, first, codes, hyper, moments,
            clock,
        )  # fmt: skip
        if done >= 0:
            return done, status
    return n_epochs, OK


@_parallel
def train_epochs_parallel(
    losses, partials, W1, b1, W2, b2, X, Y, wt, kind, plan, n_epochs, first, codes, hyper,
    moments, clock,
):  # fmt: skip
    """train_epochs with each epoch's chunks in parallel: the same chunks, sums and
    update, so the same bits, in one kernel call for all n_epochs: no call, lock and
    update from Python per epoch (measured, ms per epoch, against that loop: 64-32-10 at
    m = 1797 0.360 vs 0.384 in float64; 30-64-1 at m = 10^5 15.0 vs 15.2)."""
    m, n_chunk = X.shape[1], partials.shape[0]
    sw = weight_sum(wt, m)
    scale = _delta_scale(X, kind[1], sw)
    grad = np.empty(partials.shape[1])
    new = np.empty(partials.shape[1] - 1, W1.dtype)
    fresh = np.empty((2, partials.shape[1] - 1))
    for e in range(n_epochs):
        for c in prange(n_chunk):
            scratch = _scratch(W1, W2, X, plan)
            _chunk_grads(
                partials[c], scratch, W1, b1, W2, b2, X, Y, wt, c, n_chunk, kind, scale, plan
            )
        _sum_all(grad, partials)
        done, status = _finish_epoch(
            losses, e, grad, W1, b1, W2, b2, new, fresh, sw, m, first, codes, hyper, moments,
            clock,
        )  # fmt: skip
        if done >= 0:
            return done, status
    return n_epochs, OK


@_inner
def _fill(Xn, X, idx, lo, hi):
    """Xn[:, lo:hi] = X[:, idx[lo:hi]]: columns of the batch into its scratch. For a
    column-major Xn (a sample-major batch, _batch_view) a sample's features at a time,
    contiguous copies where X is sample-major too; else a feature's row at a time."""
    if Xn.strides[0] == Xn.itemsize and Xn.shape[0] > 1:
        for j in range(lo, hi):
            s = idx[j]
            for k in range(X.shape[0]):
                Xn[k, j] = X[k, s]
    else:
        for k in range(X.shape[0]):
            for j in range(lo, hi):
                Xn[k, j] = X[k, idx[j]]


def _batch_view(Xb, X, n):
    """The gather scratch as the (n_x, n) batch: Xb flat (n_x * batch,), seen as a
    C-contiguous array, or Xb (n_x, batch) column-major (sample-major: see
    config.BY_SAMPLE_MIN_BYTES), its first n columns."""
    if Xb.ndim == 2:
        return Xb[:, :n]
    return Xb[: X.shape[0] * n].reshape((X.shape[0], n))


if not _numba_config.DISABLE_JIT:

    @overload(_batch_view)
    def _batch_view_typed(Xb, X, n):
        # chosen by Xb's type: one function cannot return both layouts
        if Xb.ndim == 2:
            return lambda Xb, X, n: Xb[:, :n]
        return lambda Xb, X, n: Xb[: X.shape[0] * n].reshape((X.shape[0], n))


@_inner
def _gather_weights(Wb, wt, idx):
    """wt[idx] into Wb (the batch's weights), or Wb's no weights when Wb is empty."""
    Wn = Wb[: min(idx.shape[0], Wb.shape[0])]
    for j in range(Wn.shape[0]):
        Wn[j] = wt[idx[j]]
    return Wn


@_serial
def _gather_labels(Yb, Y, idx):
    """Y[idx] of class indices (m,) into the flat scratch Yb."""
    Yn = Yb[: idx.shape[0]]
    for j in range(idx.shape[0]):
        Yn[j] = Y[idx[j]]
    return Yn


@_serial
def _gather_columns(Yb, Y, idx):
    """Y[:, idx] into the flat scratch Yb, as a C-contiguous (n_y, n) array."""
    n = idx.shape[0]
    Yn = Yb[: Y.shape[0] * n].reshape((Y.shape[0], n))
    for o in range(Y.shape[0]):
        for j in range(n):
            Yn[o, j] = Y[o, idx[j]]
    return Yn


def _gather_targets(Yb, Y, idx):
    """The batch's targets, into the flat scratch Yb: labels or columns by Y's
    dimensions (a few values a sample: gathered serially, before the chunks)."""
    return (_gather_labels if Y.ndim == 1 else _gather_columns)(Yb, Y, idx)


if not _numba_config.DISABLE_JIT:

    @overload(_gather_targets)
    def _gather_targets_typed(Yb, Y, idx):
        # chosen by type: numba cannot unify the 1-D and 2-D results of one function
        if Y.ndim == 1:
            return lambda Yb, Y, idx: _gather_labels(Yb, Y, idx)
        return lambda Yb, Y, idx: _gather_columns(Yb, Y, idx)


@_serial
def train_batches(
    losses, partials, W1, b1, W2, b2, X, Y, wt, kind, plan, n_epochs, first, codes, hyper,
    moments, clock, orders, batch, Xb, Yb, parallel,
):  # fmt: skip
    """n_epochs of mini-batch training: epoch e takes the samples in the order orders[e]
    (a permutation of range(m)), batch at a time; losses[e] is the mean over the epoch's
    batches of each batch's loss before its own update (weighted by its size). plan is
    the plan of a batch of ``batch`` samples (config.batch_plan); Xb (n_x * batch,) and
    Yb (n_y * batch,) or, for class indices, (batch,) int64: flat gather scratch. With
    ``parallel``, each batch's chunks run in parallel (the same chunks and sums, so the
    same bits): worth a thread launch per batch once a batch costs more than one. wt:
    the samples' weights (m,), or (0,) for none: a batch's sums are then divided by its
    weights' sum (as scikit-learn's MLP does), its loss still counts its size."""
    m = X.shape[1]
    scratch = _scratch(W1, W2, X, plan)
    grad, new, fresh = _update_scratch(partials, W1)
    Wb = np.empty(min(batch, wt.shape[0]), X.dtype)  # the batch's weights, if any
    for e in range(n_epochs):
        total, loss, status = _run_batches(
            grad, partials, scratch, new, fresh, W1, b1, W2, b2, X, Y, kind, plan, orders[e],
            batch, Xb, Yb, parallel, 0.0, codes, hyper, moments, clock, wt, Wb,
        )  # fmt: skip
        if status != OK:
            losses[e] = loss
            return e, status
        if _close_epoch(losses, e, total, m, first, codes, hyper, clock):
            return e + 1, SCHEDULE_STOP
    return n_epochs, OK


@_inner
def _update_scratch(partials, W1):
    """(grad, new, fresh): the sums, and update's scratch, for n_par parameters."""
    n_par = partials.shape[1] - 1
    return np.empty(n_par + 1), np.empty(n_par, W1.dtype), np.empty((2, n_par))


@_inner
def _run_batches(
    grad, partials, scratch, new, fresh, W1, b1, W2, b2, X, Y, kind, plan, idx, batch, Xb,
    Yb, parallel, total, codes, hyper, moments, clock, wt, Wb,
):  # fmt: skip
    """The batches of the samples idx in turn (of ``batch`` samples, the last one may be
    short), each gathered, summed and applied; (total, loss, status): total plus each
    batch's loss times its size, and on a failed update the failing batch's loss. wt the
    samples' weights or (0,), Wb the scratch their batch is gathered into (or (0,))."""
    for start in range(0, idx.shape[0], batch):
        n = min(batch, idx.shape[0] - start)
        ids = idx[start : start + n]
        # the batch contiguous, feature rows (as a whole data set) or sample-major
        # (_batch_view), so the chunk code runs the same vectorised, BLAS-fed machine
        # code (a column slice of a 2-D C-ordered scratch would be non-contiguous:
        # measured 2x slower)
        Xn = _batch_view(Xb, X, n)
        Yn = _gather_targets(Yb, Y, ids)
        Wn = _gather_weights(Wb, wt, ids)
        sw = weight_sum(Wn, n)
        loss = _batch_grads(
            grad, partials, scratch, W1, b1, W2, b2, Xn, Yn, Wn, sw, X, ids, kind, plan,
            parallel,
        )  # fmt: skip
        loss += penalty(W1, W2, hyper[ALPHA], sw)
        status = update(W1, b1, W2, b2, new, fresh, grad, sw, codes, hyper, moments, clock)
        if status != OK:
            return total, loss, status
        total += loss * n
    return total, 0.0, OK


@_inner
def _close_epoch(losses, e, total, m, first, codes, hyper, clock):
    """losses[e], the mean of the epoch's batch losses, and the schedule's step; True
    when the adaptive schedule stops training. The mean is _mean's exact division: a
    kernel that closes an epoch streamed in parts (piece.train_window) gets the same
    bits (a plain ``total / m`` may become a multiply by a hoisted 1/m in one kernel and
    not in another)."""
    losses[e] = _mean(total, m)
    return epoch_end(losses[e], first + e, m, codes, hyper, clock)


@_parallel
def _batch_chunks_parallel(
    partials, W1, b1, W2, b2, Xn, Yn, Wn, X, idx, kind, scale, plan, n_chunk
):  # fmt: skip
    """Each chunk gathers its columns of the batch into Xn, then its sums into
    partials[c], in parallel. Only the prange: the caller adds the partials up after
    this returns (a read of partials after the prange in the same function may be
    ordered before the writes inside the calls)."""
    n, blk = Xn.shape[1], plan[0]
    for c in prange(n_chunk):
        lo, hi = _chunk_blocks(c, n_chunk, n, blk)
        _fill(Xn, X, idx, lo * blk, min(hi * blk, n))
        scratch = _scratch(W1, W2, Xn, plan)
        _chunk_grads(
            partials[c], scratch, W1, b1, W2, b2, Xn, Yn, Wn, c, n_chunk, kind, scale, plan
        )


@_serial
def _batch_grads(
    grad, partials, scratch, W1, b1, W2, b2, Xn, Yn, Wn, sw, X, idx, kind, plan, parallel
):  # fmt: skip
    """grad = the loss and gradient sums of the batch idx (gathered from X into Xn; its
    targets already in Yn, its weights in Wn, or Wn empty); its mean loss (sums divided
    by sw: its size or its weights' sum). With ``parallel`` the chunks gather and
    compute on threads: the same chunks, the same sums."""
    n = Xn.shape[1]
    blk = plan[0]
    n_chunk = min(plan[2], (n + blk - 1) // blk)
    scale = _delta_scale(Xn, kind[1], sw)
    if parallel:
        _batch_chunks_parallel(
            partials, W1, b1, W2, b2, Xn, Yn, Wn, X, idx, kind, scale, plan, n_chunk
        )
    else:
        _fill(Xn, X, idx, 0, n)
        for c in range(n_chunk):
            _chunk_grads(partials[c], scratch, W1, b1, W2, b2, Xn, Yn, Wn, c, n_chunk, kind,
                         scale, plan)  # fmt: skip
    _sum_partials(grad, partials[:n_chunk], 0, grad.shape[0])
    return _mean(grad[-1], sw)
