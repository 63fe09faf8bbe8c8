"""Block code for narrow networks: plain loops over the samples, one unit at a time.

For small n_x and n_h (the planar 2-4-1 network) nothing beats keeping each hidden
unit's row of the block in L1 and streaming over it: every innermost loop runs over
contiguous samples with no loop inside it, so LLVM vectorises it, and the backward pass
fuses everything a hidden unit needs into one loop. Wide layers go to wide.py instead
(config.plan decides). Legend as in mlp.py; blk is the block size, L <= blk the samples
of this block.
"""

import numpy as np

from .config import jit
from .elementwise import RELU, SIGMOID, activate, like

_inner = jit()


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
def hidden_forward(A1, W1, b1, X, j0, L, act):
    """A1[:, :L] = g(W1 X[:, j0:j0+L] + b1). A1 (n_h, blk), X (n_x, m)."""
    zero = like(X, 0.0)
    for h in range(W1.shape[0]):
        a = A1[h]
        _affine(a, W1, h, b1[h, 0], X, j0, L)
        activate(A1, h, zero, L, act)


@_inner
def output_linear(D2, A1, W2, b2, L):
    """D2[:, :L] = W2 A1[:, :L] + b2 (Z2 of the block). D2 (n_y, blk), A1 (n_h, blk)."""
    for o in range(W2.shape[0]):
        _affine(D2[o], W2, o, b2[o, 0], A1, 0, L)


@_inner
def backward(row, S, A1, D2, W2, X, j0, L, act):
    """row[dW1, db1, dW2] += the block's sums, with D1 = (W2^T D2) g'(A1), unit by unit.

    S (2, blk) scratch: D1 = S[0], and P = S[1], which must hold zeros when n_y == 1;
    A1 (n_h, blk), D2 (n_y, blk), X (n_x, m). Per hidden unit h: P = sum over
    outputs o >= 1 of W2[o, h] D2[o] (with dW2[o, h]); then one loop for output 0 makes
    D1 = (P + W2[0, h] D2[0]) g'(A1[h]) and sums db1[h], dW2[0, h], dW1[h, 0:2]; the
    features k >= 2 of dW1 take a loop per pair.
    """
    n_y, n_h = W2.shape
    n_x = X.shape[0]
    D1, P = S[0], S[1]
    zero, one = like(X, 0.0), like(X, 1.0)
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
