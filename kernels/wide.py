"""Block code for wide networks: the block's matrix products by BLAS, the rest fused.

Per block of L samples (X_b = X[:, j0:j0+L], a view, no copy: row stride m, or for
a sample-major mini-batch column stride n_x, which BLAS reads transposed):

    A1 = W1 X_b                          mm       (n_h, L): n_h n_x L multiply-adds
    A1 = g(A1 + b1)                      elementwise, row by row, still in cache
    D2 = W2 A1 + b2 -> loss, dL/dZ2      mm, then elementwise.loss_delta
    G[dW2] = D2 A1^T                     mm_nt    (n_y, n_h)
    P = W2^T D2                          mm_tn    (n_h, L); for one output unit
    P *= g'(A1), G[db1] = rowsum P       elementwise (P is now D1)   both in one pass
    G[dW1] = P X_b^T                     mm_nt    (n_h, n_x): n_h n_x L multiply-adds
    row += G                             the block's sums into the chunk's float64 row

With float64 data the products accumulate straight into the chunk's float64 row
(beta = 1). With float32 data BLAS computes in float32, so the blocks' sums go to G, of
the data's dtype, and are added into the row every FLUSH_BLOCKS blocks (and at the
chunk's end): long sums over m are float64 for both dtypes, and the float32 sums span at
most FLUSH_BLOCKS blocks. (Flushing after every block moved the n_par gradient entries
through memory once a block: at 784-128-10 about a tenth of the float32 epoch.)
Nothing is of size m: the scratch is (2 n_h + n_y) x blk values and G, per thread.
Legend as in mlp.py.
"""

import numpy as np
from numba import types
from numba.core import config as _numba_config
from numba.extending import overload

from .blas import mm, mm_nt, mm_tn
from .config import jit
from .elementwise import activate_rows, activation_slopes, output_slopes

_inner = jit()

FLUSH_BLOCKS = 4  # float32: blocks whose sums G gathers before they go to the row


def _target(row, G):
    """Where a block's sums go, and beta: (row, 1.0) for float64 data, else (G, 0.0)."""
    return (row, 1.0) if G.dtype == np.float64 else (G, 0.0)


def _flush(row, G, n):
    """row[:n] += G[:n] for float32 data (nothing to do for float64)."""
    if G.dtype != np.float64:
        for p in range(n):
            row[p] += np.float64(G[p])


if not _numba_config.DISABLE_JIT:

    @overload(_target)
    def _target_typed(row, G):
        if G.dtype == types.float64:
            return lambda row, G: (row, 1.0)
        return lambda row, G: (G, 0.0)

    @overload(_flush)
    def _flush_typed(row, G, n):
        if G.dtype == types.float64:
            return lambda row, G, n: None

        def add(row, G, n):
            for p in range(n):
                row[p] += np.float64(G[p])

        return add


@_inner
def hidden_forward(A1, W1, b1, X, j0, L, act):
    """A1[:, :L] = g(W1 X[:, j0:j0+L] + b1). A1 (n_h, blk), X (n_x, m)."""
    mm(A1[:, :L], W1, X[:, j0 : j0 + L], 0.0)
    activate_rows(A1, b1, L, act)


@_inner
def output_linear(D2, A1, W2, b2, L):
    """D2[:, :L] = W2 A1[:, :L] + b2 (Z2 of the block). D2 (n_y, blk), A1 (n_h, blk)."""
    mm(D2[:, :L], W2, A1[:, :L], 0.0)
    for o in range(W2.shape[0]):
        d, b = D2[o], b2[o, 0]
        for j in range(L):
            d[j] += b


@_inner
def backward(row, S, G, A1, D2, W2, X, j0, L, act, first, last):
    """row[dW1, db1, dW2] += the block's sums. S (n_h, blk) scratch (P, then D1);
    G (n_par,) scratch of the data's dtype (used for float32 data: its sums start at the
    ``first`` block of a flush group and go to the row after the ``last``); A1 (n_h,
    blk), D2 (n_y, blk) as left by the forward pass and loss_delta.

    (Per-unit loops for dW2, W2^T D2 and db1, as the narrow code has, were measured
    against these BLAS calls for n_y = 1 and 10 at large m: no difference beyond noise,
    so BLAS. But a batch of a few hundred samples pays each call's fixed cost: with one
    output unit, W2^T D2 is D2's row scaled per unit, folded into the slope's pass
    (measured, scikit-learn's diabetes fit, 10-64-1, batches of 200: 10.1 -> 9.0 ms,
    with rows indexed in place in elementwise).)
    """
    n_y, n_h = W2.shape
    n_x = X.shape[0]
    o_b1 = n_h * n_x
    o_W2 = o_b1 + n_h
    A, D, P = A1[:, :L], D2[:, :L], S[:, :L]
    T, beta = _target(row, G)
    if not first:
        beta = 1.0  # G goes on gathering this group's sums
    mm_nt(T[o_W2 : o_W2 + n_y * n_h].reshape((n_y, n_h)), D, A, beta)
    if n_y == 1:  # W2^T D2 is D2's one row scaled, unit by unit: no product
        output_slopes(S, A1, W2, D2, L, act, T, o_b1, beta)
    else:
        mm_tn(P, W2, D, 0.0)
        activation_slopes(S, A1, L, act, T, o_b1, beta)
    mm_nt(T[:o_b1].reshape((n_h, n_x)), P, X[:, j0 : j0 + L], beta)
    if last:
        _flush(row, G, o_W2 + n_y * n_h)
