"""``explain``: every term of the forward and backward pass with its shape, as a table.

Re-exported by ``fusedmlp.diagnostics`` (and ``fusedmlp``); the table printer is shared
with ``gradcheck``'s report.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._grad_hints import _GPRIME
from ._validation import check_count
from .settings import Settings

_G = {"sigmoid": "sigmoid(Z1)", "tanh": "tanh(Z1)", "relu": "max(Z1, 0)"}
_EW = "elementwise"

# (output, loss): (L, delta2), the output's derivative folded into delta2; one entry for
# every pair of reference.OUTPUT_LOSSES (tests/test_diagnostics_outputs.py checks)
_LOSS_ROWS = {
    ("sigmoid", "mse"): ("(1/m) sum (A2 - Y)**2", "(2/m) * (A2 - Y) * A2 * (1 - A2)"),
    ("sigmoid", "cross_entropy"): (
        "-(1/m) sum [Y log A2 + (1-Y) log(1-A2)]",
        "(A2 - Y) / m",
    ),
    ("softmax", "cross_entropy"): ("-(1/m) sum Y * log A2", "(A2 - Y) / m"),
    ("identity", "mse"): ("(1/m) sum (A2 - Y)**2", "(2/m) * (A2 - Y)"),
    ("exp", "poisson"): ("(1/m) sum [Y log(Y / A2) - Y + A2]", "(A2 - Y) / m"),
}


def _table(header: tuple, rows: list) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _s(*d) -> str:
    return str(tuple(d))


@dataclass
class Explanation:
    """The forward and backward equations for given sizes; prints as a table.

    Attributes
    ----------
    rows : list of (term, formula, shape, operation)
    title : str
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
    loss: str | None = None,
    *,
    output: str = "sigmoid",
    alpha: float = 0.0,
) -> Explanation:
    """Every term of the forward and backward pass with its shape for these sizes.

    Parameters
    ----------
    n_x, n_h, n_y, m : int
        Inputs, hidden units, outputs and samples, each >= 1 (n_y >= 2 for softmax).
    activation : {"sigmoid", "tanh", "relu"}
        The hidden layer's activation.
    loss : {"mse", "cross_entropy"}, optional
        Must go with ``output`` (see ``fusedmlp.reference.OUTPUT_LOSSES``); None takes
        the output's default: "mse" for sigmoid and identity, "cross_entropy" for softmax.
    output : {"sigmoid", "softmax", "identity"}
        The output layer: softmax is shown with the max subtracted, as computed.
    alpha : float
        The L2 penalty, >= 0: when > 0, its term in the loss and in dW1 and dW2.

    Returns
    -------
    Explanation
        ``.rows`` of (term, formula, shape, operation); prints as a table.

    Examples
    --------
    >>> e = explain(2, 4, 1, 400)
    >>> [r for r in e.rows if r[0] == "dW1"][0][2]
    '(4, 2)'
    >>> e = explain(2, 4, 3, 400, output="softmax", alpha=0.1)
    >>> [r for r in e.rows if r[0] == "delta2"][0][1]
    '(A2 - Y) / m'
    """
    n_x, n_h, n_y, m = (
        check_count(k, v, minimum=1)
        for k, v in (("n_x", n_x), ("n_h", n_h), ("n_y", n_y), ("m", m))
    )
    # the settings' checks: names, the output/loss pair, alpha >= 0, with their messages
    given = {"activation": activation, "output": output, "alpha": alpha}
    s = Settings.make(given if loss is None else {**given, "loss": loss})
    activation, output, loss, alpha = s.activation, s.output, s.loss, s.alpha
    if output == "softmax" and n_y < 2:
        raise ValueError(
            f"softmax needs at least 2 outputs (classes), got n_y={n_y}: pass n_y >= 2, or "
            "output='sigmoid' for one output."
        )
    rows = _forward_rows(n_x, n_h, n_y, m, activation, output)
    rows += _loss_rows(n_x, n_h, n_y, m, output, loss, alpha)
    rows += _backward_rows(n_x, n_h, n_y, m, activation, alpha)
    title = f"{n_x}-{n_h}-{n_y} network, m = {m}, {activation} hidden, {output} output, {loss}"
    if alpha:
        title += f", L2 alpha = {alpha:g}"
    return Explanation(rows=rows, title=title)


def _forward_rows(n_x, n_h, n_y, m, activation, output):
    mm = "matrix product"
    rows = [
        ("X", "input", _s(n_x, m), "one sample per column"),
        ("Z1", "W1 @ X + b1", _s(n_h, m), f"{mm} {_s(n_h, n_x)} @ {_s(n_x, m)}, b1 broadcast"),
        ("A1", _G[activation], _s(n_h, m), _EW),
        ("Z2", "W2 @ A1 + b2", _s(n_y, m), f"{mm} {_s(n_y, n_h)} @ {_s(n_h, m)}, b2 broadcast"),
    ]
    if output == "sigmoid":
        rows.append(("A2", "sigmoid(Z2)", _s(n_y, m), _EW))
    elif output == "identity":
        rows.append(("A2", "Z2", _s(n_y, m), "identity: no output function"))
    elif output == "exp":
        rows.append(("A2", "exp(Z2)", _s(n_y, m), f"{_EW}: the Poisson mean, > 0"))
    else:
        shifted = "Z2 - Z2.max(axis=0, keepdims=True)"
        rows += [
            ("S", shifted, _s(n_y, m), f"column max {_s(1, m)} broadcast: exp cannot overflow"),
            ("E", "exp(S)", _s(n_y, m), _EW),
            (
                "A2",
                "E / E.sum(axis=0, keepdims=True)",
                _s(n_y, m),
                f"column sums {_s(1, m)} broadcast: every column sums to 1",
            ),
        ]
    return rows


def _loss_rows(n_x, n_h, n_y, m, output, loss, alpha):
    L, d2 = _LOSS_ROWS[output, loss]
    rows = []
    if output == "softmax":
        rows.append(
            (
                "Y",
                "one-hot columns, or one_hot(labels)",
                _s(n_y, m),
                f"labels {_s(m)} -> {_s(n_y, m)}",
            )
        )
        op = "sum over all entries; log A2 = S - log(E.sum(axis=0)), exact"
    else:
        op = "sum over all entries"
    if alpha:
        rows.append(("L", f"{L} + L2", "()", op))
        rows.append(
            (
                "L2",
                "(alpha/(2m)) * (sum(W1**2) + sum(W2**2))",
                "()",
                f"sums over {_s(n_h, n_x)} and {_s(n_y, n_h)}; biases not penalised",
            )
        )
    else:
        rows.append(("L", L, "()", op))
    rows.append(("delta2", d2, _s(n_y, m), _EW))
    return rows


def _backward_rows(n_x, n_h, n_y, m, activation, alpha):
    mm = "matrix product"
    dW2, dW1 = "delta2 @ A1.T", "delta1 @ X.T"
    op2, op1 = f"{mm} {_s(n_y, m)} @ {_s(m, n_h)}", f"{mm} {_s(n_h, m)} @ {_s(m, n_x)}"
    if alpha:
        dW2 += " + (alpha/m) * W2"
        dW1 += " + (alpha/m) * W1"
        op2 += f", plus W2 {_s(n_y, n_h)} scaled"
        op1 += f", plus W1 {_s(n_h, n_x)} scaled"
    return [
        ("dW2", dW2, _s(n_y, n_h), op2),
        ("db2", "delta2.sum(axis=1, keepdims=True)", _s(n_y, 1), "row sums"),
        ("dA1", "W2.T @ delta2", _s(n_h, m), f"{mm} {_s(n_h, n_y)} @ {_s(n_y, m)}"),
        ("delta1", f"dA1 * {_GPRIME[activation]}", _s(n_h, m), _EW),
        ("dW1", dW1, _s(n_h, n_x), op1),
        ("db1", "delta1.sum(axis=1, keepdims=True)", _s(n_h, 1), "row sums"),
    ]
