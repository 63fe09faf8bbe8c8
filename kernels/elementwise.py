"""What every block does sample by sample, whatever computed its products: the hidden
activation, and the output's loss and delta. Shared by the narrow and the wide block code.

Legend as in mlp.py: A1 (n_h, blk) hidden activations, D2 (n_y, blk) output deltas,
Y (n_y, m) targets, row (n_par + 1,) a chunk's float64 sums (db2 last before the loss).
Every loop here runs over the contiguous samples of one row and calls only the plain-
arithmetic functions of expfn, so LLVM vectorises it.
"""

import numpy as np
from numba import types
from numba.core import config as _numba_config
from numba.extending import overload

from .config import jit
from .expfn import exp, log1p_unit, sigmoid, tanh

SIGMOID, TANH, RELU = 0, 1, 2
MSE, CROSS_ENTROPY = 0, 1
ACTIVATIONS = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}
LOSSES = {"mse": MSE, "cross_entropy": CROSS_ENTROPY}

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
def activate(a, bias, L, act):
    """a[:L] = g(a[:L] + bias), g the ACTIVATIONS code act. a (>= L,)."""
    zero = like(a, 0.0)
    if act == SIGMOID:
        for j in range(L):
            a[j] = sigmoid(a[j] + bias)
    elif act == TANH:
        for j in range(L):
            a[j] = tanh(a[j] + bias)
    else:
        for j in range(L):
            z = a[j] + bias
            a[j] = z if z > zero else z * zero  # z * 0 keeps a NaN, as the reference


@_inner
def loss_delta(row, D2, Y, j0, L, loss, scale):
    """D2[:, :L] holds Z2; overwrite it with dL/dZ2, row[db2] += its row sums; return the
    summed loss (float64: a block sum in the data's dtype, added in float64).

    scale = 2/m (MSE) or 1/m (cross-entropy), in the data's dtype.
    """
    n_y = D2.shape[0]
    o_b2 = row.shape[0] - 1 - n_y  # db2 is last before the loss
    zero, one = like(Y, 0.0), like(Y, 1.0)
    total = 0.0
    for o in range(n_y):
        d, y = D2[o], Y[o, j0 : j0 + L]
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
def activation_slope(d, a, L, act):
    """d[:L] *= g'(A1) from the activations a themselves (relu'(0) = 0); returns the sum
    of the new d[:L] (db1's share of the block), in d's dtype.

    g'(a) = alpha + a (beta - a): a (1 - a) for sigmoid, 1 - a^2 for tanh.
    """
    zero, one = like(a, 0.0), like(a, 1.0)
    acc = zero
    if act == RELU:
        for j in range(L):
            t = d[j] * (one if a[j] > zero else zero)  # a NaN delta stays NaN
            d[j] = t
            acc += t
    else:
        alpha, beta = (zero, one) if act == SIGMOID else (one, zero)
        for j in range(L):
            t = d[j] * (alpha + a[j] * (beta - a[j]))
            d[j] = t
            acc += t
    return acc
