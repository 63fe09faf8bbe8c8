"""Diagnostics for people debugging their own back-propagation.

``gradcheck`` runs a user's gradient function and compares each gradient with central
finite differences of the reference loss, saying which gradient is wrong and, where the
pattern is recognisable, why. ``explain`` prints the equations with their shapes.
"""

from __future__ import annotations

import numbers
import traceback
from dataclasses import dataclass, field

import numpy as np

from . import reference
from ._validation import (
    PARAM_NAMES,
    check_activation,
    check_count,
    check_data_for,
    check_loss,
    check_params,
    check_real,
)

_GPRIME = {"sigmoid": "A1 * (1 - A1)", "tanh": "1 - A1**2", "relu": "(Z1 > 0)"}


def _table(header: tuple, rows: list) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# gradcheck

VERDICTS = ("pass", "FAIL", "inconclusive")
EPS_RANGE = (1e-8, 1e-2)  # float64 central differences: rounding below, truncation above
_U = float(np.finfo(np.float64).eps)  # 2.2e-16, float64's machine epsilon
_SAFETY = 10.0  # on the rounding term of the floor only: see _floor
_TRUNC_SAFETY = 2.0  # on the measured truncation term of the floor: see _floor
_CAP = 1e-2  # the floor never excuses more than this fraction of max |g_fd|: see _floor
_KINK_SAFETY = 2.0  # on the first-order bound of a crossed relu kink: see _kinks


@dataclass
class GradRow:
    """One parameter's verdict: "pass", "FAIL" or "inconclusive" (see ``gradcheck``).

    ``rel_error`` is ||g - g_fd|| / (||g|| + ||g_fd||), ``abs_error`` max |g - g_fd|, with
    g_fd the most accurate differences computed (see ``gradcheck``), and ``floor`` the
    largest max |g - g_fd| that passes: the finite differences' own error, capped at 1% of
    max |g_fd| unless g_fd is zero up to rounding (NaN where the relative rule decided).
    """

    name: str
    expected_shape: tuple
    given_shape: tuple | None
    rel_error: float
    verdict: str = "FAIL"
    hint: str = ""
    abs_error: float = float("nan")
    floor: float = float("nan")

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass
class GradcheckReport:
    """Result of ``gradcheck``: one row per parameter; prints as a table.

    Attributes
    ----------
    ok : bool
        True when every gradient has the right shape and matches finite differences
        (every row's verdict is "pass"); an "inconclusive" row makes it False.
    rows : list of GradRow
    error : str
        Set when the user's function raised or returned something unusable.
    """

    rows: list = field(default_factory=list)
    tol: float = 1e-6
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(r.passed for r in self.rows)

    def __getitem__(self, name: str) -> GradRow:
        for r in self.rows:
            if name in (r.name, "d" + r.name):
                return r
        raise KeyError(name)

    def __str__(self) -> str:
        def num(x):
            return "-" if np.isnan(x) else f"{x:.2e}"

        out = []
        if self.error:
            out.append(f"gradient function failed: {self.error}")
        if self.rows:
            body = [
                (
                    "d" + r.name,
                    r.expected_shape,
                    "-" if r.given_shape is None else r.given_shape,
                    num(r.rel_error),
                    num(r.abs_error),
                    num(r.floor),
                    r.verdict,
                    r.hint,
                )
                for r in self.rows
            ]
            header = ("gradient", "expected", "given", "rel. error", "abs. error", "floor")
            out.append(_table(header + ("result", "why"), body))
        verdicts = [r.verdict for r in self.rows]
        if self.ok:
            head = "all gradients match"
        elif self.error or "FAIL" in verdicts:
            head = "some gradients are wrong"
        else:
            n = verdicts.count("inconclusive")
            head = (
                f"no gradient is wrong, but {n} could not be judged at this point (inconclusive)"
            )
        out.append(
            f"{head} (tolerance {self.tol:g} on ||g - g_fd|| / (||g|| + ||g_fd||), or "
            "max |g - g_fd| <= floor, the finite differences' own error, at most "
            f"{_CAP:.0%} of max |g_fd| unless g_fd is zero up to rounding)"
        )
        return "\n".join(out)

    __repr__ = __str__


def _central(p, X, Y, activation, loss, k, h):
    """Central differences of the reference loss in p[k] with step h, and the largest |loss|."""
    w = p[k]
    g = np.zeros_like(w)
    big = 0.0
    for idx in np.ndindex(w.shape):
        keep = w[idx]
        w[idx] = keep + h
        at_up = w[idx]
        up = reference.cost(reference.forward(p, X, activation), Y, loss)
        w[idx] = keep - h
        at_down = w[idx]
        down = reference.cost(reference.forward(p, X, activation), Y, loss)
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
#     400, inputs up to 10 sigma, zero gradients included); SAFETY = 10 leaves a margin of
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
def _floor(p, X, Y, activation, loss, k, eps, num, half, big, scale, skip):
    """(rounding, trunc): the two error bounds of rich, from a third step eps / 4."""
    quarter, big4 = _central(p, X, Y, activation, loss, k, eps / 4)
    rich, rich2 = (4 * half - num) / 3, (4 * quarter - half) / 3
    rounding = _SAFETY * 3 * _U * max(big, big4, scale) / eps
    trunc = _TRUNC_SAFETY * 16 / 15 * _maxabs((rich - rich2)[~skip])
    return rounding, trunc


# u S bounds the rounding of the computed loss to first order: each computed value v carries
# a relative error ~u, which moves L by |dL/dv| |v| u (for a matrix product, by |dL/dv| times
# the sum of the absolute products). |L| alone is not enough where L is a small result of
# large quantities: mse at a saturated fit reads (A2 - Y)**2 ~ 1e-23 off A2 ~ 1, whose own
# rounding u moves L by 2 |A2 - Y| u / m, ~1e11 times u |L|.
def _loss_scale(p, X, Y, activation, loss):
    """S: |L| plus sum |dL/dv| |v| over the loss's intermediates v (see above)."""
    cache = reference.forward(p, X, activation)
    A1, A2 = cache["A1"], cache["A2"]
    d2 = reference.output_delta(cache, Y, loss)  # dL/dZ2
    dA1 = p["W2"].T @ d2  # dL/dA1
    d1 = dA1 * reference.ACTIVATIONS[activation][1](A1)  # dL/dZ1
    total = abs(reference.cost(cache, Y, loss))
    total += np.sum(np.abs(d2) * (np.abs(p["W2"]) @ np.abs(A1) + np.abs(p["b2"])))
    total += np.sum(np.abs(dA1) * np.abs(A1))
    total += np.sum(np.abs(d1) * (np.abs(p["W1"]) @ np.abs(X) + np.abs(p["b1"])))
    if loss == "mse":  # cross_entropy reads Z2, not A2
        total += np.sum(2 / X.shape[1] * np.abs(A2 - Y) * A2)  # dL/dA2 |A2|
    return float(total)


# Moving W1[j, i] by h moves Z1[j, s] by h * X[i, s] (b1[j]: by h). Where |Z1[j, s]| <
# h |X[i, s]| the step crosses the kink of relu, and the central difference takes the mean of
# the slopes either side: it is off from any choice of relu'(Z1) in [0, 1] by at most
# dA1[j, s] * (|X[i, s]| - |Z1[j, s]| / h) / 2, with dA1 = W2.T @ delta2 the slope of the loss
# in A1 (0 for a unit whose column of W2 is 0: it never reaches the loss).
def _kinks(p, X, Y, activation, loss, h):
    """For relu: {"W1", "b1": (bound, min |Z1|)}, how far crossed kinks move the differences."""
    cache = reference.forward(p, X, activation)
    dA1 = np.abs(p["W2"].T @ reference.output_delta(cache, Y, loss))  # (n_h, m)
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


def _kink_hint(k, zmin):
    if zmin == 0:
        where = (
            "Z1 = W1 @ X + b1 is exactly 0 for some unit and sample (as with b1 = 0 and an "
            "all-zero sample, or W1 = 0 and b1 = 0)"
        )
        fix = ""
    else:
        where = f"some |Z1| (down to {zmin:.1e}) lies within the eps step of 0"
        fix = ", or use a smaller eps"
    return (
        f"relu kink: {where}; there d{k} is undefined, the finite differences straddle the "
        "kink, and the gap is within what that explains. Move the point off the kink, e.g. "
        f"W1 += 1e-3 * np.random.randn(*W1.shape) and likewise b1{fix}, and check again"
    )


def _coarse_hint(k, eps, rounding, trunc, size):
    if rounding >= trunc:
        cause, fix = "rounding (eps is small for a gradient this small)", "a larger eps"
    else:
        cause, fix = "truncation (eps is large for this curvature)", "a smaller eps"
    return (
        f"finite differences too coarse: at eps={eps:g} they are only good to "
        f"{rounding + trunc:.1e}, mostly {cause}, which is over {_CAP:.0%} of this gradient "
        f"(max |g_fd| = {size:.1e}); d{k} is off by more than {_CAP:.0%} but within that. "
        f"Check again with {fix} (the default eps=1e-5 suits most points)"
    )


def _maxabs(a):
    return float(np.max(np.abs(a), initial=0.0))


def _rel(a, b):
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def _close(a, b, tol, floor):
    """a and b agree: within the relative tolerance, or entry by entry within floor."""
    return _rel(a, b) <= tol or bool(np.all(np.abs(a - b) <= floor))


def _as_real(g, name):
    """(g as a float64 array, "") or (None, why it cannot be a gradient)."""
    try:
        a = np.asarray(g)
    except (TypeError, ValueError) as exc:
        return None, f"{name} is not a numeric array: {exc}"
    if a.dtype.kind == "c" or (a.dtype.kind == "O" and any(np.iscomplexobj(v) for v in a.flat)):
        zero = a.dtype.kind == "c" and not np.any(a.imag)
        what = f"has complex dtype {a.dtype}" if a.dtype.kind == "c" else "holds complex numbers"
        return None, (
            f"{name} {what}"
            + (" (its imaginary part is all 0)" if zero else "")
            + "; gradients are real: a complex number crept in (** 0.5 of a negative "
            "Python float, np.emath.sqrt or np.lib.scimath, a 1j, np.fft, complex data); "
            "find it and keep the arithmetic real rather than dropping .imag"
        )
    if a.dtype.kind in "USV":
        return None, f"{name} holds {a.dtype} (text or bytes), not numbers"
    if a.dtype.kind not in "biufO":
        return None, f"{name} has dtype {a.dtype}, not real numbers"
    odd = [v for v in a.flat if not isinstance(v, numbers.Real)] if a.dtype.kind == "O" else []
    if odd:
        return None, (
            f"{name} is an object array holding {type(odd[0]).__name__} entries, not only "
            "real numbers"
        )
    return a.astype(np.float64), ""


def _mistakes(p, X, Y, activation, loss):
    """Gradients as the common mistakes compute them: {description: grads}."""
    m = X.shape[1]
    cache = reference.forward(p, X, activation)
    A2 = cache["A2"]
    d2 = {
        "|A2 - Y| used where A2 - Y belongs (abs loses the sign)": (
            (2 / m) * np.abs(A2 - Y) * A2 * (1 - A2) if loss == "mse" else np.abs(A2 - Y) / m
        ),
        "sign flipped: use A2 - Y (prediction minus target), not Y - A2": (
            -reference.output_delta(cache, Y, loss)
        ),
    }
    if loss == "mse":
        d2["the output sigmoid's derivative A2 * (1 - A2) is missing from delta2"] = (2 / m) * (
            A2 - Y
        )
        d2["the factor 2 of the squared error's derivative is missing"] = (
            (A2 - Y) * A2 * (1 - A2) / m
        )
    out = {
        why: reference.backward(p, X, Y, cache, activation, loss, delta2=d)
        for why, d in d2.items()
    }
    for other in reference.ACTIVATIONS:
        if other != activation:
            # right delta2, but delta1 uses another activation's derivative
            grads = reference.backward(p, X, Y, cache, other, loss)
            out[f"delta1 uses the derivative of {other}, but the hidden layer is {activation}"] = (
                grads
            )
    return out


def _why(name, g, num, m, tol, floor, slack, mistakes):
    """Name the pattern of a wrong gradient, when it is clearly told apart from the right one."""
    # a mistake counts only where it differs from num beyond 10 tol and slack (the floor, plus
    # what a crossed relu kink can move num): where the right gradient is 0, so are many mistakes
    for why, grads in mistakes.items():
        bad = grads["d" + name]
        if _close(g, bad, 10 * tol, floor) and not _close(num, bad, 10 * tol, slack):
            return why
    nn = float(np.vdot(num, num))
    if nn > 0 and np.any(np.abs(num) > slack):
        c = float(np.vdot(g, num)) / nn  # best scale factor g ~ c * num
        if c != 0 and _rel(g, c * num) < tol * 10:
            if abs(c - m) < 1e-6 * m:
                return f"{m}x too large: the 1/m of the mean is missing"
            if abs(c * m - 1) < 1e-6:
                return f"{m}x too small: divided by m twice"
            if g.size > 1:
                return f"off by a constant factor {c:.6g}"
    if (
        g.ndim == 2
        and g.shape[0] == g.shape[1]
        and _close(g.T, num, 10 * tol, slack)
        and not _close(num.T, num, 10 * tol, slack)
    ):
        return "equals the transpose of the right gradient: factors in the wrong order"
    return ""


def _shape_hint(k, g, want, m):
    hint = f"d{k} has shape {g.shape} but {k} is {want}"
    if g.shape == want[::-1]:
        hint += ": it is transposed (factors in the wrong order?)"
    elif g.size == 1 and int(np.prod(want)) > 1:
        hint += ": summed over everything? use .sum(axis=1, keepdims=True)"
    elif g.ndim == 1 and g.size == int(np.prod(want)):
        hint += ": lost a dimension; use keepdims=True"
    elif g.ndim == 2 and g.shape[1] == m:
        hint += ": still one column per sample; sum over the samples (axis=1)"
    return hint


def gradcheck(
    fn,
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activation: str = "sigmoid",
    loss: str = "mse",
    eps: float = 1e-5,
    tol: float = 1e-6,
) -> GradcheckReport:
    """Check a hand-written gradient function against finite differences.

    ``fn(params, X, Y)`` must return a dict of gradients keyed "dW1", "db1", "dW2", "db2"
    (or "W1", ...). Shapes and dtypes are checked first (a complex gradient is a FAIL, even
    with a zero imaginary part); then each gradient g is compared with central differences
    g_fd of the reference loss in float64, with step ``eps`` (and, where g does not match
    those within tol, with their Richardson extrapolation (4 g_fd(eps/2) - g_fd(eps)) / 3,
    whose truncation error is O(eps**4) instead of O(eps**2)), and gets a verdict:

    - "pass" when ``||g - g_fd|| / (||g|| + ||g_fd||) <= tol``, or when
      ``max |g - g_fd| <= floor`` (below);
    - "FAIL" when g differs beyond both; the "why" column names the mistake when its
      pattern is recognisable and clearly told apart from the right gradient;
    - "inconclusive" when the finite differences cannot tell right from wrong at this
      point and g differs from them by no more than that explains. Either some hidden
      pre-activation Z1 = W1 @ X + b1 lies within the eps step of 0 (relu only), where
      relu has a kink and the derivative is undefined (g_fd there is the mean of the
      slopes either side): the hint says how to move the point off the kink (a small
      random perturbation of W1 and b1, or a smaller eps). Or the differences' own error
      at this eps is over 1% of the gradient (a tiny gradient at eps = 1e-8, a sharply
      curved loss at eps = 1e-2): the hint says which way to move eps. Such a gradient
      is not known to be wrong; one wrong beyond what these explain is still a "FAIL".

    The floor: the relative rule alone fails right gradients that are 0, or close to it
    (all-zero weights, W2 = 0, a balanced output), where g_fd is rounding noise (~1e-11)
    and the relative error is 1. For the gradients the relative rule rejects, the error of
    g_fd is measured at the point, as two terms:

    - rounding = 10 * 3 u S / eps, with u = 2.2e-16 and S the loss's rounding scale
      (|L| plus sum |dL/dv| |v| over the intermediates v of the forward pass): each loss
      value is off by about u S, and the extrapolated difference by 3 u S / eps; the
      safety factor 10 applies to this term only;
    - trunc = 2 * the truncation error of the extrapolated difference, measured from a
      third step eps / 4 (Richardson again, not a guess), with a modest factor 2.

    and the floor is rounding + trunc where ``max |g_fd| <= rounding`` (g_fd is zero up to
    rounding: the gradient is zero up to noise, and g must be too), and otherwise
    ``min(rounding + trunc, 0.01 * max |g_fd|)``. So the floor never excuses an error
    above 1% of the largest |g_fd| of a gradient the differences resolve (a real mistake
    errs by O(|g|)), and never more than the differences' own error. It is ~1e-9 or
    less for eps = 1e-5.

    Parameters
    ----------
    fn : callable
        The gradient function under test; it receives float64 copies of the inputs.
    params : dict
        The point at which to check, {"W1", "b1", "W2", "b2"}.
    X, Y : arrays (n_x, m) and (n_y, m)
        Keep m and the network small: this costs 2 forward passes per parameter entry
        (4 for a gradient not within tol of g_fd(eps), 6 for one not within tol of the
        extrapolated differences either).
    activation, loss : str
        The network the gradients are meant for.
    eps : float
        The finite-difference step, in [1e-8, 1e-2]: below, rounding error dominates (about
        1e-16 / eps relative); above, truncation (about eps**2, eps**4 once extrapolated).
        The default 1e-5 gives differences accurate to about 1e-9 relative.
    tol : float
        The relative tolerance, in (0, 1) (the relative error is never above 1). The
        default 1e-6 sits between the differences' accuracy (1e-9) and the error of every
        real mistake (above 1e-3), with room both ways.

    Returns
    -------
    GradcheckReport
        Prints as a table; ``.ok`` is True when all gradients pass; each row has a
        ``.verdict`` ("pass", "FAIL", "inconclusive") and ``.passed``.

    Examples
    --------
    >>> from fusedmlp import init_params, reference
    >>> p = init_params(2, 3, 1, seed=0, scale=1.0)
    >>> X, Y = np.random.RandomState(0).randn(2, 5), np.array([[0, 1, 1, 0, 1]])
    >>> def mine(p, X, Y):
    ...     return reference.loss_and_grads(p, X, Y)[1]
    >>> gradcheck(mine, p, X, Y).ok
    True
    >>> z = init_params(2, 3, 1, scale=0.0)  # all weights 0: some gradients are exactly 0
    >>> gradcheck(mine, z, X, np.array([[0, 1, 1, 0, 0.5]])).ok
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be your gradient function fn(params, X, Y), got {fn!r}.")
    eps = check_real("eps", eps, positive=True)
    lo, hi = EPS_RANGE
    if not lo <= eps <= hi:
        raise ValueError(
            f"eps must be in [{lo:g}, {hi:g}] for float64 central differences (below, "
            f"rounding error dominates; above, truncation error), got {eps!r}; the default "
            "eps=1e-5 suits almost every check."
        )
    tol = check_real("tol", tol, positive=True)
    if tol >= 1:
        raise ValueError(
            f"tol must be in (0, 1), got {tol!r}: the relative error is never above 1, so "
            "tol >= 1 passes anything; the default tol=1e-6 separates rounding from mistakes."
        )
    activation = check_activation(activation)
    loss = check_loss(loss)
    p = check_params(params)
    X, Y = check_data_for(p, X, Y, loss)
    p = {k: v.astype(np.float64) for k, v in p.items()}
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    m = X.shape[1]
    report = GradcheckReport(tol=tol)

    try:
        given = fn({k: v.copy() for k, v in p.items()}, X.copy(), Y.copy())
    except Exception as exc:  # the user's bug is the subject here, so report it
        where = traceback.extract_tb(exc.__traceback__)[-1]
        report.error = f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
        if "matmul" in str(exc) or "aligned" in str(exc) or "broadcast" in str(exc):
            report.error += (
                ". A shape mismatch inside the gradient function usually means a matrix "
                "product (@, np.dot) where an elementwise product (*) belongs, or a missing "
                "transpose; see fusedmlp.explain(...) for every term's shape."
            )
        return report
    if not isinstance(given, dict):
        report.error = (
            f"it returned {type(given).__name__}; it must return a dict keyed "
            '"dW1", "db1", "dW2", "db2".'
        )
        return report

    kinks = _kinks(p, X, Y, activation, loss, eps) if activation == "relu" else {}
    halves = _kinks(p, X, Y, activation, loss, eps / 2) if activation == "relu" else {}
    scale = _loss_scale(p, X, Y, activation, loss)
    mistakes = _mistakes(p, X, Y, activation, loss)
    for k in PARAM_NAMES:
        row = GradRow(k, p[k].shape, None, float("nan"))
        report.rows.append(row)
        g = given.get("d" + k, given.get(k))
        if g is None:
            row.hint = f'no "d{k}" in the returned dict'
            continue
        g, row.hint = _as_real(g, "d" + k)
        if g is None:
            continue
        row.given_shape = g.shape
        if g.shape != p[k].shape:
            row.hint = _shape_hint(k, g, p[k].shape, m)
            continue
        if not np.isfinite(g).all():
            row.hint = f"d{k} holds NaN or inf (an overflow, or a log or 0/0 upstream?)"
            continue
        num, big = _central(p, X, Y, activation, loss, k, eps)
        row.rel_error = _rel(g, num)
        row.abs_error = _maxabs(g - num)
        if row.rel_error <= tol:
            row.verdict = "pass"
            continue
        # not within tol of g_fd(eps): hold g to the Richardson value, then to the floor
        half, big2 = _central(p, X, Y, activation, loss, k, eps / 2)
        ref = (4 * half - num) / 3  # Richardson: see _floor
        row.rel_error = _rel(g, ref)
        row.abs_error = _maxabs(g - ref)
        if row.rel_error <= tol:
            row.verdict = "pass"
            continue
        kink, zmin = kinks.get(k, (np.zeros(g.shape), np.inf))
        kink_half = halves.get(k, (np.zeros(g.shape), np.inf))[0]
        skip = kink > 0  # entries whose eps step crosses a relu kink
        big = max(big, big2)
        rounding, trunc = _floor(p, X, Y, activation, loss, k, eps, num, half, big, scale, skip)
        error = rounding + trunc  # how far ref itself can be off
        size = _maxabs(ref)
        row.floor = error if size <= rounding else min(error, _CAP * size)
        # per entry: ref's error, plus what crossed kinks move ref (both its steps)
        slack = error + _KINK_SAFETY * (4 * kink_half + kink) / 3
        gap = np.abs(g - ref)
        if np.all(gap <= row.floor):
            row.verdict = "pass"
        elif np.all(gap <= error):  # within ref's error, but beyond the cap
            row.verdict = "inconclusive"
            row.hint = _coarse_hint(k, eps, rounding, trunc, size)
        elif np.all(gap <= slack):  # only where a kink can explain the gap
            row.verdict = "inconclusive"
            row.hint = _kink_hint(k, zmin)
        else:
            row.hint = _why(k, g, ref, m, tol, row.floor, slack, mistakes)
            row.hint = row.hint or "values differ from finite differences"
    out_ok = all(r.passed for r in report.rows if r.name in ("W2", "b2"))
    for r in report.rows:
        shaped = r.given_shape == r.expected_shape
        if out_ok and shaped and r.verdict == "FAIL" and r.name in ("W1", "b1"):
            r.hint += (
                f"; the output layer is right, so look at delta1 = (W2.T @ delta2) * "
                f"{_GPRIME[activation]} (elementwise *)"
            )
    return report


# ---------------------------------------------------------------------------
# explain


@dataclass
class Explanation:
    """The forward and backward equations for given sizes; prints as a table.

    Attributes
    ----------
    rows : list of (term, formula, shape, operation)
    """

    rows: list
    title: str

    def __str__(self) -> str:
        return self.title + "\n" + _table(("term", "formula", "shape", "operation"), self.rows)

    __repr__ = __str__


def explain(
    n_x: int = 2,
    n_h: int = 4,
    n_y: int = 1,
    m: int = 400,
    activation: str = "sigmoid",
    loss: str = "mse",
) -> Explanation:
    """Every term of the forward and backward pass with its shape for these sizes.

    Examples
    --------
    >>> e = explain(2, 4, 1, 400)
    >>> [r for r in e.rows if r[0] == "dW1"][0][2]
    '(4, 2)'
    """
    n_x, n_h, n_y, m = (
        check_count(k, v, minimum=1)
        for k, v in (("n_x", n_x), ("n_h", n_h), ("n_y", n_y), ("m", m))
    )
    g = {"sigmoid": "sigmoid(Z1)", "tanh": "tanh(Z1)", "relu": "max(Z1, 0)"}[
        check_activation(activation)
    ]
    loss = check_loss(loss)
    if loss == "mse":
        L = "(1/m) sum (A2 - Y)**2"
        d2 = "(2/m) * (A2 - Y) * A2 * (1 - A2)"
    else:
        L = "-(1/m) sum [Y log A2 + (1-Y) log(1-A2)]"
        d2 = "(A2 - Y) / m"

    def s(*d):
        return str(tuple(d))

    mm = "matrix product"
    ew = "elementwise"
    rows = [
        ("X", "input", s(n_x, m), "one sample per column"),
        ("Z1", "W1 @ X + b1", s(n_h, m), f"{mm} {s(n_h, n_x)} @ {s(n_x, m)}, b1 broadcast"),
        ("A1", g, s(n_h, m), ew),
        ("Z2", "W2 @ A1 + b2", s(n_y, m), f"{mm} {s(n_y, n_h)} @ {s(n_h, m)}, b2 broadcast"),
        ("A2", "sigmoid(Z2)", s(n_y, m), ew),
        ("L", L, "()", "sum over all entries"),
        ("delta2", d2, s(n_y, m), ew),
        ("dW2", "delta2 @ A1.T", s(n_y, n_h), f"{mm} {s(n_y, m)} @ {s(m, n_h)}"),
        ("db2", "delta2.sum(axis=1, keepdims=True)", s(n_y, 1), "row sums"),
        ("dA1", "W2.T @ delta2", s(n_h, m), f"{mm} {s(n_h, n_y)} @ {s(n_y, m)}"),
        ("delta1", f"dA1 * {_GPRIME[activation]}", s(n_h, m), ew),
        ("dW1", "delta1 @ X.T", s(n_h, n_x), f"{mm} {s(n_h, m)} @ {s(m, n_x)}"),
        ("db1", "delta1.sum(axis=1, keepdims=True)", s(n_h, 1), "row sums"),
    ]
    title = f"{n_x}-{n_h}-{n_y} network, m = {m}, {activation} hidden, sigmoid output, {loss}"
    return Explanation(rows=rows, title=title)
