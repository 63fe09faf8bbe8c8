"""Plain-NumPy optimizers and learning-rate schedules: the reference for the compiled ones.

Written for reading, not speed. The parameters are a dict of float arrays
``{"W1", "b1", "W2", "b2"}``, the gradients a dict ``{"dW1", "db1", "dW2", "db2"}`` of the
same shapes (any L2 term already added). Each parameter array P with gradient g is updated
as scikit-learn's MLP does (``*`` elementwise, all arithmetic in float64):

    gd        P -= lr g
    momentum  v = mu v - lr g;  P += v                       (v starts at 0)
    nesterov  v = mu v - lr g;  P += mu v - lr g             (with the new v)
    adam      t += 1
              m1 = beta1 m1 + (1 - beta1) g
              m2 = beta2 m2 + (1 - beta2) g^2
              lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)
              P -= lr_t m1 / (sqrt(m2) + epsilon)

Adam's t counts updates (batches) from 1, one t for all four arrays. The state (v, or m1,
m2 and t) is a dict made by ``new_state``. The trainer keeps it flat, as the kernels
do, and hands this module views of it (``fusedmlp._optstate``).

The learning rate of an epoch comes from a schedule: "constant", "invscaling"
(``scheduled_lr``) or "adaptive" (``AdaptiveLR``, which follows the losses).

This module imports only NumPy: it must stay usable, and readable, without the compiled
side. Beyond the names and shapes it does no validation; the public API validates the
hyper-parameters once, before training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NONFINITE_GRADS",
    "OK",
    "OPTIMIZERS",
    "SCHEDULES",
    "UPDATE_OVERFLOW",
    "AdaptiveLR",
    "new_state",
    "scheduled_lr",
    "step",
]

OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")
SCHEDULES = ("constant", "invscaling", "adaptive")
PARAMS = ("W1", "b1", "W2", "b2")

# step's status codes. They equal fusedmlp.kernels' OK, NONFINITE_GRADS and
# UPDATE_OVERFLOW (tested), written out here so that this module never imports numba.
OK, NONFINITE_GRADS, UPDATE_OVERFLOW = 0, 1, 2

# the array names of each optimizer's state (adam also keeps the integer t)
_SLOTS = {"gd": (), "momentum": ("v",), "nesterov": ("v",), "adam": ("m1", "m2")}


def _check_name(what: str, name: str, allowed: tuple) -> None:
    if name not in allowed:
        raise ValueError(f"unknown {what} {name!r}: use one of {', '.join(map(repr, allowed))}")


def new_state(optimizer: str, params: dict) -> dict:
    """The state of ``optimizer`` before its first update: zeros of the parameters' shapes.

    Parameters
    ----------
    optimizer : {"gd", "momentum", "nesterov", "adam"}
    params : dict
        ``{"W1", "b1", "W2", "b2"}``: only their shapes are used.

    Returns
    -------
    dict
        ``{}`` for gd; ``{"v": {...}}`` for momentum and nesterov; ``{"m1": {...},
        "m2": {...}, "t": 0}`` for adam. Each inner dict maps the four parameter names to
        float64 zeros of their shapes.

    Examples
    --------
    >>> p = {"W1": np.ones((3, 2)), "b1": np.ones((3, 1)),
    ...      "W2": np.ones((1, 3)), "b2": np.ones((1, 1))}
    >>> new_state("gd", p)
    {}
    >>> s = new_state("adam", p)
    >>> sorted(s), s["t"], s["m1"]["W1"].shape, s["m2"]["b2"].dtype
    (['m1', 'm2', 't'], 0, (3, 2), dtype('float64'))
    """
    _check_name("optimizer", optimizer, OPTIMIZERS)
    state = {
        slot: {k: np.zeros(np.shape(params[k]), dtype=np.float64) for k in PARAMS}
        for slot in _SLOTS[optimizer]
    }
    if optimizer == "adam":
        state["t"] = 0
    return state


# ---------------------------------------------------------------------------
# the updates: each takes the float64 gradients and the state, and returns the new state
# and the increment to add to each parameter, without changing anything it was given.


def _gd(g, state, lr, h):
    return {}, {k: -lr * g[k] for k in PARAMS}


def _momentum(g, state, lr, h):
    v = {k: h["momentum"] * state["v"][k] - lr * g[k] for k in PARAMS}
    return {"v": v}, v


def _nesterov(g, state, lr, h):
    mu = h["momentum"]
    v = {k: mu * state["v"][k] - lr * g[k] for k in PARAMS}
    # look ahead: take the step momentum alone would take next time, plus this gradient's
    return {"v": v}, {k: mu * v[k] - lr * g[k] for k in PARAMS}


def _adam(g, state, lr, h):
    b1, b2, eps = h["beta1"], h["beta2"], h["epsilon"]
    t = state["t"] + 1
    m1 = {k: b1 * state["m1"][k] + (1 - b1) * g[k] for k in PARAMS}
    m2 = {k: b2 * state["m2"][k] + (1 - b2) * g[k] ** 2 for k in PARAMS}
    # bias correction folded into the rate, as scikit-learn does (not into m1 and m2)
    lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    return {"m1": m1, "m2": m2, "t": t}, {
        k: -lr_t * m1[k] / (np.sqrt(m2[k]) + eps) for k in PARAMS
    }


_UPDATES = {"gd": _gd, "momentum": _momentum, "nesterov": _nesterov, "adam": _adam}


def _all_finite(arrays) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def step(
    optimizer: str,
    params: dict,
    grads: dict,
    state: dict,
    lr: float,
    *,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> int:
    """Apply one update of ``optimizer`` to ``params`` and ``state``, in place, all or nothing.

    The update is computed in float64 and rounded to the parameters' dtype. Nothing is
    changed, neither the parameters nor the state, when it cannot be applied cleanly:

    - ``NONFINITE_GRADS`` (1) if a gradient holds NaN or inf;
    - ``UPDATE_OVERFLOW`` (2) if a new parameter value would not be finite in the
      parameters' dtype, or a new state value would not be finite in float64 (Adam's
      ``m2`` squares the gradient and can overflow while the step itself stays finite;
      kept, it would freeze that parameter for good).

    Otherwise the update is applied and ``OK`` (0) returned. The codes are those of the
    compiled kernels, so the trainer treats both alike.

    Parameters
    ----------
    optimizer : {"gd", "momentum", "nesterov", "adam"}
    params : dict
        ``{"W1", "b1", "W2", "b2"}``: float arrays, updated in place.
    grads : dict
        ``{"dW1", "db1", "dW2", "db2"}``: the gradients, of the parameters' shapes.
    state : dict
        From ``new_state(optimizer, params)`` or an earlier step; updated in place.
    lr : float
        The learning rate of this step (for adam, the rate before bias correction).
    momentum : float
        mu of momentum and nesterov.
    beta1, beta2, epsilon : float
        Adam's decay rates of the first and second moments, and its guard against
        division by zero.

    Returns
    -------
    int
        ``OK``, ``NONFINITE_GRADS`` or ``UPDATE_OVERFLOW``.

    Examples
    --------
    Adam's first step moves each parameter by lr against the sign of its gradient (a
    little less for a small gradient, where epsilon counts, and not at all for 0):

    >>> p = {"W1": np.zeros((1, 1)), "b1": np.zeros((1, 1)),
    ...      "W2": np.zeros((1, 1)), "b2": np.zeros((1, 1))}
    >>> g = {"dW1": np.array([[3.0]]), "db1": np.array([[-0.5]]),
    ...      "dW2": np.array([[0.0]]), "db2": np.array([[1e-3]])}
    >>> s = new_state("adam", p)
    >>> step("adam", p, g, s, lr=0.1)
    0
    >>> [round(float(p[k][0, 0]), 6) for k in ("W1", "b1", "W2", "b2")], s["t"]
    ([-0.1, 0.1, 0.0, -0.099968], 1)

    A NaN gradient changes nothing:

    >>> g["dW2"][0, 0] = np.nan
    >>> step("adam", p, g, s, lr=0.1) == NONFINITE_GRADS, s["t"]
    (True, 1)
    """
    _check_name("optimizer", optimizer, OPTIMIZERS)
    for k in PARAMS:
        if np.shape(grads["d" + k]) != np.shape(params[k]):
            raise ValueError(
                f"grads['d{k}'] has shape {np.shape(grads['d' + k])}, but {k} has shape "
                f"{np.shape(params[k])}: each gradient must have its parameter's shape"
            )
    g = {k: np.asarray(grads["d" + k], dtype=np.float64) for k in PARAMS}
    if not _all_finite(g.values()):
        return NONFINITE_GRADS
    h = {"momentum": momentum, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}
    # overflow is not an error here: it is what the checks below look for
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        new, delta = _UPDATES[optimizer](g, state, lr, h)
        new_params = {k: (params[k] + delta[k]).astype(params[k].dtype) for k in PARAMS}
    new_arrays = [new[slot][k] for slot in _SLOTS[optimizer] for k in PARAMS]
    if not (_all_finite(new_params.values()) and _all_finite(new_arrays)):
        return UPDATE_OVERFLOW
    # commit: copy into the existing arrays, so views of them held elsewhere stay valid
    for k in PARAMS:
        params[k][...] = new_params[k]
        for slot in _SLOTS[optimizer]:
            state[slot][k][...] = new[slot][k]
    if optimizer == "adam":
        state["t"] = new["t"]
    return OK


# ---------------------------------------------------------------------------
# learning-rate schedules


def scheduled_lr(schedule: str, lr0: float, epoch: int, m: int, power_t: float = 0.5) -> float:
    """The learning rate of epoch ``epoch`` (from 0) under ``schedule``, as scikit-learn.

    - "constant": ``lr0``.
    - "invscaling": ``lr0 / (epoch * m + 1) ** power_t``, scikit-learn's SGD rule, where
      ``epoch * m`` is the number of samples seen before the epoch: epoch 0 runs at lr0,
      and the rate changes between epochs, not between batches.
    - "adaptive" is not a function of the epoch: it follows the losses, so it is
      ``AdaptiveLR``'s job, and asking for it here is an error.

    Parameters
    ----------
    schedule : {"constant", "invscaling"}
    lr0 : float
        The initial learning rate.
    epoch : int
        Epochs completed before this one.
    m : int
        Training samples per epoch.
    power_t : float
        The exponent of "invscaling".

    Returns
    -------
    float

    Examples
    --------
    >>> scheduled_lr("constant", 0.1, 7, 50)
    0.1
    >>> [scheduled_lr("invscaling", 0.3, e, 4) for e in range(3)]  # 0.3 / sqrt(1, 5, 9)
    [0.3, 0.13416407864998736, 0.09999999999999999]
    """
    _check_name("schedule", schedule, SCHEDULES)
    if schedule == "constant":
        return float(lr0)
    if schedule == "invscaling":
        return float(lr0 / (epoch * m + 1) ** power_t)
    raise ValueError(
        "the 'adaptive' learning rate depends on the losses, not on the epoch: "
        "use AdaptiveLR(lr0) and call its update(loss) after each epoch"
    )


MIN_LR = 1e-6  # "adaptive" stops rather than divide the rate below this


@dataclass
class AdaptiveLR:
    """scikit-learn's "adaptive" learning rate: divided by 5 when the loss stalls.

    After each epoch, ``update(loss)`` counts the epoch as a failure when the loss does
    not beat the best loss so far by more than ``tol`` (``loss > best - tol``; a NaN
    loss fails too), and resets the count on any other epoch. When ``patience`` epochs
    in a row have failed, the rate is divided by 5 and the count starts again from 0;
    if the divided rate would be below ``MIN_LR`` (1e-6), training stops instead and
    ``update`` returns None (and keeps returning None).

    Two differences from scikit-learn, both on purpose: ``patience`` counts the failed
    epochs themselves (scikit-learn's ``n_iter_no_change=k`` waits for k + 1), as the
    trainer's early stopping does; and it stops rather than train on at a rate below
    1e-6 (scikit-learn divides once more, and stops only when the rate already is).

    Every field is a plain number, so ``dataclasses.asdict`` gives what a checkpoint
    needs and ``AdaptiveLR(**fields)`` restores it exactly.

    Parameters
    ----------
    lr : float
        The current learning rate: the initial one when training starts.
    tol : float
        How much a loss must beat the best so far by to count as an improvement.
    patience : int
        Failed epochs in a row that divide the rate.
    best : float
        The lowest loss seen (inf before the first epoch).
    count : int
        Failed epochs in a row since the last improvement or division.
    stopped : bool
        Whether the rate reached its floor and training should stop.

    Examples
    --------
    Epochs 3 and 4 fail (0.45 does not beat 0.5 by more than 0.1, nor 0.48 0.45), so the
    rate drops to 3e-6; epochs 6 and 7 fail, and 3e-6 / 5 would be below 1e-6: stop.

    >>> sched = AdaptiveLR(1.5e-5, tol=0.1, patience=2)
    >>> [sched.update(loss) for loss in (1.0, 0.5, 0.45, 0.48, 0.3, 0.3, 0.3)]
    [1.5e-05, 1.5e-05, 1.5e-05, 3e-06, 3e-06, 3e-06, None]
    >>> from dataclasses import asdict
    >>> asdict(sched)
    {'lr': 3e-06, 'tol': 0.1, 'patience': 2, 'best': 0.3, 'count': 2, 'stopped': True}
    """

    lr: float
    tol: float = 1e-4
    patience: int = 10
    best: float = math.inf
    count: int = 0
    stopped: bool = False

    def update(self, loss: float) -> float | None:
        """Record the loss of the epoch just run; the rate for the next, or None: stop."""
        if self.stopped:
            return None
        # written as "not improved" so that a NaN loss counts as a failure
        if not loss <= self.best - self.tol:
            self.count += 1
        else:
            self.count = 0
        if loss < self.best:
            self.best = float(loss)
        if self.count >= self.patience:
            if self.lr / 5.0 < MIN_LR:
                self.stopped = True
                return None
            self.lr /= 5.0
            self.count = 0
        return self.lr
