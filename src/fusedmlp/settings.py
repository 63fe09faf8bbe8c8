"""The settings of a training run: one object, validated once, saved in checkpoints as is.

``Settings.make(given, kept)`` builds them from the arguments the user gave to ``train``
(``given``: only those not None) over the settings of a run being resumed (``kept``) or
the defaults, and checks every value and every combination before anything is trained:
the output and the loss must go together, an optimizer's options are refused for
another optimizer, ranges are checked, and a resumed run keeps its output, loss,
activation and optimizer. ``to_dict`` / ``from_dict`` round-trip through JSON exactly.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

from . import optimizers
from ._validation import (
    _choice,
    check_activation,
    check_count,
    check_loss,
    check_lr,
    check_seed,
)
from .reference import OUTPUT_LOSSES, OUTPUTS

# the default learning rate of each optimizer: plain descent keeps the exercise's 0.2;
# momentum 0.02, whose steady steps lr / (1 - mu) are gd's 0.2; Adam scikit-learn's 0.001
DEFAULT_LR = {"gd": 0.2, "momentum": 0.02, "nesterov": 0.02, "adam": 0.001}
# the loss of each output when none is given (sigmoid: the exercise's mse)
DEFAULT_LOSS = {
    "sigmoid": "mse",
    "softmax": "cross_entropy",
    "identity": "mse",
    "exp": "poisson",
}
# which optimizer each option belongs to
OPTIMIZER_OPTIONS = {
    "momentum": ("momentum", "nesterov"),
    "beta1": ("adam",),
    "beta2": ("adam",),
    "epsilon": ("adam",),
}
# what a resumed run keeps (the rest may change between calls)
KEPT = ("activation", "output", "loss", "optimizer")


@dataclass
class Settings:
    """Every setting of a run (``train``'s arguments of the same names)."""

    activation: str = "sigmoid"
    output: str = "sigmoid"
    loss: str = "mse"
    lr: float = 0.2
    optimizer: str = "gd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    alpha: float = 0.0
    lr_schedule: str = "constant"
    power_t: float = 0.5
    batch_size: int | None = None
    seed: int | None = None
    tol: float | None = None
    patience: int = 10
    validation_fraction: float | None = None

    @classmethod
    def make(cls, given: dict, kept: Settings | None = None) -> Settings:
        """Validated settings: ``given`` (the arguments passed, not None) over ``kept``
        (a resumed run's) or the defaults.

        Examples
        --------
        >>> s = Settings.make({"output": "softmax", "optimizer": "adam"})
        >>> s.loss, s.lr, s.beta1
        ('cross_entropy', 0.001, 0.9)
        >>> Settings.make({"optimizer": "adam", "momentum": 0.5})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: momentum=0.5 is an option of momentum and nesterov, not of ...
        """
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        if kept is not None:
            _check_kept(given, kept)
            values = dict(asdict(kept), **given)
        else:
            values = _defaults(given)
        settings = cls(**values)
        settings.check(given)
        return settings

    def check(self, given: dict | None = None) -> None:
        """Raise ValueError or TypeError naming the first bad value and its fix."""
        given = {} if given is None else given
        self.activation = check_activation(self.activation)
        self.output = _choice("output", self.output, OUTPUTS)
        self.loss = check_loss(self.loss)
        if self.loss not in OUTPUT_LOSSES[self.output]:
            fits = " or ".join(repr(v) for v in OUTPUT_LOSSES[self.output])
            raise ValueError(
                f"loss={self.loss!r} does not go with output={self.output!r}: use loss={fits}"
                f" (or another output)."
            )
        self.optimizer = _choice("optimizer", self.optimizer, optimizers.OPTIMIZERS)
        for name, owners in OPTIMIZER_OPTIONS.items():
            if name in given and self.optimizer not in owners:
                raise ValueError(
                    f"{name}={given[name]!r} is an option of {' and '.join(owners)}, not of "
                    f"optimizer={self.optimizer!r}; leave it out or choose one of those "
                    "optimizers."
                )
        self.lr = check_lr(self.lr)
        self._check_numbers()
        self.lr_schedule = _choice("lr_schedule", self.lr_schedule, optimizers.SCHEDULES)
        if "power_t" in given and self.lr_schedule != "invscaling":
            raise ValueError(
                f"power_t={given['power_t']!r} is an option of lr_schedule='invscaling', "
                f"not of {self.lr_schedule!r}; leave it out or use that schedule."
            )
        if self.batch_size is not None:
            self.batch_size = check_count("batch_size", self.batch_size, minimum=1)
        if self.seed is not None:
            self.seed = check_seed(self.seed)
        self.patience = check_count("patience", self.patience, minimum=1)

    def _check_numbers(self) -> None:
        for name in ("momentum", "beta1", "beta2"):
            value = _real(name, getattr(self, name))
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}; the default is "
                                 f"{getattr(Settings, name)}.")  # fmt: skip
            setattr(self, name, value)
        self.epsilon = _real("epsilon", self.epsilon)
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}; the default is 1e-8.")
        self.alpha = _real("alpha", self.alpha)
        if self.alpha < 0:
            raise ValueError(f"alpha (the L2 penalty) must be >= 0, got {self.alpha}.")
        self.power_t = _real("power_t", self.power_t)
        if self.tol is not None:
            self.tol = _real("tol", self.tol)
            if self.tol < 0:
                raise ValueError(f"tol must be a finite number >= 0 (or None), got {self.tol}.")
        if self.validation_fraction is not None:
            f = _real("validation_fraction", self.validation_fraction)
            if not 0 < f < 1:
                raise ValueError(
                    f"validation_fraction must be in (0, 1), got {f}: the share of the "
                    "samples held out, e.g. 0.1."
                )
            self.validation_fraction = f

    def to_dict(self) -> dict:
        """Plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Settings:
        """The settings of a checkpoint, checked like arguments."""
        known = {f.name for f in fields(cls)}
        settings = cls(**{k: v for k, v in values.items() if k in known})
        settings.check()
        return settings


def _defaults(given: dict) -> dict:
    """given, with the defaults that depend on other settings filled in."""
    values = dict(given)
    output = values.get("output", "sigmoid")
    if "loss" not in values and output in DEFAULT_LOSS:
        values["loss"] = DEFAULT_LOSS[output]
    optimizer = values.get("optimizer", "gd")
    if "lr" not in values and optimizer in DEFAULT_LR:
        values["lr"] = DEFAULT_LR[optimizer]
    return values


def _check_kept(given: dict, kept: Settings) -> None:
    for name in KEPT:
        if name in given and given[name] != getattr(kept, name):
            raise ValueError(
                f"{name}={given[name]!r} but the resumed run used {getattr(kept, name)!r}; "
                f"leave {name} out to continue it (or start a new run)."
            )


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    return value
