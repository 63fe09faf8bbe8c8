"""The gradient rows of a worker's piece of the samples (fusedmlp.distributed).

A distributed run splits the samples exactly as one process would (config.plan for the
whole m) and gives each worker a piece: a run of whole chunks, held as its own
C-contiguous X (n_x, m_p) and Y (n_y, m_p) or (m_p,). A piece starts on a chunk's first
block, so its blocks are the global ones shifted by a whole number of blocks, and ends
on a chunk's last block (or the data's end), so every block but the data's last is
full. Each of its chunks then sums the same blocks in the same order as in one process:
the rows are bit-identical, and the client adds them in chunk order as
``mlp._sum_partials`` does.

    partials (n_rows, n_par + 1) float64 output: one row per chunk of the piece
    bounds (n_rows + 1,) int64: chunk i is the piece's blocks [bounds[i], bounds[i + 1])
    scale: the D2 factor of the whole data set (2/m or 1/m, m all the samples), X's dtype

Mini-batch epochs on a cluster stream each epoch's samples, in the epoch's order, to one
worker a window at a time: each piece's ``take_columns`` picks its samples of a window,
``place_columns`` puts them in the window's order, and ``train_window`` runs the
window's batches with one process's batch code (train._run_batches) and closes the
epoch with its code (_close_epoch). (The picking and placing in NumPy, a handful of
passes over each window, cost 4x the batches themselves for the planar network.)
"""

from numba import prange

from .config import jit
from .mlp import OK, SCHEDULE_STOP, _scratch, block_grads, no_weights
from .train import _close_epoch, _finish_epoch, _run_batches, _update_scratch

_serial = jit(nogil=True)
_parallel = jit(nogil=True, parallel=True)


@_parallel
def piece_grads(partials, W1, b1, W2, b2, X, Y, bounds, kind, scale, plan):
    """Each chunk's loss and gradient sums into its row of partials, in parallel."""
    wt = no_weights(X)
    for i in prange(partials.shape[0]):
        scratch = _scratch(W1, W2, X, plan)
        block_grads(
            partials[i], scratch, W1, b1, W2, b2, X, Y, wt, bounds[i], bounds[i + 1], kind,
            scale, plan,
        )  # fmt: skip


@_serial
def piece_grads_serial(partials, W1, b1, W2, b2, X, Y, bounds, kind, scale, plan):
    """piece_grads in one thread: the same rows."""
    scratch = _scratch(W1, W2, X, plan)
    wt = no_weights(X)
    for i in range(partials.shape[0]):
        block_grads(
            partials[i], scratch, W1, b1, W2, b2, X, Y, wt, bounds[i], bounds[i + 1], kind,
            scale, plan,
        )  # fmt: skip


@_serial
def finish_epoch(
    losses, e, grad, W1, b1, W2, b2, new, fresh, m, first, codes, hyper, moments, clock
):  # fmt: skip
    """The whole-training kernels' end of a full-batch epoch, for a client that has
    added up the rows itself: losses[e] (with the L2 term), the update, the schedule;
    (n_done, status) to stop with, or (-1, OK) to go on. The same code, so the same
    bits, as train_epochs."""
    return _finish_epoch(
        losses, e, grad, W1, b1, W2, b2, new, fresh, m, m, first, codes, hyper, moments, clock
    )


@_serial
def train_window(
    losses, partials, W1, b1, W2, b2, X, Y, kind, plan, e, first, codes, hyper, moments,
    clock, idx, batch, Xb, Yb, parallel, total, m, end,
):  # fmt: skip
    """The batches of one window of mini-batch epoch first + e, as train_batches runs
    them: idx (n_w,) the window's samples in the epoch's order, as columns of X (a whole
    number of batches, but for the epoch's last window); total the epoch's sum of batch
    losses times sizes so far; m the epoch's samples; with ``end`` (the last window),
    losses[e] and the schedule's step. Returns (status, total): OK, a failed update's
    status (losses[e] then holds its batch's loss), or SCHEDULE_STOP."""
    scratch = _scratch(W1, W2, X, plan)
    grad, new, fresh = _update_scratch(partials, W1)
    wt = no_weights(X)
    total, loss, status = _run_batches(
        grad, partials, scratch, new, fresh, W1, b1, W2, b2, X, Y, kind, plan, idx, batch, Xb,
        Yb, parallel, total, codes, hyper, moments, clock, wt, wt,
    )  # fmt: skip
    if status != OK:
        losses[e] = loss
        return status, total
    if end and _close_epoch(losses, e, total, m, first, codes, hyper, clock):
        return SCHEDULE_STOP, total
    return OK, total


@_serial
def take_columns(Xo, Yo, pos, X, Y, order, a, b, lo):
    """The samples of X (n_x, n) and Y (n_y, n), samples lo .. lo + n - 1, that the
    window order[a:b] names, in its order, into Xo and Yo (>= their count columns), and
    each one's place in the window into pos; returns their count. (One pass for both:
    the test of each sample mispredicts about half the time, and costs more than the
    copies.)"""
    n, k = X.shape[1], 0
    for j in range(a, b):
        s = order[j] - lo
        if 0 <= s < n:
            for r in range(X.shape[0]):
                Xo[r, k] = X[r, s]
            for r in range(Y.shape[0]):
                Yo[r, k] = Y[r, s]
            pos[k] = j - a
            k += 1
    return k


@_serial
def place_columns(out, part, pos):
    """out[:, pos[k]] = part[:, k]: a piece's columns into their places in the window
    (pos in range: the caller checks)."""
    for k in range(pos.shape[0]):
        for r in range(part.shape[0]):
            out[r, pos[k]] = part[r, k]
