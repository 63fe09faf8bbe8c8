"""What every block does sample by sample, whatever computed its products: the hidden
activation, the output function, and the output's loss and delta. Shared by the narrow
and the wide block code.

Legend as in mlp.py: A1 (n_h, blk) hidden activations, D2 (n_y, blk) output deltas,
Y (n_y, m) targets or, for softmax, an integer vector (m,) of class indices (read as
one-hot, never expanded), row (n_par + 1,) a chunk's float64 sums (db2 last before the
loss), T (2, blk) scratch of the data's dtype. Every loop here runs over the contiguous
samples of one row and calls only the plain-arithmetic functions of expfn, so LLVM
vectorises it (but for one log per sample of the softmax loss).

Outputs and losses (codes below), with D2 = dL/dZ2 and s = scale (2/m for mse, 1/m for
cross-entropy):

    SIGMOID_OUT + MSE            A2 = sigmoid(Z2)   D2 = s (A2 - Y) A2 (1 - A2)
    SIGMOID_OUT + CROSS_ENTROPY  A2 = sigmoid(Z2)   D2 = s (A2 - Y)
    SOFTMAX + CROSS_ENTROPY      A2 = softmax(Z2)   D2 = s (A2 - Y)   (columns of Y sum to 1)
    IDENTITY + MSE               A2 = Z2            D2 = s (A2 - Y)
    EXP_OUT + POISSON            A2 = exp(Z2)       D2 = s (A2 - Y)   (s = 1/m; Y >= 0)

The Poisson loss is half the Poisson deviance, Y log(Y / A2) - Y + A2, computed from Z2
as A2 - Y Z2 + (Y log Y - Y): one log per entry (a library call, not vectorised).
"""

import math

import numpy as np
from numba import types
from numba.core import config as _numba_config
from numba.extending import overload

from .config import LSE_GROUP, jit
from .expfn import exp, log1p_unit, sigmoid, tanh

SIGMOID, TANH, RELU = 0, 1, 2
MSE, CROSS_ENTROPY, POISSON = 0, 1, 2
SIGMOID_OUT, SOFTMAX, IDENTITY, EXP_OUT = 0, 1, 2, 3
ACTIVATIONS = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}
LOSSES = {"mse": MSE, "cross_entropy": CROSS_ENTROPY, "poisson": POISSON}
OUTPUTS = {"sigmoid": SIGMOID_OUT, "softmax": SOFTMAX, "identity": IDENTITY, "exp": EXP_OUT}

_inner = jit()


def like(a, v):
    """v as a scalar of array a's dtype (keeps float32 code in float32)."""
    return a.dtype.type(v)


if not _numba_config.DISABLE_JIT:

    @overload(like)
    def _like_typed(a, v):
        if a.dtype == types.float32:
            return lambda a, v: np.float32(v)
        return lambda a, v: np.float64(v)


@_inner
def activate(A, h, bias, L, act):
    """A[h, :L] = g(A[h, :L] + bias), g the ACTIVATIONS code act. A (n, >= L). The
    narrow code's, a row right after its affine sum (still in cache); the wide code's
    products come whole, and activate_rows takes them."""
    zero = like(A, 0.0)
    if act == SIGMOID:
        for j in range(L):
            A[h, j] = sigmoid(A[h, j] + bias)
    elif act == TANH:
        for j in range(L):
            A[h, j] = tanh(A[h, j] + bias)
    else:
        for j in range(L):
            z = A[h, j] + bias
            A[h, j] = z if z > zero else z * zero  # z * 0 keeps a NaN, as the reference


@_inner
def activate_rows(A, b, L, act):
    """activate's loops for every row h of A, with bias b[h, 0], in one call. (A call per
    row counted each array argument's reference up and down, NRT_incref/decref: with
    the slopes' calls per row, perf put them at a tenth of a 10-64-1 fit with batches
    of 200; the fit 8% faster without. activate itself per row, the loops written
    twice: measured, the wide code calling activate per row is 2-3% slower on the
    small fits, and the narrow code adds its bias in the affine sum, not here.)"""
    zero = like(A, 0.0)
    for h in range(A.shape[0]):
        bias = b[h, 0]
        if act == SIGMOID:
            for j in range(L):
                A[h, j] = sigmoid(A[h, j] + bias)
        elif act == TANH:
            for j in range(L):
                A[h, j] = tanh(A[h, j] + bias)
        else:
            for j in range(L):
                z = A[h, j] + bias
                A[h, j] = z if z > zero else z * zero


@_inner
def _label_targets(Y, o, j0, L, buf):
    """buf[:L] = 1 where the class index Y[j0 + j] is o, else 0."""
    one, zero = like(buf, 1.0), like(buf, 0.0)
    for j in range(L):
        buf[j] = one if Y[j0 + j] == o else zero
    return buf


def targets(Y, o, j0, L, buf):
    """Output o's targets over the block: the view Y[o, j0:j0+L], or, for class labels
    (Y an integer vector), a one-hot row written to buf."""
    return Y[o, j0 : j0 + L] if Y.ndim == 2 else _label_targets(Y, o, j0, L, buf)


if not _numba_config.DISABLE_JIT:

    @overload(targets)
    def _targets_typed(Y, o, j0, L, buf):
        if Y.ndim == 2:
            return lambda Y, o, j0, L, buf: Y[o, j0 : j0 + L]
        return lambda Y, o, j0, L, buf: _label_targets(Y, o, j0, L, buf)


@_inner
def softmax_columns(D, L, T):
    """D[:, :L] = softmax of each column (sample) of D, the max subtracted first; leaves
    the max in T[0] and the sum of the shifted exps in T[1]."""
    mx, sm = T[0], T[1]
    zero = like(mx, 0.0)
    for j in range(L):
        mx[j] = D[0, j]
        sm[j] = zero
    for o in range(1, D.shape[0]):
        d = D[o]
        for j in range(L):
            mx[j] = d[j] if d[j] > mx[j] else mx[j]
    for o in range(D.shape[0]):
        d = D[o]
        for j in range(L):
            e = exp(d[j] - mx[j])
            d[j] = e
            sm[j] += e
    for o in range(D.shape[0]):
        d = D[o]
        for j in range(L):
            d[j] = d[j] / sm[j]


@_inner
def apply_output(D, L, out, T):
    """D[:, :L] = out(Z2) in place: sigmoid, softmax over each column, identity or exp."""
    if out == SOFTMAX:
        softmax_columns(D, L, T)
    elif out == SIGMOID_OUT:
        for o in range(D.shape[0]):
            d = D[o]
            for j in range(L):
                d[j] = sigmoid(d[j])
    elif out == EXP_OUT:
        for o in range(D.shape[0]):
            d = D[o]
            for j in range(L):
                d[j] = exp(d[j])


@_inner
def ylogy_minus_y(u):
    """u log u - u in float64 (0 at u = 0): the Poisson loss's term of the target alone."""
    v = np.float64(u)
    return v * math.log(v) - v if v > 0.0 else -v


@_inner
def loss_delta(row, D2, Y, wt, j0, L, loss, out, scale, T):
    """D2[:, :L] holds Z2; overwrite it with dL/dZ2, row[db2] += its row sums; return the
    summed loss (float64: a block sum in the data's dtype, added in float64).

    scale = 2/m (mse) or 1/m (cross-entropy, Poisson), in the data's dtype; T (2, blk)
    scratch.
    wt: the samples' weights (m,) in the data's dtype, or (0,) for none; with weights,
    each sample's loss and delta count w_j times, and scale divides by sum(w), not m.
    """
    if wt.shape[0] != 0:
        return _weighted_loss_delta(row, D2, Y, wt[j0 : j0 + L], j0, L, loss, out, scale, T)
    if out == SOFTMAX:
        return _softmax_loss_delta(row, D2, Y, j0, L, scale, T)
    n_y = D2.shape[0]
    o_b2 = row.shape[0] - 1 - n_y  # db2 is last before the loss
    zero, one = like(D2, 0.0), like(D2, 1.0)
    total = 0.0
    for o in range(n_y):
        d, y = D2[o], targets(Y, o, j0, L, T[0])
        acc, acc_b2 = zero, zero
        if out == IDENTITY:
            for j in range(L):
                r = d[j] - y[j]
                acc += r * r
                t = scale * r
                d[j] = t
                acc_b2 += t
        elif out == EXP_OUT:
            for j in range(L):
                z, u = d[j], y[j]
                a = exp(z)
                acc += a - u * z
                total += ylogy_minus_y(u)
                t = scale * (a - u)
                d[j] = t
                acc_b2 += t
        elif loss == MSE:
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
def _sum_lse(T, L):
    """sum over the block's samples of logsumexp(Z2) = T[0, j] + log T[1, j] (T[0] the
    max, T[1] the sum of exps with the max taken off: in [1, n_y]), in float64. The log
    is a library call that does not vectorise, so config.LSE_GROUP samples share one,
    of the product of their sums: at most n_y^8, finite for any n_y below 1e38, and as
    exact as 8 logs (a few ulp of the product)."""
    lse = 0.0
    for j in range(L):
        lse += np.float64(T[0, j])
    for g in range(0, L, LSE_GROUP):
        prod = 1.0
        for j in range(g, min(g + LSE_GROUP, L)):
            prod *= np.float64(T[1, j])
        lse += math.log(prod)
    return lse


@_inner
def _softmax_loss_delta(row, D2, Y, j0, L, scale, T):
    """loss_delta for softmax + cross-entropy: per sample logsumexp(Z2) - sum_k Y_k Z2_k
    (exact from Z2, nothing overflows), then D2 = scale (softmax(Z2) - Y)."""
    n_y = D2.shape[0]
    o_b2 = row.shape[0] - 1 - n_y
    yz = 0.0
    for o in range(n_y):  # sum Y Z2 over the block, before Z2 is overwritten
        d, y = D2[o], targets(Y, o, j0, L, T[0])
        acc = like(D2, 0.0)
        for j in range(L):
            acc += y[j] * d[j]
        yz += np.float64(acc)
    softmax_columns(D2, L, T)  # T[0] max, T[1] sum of exps
    lse = _sum_lse(T, L)
    for o in range(n_y):
        d, y = D2[o], targets(Y, o, j0, L, T[0])
        acc_b2 = like(D2, 0.0)
        for j in range(L):
            t = scale * (d[j] - y[j])
            d[j] = t
            acc_b2 += t
        row[o_b2 + o] += np.float64(acc_b2)
    return lse - yz


# The weighted twins of the loops above: the same formulas with each sample's terms
# times its weight w[j], in loops of their own so that unweighted training keeps its
# machine code (and bits): a multiply by a weight of 1 would let fastmath's "contract"
# fuse the loss sums differently.


@_inner
def _weighted_loss_delta(row, D2, Y, w, j0, L, loss, out, scale, T):
    """loss_delta with the block's weights w (L,): returns sum_j w_j loss_j and leaves
    D2 = scale w_j dloss_j/dZ2."""
    if out == SOFTMAX:
        return _weighted_softmax(row, D2, Y, w, j0, L, scale, T)
    n_y = D2.shape[0]
    o_b2 = row.shape[0] - 1 - n_y
    zero, one = like(D2, 0.0), like(D2, 1.0)
    total = 0.0
    for o in range(n_y):
        d, y = D2[o], targets(Y, o, j0, L, T[0])
        acc, acc_b2 = zero, zero
        for j in range(L):
            z, u = d[j], y[j]
            if out == IDENTITY:
                r = z - u
                acc += w[j] * (r * r)
                t = scale * w[j] * r
            elif out == EXP_OUT:
                a = exp(z)
                acc += w[j] * (a - u * z)
                total += np.float64(w[j]) * ylogy_minus_y(u)
                t = scale * w[j] * (a - u)
            elif loss == MSE:
                a = sigmoid(z)
                r = a - u
                acc += w[j] * (r * r)
                t = scale * w[j] * r * a * (one - a)
            else:
                s = u * (-z if z < zero else zero) + (one - u) * (z if z > zero else zero)
                acc += w[j] * (s + log1p_unit(exp(-abs(z))))
                t = scale * w[j] * (sigmoid(z) - u)
            d[j] = t
            acc_b2 += t
        total += np.float64(acc)
        row[o_b2 + o] += np.float64(acc_b2)
    return total


@_inner
def _weighted_softmax(row, D2, Y, w, j0, L, scale, T):
    """_softmax_loss_delta with the block's weights w (L,)."""
    n_y = D2.shape[0]
    o_b2 = row.shape[0] - 1 - n_y
    yz = 0.0
    for o in range(n_y):
        d, y = D2[o], targets(Y, o, j0, L, T[0])
        acc = like(D2, 0.0)
        for j in range(L):
            acc += w[j] * (y[j] * d[j])
        yz += np.float64(acc)
    softmax_columns(D2, L, T)
    lse = 0.0
    for j in range(L):
        lse += np.float64(w[j]) * (np.float64(T[0, j]) + math.log(np.float64(T[1, j])))
    for o in range(n_y):
        d, y = D2[o], targets(Y, o, j0, L, T[0])
        acc_b2 = like(D2, 0.0)
        for j in range(L):
            t = scale * w[j] * (d[j] - y[j])
            d[j] = t
            acc_b2 += t
        row[o_b2 + o] += np.float64(acc_b2)
    return lse - yz


@_inner
def _slope(a, act, zero, one):
    """g'(a) from the activation a itself: relu'(0) = 0; else alpha + a (beta - a), that
    is a (1 - a) for sigmoid, 1 - a^2 for tanh."""
    if act == RELU:
        return one if a > zero else zero
    if act == SIGMOID:
        return a * (one - a)
    return one + a * (zero - a)


@_inner
def _put(T, i, acc, beta):
    """T[i] = acc (beta 0: a fresh sum) or T[i] += acc (beta 1: adding to a sum)."""
    if beta == 0.0:
        T[i] = acc
    else:
        T[i] += acc


@_inner
def activation_slopes(D, A, L, act, T, at, beta):
    """D[h, :L] *= g'(A[h, :L]) (the activations themselves) for every row h; each row's
    new sum (db1's share of the block, in D's dtype) into T[at + h] (_put with beta).
    A NaN delta stays NaN (times relu's 0). One call for all rows, as activate_rows."""
    zero, one = like(A, 0.0), like(A, 1.0)
    for h in range(D.shape[0]):
        acc = zero
        for j in range(L):
            t = D[h, j] * _slope(A[h, j], act, zero, one)
            D[h, j] = t
            acc += t
        _put(T, at + h, acc, beta)


@_inner
def output_slopes(D, A, W2, Z, L, act, T, at, beta):
    """activation_slopes for one output unit: D[h, :L] = (W2[0, h] Z[0, :L]) g'(A[h, :L]),
    Z = D2 (1, >= L), so W2^T D2 needs no product of its own; the same two roundings as
    the product's, then the slope's."""
    zero, one = like(A, 0.0), like(A, 1.0)
    for h in range(D.shape[0]):
        w, acc = W2[0, h], zero
        for j in range(L):
            t = (w * Z[0, j]) * _slope(A[h, j], act, zero, one)
            D[h, j] = t
            acc += t
        _put(T, at + h, acc, beta)
