"""What training returns: ``TrainResult``, and the errors that carry one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .settings import Settings

_FLAT = ("activation", "loss", "lr", "seed", "batch_size")


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Attributes
    ----------
    epoch : int
        The epoch at which it happened (0-based, counting any resumed epochs).
    params : dict
        The parameters at the start of the failing epoch. They are all finite: the
        update that would have overflowed is never applied, so nothing trained before
        the failure is lost (their own loss may be the non-finite one).
    losses : ndarray
        The losses of the epochs before ``epoch``.
    result : TrainResult
        Everything up to the failure as a result, ready for ``fusedmlp.save``.
    """

    def __init__(self, message: str, *, epoch: int, result: TrainResult):
        super().__init__(message)
        self.epoch = epoch
        self.result = result
        self.params = result.params
        self.losses = result.losses


class DataChanged(RuntimeError):
    """A memory-mapped data file changed while training read it.

    Training stops at the next check (every call of about 50 ms) instead of going on
    with changed data (a truncated file would kill the process with SIGBUS; see
    ``fusedmlp.outofcore``). ``.result`` holds everything trained up to ``.epoch``.
    """

    def __init__(self, message: str, *, epoch: int, result: TrainResult):
        super().__init__(message)
        self.epoch = epoch
        self.result = result


@dataclass
class TrainResult:
    """What ``train`` returns (and ``fusedmlp.load`` reads back).

    Attributes
    ----------
    params : dict
        Trained parameters {"W1", "b1", "W2", "b2"}; with validation, those of the best
        validation epoch (``best_epoch``).
    losses : ndarray of float64, shape (epochs,)
        ``losses[i]`` is the cost of the forward pass of epoch i, before its update, with
        the L2 term (with mini-batches: the mean over the epoch's batches, each before
        its own update).
    settings : Settings
        Every setting of the run (``fusedmlp.settings.Settings``); ``activation``,
        ``output``, ``loss``, ``lr``, ``optimizer``, ``seed`` and ``batch_size`` read
        from it.
    state : dict or None
        The optimizer's state after the last epoch ({"moments", "clock"}, see
        ``fusedmlp._optstate``), which a resumed run continues from.
    val_losses, val_scores : ndarray or None
        With ``validation_fraction``: the held-out loss (without the L2 term) and score
        (accuracy, or R^2 for an identity or exp output) after each epoch's update.
    best_epoch : int or None
        With validation: the epoch whose parameters ``params`` holds.
    interrupted : bool
        True when Ctrl-C stopped training early; params and losses are consistent.
    stop_epoch : int or None
        The epoch at which early stopping (``tol``/``patience``, on the training loss or
        the validation score), the adaptive schedule's floor, or the callback returning
        True ended training.

    Examples
    --------
    >>> import fusedmlp
    >>> X, Y = fusedmlp.datasets.planar(m=40)
    >>> res = fusedmlp.train(X, Y, epochs=3, seed=2, optimizer="adam")
    >>> res.optimizer, res.settings.lr, res.epochs, int(res.state["clock"][0])
    ('adam', 0.001, 3, 3)
    """

    params: dict
    losses: np.ndarray
    activation: str | None = None
    loss: str | None = None
    lr: float | None = None
    backend: str = "numba"
    seed: int | None = None
    batch_size: int | None = None
    interrupted: bool = False
    stop_epoch: int | None = None
    info: dict = field(default_factory=dict)
    settings: Settings | None = None
    state: dict | None = None
    val_losses: np.ndarray | None = None
    val_scores: np.ndarray | None = None
    best_epoch: int | None = None

    def __post_init__(self) -> None:
        # the settings are the record; the flat fields (activation, loss, lr, seed,
        # batch_size) mirror them for older callers, and one given here wins
        self.settings = self.current_settings()
        for name in _FLAT:
            setattr(self, name, getattr(self.settings, name))

    def current_settings(self) -> Settings:
        """``settings`` with the flat fields applied where they are set (a caller may have
        changed ``res.lr``); not checked: ``train(resume=)`` and ``save`` check them."""
        base = self.settings if self.settings is not None else Settings()
        flat = {k: getattr(self, k) for k in _FLAT if getattr(self, k) is not None}
        return replace(base, **flat)

    @property
    def output(self) -> str:
        """The output layer: "sigmoid", "softmax", "identity" or "exp"."""
        return self.settings.output

    @property
    def optimizer(self) -> str:
        """The optimizer: "gd", "momentum", "nesterov" or "adam"."""
        return self.settings.optimizer

    @property
    def epochs(self) -> int:
        """Number of epochs run (including resumed ones)."""
        return len(self.losses)

    @property
    def sizes(self) -> tuple:
        """(n_x, n_h, n_y)."""
        n_h, n_x = self.params["W1"].shape
        return (n_x, n_h, self.params["W2"].shape[0])

    @property
    def dtype(self) -> np.dtype:
        """The dtype training ran in."""
        return self.params["W1"].dtype

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The outputs A2 for new data; see ``fusedmlp.predict_proba``."""
        from .api import predict_proba

        return predict_proba(self.params, X, activation=self.activation, output=self.output)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels (or values, for identity and exp) for new data; see ``fusedmlp.predict``."""
        from .api import predict

        return predict(self.params, X, activation=self.activation, output=self.output)

    def score(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Accuracy (or R^2 for identity and exp) on X, Y; see ``fusedmlp.score``."""
        from .api import score

        return score(self.params, X, Y, activation=self.activation, output=self.output)
