"""``train``: checks its arguments, sets up the parameters and data, and hands the epochs
to the driver (``_driver``); its result, ``TrainResult``, and the errors it raises.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from dataclasses import dataclass, field

import numba
import numpy as np

from . import _driver
from ._validation import (
    check_activation,
    check_backend,
    check_count,
    check_data_for,
    check_loss,
    check_lr,
    check_network_size,
    check_params,
    check_seed,
    check_XY,
    params_in,
    warn_copy,
    work_dtype,
)
from .kernels import OK, UPDATE_OVERFLOW


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
        Trained parameters {"W1", "b1", "W2", "b2"}.
    losses : ndarray of float64, shape (epochs,)
        ``losses[i]`` is the cost of the forward pass of epoch i, before its update (with
        mini-batches: the mean over the epoch's batches, each before its own update).
    interrupted : bool
        True when Ctrl-C stopped training early; params and losses are consistent.
    stop_epoch : int or None
        The epoch at which early stopping (``tol``/``patience``), or the callback
        returning True, ended training.
    """

    params: dict
    losses: np.ndarray
    activation: str
    loss: str
    lr: float
    backend: str = "numba"
    seed: int | None = None
    batch_size: int | None = None
    interrupted: bool = False
    stop_epoch: int | None = None
    info: dict = field(default_factory=dict)

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
        """A2 for new data; see ``fusedmlp.predict_proba``."""
        from .api import predict_proba

        return predict_proba(self.params, X, activation=self.activation)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 labels for new data; see ``fusedmlp.predict``."""
        from .api import predict

        return predict(self.params, X, activation=self.activation)


def _check_resume(resume: object) -> dict:
    """A TrainResult's settings, each checked as train checks its own arguments."""
    if not isinstance(resume, TrainResult):
        raise TypeError(
            f"resume must be a TrainResult (from train or fusedmlp.load), got "
            f"{type(resume).__name__}."
        )
    losses = np.asarray(resume.losses)
    if losses.ndim != 1 or losses.dtype.kind not in "biuf":
        raise ValueError(f"resume.losses must be a 1-D array of numbers, got {losses.shape}.")
    batch = resume.batch_size
    return {
        "params": check_params(resume.params),
        "losses": losses.astype(np.float64),
        "activation": check_activation(resume.activation),
        "loss": check_loss(resume.loss),
        "lr": check_lr(resume.lr),
        "seed": None if resume.seed is None else check_seed(resume.seed),
        "batch_size": None if batch is None else check_count("batch_size", batch, minimum=1),
    }


def _check_threads(threads: object) -> int:
    n = check_count("threads", threads, minimum=1)
    top = numba.config.NUMBA_NUM_THREADS
    if n > top:
        raise ValueError(
            f"threads={n} but numba was started with at most {top} threads "
            f"(NUMBA_NUM_THREADS); pass threads <= {top}."
        )
    return n


def _check_tol(tol: object) -> float | None:
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a number >= 0 or None, got {tol!r}.")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}.")
    return float(tol)


def train(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    hidden: int | None = None,
    activation: str | None = None,
    loss: str | None = None,
    epochs: int = 1000,
    lr: float | None = None,
    init: dict | None = None,
    seed: int | None = None,
    backend: str = "numba",
    batch_size: int | None = None,
    tol: float | None = None,
    patience: int = 10,
    verbose: bool = False,
    log_every: int = 100,
    callback=None,
    threads: int | None = None,
    resume: TrainResult | None = None,
) -> TrainResult:
    """Train a one-hidden-layer network by gradient descent.

    Parameters
    ----------
    X : array (n_x, m)
        Inputs, one sample per column. float32 data is trained in float32, anything
        else in float64.
    Y : array (n_y, m), or (m,) for one output
        Targets in [0, 1] (required for cross-entropy).
    hidden : int, default 4
        Hidden units; taken from ``init``/``resume`` when one is given.
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
        Hidden activation; the output is always a sigmoid.
    loss : {"mse", "cross_entropy"}, default "mse"
    epochs : int
        Epochs to run in this call (>= 0); with ``resume``, epochs *more*.
    lr : float, default 0.2
        Learning rate (> 0).
    init : dict, optional
        Starting parameters {"W1", "b1", "W2", "b2"}; copied, never modified.
    seed : int, optional
        Seed for ``init_params`` (when ``init`` is not given) and for the mini-batch
        shuffles. None draws one, recorded in the result so the run can be repeated.
    backend : {"numba", "numpy"}
        "numba" runs the fused compiled kernels; "numpy" the plain reference.
    batch_size : int, optional
        Mini-batch gradient descent with batches of this size, reshuffled every epoch
        from (seed, epoch); None (default) is full-batch.
    tol, patience : float, int
        Early stopping: stop once the loss has not improved on its best by more than
        ``tol`` for ``patience`` epochs. The result holds exactly the epochs up to and
        including that one (``stop_epoch``). None (default) never stops early.
    verbose : bool
        Progress: a tqdm bar when stderr is a terminal, otherwise a line
        "Epoch 100: loss 0.2432" every ``log_every`` epochs. Silent by default.
    log_every : int
        Epochs between log lines and callback calls.
    callback : callable, optional
        ``callback(epoch, loss, params)`` after epochs 0, log_every, 2 log_every, ...:
        the epoch's loss and the parameters after its update. Returning True stops
        training there.
    threads : int, optional
        Kernel threads for this call (``numba.set_num_threads``), restored afterwards.
    resume : TrainResult, optional
        Continue a previous result (from ``train`` or ``fusedmlp.load``): its
        parameters, activation, loss, lr, seed and batch size, its losses kept in front.
        Gives the same bits as one uninterrupted run with the same backend and threads.

    Returns
    -------
    TrainResult
        ``.params``, ``.losses`` (``losses[i]`` is the cost before epoch i's update),
        ``.interrupted``, ``.stop_epoch`` and the configuration.

    Raises
    ------
    TrainingDiverged
        If the loss or a parameter stops being finite; ``.epoch`` says when and
        ``.params`` holds the last finite parameters.

    Notes
    -----
    Ctrl-C during training stops at the next runner call boundary and returns the
    result so far with ``interrupted=True``. Calls are sized to about 50 ms but hold at
    least one epoch; with ``batch_size``, Ctrl-C is also heard after every batch, and
    the epoch it cuts short is undone (so that resuming runs it whole, as an
    uninterrupted run would).

    Examples
    --------
    >>> from fusedmlp import datasets
    >>> X, Y = datasets.planar()
    >>> res = train(X, Y, epochs=10, seed=2)
    >>> res.losses.shape
    (10,)
    """
    backend = check_backend(backend)
    settings = _check_settings(epochs, log_every, patience, tol, batch_size, callback, threads)
    epochs, log_every, patience, tol, batch_size, threads = settings
    with _driver.CtrlC() as ctrl_c:  # from here on, Ctrl-C stops training, nothing raises
        conf = _merge_resume(resume, init, activation, loss, lr, seed, batch_size)
        X, Y, p = _data_and_params(X, Y, hidden, conf, backend)
        history = conf["history"]
        first = len(history)
        run = _driver.make_runner(
            backend, conf["batch_size"], conf["seed"], p, X, Y, conf["activation"],
            conf["loss"], conf["lr"], stop=lambda: ctrl_c.hit,
        )  # fmt: skip
        buf = _driver.Losses(history, first + epochs)
        result = TrainResult(
            params=p,
            losses=history,
            activation=conf["activation"],
            loss=conf["loss"],
            lr=conf["lr"],
            backend=backend,
            seed=conf["seed"],
            batch_size=conf["batch_size"],
        )
        with _threads(threads):
            done, status = _driver.drive(
                run, result, buf, X, Y, first, first + epochs,
                (tol, patience, verbose, log_every, callback), ctrl_c,
            )  # fmt: skip
        return _finish(result, buf, done, status)


def _check_settings(epochs, log_every, patience, tol, batch_size, callback, threads) -> tuple:
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
    return (
        check_count("epochs", epochs, minimum=0),
        check_count("log_every", log_every, minimum=1),
        check_count("patience", patience, minimum=1),
        _check_tol(tol),
        None if batch_size is None else check_count("batch_size", batch_size, minimum=1),
        None if threads is None else _check_threads(threads),
    )


def _merge_resume(resume, init, activation, loss, lr, seed, batch_size) -> dict:
    """The run's settings: the arguments, else the resumed run's, else the defaults."""
    history, kept = np.zeros(0), None
    if resume is not None:
        if init is not None:
            raise ValueError("pass either init or resume, not both: resume carries params.")
        kept = _check_resume(resume)
        for name, given in (("activation", activation), ("loss", loss)):
            if given is not None and given != kept[name]:
                raise ValueError(
                    f"{name}={given!r} but the resumed run used {kept[name]!r}; leave "
                    f"{name} out to continue it."
                )
        activation, loss = kept["activation"], kept["loss"]
        lr = kept["lr"] if lr is None else lr
        seed = kept["seed"] if seed is None else seed
        batch_size = kept["batch_size"] if batch_size is None else batch_size
        init, history = kept["params"], kept["losses"]
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    return {
        "activation": check_activation("sigmoid" if activation is None else activation),
        "loss": check_loss("mse" if loss is None else loss),
        "lr": check_lr(0.2 if lr is None else lr),
        "seed": check_seed(seed),
        "batch_size": batch_size,
        "init": init,
        "history": history,
    }


def _data_and_params(X, Y, hidden, conf: dict, backend: str) -> tuple:
    """Checked X, Y and our own copy of the starting parameters, in the working dtype."""
    from .api import init_params

    loss, init = conf["loss"], conf["init"]
    if init is not None:
        p = check_params(init)
        n_h = p["W1"].shape[0]
        if hidden is not None and check_count("hidden", hidden, minimum=1) != n_h:
            raise ValueError(
                f"hidden={hidden!r} but the starting parameters have W1 of shape "
                f"{p['W1'].shape}, i.e. {n_h} hidden units; leave hidden out."
            )
        X, Y = check_data_for(p, X, Y, loss, training=True)
    else:
        n_h = check_count("hidden", 4 if hidden is None else hidden, minimum=1)
        X, Y = check_XY(X, Y, loss, training=True)
        check_network_size(X.shape[0], n_h, Y.shape[0], name="hidden")
        p = init_params(X.shape[0], n_h, Y.shape[0], seed=conf["seed"])
    dtype = work_dtype(X)
    p = {k: np.array(v, order="C") for k, v in params_in(p, dtype).items()}  # our own copy
    if backend == "numba":
        # once here, not in every runner call: the kernels want C-contiguous data
        for name, a in (("X", X), ("Y", Y)):
            if not a.flags.c_contiguous:
                warn_copy(name, a, "not C-contiguous (a transposed or strided view)")
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y, dtype=dtype)
    return X, Y, p


@contextlib.contextmanager
def _threads(threads: int | None):
    """numba's thread count set for the block, then restored."""
    old = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(threads)
    try:
        yield
    finally:
        if threads is not None:
            numba.set_num_threads(old)


def _finish(result: TrainResult, buf, done: int, status) -> TrainResult:
    """The result with its losses, or the exception that carries it."""
    result.losses = buf.final(done)
    if isinstance(status, str):  # the message of the FileWatch
        raise DataChanged(
            f"{status}: training stopped after epoch {done - 1}. Data files must not change "
            "while training reads them; the result so far is in the exception's .result.",
            epoch=done,
            result=result,
        )
    if status != OK:
        what = "the loss or its gradients became non-finite"
        if status == UPDATE_OVERFLOW:
            what = "the update overflowed a parameter to inf"
        raise TrainingDiverged(
            f"training diverged at epoch {done}: {what} (lr={result.lr} is probably too "
            "large; try a smaller lr). The last finite parameters are in the exception's "
            ".params, the losses so far in .losses, and all of it in .result.",
            epoch=done,
            result=result,
        )
    return result
