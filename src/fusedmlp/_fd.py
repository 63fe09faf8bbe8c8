"""The finite differences behind ``gradcheck``: how they are computed and how far off they are.

Central differences of the reference loss (any output, the L2 term included), their
Richardson extrapolation, the floor (the differences' own error, rounding and truncation,
measured at the point) and the bound on what crossed relu kinks move them.
``fusedmlp.diagnostics`` judges gradients with these.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import reference

EPS_RANGE = (1e-8, 1e-2)  # float64 central differences: rounding below, truncation above
_U = float(np.finfo(np.float64).eps)  # 2.2e-16, float64's machine epsilon
_SAFETY = 10.0  # on the rounding term of the floor only: see _floor
_TRUNC_SAFETY = 2.0  # on the measured truncation term of the floor: see _floor
_CAP = 1e-2  # the floor never excuses more than this fraction of max |g_fd|: see _floor
_KINK_SAFETY = 2.0  # on the first-order bound of a crossed relu kink: see _kinks


class Net(NamedTuple):
    """The network a check is made for: hidden activation, loss, output and L2 ``alpha``."""

    activation: str
    loss: str
    output: str = "sigmoid"
    alpha: float = 0.0


def _cost(p, X, Y, net):
    """The reference loss at p, the L2 term included."""
    cache = reference.forward(p, X, net.activation, net.output)
    return reference.cost(cache, Y, net.loss, net.output, p, net.alpha)


def _central(p, X, Y, net, k, h):
    """Central differences of the reference loss in p[k] with step h, and the largest |loss|."""
    w = p[k]
    g = np.zeros_like(w)
    big = 0.0
    for idx in np.ndindex(w.shape):
        keep = w[idx]
        w[idx] = keep + h
        at_up = w[idx]
        up = _cost(p, X, Y, net)
        w[idx] = keep - h
        at_down = w[idx]
        down = _cost(p, X, Y, net)
        w[idx] = keep
        g[idx] = (up - down) / (at_up - at_down)  # the step really taken, after rounding
        big = max(big, abs(up), abs(down))
    return g, big


# The floor: how far the finite differences can be off, and so how far g may be from them.
# g_fd(h) = g + c2 h^2 + c4 h^4 + ... (central differences, c2 = L^(3) / 6), so the
# Richardson value rich(h) = (4 g_fd(h / 2) - g_fd(h)) / 3 = g - c4 h^4 / 4 + O(h^6) loses
# the h^2 term: at eps = 1e-2 its error is ~1e-8 relative where g_fd(eps)'s is ~1e-3. It is
# the reference g is held to, and its error has two terms, kept apart:
#   rounding = SAFETY * 3 u S / eps, with u = 2.2e-16 and S the loss's rounding scale
#     (_loss_scale): each loss value is off by about u S, so g_fd(eps) by up to u S / eps,
#     g_fd(eps / 2) by twice that and rich(eps) by (4 * 2 + 1) / 3 = 3 times that.
#     S already sums every first-order contribution at full size, and the rounding seen
#     in rich stays below 1.2 times 3 u S / eps (all activations and losses, m from 6 to
#     400, inputs up to 10 sigma, zero gradients included; softmax and identity outputs
#     and the L2 term, at eps = 1e-8 over 288 points: below 0.7); SAFETY = 10 leaves a margin of
#     8 over that, for what a first-order count can miss (the loss sums m terms: up to
#     log2(m) u |L| if their errors line up). This is the term a truly zero gradient
#     needs: its g_fd is rounding noise and nothing else. It is not 100, which at
#     eps = 1e-8 would leave a gradient of 1.5e-4 unjudgeable to within 3%.
#   trunc = TRUNC_SAFETY * 16/15 max_i |rich(eps)_i - rich(eps / 2)_i|: rich's truncation
#     c4 eps^4 / 4, measured with a third step eps / 4 (rich(eps) - rich(eps / 2) =
#     15/64 c4 eps^4), not guessed, since c4 depends on the data. TRUNC_SAFETY = 2 lets the
#     rest of the series (from the h^6 term on) be as large as its leading term; and since
#     the difference carries both values' rounding, it also samples the real noise. It is
#     not 100: this term grows with the curvature and with eps, and a large factor on it
#     turns into tolerance for wrong gradients (the fault this replaced: 100 times the h^2
#     term of g_fd(1e-2) passed a dW1 that was 5% off).
# The floor exists for gradients that are zero up to noise, not for large ones, so it is
# capped: floor = rounding + trunc where max |rich| <= rounding (g_fd is zero up to its
# rounding: a right g is 0 or as small, and |g - rich| is noise), else
# min(rounding + trunc, CAP max |rich|): no error above 1% of the largest |g_fd| is ever
# excused, a real mistake errs by O(|g|). Between that cap and rounding + trunc the
# differences cannot tell right from wrong: "inconclusive". Relu kinks crossed by a step
# move rich by up to (4 bound(eps / 2) + bound(eps)) / 3 (_kinks), which is added per entry
# for that verdict only; such entries are left out of trunc, which would count the kink.
def _floor(p, X, Y, net, k, eps, num, half, big, scale, skip):
    """(rounding, trunc): the two error bounds of rich, from a third step eps / 4."""
    quarter, big4 = _central(p, X, Y, net, k, eps / 4)
    rich, rich2 = (4 * half - num) / 3, (4 * quarter - half) / 3
    rounding = _SAFETY * 3 * _U * max(big, big4, scale) / eps
    trunc = _TRUNC_SAFETY * 16 / 15 * _maxabs((rich - rich2)[~skip])
    return rounding, trunc


# u S bounds the rounding of the computed loss to first order: each computed value v carries
# a relative error ~u, which moves L by |dL/dv| |v| u (for a matrix product, by |dL/dv| times
# the sum of the absolute products). |L| alone is not enough where L is a small result of
# large quantities: mse at a saturated fit reads (A2 - Y)**2 ~ 1e-23 off A2 ~ 1, whose own
# rounding u moves L by 2 |A2 - Y| u / m, ~1e11 times u |L|.
def _loss_scale(p, X, Y, net):
    """S: |L| plus sum |dL/dv| |v| over the loss's intermediates v (see above)."""
    cache = reference.forward(p, X, net.activation, net.output)
    A1, Z2, A2 = cache["A1"], cache["Z2"], cache["A2"]
    m = X.shape[1]
    d2 = reference.output_delta(cache, Y, net.loss, net.output)  # dL/dZ2
    dA1 = p["W2"].T @ d2  # dL/dA1
    d1 = dA1 * reference.ACTIVATIONS[net.activation][1](A1)  # dL/dZ1
    total = abs(_cost(p, X, Y, net))  # the L2 term is a sum of squares: |L| covers it
    total += np.sum(np.abs(d2) * (np.abs(p["W2"]) @ np.abs(A1) + np.abs(p["b2"])))
    total += np.sum(np.abs(dA1) * np.abs(A1))
    total += np.sum(np.abs(d1) * (np.abs(p["W1"]) @ np.abs(X) + np.abs(p["b1"])))
    if net.loss == "mse":  # sigmoid cross_entropy reads Z2, not A2
        total += np.sum(2 / m * np.abs(A2 - Y) * np.abs(A2))  # dL/dA2 |A2|
    elif net.output == "softmax":
        # Y (logsumexp(Z2) - Z2) / m: both terms rounded, and the max-shifted Z2 - top
        # inside the exp reaches L through A2 / m
        top = Z2.max(axis=0, keepdims=True)
        lse = top + np.log(np.exp(Z2 - top).sum(axis=0, keepdims=True))
        total += np.sum(Y * (np.abs(lse) + np.abs(Z2)) + A2 * np.abs(Z2 - top)) / m
    return float(total)


# Moving W1[j, i] by h moves Z1[j, s] by h * X[i, s] (b1[j]: by h). Where |Z1[j, s]| <
# h |X[i, s]| the step crosses the kink of relu, and the central difference takes the mean of
# the slopes either side: it is off from any choice of relu'(Z1) in [0, 1] by at most
# dA1[j, s] * (|X[i, s]| - |Z1[j, s]| / h) / 2, with dA1 = W2.T @ delta2 the slope of the loss
# in A1 (0 for a unit whose column of W2 is 0: it never reaches the loss).
def _kinks(p, X, Y, net, h):
    """For relu: {"W1", "b1": (bound, min |Z1|)}, how far crossed kinks move the differences.

    The L2 term is smooth in W1 and does not reach b1: it crosses no kink."""
    cache = reference.forward(p, X, net.activation, net.output)
    d2 = reference.output_delta(cache, Y, net.loss, net.output)
    dA1 = np.abs(p["W2"].T @ d2)  # (n_h, m)
    Z = np.abs(cache["Z1"])  # (n_h, m)
    over_w = np.maximum(np.abs(X)[None, :, :] - Z[:, None, :] / h, 0)  # (n_h, n_x, m)
    over_b = np.maximum(1 - Z / h, 0)  # (n_h, m)
    out = {}
    for k, over in (("W1", over_w), ("b1", over_b[:, None, :])):
        bound = (dA1[:, None, :] * over).sum(axis=2) / 2  # (n_h, n_x) or (n_h, 1)
        crossed = (over > 0) & (dA1[:, None, :] > 0)
        zmin = float(np.broadcast_to(Z[:, None, :], over.shape)[crossed].min(initial=np.inf))
        out[k] = (bound, zmin)
    return out


def _maxabs(a):
    return float(np.max(np.abs(a), initial=0.0))


def _rel(a, b):
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def _close(a, b, tol, floor):
    """a and b agree: within the relative tolerance, or entry by entry within floor."""
    return _rel(a, b) <= tol or bool(np.all(np.abs(a - b) <= floor))
