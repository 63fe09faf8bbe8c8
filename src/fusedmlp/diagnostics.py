"""Diagnostics for people debugging their own back-propagation.

``gradcheck`` runs a user's gradient function and compares each gradient with central
finite differences of the reference loss, saying which gradient is wrong and, where the
pattern is recognisable, why; for every output ("sigmoid", "softmax", "identity") and
loss that go together, with or without the L2 penalty ``alpha``. ``explain`` (written in
``_explain``) prints the equations with their shapes.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import numpy as np

from . import reference
from ._data import check_targets
from ._explain import Explanation, _table, explain
from ._fd import (
    _CAP,
    _KINK_SAFETY,
    EPS_RANGE,
    Net,
    _central,
    _floor,
    _kinks,
    _loss_scale,
    _maxabs,
    _rel,
)
from ._grad_hints import (
    _GPRIME,
    L2,
    _as_real,
    _coarse_hint,
    _kink_hint,
    _mistakes,
    _shape_hint,
    _why,
)
from ._validation import PARAM_NAMES, check_params, check_real
from .settings import Settings

__all__ = ["Explanation", "GradRow", "GradcheckReport", "explain", "gradcheck", "VERDICTS"]


# ---------------------------------------------------------------------------
# gradcheck (the finite differences are in _fd, the mistakes and hints in _grad_hints)

VERDICTS = ("pass", "FAIL", "inconclusive")


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


def gradcheck(
    fn,
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    activation: str = "sigmoid",
    loss: str | None = None,
    output: str = "sigmoid",
    alpha: float = 0.0,
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
        extrapolated differences either). For ``output="softmax"`` Y may also be class
        indices (m,) in 0..n_y-1: ``fn`` receives them as given (int64), and the
        differences use their one-hot columns.
    activation : {"sigmoid", "tanh", "relu"}
        The hidden layer's activation.
    loss : {"mse", "cross_entropy"}, optional
        Must go with ``output`` (see ``fusedmlp.reference.OUTPUT_LOSSES``); None takes
        the output's default: "mse" for sigmoid and identity, "cross_entropy" for softmax.
    output : {"sigmoid", "softmax", "identity"}
        The output layer the gradients are meant for (softmax needs n_y >= 2).
    alpha : float
        The L2 penalty, >= 0: the loss differentiated is ``reference.cost`` with
        (alpha / (2 m)) (||W1||^2 + ||W2||^2) added, so dW1 and dW2 must include
        (alpha / m) W1 and (alpha / m) W2 (biases unpenalised).
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

    Three classes, softmax output, class indices and an L2 penalty; the function forgets
    the penalty:

    >>> p3 = init_params(2, 3, 3, seed=0, scale=1.0)
    >>> labels = np.array([0, 2, 1, 1, 0])
    >>> def no_l2(p, X, y):
    ...     Y = reference.one_hot(y, 3)
    ...     return reference.loss_and_grads(p, X, Y, output="softmax", loss="cross_entropy")[1]
    >>> r = gradcheck(no_l2, p3, X, labels, output="softmax", alpha=0.5)
    >>> r["W1"].verdict, r["W1"].hint
    ('FAIL', 'L2 term missing: add (alpha/m) * W to dW1 and dW2')
    >>> r["b1"].verdict
    'pass'
    """
    if not callable(fn):
        raise TypeError(f"fn must be your gradient function fn(params, X, Y), got {fn!r}.")
    eps, tol = _check_eps_tol(eps, tol)
    net = _check_net(activation, loss, output, alpha)
    p = {k: v.astype(np.float64) for k, v in check_params(params).items()}
    X, Y, Y_ref = _check_data(p, X, Y, net)
    report = GradcheckReport(tol=tol)
    given = _call_user(fn, p, X, Y, report)
    if given is None:
        return report
    point = _Point.at(p, X, Y_ref, net, eps, tol)
    for k in PARAM_NAMES:
        row = GradRow(k, p[k].shape, None, float("nan"))
        report.rows.append(row)
        g = _usable(row, given, p[k].shape, X.shape[1])
        if g is not None:
            _judge(row, g, point)
    _point_at_delta1(report.rows, net.activation)
    return report


def _check_net(activation, loss, output, alpha) -> Net:
    """The network's settings, checked as ``train`` checks them (names, the output/loss
    pair, alpha >= 0), with their messages."""
    given = {"activation": activation, "output": output, "alpha": alpha}
    s = Settings.make(given if loss is None else {**given, "loss": loss})
    return Net(s.activation, s.loss, s.output, s.alpha)


def _check_data(p, X, Y, net):
    """(X, Y for fn, Y for the reference): float64 copies; class indices stay indices for
    fn and become one-hot columns for the reference."""
    if net.output == "softmax" and p["W2"].shape[0] < 2:
        raise ValueError(
            f"softmax needs at least 2 outputs (classes), but W2 is {p['W2'].shape}: give "
            "parameters with n_y >= 2 (one row of W2 per class), or use output='sigmoid'."
        )
    X, Y = check_targets(X, Y, net.output, net.loss, p=p, training=False)
    X = X.astype(np.float64)
    if Y.ndim == 1:  # class indices, checked in range for W2's rows
        return X, Y.copy(), reference.one_hot(Y, p["W2"].shape[0])
    Y = Y.astype(np.float64)
    return X, Y, Y


def _check_eps_tol(eps, tol):
    """gradcheck's eps and tol, validated."""
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
    return eps, tol


def _call_user(fn, p, X, Y, report):
    """fn's dict of gradients at copies of the point, or None with report.error saying why."""
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
        return None
    if not isinstance(given, dict):
        report.error = (
            f"it returned {type(given).__name__}; it must return a dict keyed "
            '"dW1", "db1", "dW2", "db2".'
        )
        return None
    return given


def _usable(row, given, want, m):
    """The row's gradient as a float64 array of the right shape, or None with row.hint set."""
    k = row.name
    g = given.get("d" + k, given.get(k))
    if g is None:
        row.hint = f'no "d{k}" in the returned dict'
        return None
    g, row.hint = _as_real(g, "d" + k)
    if g is None:
        return None
    row.given_shape = g.shape
    if g.shape != want:
        row.hint = _shape_hint(k, g, want, m)
        return None
    if not np.isfinite(g).all():
        row.hint = f"d{k} holds NaN or inf (an overflow, or a log or 0/0 upstream?)"
        return None
    return g


@dataclass(frozen=True)
class _Point:
    """The point a check is made at, with what is worked out once for all parameters."""

    p: dict
    X: np.ndarray
    Y: np.ndarray  # (n_y, m): class indices already one-hot
    net: Net
    eps: float
    tol: float
    kinks: dict  # relu only: _kinks at eps and at eps / 2
    halves: dict
    scale: float  # the loss's rounding scale S: see _fd._loss_scale
    mistakes: dict  # the classic mistakes' gradients: see _grad_hints._mistakes

    @classmethod
    def at(cls, p, X, Y, net, eps, tol):
        relu = net.activation == "relu"
        kinks = _kinks(p, X, Y, net, eps) if relu else {}
        halves = _kinks(p, X, Y, net, eps / 2) if relu else {}
        scale = _loss_scale(p, X, Y, net)
        mistakes = _mistakes(p, X, Y, net)
        return cls(p, X, Y, net, eps, tol, kinks, halves, scale, mistakes)


def _judge(row, g, pt):
    """Set the row's errors, floor, verdict and hint from g against the finite differences."""
    k, eps, tol = row.name, pt.eps, pt.tol
    at = (pt.p, pt.X, pt.Y, pt.net, k)
    num, big = _central(*at, eps)
    row.rel_error = _rel(g, num)
    row.abs_error = _maxabs(g - num)
    if row.rel_error <= tol:
        row.verdict = "pass"
        return
    # not within tol of g_fd(eps): hold g to the Richardson value, then to the floor
    half, big2 = _central(*at, eps / 2)
    ref = (4 * half - num) / 3  # Richardson: see _fd._floor
    row.rel_error = _rel(g, ref)
    row.abs_error = _maxabs(g - ref)
    if row.rel_error <= tol:
        row.verdict = "pass"
        return
    kink, zmin = pt.kinks.get(k, (np.zeros(g.shape), np.inf))
    kink_half = pt.halves.get(k, (np.zeros(g.shape), np.inf))[0]
    skip = kink > 0  # entries whose eps step crosses a relu kink
    big = max(big, big2)
    rounding, trunc = _floor(*at, eps, num, half, big, pt.scale, skip)
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
        m = pt.X.shape[1]
        row.hint = _why(k, g, ref, m, tol, row.floor, slack, pt.mistakes)
        row.hint = row.hint or "values differ from finite differences"


def _point_at_delta1(rows, activation):
    """With the output layer right, a wrong hidden-layer gradient is delta1's fault."""
    out_ok = all(r.passed for r in rows if r.name in ("W2", "b2"))
    for r in rows:
        shaped = r.given_shape == r.expected_shape
        l2 = r.hint.startswith(L2)  # the penalty's mistake, not delta1's
        if out_ok and shaped and not l2 and r.verdict == "FAIL" and r.name in ("W1", "b1"):
            r.hint += (
                f"; the output layer is right, so look at delta1 = (W2.T @ delta2) * "
                f"{_GPRIME[activation]} (elementwise *)"
            )
