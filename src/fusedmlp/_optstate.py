"""The optimizer's state during training, in one form both backends use and checkpoints keep.

Arrays, as the kernels take them (kernels/optim.py): ``moments`` (2, n_par) float64, the
first moment (or momentum's velocity) in row 0 and Adam's second moment in row 1, each
parameter flattened in the order W1, b1, W2, b2; ``clock`` [T, LR, BEST, COUNT, STOPPED]
float64: Adam's step count, the current learning rate, and the adaptive schedule's best
loss, count of failed epochs and stop flag; ``hyper`` and ``codes``, the settings as the
kernels read them. The NumPy reference (fusedmlp.optimizers) works on views of the same
``moments``, so both backends continue the very same state, and a resumed run starts
from it exactly.
"""

from __future__ import annotations

import math

import numpy as np

from . import optimizers
from .settings import Settings

PARAMS = ("W1", "b1", "W2", "b2")
# positions in clock and hyper (as kernels/optim.py; tests check they agree)
T, LR, BEST, COUNT, STOPPED = range(5)
MU, BETA1, BETA2, EPS, ALPHA, LR0, POWER_T, TOL = range(8)
OPTIMIZER_CODES = {"gd": 0, "momentum": 1, "nesterov": 2, "adam": 3}
SCHEDULE_CODES = {"constant": 0, "invscaling": 1, "adaptive": 2}
ADAPTIVE_TOL = 1e-4  # scikit-learn's tol, when the adaptive schedule is given none


class OptState:
    """The state of one run's optimizer and schedule (see the module docstring)."""

    def __init__(self, settings: Settings, params: dict, arrays: dict | None = None):
        self.settings = settings
        n_par = sum(np.size(params[k]) for k in PARAMS)
        s = settings
        tol = s.tol if s.tol is not None else ADAPTIVE_TOL
        self.hyper = np.array(
            [s.momentum, s.beta1, s.beta2, s.epsilon, s.alpha, s.lr, s.power_t, tol]
        )
        self.codes = np.array(
            [OPTIMIZER_CODES[s.optimizer], SCHEDULE_CODES[s.lr_schedule], s.patience], np.int64
        )
        if arrays is None:
            self.moments = np.zeros((2, n_par))
            self.clock = np.array([0.0, s.lr, math.inf, 0.0, 0.0])
        else:
            self.moments = np.array(arrays["moments"], dtype=np.float64)
            self.clock = np.array(arrays["clock"], dtype=np.float64)
            if self.moments.shape != (2, n_par) or self.clock.shape != (5,):
                raise ValueError(
                    f"the optimizer state has shapes {self.moments.shape} and "
                    f"{self.clock.shape}, expected (2, {n_par}) and (5,)"
                )
        self._shapes = [np.shape(params[k]) for k in PARAMS]

    def arrays(self) -> dict:
        """The state to keep in a result or checkpoint (copies)."""
        return {"moments": self.moments.copy(), "clock": self.clock.copy()}

    @property
    def lr(self) -> float:
        """The learning rate of the next update."""
        return float(self.clock[LR])

    @property
    def adaptive(self) -> bool:
        """Whether the adaptive schedule moves the rate (and uses tol and patience)."""
        return self.settings.lr_schedule == "adaptive"

    @property
    def stopped(self) -> bool:
        """Whether the adaptive schedule has stopped training (its rate at the floor)."""
        return self.adaptive and bool(self.clock[STOPPED])

    def new_rate(self, lr: float, epoch: int, m: int) -> None:
        """A new initial rate from epoch ``epoch`` on (a resumed run given lr): the
        rate the schedule gives at that epoch (invscaling: lr / (epoch m + 1)^power_t),
        the adaptive schedule starting again from lr."""
        self.hyper[LR0] = lr
        if self.settings.lr_schedule == "invscaling":
            lr = optimizers.scheduled_lr("invscaling", lr, epoch, m, self.settings.power_t)
        self.clock[LR] = lr

    # -----------------------------------------------------------------------
    # the reference's view of the state

    def _views(self, row: int) -> dict:
        out, i = {}, 0
        for k, shape in zip(PARAMS, self._shapes, strict=True):
            n = int(np.prod(shape))
            out[k] = self.moments[row, i : i + n].reshape(shape)
            i += n
        return out

    def reference_state(self) -> dict:
        """fusedmlp.optimizers' state dict, on views of ``moments`` (its updates land
        there; Adam's step count is read from the clock)."""
        opt = self.settings.optimizer
        if opt in ("momentum", "nesterov"):
            return {"v": self._views(0)}
        if opt == "adam":
            return {"m1": self._views(0), "m2": self._views(1), "t": int(self.clock[T])}
        return {}

    def step(self, params: dict, grads: dict) -> int:
        """One reference update at the current rate, all or nothing; the clock counts it
        (T counts updates for every optimizer, as the kernels do)."""
        s = self.settings
        status = optimizers.step(
            s.optimizer, params, grads, self.reference_state(), self.lr,
            momentum=s.momentum, beta1=s.beta1, beta2=s.beta2, epsilon=s.epsilon,
        )  # fmt: skip
        if status == optimizers.OK:
            self.clock[T] += 1.0
        return status

    def restore(self, arrays: dict) -> None:
        """Go back to a state from ``arrays()`` (in place: views stay valid)."""
        self.moments[...] = arrays["moments"]
        self.clock[...] = arrays["clock"]

    def epoch_end(self, loss: float, epoch: int, m: int) -> bool:
        """The schedule after epoch ``epoch`` (0-based, whole run) of m samples: the
        reference's rules; True when the adaptive schedule says stop."""
        s = self.settings
        if s.lr_schedule == "invscaling":
            self.clock[LR] = optimizers.scheduled_lr("invscaling", s.lr, epoch + 1, m, s.power_t)
        elif s.lr_schedule == "adaptive":
            sched = optimizers.AdaptiveLR(
                float(self.clock[LR]), tol=float(self.hyper[TOL]), patience=s.patience,
                best=float(self.clock[BEST]), count=int(self.clock[COUNT]),
                stopped=bool(self.clock[STOPPED]),
            )  # fmt: skip
            lr = sched.update(loss)
            self.clock[LR:] = [sched.lr, sched.best, sched.count, float(sched.stopped)]
            return lr is None
        return False
