"""Diagnostics for people debugging their own back-propagation.

``gradcheck`` runs a user's gradient function and compares each gradient with central
finite differences of the reference loss, saying which gradient is wrong and, where the
pattern is recognisable, why. ``explain`` prints the equations with their shapes.
"""

from __future__ import annotations

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


@dataclass
class GradRow:
    """One parameter's verdict."""

    name: str
    expected_shape: tuple
    given_shape: tuple | None
    rel_error: float
    passed: bool
    hint: str = ""


@dataclass
class GradcheckReport:
    """Result of ``gradcheck``: one row per parameter; prints as a table.

    Attributes
    ----------
    ok : bool
        True when every gradient has the right shape and matches finite differences.
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
        out = []
        if self.error:
            out.append(f"gradient function failed: {self.error}")
        if self.rows:
            body = [
                (
                    "d" + r.name,
                    r.expected_shape,
                    "missing" if r.given_shape is None else r.given_shape,
                    "-" if np.isnan(r.rel_error) else f"{r.rel_error:.2e}",
                    "pass" if r.passed else "FAIL",
                    r.hint,
                )
                for r in self.rows
            ]
            out.append(
                _table(("gradient", "expected", "given", "rel. error", "result", "why"), body)
            )
        out.append(
            f"{'all gradients match' if self.ok else 'some gradients are wrong'} "
            f"(tolerance {self.tol:g} on ||g - g_fd|| / (||g|| + ||g_fd||))"
        )
        return "\n".join(out)

    __repr__ = __str__


def _numeric_grads(p, X, Y, activation, loss, eps):
    """Central differences of the reference loss, one entry at a time (float64)."""
    out = {}
    for k in PARAM_NAMES:
        g = np.zeros_like(p[k])
        for idx in np.ndindex(p[k].shape):
            keep = p[k][idx]
            p[k][idx] = keep + eps
            up = reference.cost(reference.forward(p, X, activation), Y, loss)
            p[k][idx] = keep - eps
            down = reference.cost(reference.forward(p, X, activation), Y, loss)
            p[k][idx] = keep
            g[idx] = (up - down) / (2 * eps)
        out[k] = g
    return out


def _rel(a, b):
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


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


def _why(name, g, num, m, tol, mistakes):
    """Name the pattern of a wrong gradient, when there is one."""
    for why, grads in mistakes.items():
        if _rel(g, grads["d" + name]) < tol * 10 and _rel(num, grads["d" + name]) > tol * 10:
            return why
    nn = float(np.vdot(num, num))
    if nn > 0:
        c = float(np.vdot(g, num)) / nn  # best scale factor g ~ c * num
        if c != 0 and _rel(g, c * num) < tol * 10:
            if abs(c - m) < 1e-6 * m:
                return f"{m}x too large: the 1/m of the mean is missing"
            if abs(c * m - 1) < 1e-6:
                return f"{m}x too small: divided by m twice"
            if g.size > 1:
                return f"off by a constant factor {c:.6g}"
    if g.ndim == 2 and g.shape[0] == g.shape[1] and _rel(g.T, num) < tol * 10:
        return "equals the transpose of the right gradient: factors in the wrong order"
    return ""


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
    (or "W1", ...). Shapes are checked first; then each gradient is compared with central
    differences of the reference loss in float64, with step ``eps``. A gradient passes
    when ``||g - g_fd|| / (||g|| + ||g_fd||) <= tol``: with eps = 1e-5 the differences are
    accurate to about 1e-9 relative (truncation eps^2, rounding 1e-16 / eps), while every
    real mistake gives an error above 1e-3, so 1e-6 separates the two with room both ways.

    Parameters
    ----------
    fn : callable
        The gradient function under test; it receives float64 copies of the inputs.
    params : dict
        The point at which to check, {"W1", "b1", "W2", "b2"}.
    X, Y : arrays (n_x, m) and (n_y, m)
        Keep m and the network small: this costs 2 forward passes per parameter entry.
    activation, loss : str
        The network the gradients are meant for.

    Returns
    -------
    GradcheckReport
        Prints as a table; ``.ok`` is True when all gradients are right.

    Examples
    --------
    >>> from fusedmlp import init_params, reference
    >>> p = init_params(2, 3, 1, seed=0, scale=1.0)
    >>> X, Y = np.random.RandomState(0).randn(2, 5), np.array([[0, 1, 1, 0, 1]])
    >>> def mine(p, X, Y):
    ...     return reference.loss_and_grads(p, X, Y)[1]
    >>> gradcheck(mine, p, X, Y).ok
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be your gradient function fn(params, X, Y), got {fn!r}.")
    eps = check_real("eps", eps, positive=True)
    tol = check_real("tol", tol, positive=True)
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

    num = _numeric_grads(p, X, Y, activation, loss, eps)
    mistakes = _mistakes(p, X, Y, activation, loss)
    for k in PARAM_NAMES:
        g = given.get("d" + k, given.get(k))
        row = GradRow(k, p[k].shape, None, float("nan"), False)
        report.rows.append(row)
        if g is None:
            row.hint = f'no "d{k}" in the returned dict'
            continue
        try:
            g = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            row.hint = f"d{k} is not a real numeric array: {exc}"
            continue
        row.given_shape = g.shape
        if g.shape != p[k].shape:
            row.hint = f"d{k} has shape {g.shape} but {k} is {p[k].shape}"
            if g.shape == p[k].shape[::-1]:
                row.hint += ": it is transposed (factors in the wrong order?)"
            elif g.size == 1 and p[k].size > 1:
                row.hint += ": summed over everything? use .sum(axis=1, keepdims=True)"
            elif g.ndim == 1 and g.size == p[k].size:
                row.hint += ": lost a dimension; use keepdims=True"
            elif g.ndim == 2 and g.shape[1] == m:
                row.hint += ": still one column per sample; sum over the samples (axis=1)"
            continue
        row.rel_error = _rel(g, num[k])
        row.passed = bool(row.rel_error <= tol)
        if not row.passed:
            why = _why(k, g, num[k], m, tol, mistakes)
            row.hint = why or "values differ from finite differences"
    out_ok = all(r.passed for r in report.rows if r.name in ("W2", "b2"))
    for r in report.rows:
        shaped = r.given_shape == r.expected_shape
        if out_ok and shaped and not r.passed and r.name in ("W1", "b1"):
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
