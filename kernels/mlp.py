"""Fused kernels for the one-hidden-layer network: forward, loss + gradients, accuracy;
the training loops that call them are in train.py, the updates in optim.py.

Legend (one sample per column, as in fusedmlp.reference):

    n_x inputs, n_h hidden units, n_y outputs, m samples, L <= blk samples of a block
    X  (n_x, m)   Y  (n_y, m)   A2 (n_y, m)
    W1 (n_h, n_x) b1 (n_h, 1)   W2 (n_y, n_h) b2 (n_y, 1)
    A1 (n_h, blk)   D2 (n_y, blk)   S, G   per-thread scratch (see _scratch)
    grad (n_par + 1,) float64: dW1 (row-major), db1, dW2, db2, then the summed loss
    partials (n_chunks, n_par + 1) float64: one row of block sums per chunk
    plan = (blk, wide, n_chunk): the block size, 1 when the block's products go to BLAS
           (wide.py) rather than loops (narrow.py), the number of chunks (the rows of
           partials); config.plan chooses them per network and m

    Z1 = W1 X + b1, A1 = g(Z1)        g: SIGMOID | TANH | RELU (small int codes)
    Z2 = W2 A1 + b2, A2 = o(Z2)       o: SIGMOID_OUT | SOFTMAX | IDENTITY | EXP_OUT
    loss MSE = (1/m) sum (A2 - Y)^2, CROSS_ENTROPY = (1/m) sum Y sp(-Z2) + (1-Y) sp(Z2)
         (softmax: (1/m) sum Y (logsumexp(Z2) - Z2)); Y may be class indices (m,);
         POISSON (exp only) = (1/m) sum A2 - Y Z2 + Y log Y - Y
    D2 = dL/dZ2: MSE (2/m)(A2 - Y) A2 (1 - A2) (identity: (2/m)(A2 - Y)),
         CROSS_ENTROPY and POISSON (A2 - Y)/m
    wt (m,) sample weights, or (0,) for none: each sample's loss and D2 column count
         w_j times, and sum(w) takes m's place (elementwise.loss_delta)
    dW2 = D2 A1^T, db2 = rowsum D2, D1 = (W2^T D2) g'(A1), dW1 = D1 X^T, db1 = rowsum D1

How the work is laid out:

- Samples go in blocks of blk; a block goes forward and backward through small scratch
  buffers that stay in cache, so nothing of size m (or n_h x m) is ever allocated.
- Within a block, narrow networks run plain vectorised loops (narrow.py) and wide ones
  BLAS products plus fused elementwise loops (wide.py); both share the activation and
  the loss code (elementwise.py).
- The parallel kernels split the blocks into plan's n_chunk contiguous chunks (a
  function of the network and m only). Each chunk sums its blocks into its own row of
  ``partials``; the rows are added in chunk order afterwards. Results are therefore
  bit-identical for any thread count, and memory is O(n_chunks x n_par).
- float32 data and parameters are computed in float32; each block's sums (gradients and
  loss) are added into the float64 partials, so the long sums over m are float64.
- The activation and loss are int codes tested once per block and unit, outside the
  per-sample loops: one compiled function per dtype serves every variant.
- Every parallel kernel has a serial twin running the same chunks in order (same bits):
  loss_and_grads_serial, forward_serial and count_correct_serial (for processes forked
  from a GNU OpenMP parent); train.py's train_epochs is train_epochs_parallel's.

Argument order: outputs, then inputs, then sizes/codes. Nothing here validates: the
caller (fusedmlp._compiled) checks dtypes, shapes and contiguity; a wrong shape would read
out of bounds.
"""

import numpy as np
from numba import prange
from numba.core import config as _numba_config
from numba.extending import overload

from . import narrow, wide
from .config import BLOCK, FASTMATH_EXACT, jit
from .elementwise import (
    ACTIVATIONS,
    CROSS_ENTROPY,
    EXP_OUT,
    IDENTITY,
    LOSSES,
    MSE,
    OUTPUTS,
    POISSON,
    RELU,
    SIGMOID,
    SIGMOID_OUT,
    SOFTMAX,
    TANH,
    apply_output,
    like,
    loss_delta,
)
from .expfn import sigmoid

__all__ = ["ACTIVATIONS", "CROSS_ENTROPY", "LOSSES", "MSE", "RELU", "SIGMOID", "TANH"]
__all__ += ["EXP_OUT", "IDENTITY", "OUTPUTS", "POISSON", "SIGMOID_OUT", "SOFTMAX"]

# the status codes of training (kernels/train.py): the update's, and the adaptive
# schedule's stop
OK, NONFINITE_GRADS, UPDATE_OVERFLOW, SCHEDULE_STOP = 0, 1, 2, 3

_inner = jit()
_serial = jit(nogil=True)
_parallel = jit(nogil=True, parallel=True)
_exact = jit(fastmath=FASTMATH_EXACT)


@_exact
def _mean(total, m):
    """total / m rounded once, the same in every kernel (no reciprocal, see config)."""
    return total / m


@_inner
def n_params(n_x, n_h, n_y):
    """Number of parameters: len(grad) and a partials row are one more (the loss)."""
    return n_h * n_x + n_h + n_y * n_h + n_y


@_inner
def _chunk_blocks(c, n_chunk, m, blk):
    """Blocks [lo, hi) of chunk c out of n_chunk."""
    n_block = (m + blk - 1) // blk
    return c * n_block // n_chunk, (c + 1) * n_block // n_chunk


@_inner
def _sum_partials(grad, partials, lo, hi):
    """grad[lo:hi] = sum of the rows of partials, in row order (fixed: deterministic)."""
    for p in range(lo, hi):
        grad[p] = 0.0
    for c in range(partials.shape[0]):
        for p in range(lo, hi):
            grad[p] += partials[c, p]


_SUM_SEGMENT = 4096  # parameters per parallel piece of the final sum (32 KiB of grad)


@_parallel
def _sum_all(grad, partials):
    """_sum_partials over all of grad, in parallel pieces of parameters, each added up in
    chunk order as the serial kernels do (same bits). A function of its own: a second
    prange in loss_and_grads let numba read grad's loss before this loop had written
    it (the writes happen inside a call numba cannot see into)."""
    width = grad.shape[0]
    for s in prange((width + _SUM_SEGMENT - 1) // _SUM_SEGMENT):
        _sum_partials(grad, partials, s * _SUM_SEGMENT, min(width, (s + 1) * _SUM_SEGMENT))


@_inner
def no_weights(X):
    """The weights argument that means none: an empty array of X's dtype."""
    return np.empty(0, X.dtype)


@_inner
def weight_sum(wt, m):
    """What a batch's sums are divided by: its m samples, or the sum of their weights
    wt (float64)."""
    if wt.shape[0] == 0:
        return np.float64(m)
    total = 0.0
    for j in range(wt.shape[0]):
        total += np.float64(wt[j])
    return total


@_inner
def _delta_scale(X, loss, m):
    """The 2/m (MSE) or 1/m (cross-entropy) factor of D2, in X's dtype; m the samples
    or, with sample weights, the sum of their weights."""
    return like(X, (2.0 if loss == MSE else 1.0) / m)


# ---------------------------------------------------------------------------
# one block, one chunk


@_inner
def _scratch(W1, W2, X, plan):
    """(A1, D2, S, G, T) for one thread: A1 (n_h, blk), D2 (n_y, blk); narrow: S (2, blk)
    zeros (D1, P), G (1,); wide: S (n_h, blk) (P, D1), G (n_par,); T (2, blk) for the
    output's elementwise work."""
    blk, is_wide, _ = plan
    n_h, n_x = W1.shape
    n_y = W2.shape[0]
    A1 = np.empty((n_h, blk), X.dtype)
    D2 = np.empty((n_y, blk), X.dtype)
    S = np.zeros((n_h if is_wide else 2, blk), X.dtype)
    G = np.empty(n_params(n_x, n_h, n_y) if is_wide else 1, X.dtype)
    return A1, D2, S, G, np.empty((2, blk), X.dtype)


@_inner
def _forward_block(out, A1, T, W1, b1, W2, b2, X, j0, L, act, output, is_wide):
    """out[:, :L] = o(W2 g(W1 X[:, j0:j0+L] + b1) + b2), o the output function.
    out (n_y, >= L), T (2, blk) scratch."""
    if is_wide:
        wide.hidden_forward(A1, W1, b1, X, j0, L, act)
        wide.output_linear(out, A1, W2, b2, L)
    else:
        narrow.hidden_forward(A1, W1, b1, X, j0, L, act)
        narrow.output_linear(out, A1, W2, b2, L)
    apply_output(out, L, output, T)


@_inner
def _chunk_grads(row, scratch, W1, b1, W2, b2, X, Y, wt, c, n_chunk, kind, scale, plan):
    """row = loss and gradient sums over the blocks of chunk c. row (n_par + 1,); wt the
    samples' weights (m,), or (0,) for none (elementwise.loss_delta)."""
    lo, hi = _chunk_blocks(c, n_chunk, X.shape[1], plan[0])
    block_grads(row, scratch, W1, b1, W2, b2, X, Y, wt, lo, hi, kind, scale, plan)


@_inner
def block_grads(row, scratch, W1, b1, W2, b2, X, Y, wt, lo, hi, kind, scale, plan):
    """row = loss and gradient sums over blocks [lo, hi) of X, in order (the last block
    of X may be short). A chunk's row whatever X holds around it: the distributed
    workers (kernels/piece.py) call it on their slice of the samples."""
    act, loss, output = kind
    A1, D2, S, G, T = scratch
    blk, is_wide, _ = plan
    m = X.shape[1]
    row[:] = 0.0
    for b in range(lo, hi):
        j0 = b * blk
        L = min(blk, m - j0)
        if is_wide:
            wide.hidden_forward(A1, W1, b1, X, j0, L, act)
            wide.output_linear(D2, A1, W2, b2, L)
        else:
            narrow.hidden_forward(A1, W1, b1, X, j0, L, act)
            narrow.output_linear(D2, A1, W2, b2, L)
        row[-1] += loss_delta(row, D2, Y, wt, j0, L, loss, output, scale, T)
        if is_wide:
            k = b - lo  # the block's place in its flush group (float32)
            first = k % wide.FLUSH_BLOCKS == 0
            last = k % wide.FLUSH_BLOCKS == wide.FLUSH_BLOCKS - 1 or b == hi - 1
            wide.backward(row, S, G, A1, D2, W2, X, j0, L, act, first, last)
        else:
            narrow.backward(row, S, A1, D2, W2, X, j0, L, act)


@_inner
def _forward_chunk(A2, W1, b1, W2, b2, X, c, n_chunk, kind, plan):
    """A2[:, blocks of chunk c] = the network's output. A2 (n_y, m)."""
    blk, is_wide, _ = plan
    m = A2.shape[1]
    A1 = np.empty((W1.shape[0], blk), X.dtype)
    T = np.empty((2, blk), X.dtype)
    lo, hi = _chunk_blocks(c, n_chunk, m, blk)
    for b in range(lo, hi):
        j0 = b * blk
        L = min(blk, m - j0)
        out = A2[:, j0 : j0 + L]
        _forward_block(out, A1, T, W1, b1, W2, b2, X, j0, L, kind[0], kind[2], is_wide)


@_inner
def _correct_chunk(W1, b1, W2, b2, X, Y, c, kind, plan):
    """(entries predicted right, entries where A2 is NaN) over the blocks of chunk c.

    Sigmoid outputs: A2 > 1/2 agreeing with Y > 1/2, per entry of Y (n_y, m). Softmax:
    the argmax of A2's column agreeing with the class index Y[j], per sample (Y (m,)).
    A2 as forward computes it.
    """
    blk, is_wide, n_chunk = plan
    n_y, m = W2.shape[0], X.shape[1]
    A1 = np.empty((W1.shape[0], blk), X.dtype)
    out = np.empty((n_y, blk), X.dtype)
    T = np.empty((2, blk), X.dtype)
    right, nan = 0, 0
    lo, hi = _chunk_blocks(c, n_chunk, m, blk)
    for b in range(lo, hi):
        j0 = b * blk
        L = min(blk, m - j0)
        _forward_block(out, A1, T, W1, b1, W2, b2, X, j0, L, kind[0], kind[2], is_wide)
        r, n = _count_block(out, Y, j0, L)
        right += r
        nan += n
    return right, nan


@_inner
def _count_entries(A, Y, j0, L):
    """Sigmoid outputs: (entries where A > 1/2 agrees with Y > 1/2, NaN entries)."""
    half = like(A, 0.5)
    right, nan = 0, 0
    for o in range(A.shape[0]):
        a, y = A[o], Y[o, j0 : j0 + L]
        for j in range(L):
            right += (a[j] > half) == (y[j] > half)
            nan += a[j] != a[j]
    return right, nan


@_inner
def _count_classes(A, Y, j0, L):
    """Softmax outputs: (samples whose column's argmax is the class index Y[j], NaNs)."""
    right, nan = 0, 0
    for j in range(L):
        best, arg = A[0, j], 0
        nan += best != best
        for o in range(1, A.shape[0]):
            nan += A[o, j] != A[o, j]
            if A[o, j] > best:
                best, arg = A[o, j], o
        right += arg == Y[j0 + j]
    return right, nan


def _count_block(A, Y, j0, L):
    """(right, NaN) of a block's outputs A (n_y, >= L): per entry for targets Y (n_y, m),
    per sample for class indices Y (m,)."""
    return _count_entries(A, Y, j0, L) if Y.ndim == 2 else _count_classes(A, Y, j0, L)


if not _numba_config.DISABLE_JIT:

    @overload(_count_block)
    def _count_block_typed(A, Y, j0, L):
        if Y.ndim == 2:
            return lambda A, Y, j0, L: _count_entries(A, Y, j0, L)
        return lambda A, Y, j0, L: _count_classes(A, Y, j0, L)


# ---------------------------------------------------------------------------
# kernels


@_parallel
def forward(A2, W1, b1, W2, b2, X, kind, plan):
    """A2 = sigmoid(W2 g(W1 X + b1) + b2), parallel over chunks of blocks.

    A2 (n_y, m) output, W1 (n_h, n_x), b1 (n_h, 1), W2 (n_y, n_h), b2 (n_y, 1),
    X (n_x, m), all C-contiguous of one float dtype; act an ACTIVATIONS code.
    """
    n_chunk = plan[2]
    for c in prange(n_chunk):
        _forward_chunk(A2, W1, b1, W2, b2, X, c, n_chunk, kind, plan)


@_serial
def forward_serial(A2, W1, b1, W2, b2, X, kind, plan):
    """forward in one thread: the same chunks in order, so the same bits."""
    n_chunk = plan[2]
    for c in range(n_chunk):
        _forward_chunk(A2, W1, b1, W2, b2, X, c, n_chunk, kind, plan)


@_parallel
def count_correct(counts, W1, b1, W2, b2, X, Y, kind, plan):
    """Entries where forward's A2 > 1/2 agrees with Y > 1/2 (accuracy times n_y m),
    and entries where A2 is NaN (an overflow the caller reports).

    Fused: no A2 of size (n_y, m) is made. counts (n_chunk, 2) int64 scratch; W1 .. X
    as for forward, Y (n_y, m) of X's dtype. Returns the two exact counts.
    """
    for c in prange(plan[2]):
        # written here, in the loop's own body: numba orders the sums below after
        # writes it can see, not after writes inside a call (see _sum_all)
        counts[c, 0], counts[c, 1] = _correct_chunk(W1, b1, W2, b2, X, Y, c, kind, plan)
    return counts[:, 0].sum(), counts[:, 1].sum()


@_serial
def count_correct_serial(counts, W1, b1, W2, b2, X, Y, kind, plan):
    """count_correct in one thread."""
    for c in range(plan[2]):
        counts[c, 0], counts[c, 1] = _correct_chunk(W1, b1, W2, b2, X, Y, c, kind, plan)
    return counts[:, 0].sum(), counts[:, 1].sum()


@_parallel
def loss_and_grads(grad, partials, W1, b1, W2, b2, X, Y, wt, kind, plan):
    """Loss and all four gradients in one pass over the samples; returns the loss.

    grad (n_par + 1,) float64 output: dW1, db1, dW2, db2 flattened, then m * loss (with
    weights: sum(w) * loss). partials (n_chunk, n_par + 1) float64 scratch. W1 (n_h, n_x),
    b1 (n_h, 1), W2 (n_y, n_h), b2 (n_y, 1), X (n_x, m), Y (n_y, m): C-contiguous, one
    float dtype; wt (m,) sample weights or (0,). act, loss: ACTIVATIONS and LOSSES codes;
    plan: (blk, wide, n_chunk).
    """
    sw = weight_sum(wt, X.shape[1])
    scale = _delta_scale(X, kind[1], sw)
    n_chunk = partials.shape[0]
    for c in prange(n_chunk):
        scratch = _scratch(W1, W2, X, plan)
        _chunk_grads(partials[c], scratch, W1, b1, W2, b2, X, Y, wt, c, n_chunk, kind, scale, plan)
    _sum_all(grad, partials)
    return _mean(grad[-1], sw)


@_serial
def loss_and_grads_serial(grad, partials, W1, b1, W2, b2, X, Y, wt, kind, plan):
    """loss_and_grads in one thread: the same chunks and sums, so the same bits."""
    sw = weight_sum(wt, X.shape[1])
    scale = _delta_scale(X, kind[1], sw)
    n_chunk = partials.shape[0]
    scratch = _scratch(W1, W2, X, plan)
    for c in range(n_chunk):
        _chunk_grads(partials[c], scratch, W1, b1, W2, b2, X, Y, wt, c, n_chunk, kind, scale, plan)
    _sum_partials(grad, partials, 0, grad.shape[0])
    return _mean(grad[-1], sw)


@_parallel
def sigmoid_yardstick(partials, W1, b1, W2, b2, X):
    """Only the network's n_h + n_y sigmoids per sample, in the same blocked loop.

    The time of this kernel bounds what an epoch of the sigmoid network could cost if
    everything but its exps and divisions were free. partials (config.narrow_plan(m)'s
    n_chunk, >= 1) float64 scratch; returns the sum of all the sigmoids (so
    nothing is optimised away).
    """
    n_h = W1.shape[0]
    n_y = W2.shape[0]
    m = X.shape[1]
    n_chunk = partials.shape[0]
    zero = like(X, 0.0)
    for c in prange(n_chunk):
        total = 0.0
        lo, hi = _chunk_blocks(c, n_chunk, m, BLOCK)
        for blk in range(lo, hi):
            j0 = blk * BLOCK
            L = min(BLOCK, m - j0)
            for u in range(n_h + n_y):
                w = W1[u, 0] if u < n_h else W2[u - n_h, 0]
                b = b1[u, 0] if u < n_h else b2[u - n_h, 0]
                acc, x = zero, X[0, j0 : j0 + L]
                for j in range(L):
                    acc += sigmoid(b + w * x[j])
                total += np.float64(acc)
        partials[c, 0] = total
    total = 0.0
    for c in range(n_chunk):
        total += partials[c, 0]
    return total
