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
CONSTANT, INVSCALING, ADAPTIVE, PLATEAU = 0, 1, 2, 3
# PLATEAU (not a user's schedule): the adaptive schedule's test without its action. After
# `patience` epochs that fail to improve on the best loss by tol, the kernel returns and
# leaves the rate alone: the scikit-learn estimators decide then, as scikit-learn does.
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
        x = P.reshape(P.size)  # one loop over the whole array: rows of n_x are short
        for j in range(x.shape[0]):
            total += np.float64(x[j]) * np.float64(x[j])
    return alpha / (2.0 * m) * total


@_inner
def _propose(opt, P, g0, m1, m2, f1, f2, new, decay, lr, mu, beta1, beta2, eps):
    """The update of one parameter array P (C-contiguous, flattened) into new, and the
    optimizer's moments into f1, f2, from its gradients g0 and moments m1, m2 (all 1-D,
    contiguous); returns how many of the new values (in P's dtype) and moments are not
    finite, counted in the same pass. One branch-free loop per optimizer, which LLVM
    vectorises (a loop choosing the optimizer per entry cost 6 ns per parameter,
    measured; this one about 1)."""
    x = P.reshape(P.size)
    n = x.shape[0]
    bad = 0
    if opt == GD:
        for j in range(n):
            g = g0[j] + decay * np.float64(x[j])
            new[j] = np.float64(x[j]) - lr * g
            bad += 0 if finite(new[j]) else 1
    elif opt == MOMENTUM:
        for j in range(n):
            g = g0[j] + decay * np.float64(x[j])
            v = mu * m1[j] - lr * g
            f1[j] = v
            new[j] = np.float64(x[j]) + v
            bad += (0 if finite(new[j]) else 1) + (0 if finite(v) else 1)
    elif opt == NESTEROV:
        for j in range(n):
            g = g0[j] + decay * np.float64(x[j])
            v = mu * m1[j] - lr * g
            f1[j] = v
            new[j] = np.float64(x[j]) + (mu * v - lr * g)
            bad += (0 if finite(new[j]) else 1) + (0 if finite(v) else 1)
    else:
        for j in range(n):
            g = g0[j] + decay * np.float64(x[j])
            n1 = beta1 * m1[j] + (1.0 - beta1) * g
            n2 = beta2 * m2[j] + (1.0 - beta2) * g * g
            f1[j] = n1
            f2[j] = n2
            new[j] = np.float64(x[j]) - lr * n1 / (math.sqrt(n2) + eps)
            bad += (0 if finite(new[j]) else 1) + (0 if finite(n1) else 1)
            bad += 0 if finite(n2) else 1
    return bad


@_inner
def _count_nonfinite(a):
    """How many entries of the 1-D a are NaN or inf: no early exit, so it vectorises."""
    bad = 0
    for j in range(a.shape[0]):
        bad += 0 if finite(a[j]) else 1
    return bad


@_inner
def update(W1, b1, W2, b2, new, fresh, grad, m_b, codes, hyper, moments, clock):
    """One update from grad (loss and gradient sums divided already: grad[:-1] the
    gradients of the batch of m_b samples); returns OK (0), NONFINITE_GRADS (1) or
    UPDATE_OVERFLOW (2). new (n_par,) scratch of the parameters' dtype, fresh (2, n_par)
    float64 scratch."""
    n_par = new.shape[0]
    if _count_nonfinite(grad):  # the gradients and, last, the loss
        return 1
    opt, alpha = codes[OPTIMIZER], hyper[ALPHA]
    lr, t = clock[LR], clock[T] + 1.0
    mu, beta1, beta2, eps = hyper[MU], hyper[BETA1], hyper[BETA2], hyper[EPS]
    if opt == ADAM:  # the bias correction, once per step
        lr = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    o, bad = 0, 0
    for k, P in enumerate((W1, b1, W2, b2)):
        e = o + P.size
        decay = alpha / m_b if k % 2 == 0 else 0.0  # weights only: biases unpenalised
        bad += _propose(opt, P, grad[o:e], moments[0, o:e], moments[1, o:e], fresh[0, o:e],
                        fresh[1, o:e], new[o:e], decay, lr, mu, beta1, beta2, eps)  # fmt: skip
        o = e
    if bad:
        return 2
    rows = 0 if opt == GD else (1 if opt != ADAM else 2)
    o = 0
    for P in (W1, b1, W2, b2):
        x = P.reshape(P.size)
        for j in range(x.shape[0]):
            x[j] = new[o + j]
        o += x.shape[0]
    for r in range(rows):
        for j in range(n_par):
            moments[r, j] = fresh[r, j]
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
    elif schedule == ADAPTIVE or schedule == PLATEAU:
        if clock[STOPPED] != 0.0:
            return True
        if not loss <= clock[BEST] - hyper[TOL]:  # a NaN loss fails too
            clock[COUNT] += 1.0
        else:
            clock[COUNT] = 0.0
        if loss < clock[BEST]:
            clock[BEST] = loss
        if clock[COUNT] >= codes[PATIENCE]:
            if schedule == PLATEAU:
                return True
            if clock[LR] / 5.0 < MIN_LR:
                clock[STOPPED] = 1.0
                return True
            clock[LR] = clock[LR] / 5.0
            clock[COUNT] = 0.0
    return False
