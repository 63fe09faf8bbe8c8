"""What ``gradcheck`` says about a wrong gradient: the catalogue of classic mistakes and hints.

Each hint names a pattern a wrong gradient follows (a missing 1/m, a flipped sign, the wrong
activation's derivative, an output's derivative left in or left out, softmax over the wrong
axis, the L2 term missing, on the biases, not divided by m or doubled, a transposed product,
a lost dimension, a complex number) or says why the finite differences could not judge it
(a relu kink, too coarse a step).
"""

from __future__ import annotations

import numbers

import numpy as np

from . import reference
from ._fd import _CAP, _close, _rel

_GPRIME = {"sigmoid": "A1 * (1 - A1)", "tanh": "1 - A1**2", "relu": "(Z1 > 0)"}


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


# the wrong delta2 = dL/dZ2 of each output and loss: {description: f(A2, Y, Z2, m)}
_OUTPUT_MISTAKES = {
    ("sigmoid", "mse"): {
        "the output sigmoid's derivative A2 * (1 - A2) is missing from delta2": (
            lambda A2, Y, Z2, m: (2 / m) * (A2 - Y)
        ),
        "the factor 2 of the squared error's derivative is missing": (
            lambda A2, Y, Z2, m: (A2 - Y) * A2 * (1 - A2) / m
        ),
    },
    ("sigmoid", "cross_entropy"): {
        "delta2 keeps the output sigmoid's derivative A2 * (1 - A2), which cross-entropy's "
        "derivative cancels: delta2 = (A2 - Y) / m": (
            lambda A2, Y, Z2, m: (A2 - Y) * A2 * (1 - A2) / m
        ),
    },
    ("softmax", "cross_entropy"): {
        "delta2 has an extra factor A2 * (1 - A2) (a sigmoid derivative left in): softmax "
        "with cross-entropy gives delta2 = (A2 - Y) / m": (
            lambda A2, Y, Z2, m: (A2 - Y) * A2 * (1 - A2) / m
        ),
        "softmax taken over the samples (axis=1): take it over the outputs of each sample, "
        "exp(Z2 - Z2.max(axis=0)) / sum over axis=0": (
            lambda A2, Y, Z2, m: (reference.softmax(Z2.T).T - Y) / m
        ),
    },
    ("identity", "mse"): {
        "delta2 has a sigmoid derivative A2 * (1 - A2), but the output is the identity "
        "(its derivative is 1): delta2 = (2/m) * (A2 - Y)": (
            lambda A2, Y, Z2, m: (2 / m) * (A2 - Y) * A2 * (1 - A2)
        ),
        "the factor 2 of the squared error's derivative is missing": (
            lambda A2, Y, Z2, m: (A2 - Y) / m
        ),
    },
    ("exp", "poisson"): {
        "delta2 has an extra factor A2 (the exp's derivative left in): exp with the "
        "Poisson loss gives delta2 = (A2 - Y) / m": (lambda A2, Y, Z2, m: (A2 - Y) * A2 / m),
        "delta2 = (1 - Y / A2) / m is dL/dA2, not dL/dZ2: multiply by exp's derivative "
        "A2, which gives (A2 - Y) / m": (lambda A2, Y, Z2, m: (1 - Y / A2) / m),
    },
}

L2 = "L2 "  # the hints of the penalty's mistakes start so (not delta1's fault: see diagnostics)


def _l2_mistakes(p, grads, alpha, m):
    """The penalty's classic mistakes, from the right gradients: {description: grads}."""
    a = alpha / m  # the right factor of W in dW
    out = {}
    for why, keys, off in (  # off: what the mistake adds to the right gradient, times P
        ("L2 term missing: add (alpha/m) * W to dW1 and dW2", ("W1", "W2"), -a),
        ("L2 term not divided by m: use (alpha/m) * W, not alpha * W", ("W1", "W2"), alpha - a),
        (
            "L2 term doubled: (alpha/(2m)) ||W||^2 has the gradient (alpha/m) * W, not "
            "(2 alpha/m) * W",
            ("W1", "W2"),
            a,
        ),
        ("L2 applied to the biases: they are not penalised; drop (alpha/m) * b", ("b1", "b2"), a),
    ):
        out[why] = {**grads, **{"d" + k: grads["d" + k] + off * p[k] for k in keys}}
    return out


def _mistakes(p, X, Y, net):
    """Gradients as the common mistakes compute them: {description: grads}."""
    m = X.shape[1]
    cache = reference.forward(p, X, net.activation, net.output)
    A2, Z2 = cache["A2"], cache["Z2"]
    right = reference.output_delta(cache, Y, net.loss, net.output)
    d2 = {
        # every right delta2 is A2 - Y times a factor >= 0: |A2 - Y| flips it where A2 < Y
        "|A2 - Y| used where A2 - Y belongs (abs loses the sign)": np.where(
            A2 - Y < 0, -right, right
        ),
        "sign flipped: use A2 - Y (prediction minus target), not Y - A2": -right,
    }
    for why, f in _OUTPUT_MISTAKES[net.output, net.loss].items():
        d2[why] = f(A2, Y, Z2, m)

    def back(activation, delta2=None):
        return reference.backward(
            p, X, Y, cache, activation, net.loss, delta2, net.output, net.alpha
        )

    out = {why: back(net.activation, d) for why, d in d2.items()}
    for other in reference.ACTIVATIONS:
        if other != net.activation:
            # right delta2, but delta1 uses another activation's derivative
            why = (
                f"delta1 uses the derivative of {other}, but the hidden layer is {net.activation}"
            )
            out[why] = back(other)
    if net.alpha:
        out.update(_l2_mistakes(p, back(net.activation), net.alpha, m))
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
