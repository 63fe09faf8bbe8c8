"""The update after each gradient: gradient descent, momentum, Nesterov or Adam, with the
L2 penalty, and the learning-rate schedules. The compiled twin of fusedmlp.optimizers.

For each parameter P with gradient g (the L2 term alpha P / m_b added to the weights'):

    GD         P -= lr g
    MOMENTUM   v = mu v - lr g;  P += v
    NESTEROV   v = mu v - lr g;  P += mu v - lr g
    ADAM       t += 1;  m1 = b1 m1 + (1 - b1) g;  m2 = b2 m2 + (1 - b2) g^2
               P -= lr sqrt(1 - b2^t) / (1 - b1^t) m1 / (sqrt(m2) + eps)

all in float64 and rounded to the parameters' dtype, all or nothing: when a gradient is
not finite, or a new parameter (in its dtype) or moment would not be, nothing changes
and the status says why, as for plain descent.

Arrays (float64): hyper [MU, BETA1, BETA2, EPS, ALPHA, LR0, POWER_T, TOL]; moments
(2, n_par): v in row 0 (momentum, Nesterov) or m1, m2 in rows 0 and 1 (Adam), the
parameters flattened in the order W1, b1, W2, b2 (as grad); clock [T, LR, BEST, COUNT,
STOPPED]: Adam's step count, the current rate and the adaptive schedule's state (as
fusedmlp.optimizers.AdaptiveLR). codes (int): [OPTIMIZER, SCHEDULE, PATIENCE].
"""

import math

import numpy as np

from .config import jit

GD, MOMENTUM, NESTEROV, ADAM = 0, 1, 2, 3
CONSTANT, INVSCALING, ADAPTIVE = 0, 1, 2
OPTIMIZERS = {"gd": GD, "momentum": MOMENTUM, "nesterov": NESTEROV, "adam": ADAM}
SCHEDULES = {"constant": CONSTANT, "invscaling": INVSCALING, "adaptive": ADAPTIVE}
MU, BETA1, BETA2, EPS, ALPHA, LR0, POWER_T, TOL = range(8)
T, LR, BEST, COUNT, STOPPED = range(5)
OPTIMIZER, SCHEDULE, PATIENCE = range(3)
MIN_LR = 1e-6  # the adaptive schedule stops rather than go below it

_inner = jit()
_exact = jit(fastmath=False)


@_exact
def finite(x):
    """math.isfinite compiled without fastmath. Inlined into a fastmath caller that has
    just computed x, LLVM may otherwise fold the test away: with reassoc and nsz it
    rewrites x - x to 0 (measured: isfinite(1 + -a b) with a b = 1e600 gave True), and
    an overflowing update would be applied."""
    return math.isfinite(x)


@_inner
def penalty(W1, W2, alpha, m):
    """The L2 term of the loss: (alpha / (2 m)) (||W1||^2 + ||W2||^2), float64."""
    if alpha == 0.0:
        return 0.0
    total = 0.0
    for P in (W1, W2):
        for r in range(P.shape[0]):
            for c in range(P.shape[1]):
                total += np.float64(P[r, c]) * np.float64(P[r, c])
    return alpha / (2.0 * m) * total


@_inner
def _step(opt, g, v, m1, m2, lr, hyper, t):
    """(increment, new first moment, new second moment) of one entry."""
    if opt == GD:
        return -lr * g, v, m2
    if opt == MOMENTUM or opt == NESTEROV:
        nv = hyper[MU] * v - lr * g
        return (nv if opt == MOMENTUM else hyper[MU] * nv - lr * g), nv, m2
    b1, b2 = hyper[BETA1], hyper[BETA2]
    n1 = b1 * m1 + (1.0 - b1) * g
    n2 = b2 * m2 + (1.0 - b2) * g * g
    lr_t = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    return -lr_t * n1 / (math.sqrt(n2) + hyper[EPS]), n1, n2


@_inner
def update(W1, b1, W2, b2, new, fresh, grad, m_b, codes, hyper, moments, clock):
    """One update from grad (loss and gradient sums divided already: grad[:-1] the
    gradients of the batch of m_b samples); returns OK (0), NONFINITE_GRADS (1) or
    UPDATE_OVERFLOW (2). new (n_par,) scratch of the parameters' dtype, fresh (2, n_par)
    float64 scratch."""
    n_par = new.shape[0]
    for p in range(grad.shape[0]):  # the gradients and, last, the loss
        if not finite(grad[p]):
            return 1
    opt, alpha = codes[OPTIMIZER], hyper[ALPHA]
    lr, t = clock[LR], clock[T] + 1.0
    n_h, n_x = W1.shape
    o_W2 = n_h * n_x + n_h
    o_b2 = o_W2 + W2.shape[0] * n_h
    i = 0
    for P in (W1, b1, W2, b2):
        for r in range(P.shape[0]):
            for c in range(P.shape[1]):
                g = grad[i]
                if alpha != 0.0 and (i < n_h * n_x or o_W2 <= i < o_b2):  # weights only
                    g += alpha / m_b * np.float64(P[r, c])
                d, fresh[0, i], fresh[1, i] = _step(
                    opt, g, moments[0, i], moments[0, i], moments[1, i], lr, hyper, t
                )
                new[i] = np.float64(P[r, c]) + d
                if not (finite(new[i]) and finite(fresh[0, i])):
                    return 2
                if not finite(fresh[1, i]):
                    return 2
                i += 1
    i = 0
    for P in (W1, b1, W2, b2):
        for r in range(P.shape[0]):
            for c in range(P.shape[1]):
                P[r, c] = new[i]
                i += 1
    if opt != GD:
        for p in range(n_par):
            moments[0, p] = fresh[0, p]
            moments[1, p] = fresh[1, p]
    clock[T] = t
    return 0


@_inner
def epoch_end(loss, epoch, m, codes, hyper, clock):
    """The schedule after an epoch of m samples (epoch counted from 0 over the whole run)
    whose loss was ``loss``: sets clock[LR] for the next one; True when the adaptive
    schedule says stop (its rate would go below MIN_LR)."""
    schedule = codes[SCHEDULE]
    if schedule == INVSCALING:
        # scikit-learn's: after the samples seen so far, lr0 / (seen + 1) ** power_t
        clock[LR] = hyper[LR0] / ((epoch + 1.0) * m + 1.0) ** hyper[POWER_T]
    elif schedule == ADAPTIVE:
        if clock[STOPPED] != 0.0:
            return True
        if not loss <= clock[BEST] - hyper[TOL]:  # a NaN loss fails too
            clock[COUNT] += 1.0
        else:
            clock[COUNT] = 0.0
        if loss < clock[BEST]:
            clock[BEST] = loss
        if clock[COUNT] >= codes[PATIENCE]:
            if clock[LR] / 5.0 < MIN_LR:
                clock[STOPPED] = 1.0
                return True
            clock[LR] = clock[LR] / 5.0
            clock[COUNT] = 0.0
    return False
