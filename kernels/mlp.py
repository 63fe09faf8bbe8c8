"""Fused kernels for the one-hidden-layer network: forward, loss + gradients, training.

Legend (one sample per column, as in fusedmlp.reference):

    n_x inputs, n_h hidden units, n_y outputs, m samples, L <= BLOCK samples of a block
    X  (n_x, m)   Y  (n_y, m)   A2 (n_y, m)
    W1 (n_h, n_x) b1 (n_h, 1)   W2 (n_y, n_h) b2 (n_y, 1)
    A1 (n_h, BLOCK)   D2 (n_y, BLOCK)   D1, P (BLOCK,)   per-block scratch
    grad (n_par + 1,) float64: dW1 (row-major), db1, dW2, db2, then the summed loss
    partials (n_chunks, n_par + 1) float64: one row of block sums per chunk

    Z1 = W1 X + b1, A1 = g(Z1)        g: SIGMOID | TANH | RELU (small int codes)
    Z2 = W2 A1 + b2, A2 = sigmoid(Z2)
    loss MSE = (1/m) sum (A2 - Y)^2, CROSS_ENTROPY = (1/m) sum Y sp(-Z2) + (1-Y) sp(Z2)
    D2 = dL/dZ2: MSE (2/m)(A2 - Y) A2 (1 - A2), CROSS_ENTROPY (A2 - Y)/m
    dW2 = D2 A1^T, db2 = rowsum D2, D1 = (W2^T D2) g'(A1), dW1 = D1 X^T, db1 = rowsum D1

How the work is laid out:

- Samples go in blocks of BLOCK; a block goes forward and backward through small scratch
  buffers that stay in cache, so nothing of size m (or n_h x m) is ever allocated.
- Every innermost loop runs over the contiguous samples of a block and has no loop
  inside it (W1 X is accumulated two features per pass, see _affine), so LLVM
  vectorises it; exp, sigmoid, tanh and log1p come from expfn, which vectorise
  (math.exp would not). The backward pass fuses what it can into one loop per unit.
- The parallel kernels split the blocks into n_chunks(m) contiguous chunks (a function
  of m and config only). Each chunk sums its blocks into its own row of ``partials``;
  the rows are added in chunk order afterwards. Results are therefore bit-identical for
  any thread count, and memory is O(n_chunks x n_par).
- float32 data and parameters are computed in float32; each block's sums (gradients and
  loss) are added into the float64 partials, so the long sums over m are float64.
- The activation and loss are int codes tested once per block and unit, outside the
  per-sample loops: one compiled function per dtype serves every variant.
- train_epochs (serial, whole training) and loss_and_grads (parallel, one call) run the
  same chunk code and the same summation order, so their gradients agree.

Argument order: outputs, then inputs, then sizes/codes. Nothing here validates: the
caller (fusedmlp._compiled) checks dtypes, shapes and contiguity; a wrong shape would read
out of bounds.
"""

import math

import numpy as np
from numba import prange, types
from numba.core import config as _numba_config
from numba.extending import overload

from .config import BLOCK, FASTMATH_EXACT, N_CHUNKS, jit
from .expfn import exp, log1p_unit, sigmoid, tanh

SIGMOID, TANH, RELU = 0, 1, 2
MSE, CROSS_ENTROPY = 0, 1
ACTIVATIONS = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}
LOSSES = {"mse": MSE, "cross_entropy": CROSS_ENTROPY}

# train_epochs / descend status codes
OK, NONFINITE_GRADS, UPDATE_OVERFLOW = 0, 1, 2

_inner = jit()
_serial = jit(nogil=True)
_parallel = jit(nogil=True, parallel=True)
_exact = jit(fastmath=FASTMATH_EXACT)


@_exact
def _mean(total, m):
    """total / m rounded once, the same in every kernel (no reciprocal, see config)."""
    return total / m


def n_params(n_x, n_h, n_y):
    """Number of parameters: len(grad) and a partials row are one more (the loss)."""
    return n_h * n_x + n_h + n_y * n_h + n_y


@_inner
def n_chunks(m):
    """Chunks the parallel kernels use for m samples: min(N_CHUNKS, number of blocks)."""
    return max(1, min(N_CHUNKS, -(-m // BLOCK)))


# ---------------------------------------------------------------------------
# helpers


def _like(a, v):
    """v as a scalar of array a's dtype (keeps float32 code in float32)."""
    return a.dtype.type(v)


if not _numba_config.DISABLE_JIT:

    @overload(_like)
    def _like_typed(a, v):
        if a.dtype == types.float32:
            return lambda a, v: np.float32(v)
        return lambda a, v: np.float64(v)


@_inner
def _chunk_blocks(c, n_chunk, m):
    """Blocks [lo, hi) of chunk c out of n_chunk."""
    n_block = (m + BLOCK - 1) // BLOCK
    return c * n_block // n_chunk, (c + 1) * n_block // n_chunk


@_inner
def _sum_partials(grad, partials):
    """grad = sum of the rows of partials, in row order (fixed, so deterministic)."""
    grad[:] = 0.0
    for c in range(partials.shape[0]):
        for p in range(grad.shape[0]):
            grad[p] += partials[c, p]


# ---------------------------------------------------------------------------
# one block: forward, then backward


@_inner
def _affine(z, W, r, b, S, s0, L):
    """z[:L] = b + sum_k W[r, k] S[k, s0:s0+L]. z (>= L,), W (*, n), S (n, *).

    Two rows of S per pass over the block (half the loads and stores of z), in the order
    ((b + W[r, 0] S[0]) + W[r, 1] S[1]) + ...
    """
    n = W.shape[1]
    w, s = W[r, 0], S[0, s0 : s0 + L]
    if n == 1:
        for j in range(L):
            z[j] = b + w * s[j]
        return
    v, t = W[r, 1], S[1, s0 : s0 + L]
    for j in range(L):
        z[j] = b + w * s[j] + v * t[j]
    for k in range(2, n - 1, 2):
        w, s = W[r, k], S[k, s0 : s0 + L]
        v, t = W[r, k + 1], S[k + 1, s0 : s0 + L]
        for j in range(L):
            z[j] = z[j] + w * s[j] + v * t[j]
    if n % 2 == 1:
        w, s = W[r, n - 1], S[n - 1, s0 : s0 + L]
        for j in range(L):
            z[j] += w * s[j]


@_inner
def _hidden_forward(A1, W1, b1, X, j0, L, act):
    """A1[:, :L] = g(W1 X[:, j0:j0+L] + b1). A1 (n_h, BLOCK), X (n_x, m)."""
    n_h = W1.shape[0]
    zero = _like(X, 0.0)
    for h in range(n_h):
        a = A1[h]
        _affine(a, W1, h, b1[h, 0], X, j0, L)
        if act == SIGMOID:
            for j in range(L):
                a[j] = sigmoid(a[j])
        elif act == TANH:
            for j in range(L):
                a[j] = tanh(a[j])
        else:
            for j in range(L):
                z = a[j]
                a[j] = z if z > zero else z * zero  # z * 0 keeps a NaN, as the reference


@_inner
def _output_linear(z, A1, W2, b2, o, L):
    """z[:L] = W2[o] A1[:, :L] + b2[o], output unit o. z (>= L,), A1 (n_h, BLOCK)."""
    _affine(z, W2, o, b2[o, 0], A1, 0, L)


@_inner
def _output_loss_delta(row, D2, A1, W2, b2, Y, j0, L, loss, scale):
    """D2[:, :L] = dL/dZ2 of the block, row[db2] += rowsum D2; returns the summed loss.

    row (n_par + 1,), D2 (n_y, BLOCK), A1 (n_h, BLOCK), Y (n_y, m); scale = 2/m (MSE) or
    1/m. The loss sum is float64 (a float32 block sum added in float64).
    """
    n_y = W2.shape[0]
    o_b2 = row.shape[0] - 1 - n_y  # db2 is last before the loss
    zero, one = _like(Y, 0.0), _like(Y, 1.0)
    total = 0.0
    for o in range(n_y):
        d, y = D2[o], Y[o, j0 : j0 + L]
        _output_linear(d, A1, W2, b2, o, L)  # d holds Z2 until overwritten
        acc, acc_b2 = zero, zero
        if loss == MSE:
            for j in range(L):
                a = sigmoid(d[j])
                r = a - y[j]
                acc += r * r
                t = scale * r * a * (one - a)
                d[j] = t
                acc_b2 += t
        else:
            # Y sp(-z) + (1-Y) sp(z), sp(z) = max(z, 0) + log1p(exp(-|z|)): exact from Z2,
            # no log of an A2 rounded to 0 or 1.
            for j in range(L):
                z, u = d[j], y[j]
                acc += u * (-z if z < zero else zero) + (one - u) * (z if z > zero else zero)
                acc += log1p_unit(exp(-abs(z)))
                t = scale * (sigmoid(z) - u)
                d[j] = t
                acc_b2 += t
        total += np.float64(acc)
        row[o_b2 + o] += np.float64(acc_b2)
    return total


@_inner
def _backward(row, D1, P, A1, D2, W2, X, j0, L, act):
    """row[dW1, db1, dW2] += the block's sums, with D1 = (W2^T D2) g'(A1), unit by unit.

    D1 (BLOCK,) scratch; P (BLOCK,) scratch that must hold zeros when n_y == 1;
    A1 (n_h, BLOCK), D2 (n_y, BLOCK), X (n_x, m). Per hidden unit h: P = sum over
    outputs o >= 1 of W2[o, h] D2[o] (with dW2[o, h]); then one loop for output 0 makes
    D1 = (P + W2[0, h] D2[0]) g'(A1[h]) and sums db1[h], dW2[0, h], dW1[h, 0:2]; the
    features k >= 2 of dW1 take a loop per pair.
    """
    n_y, n_h = W2.shape
    n_x = X.shape[0]
    zero, one = _like(X, 0.0), _like(X, 1.0)
    o_b1 = n_h * n_x
    o_W2 = o_b1 + n_h
    x0 = X[0, j0 : j0 + L]
    x1 = X[min(1, n_x - 1), j0 : j0 + L]  # feature 1, or feature 0 again (sum unused)
    # g'(a) = alpha + a (beta - a): a (1 - a) for sigmoid, 1 - a^2 for tanh
    alpha, beta = (zero, one) if act == SIGMOID else (one, zero)
    for h in range(n_h):
        a = A1[h]
        for o in range(1, n_y):
            w, d = W2[o, h], D2[o]
            acc = zero
            if o == 1:
                for j in range(L):
                    P[j] = w * d[j]
                    acc += d[j] * a[j]
            else:
                for j in range(L):
                    P[j] += w * d[j]
                    acc += d[j] * a[j]
            row[o_W2 + o * n_h + h] += np.float64(acc)
        w, d = W2[0, h], D2[0]
        acc_b1, acc_W2, acc_0, acc_1 = zero, zero, zero, zero
        if act == RELU:
            for j in range(L):
                # relu'(0) = 0; a NaN delta times 0 stays NaN, as in the reference
                t = (P[j] + w * d[j]) * (one if a[j] > zero else zero)
                D1[j] = t
                acc_b1 += t
                acc_W2 += d[j] * a[j]
                acc_0 += t * x0[j]
                acc_1 += t * x1[j]
        else:
            for j in range(L):
                t = (P[j] + w * d[j]) * (alpha + a[j] * (beta - a[j]))
                D1[j] = t
                acc_b1 += t
                acc_W2 += d[j] * a[j]
                acc_0 += t * x0[j]
                acc_1 += t * x1[j]
        row[o_b1 + h] += np.float64(acc_b1)
        row[o_W2 + h] += np.float64(acc_W2)
        row[h * n_x] += np.float64(acc_0)
        if n_x > 1:
            row[h * n_x + 1] += np.float64(acc_1)
        for k in range(2, n_x, 2):
            xa = X[k, j0 : j0 + L]
            xb = X[min(k + 1, n_x - 1), j0 : j0 + L]
            acc_0, acc_1 = zero, zero
            for j in range(L):
                acc_0 += D1[j] * xa[j]
                acc_1 += D1[j] * xb[j]
            row[h * n_x + k] += np.float64(acc_0)
            if k + 1 < n_x:
                row[h * n_x + k + 1] += np.float64(acc_1)


@_inner
def _chunk_grads(row, A1, D2, D1, P, W1, b1, W2, b2, X, Y, c, n_chunk, act, loss, scale):
    """row = loss and gradient sums over the blocks of chunk c. row (n_par + 1,)."""
    m = X.shape[1]
    row[:] = 0.0
    lo, hi = _chunk_blocks(c, n_chunk, m)
    for blk in range(lo, hi):
        j0 = blk * BLOCK
        L = min(BLOCK, m - j0)
        _hidden_forward(A1, W1, b1, X, j0, L, act)
        row[-1] += _output_loss_delta(row, D2, A1, W2, b2, Y, j0, L, loss, scale)
        _backward(row, D1, P, A1, D2, W2, X, j0, L, act)


@_inner
def _delta_scale(X, loss):
    """The 2/m (MSE) or 1/m (cross-entropy) factor of D2, in X's dtype."""
    m = X.shape[1]
    return _like(X, (2.0 if loss == MSE else 1.0) / m)


# ---------------------------------------------------------------------------
# kernels


@_inner
def _forward_chunk(A2, W1, b1, W2, b2, X, c, n_chunk, act):
    """A2[:, blocks of chunk c] = sigmoid(W2 g(W1 X + b1) + b2). A2 (n_y, m)."""
    n_h = W1.shape[0]
    n_y, m = A2.shape
    A1 = np.empty((n_h, BLOCK), X.dtype)
    lo, hi = _chunk_blocks(c, n_chunk, m)
    for blk in range(lo, hi):
        j0 = blk * BLOCK
        L = min(BLOCK, m - j0)
        _hidden_forward(A1, W1, b1, X, j0, L, act)
        for o in range(n_y):
            a = A2[o, j0 : j0 + L]
            _output_linear(a, A1, W2, b2, o, L)
            for j in range(L):
                a[j] = sigmoid(a[j])


@_inner
def _correct_chunk(W1, b1, W2, b2, X, Y, c, n_chunk, act):
    """How many (A2 > 1/2) == (Y > 1/2) over the blocks of chunk c (A2 as forward's)."""
    n_h = W1.shape[0]
    n_y, m = Y.shape
    A1 = np.empty((n_h, BLOCK), X.dtype)
    a = np.empty(BLOCK, X.dtype)
    half = _like(X, 0.5)
    count = 0
    lo, hi = _chunk_blocks(c, n_chunk, m)
    for blk in range(lo, hi):
        j0 = blk * BLOCK
        L = min(BLOCK, m - j0)
        _hidden_forward(A1, W1, b1, X, j0, L, act)
        for o in range(n_y):
            _output_linear(a, A1, W2, b2, o, L)
            y = Y[o, j0 : j0 + L]
            for j in range(L):
                count += (sigmoid(a[j]) > half) == (y[j] > half)
    return count


@_parallel
def forward(A2, W1, b1, W2, b2, X, act):
    """A2 = sigmoid(W2 g(W1 X + b1) + b2), parallel over chunks of blocks.

    A2 (n_y, m) output, W1 (n_h, n_x), b1 (n_h, 1), W2 (n_y, n_h), b2 (n_y, 1),
    X (n_x, m), all C-contiguous of one float dtype; act an ACTIVATIONS code.
    """
    n_chunk = n_chunks(A2.shape[1])
    for c in prange(n_chunk):
        _forward_chunk(A2, W1, b1, W2, b2, X, c, n_chunk, act)


@_serial
def forward_serial(A2, W1, b1, W2, b2, X, act):
    """forward in one thread: the same chunks in order, so the same bits."""
    n_chunk = n_chunks(A2.shape[1])
    for c in range(n_chunk):
        _forward_chunk(A2, W1, b1, W2, b2, X, c, n_chunk, act)


@_parallel
def count_correct(partials, W1, b1, W2, b2, X, Y, act):
    """Entries where forward's A2 > 1/2 agrees with Y > 1/2 (accuracy times n_y m).

    Fused: no A2 of size (n_y, m) is made. partials (n_chunks(m), >= 1) float64 scratch;
    W1 .. X as for forward, Y (n_y, m) of X's dtype. Returns an exact count (int).
    """
    n_chunk = partials.shape[0]
    for c in prange(n_chunk):
        partials[c, 0] = _correct_chunk(W1, b1, W2, b2, X, Y, c, n_chunk, act)
    total = 0
    for c in range(n_chunk):
        total += np.int64(partials[c, 0])
    return total


@_serial
def count_correct_serial(partials, W1, b1, W2, b2, X, Y, act):
    """count_correct in one thread."""
    n_chunk = partials.shape[0]
    total = 0
    for c in range(n_chunk):
        total += _correct_chunk(W1, b1, W2, b2, X, Y, c, n_chunk, act)
    return total


@_inner
def _loss_grads_chunk(partials, W1, b1, W2, b2, X, Y, c, act, loss, scale):
    """partials[c] = loss and gradient sums of chunk c, with its own scratch."""
    n_y, n_h = W2.shape
    A1 = np.empty((n_h, BLOCK), X.dtype)
    D2 = np.empty((n_y, BLOCK), X.dtype)
    D1 = np.empty(BLOCK, X.dtype)
    P = np.zeros(BLOCK, X.dtype)
    n_chunk = partials.shape[0]
    _chunk_grads(partials[c], A1, D2, D1, P, W1, b1, W2, b2, X, Y, c, n_chunk, act, loss, scale)


@_parallel
def loss_and_grads(grad, partials, W1, b1, W2, b2, X, Y, act, loss):
    """Loss and all four gradients in one pass over the samples; returns the loss.

    grad (n_par + 1,) float64 output: dW1, db1, dW2, db2 flattened, then m * loss.
    partials (n_chunks(m), n_par + 1) float64 scratch. W1 (n_h, n_x), b1 (n_h, 1),
    W2 (n_y, n_h), b2 (n_y, 1), X (n_x, m), Y (n_y, m): C-contiguous, one float dtype.
    act, loss: ACTIVATIONS and LOSSES codes.
    """
    scale = _delta_scale(X, loss)
    for c in prange(partials.shape[0]):
        _loss_grads_chunk(partials, W1, b1, W2, b2, X, Y, c, act, loss, scale)
    _sum_partials(grad, partials)
    return _mean(grad[-1], X.shape[1])


@_serial
def loss_and_grads_serial(grad, partials, W1, b1, W2, b2, X, Y, act, loss):
    """loss_and_grads in one thread: the same chunks and sums, so the same bits."""
    scale = _delta_scale(X, loss)
    for c in range(partials.shape[0]):
        _loss_grads_chunk(partials, W1, b1, W2, b2, X, Y, c, act, loss, scale)
    _sum_partials(grad, partials)
    return _mean(grad[-1], X.shape[1])


@_inner
def _descend(W1, b1, W2, b2, new, grad, lr):
    """W -= lr dW for all four parameters, all or nothing; returns a status code.

    NONFINITE_GRADS (nothing changed) if the loss or a gradient in grad is not finite,
    UPDATE_OVERFLOW (nothing changed) if a new value would not be finite in the
    parameters' dtype, else OK. new (n_par,) scratch of the parameters' dtype.
    """
    for p in range(grad.shape[0]):
        if not math.isfinite(grad[p]):
            return NONFINITE_GRADS
    i = 0
    for P in (W1, b1, W2, b2):
        for r in range(P.shape[0]):
            for c in range(P.shape[1]):
                new[i] = P[r, c] - lr * grad[i]
                i += 1
    for p in range(new.shape[0]):
        if not math.isfinite(new[p]):
            return UPDATE_OVERFLOW
    i = 0
    for P in (W1, b1, W2, b2):
        for r in range(P.shape[0]):
            for c in range(P.shape[1]):
                P[r, c] = new[i]
                i += 1
    return OK


@_serial
def descend(W1, b1, W2, b2, new, grad, lr):
    """In-place gradient step W -= lr dW after loss_and_grads; returns a status code.

    W1, b1, W2, b2 updated in place (all or nothing); new (n_par,) scratch of their
    dtype; grad as written by loss_and_grads; lr a float. Returns OK,
    NONFINITE_GRADS or UPDATE_OVERFLOW (see train_epochs).
    """
    return _descend(W1, b1, W2, b2, new, grad, lr)


@_serial
def train_epochs(losses, partials, W1, b1, W2, b2, X, Y, act, loss, lr, n_epochs):
    """n_epochs of full-batch gradient descent, serial; returns (n_done, status).

    losses (>= n_epochs,) float64 output: losses[e] is the loss before epoch e's update.
    partials (n_chunks(m), n_par + 1) float64 scratch. W1, b1, W2, b2 updated in place.
    X, Y, act, loss as for loss_and_grads; lr the step size.

    Stops at the first epoch whose loss or gradients are not finite (status
    NONFINITE_GRADS) or whose update would make a parameter non-finite (status
    UPDATE_OVERFLOW), leaving the parameters as they were before that epoch and its
    loss in losses[n_done]. Otherwise status OK and n_done = n_epochs. Gradients are
    those of loss_and_grads (same chunk code, same summation order), without the
    thread launch per epoch: the fast path for small m.
    """
    n_y, n_h = W2.shape
    m = X.shape[1]
    n_chunk = partials.shape[0]
    scale = _delta_scale(X, loss)
    A1 = np.empty((n_h, BLOCK), X.dtype)
    D2 = np.empty((n_y, BLOCK), X.dtype)
    D1 = np.empty(BLOCK, X.dtype)
    P = np.zeros(BLOCK, X.dtype)
    grad = np.empty(partials.shape[1])
    new = np.empty(partials.shape[1] - 1, W1.dtype)
    for e in range(n_epochs):
        for c in range(n_chunk):
            _chunk_grads(
                partials[c], A1, D2, D1, P, W1, b1, W2, b2, X, Y, c, n_chunk, act, loss, scale
            )
        _sum_partials(grad, partials)
        losses[e] = _mean(grad[-1], m)
        status = _descend(W1, b1, W2, b2, new, grad, lr)
        if status != OK:
            return e, status
    return n_epochs, OK


@_parallel
def sigmoid_yardstick(partials, W1, b1, W2, b2, X):
    """Only the network's n_h + n_y sigmoids per sample, in the same blocked loop.

    The time of this kernel bounds what an epoch of the sigmoid network could cost if
    everything but its exps and divisions were free. partials (n_chunks(m), >= 1)
    float64 scratch; returns the sum of all the sigmoids (so nothing is optimised away).
    """
    n_h = W1.shape[0]
    n_y = W2.shape[0]
    m = X.shape[1]
    n_chunk = partials.shape[0]
    zero = _like(X, 0.0)
    for c in prange(n_chunk):
        total = 0.0
        lo, hi = _chunk_blocks(c, n_chunk, m)
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
