"""``train``: checks its arguments once (into a ``Settings``), sets up the parameters,
data and optimizer state, and hands the epochs to the driver (``_driver``). Its result,
``TrainResult``, and the errors it raises live in ``fusedmlp.result``.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np

from . import _data, _driver
from ._holdout import Holdout
from ._optstate import OptState
from ._validation import (
    check_backend,
    check_count,
    check_network_size,
    check_params,
    params_in,
    warn_copy,
    work_dtype,
)
from .kernels import OK, UPDATE_OVERFLOW
from .result import DataChanged, TrainingDiverged, TrainResult
from .settings import Settings

__all__ = ["DataChanged", "TrainResult", "TrainingDiverged", "train"]

# train's arguments that are settings (the rest say how to run, not what to train)
SETTING_ARGS = (
    "activation", "output", "loss", "lr", "optimizer", "momentum", "beta1", "beta2",
    "epsilon", "alpha", "lr_schedule", "power_t", "batch_size", "seed", "tol", "patience",
    "validation_fraction",
)  # fmt: skip


def train(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    hidden: int | None = None,
    activation: str | None = None,
    output: str | None = None,
    loss: str | None = None,
    epochs: int = 1000,
    lr: float | None = None,
    optimizer: str | None = None,
    momentum: float | None = None,
    beta1: float | None = None,
    beta2: float | None = None,
    epsilon: float | None = None,
    alpha: float | None = None,
    lr_schedule: str | None = None,
    power_t: float | None = None,
    init: dict | None = None,
    seed: int | None = None,
    backend: str = "numba",
    batch_size: int | None = None,
    validation_fraction: float | None = None,
    tol: float | None = None,
    patience: int | None = None,
    verbose: bool = False,
    log_every: int = 100,
    callback=None,
    threads: int | None = None,
    resume: TrainResult | None = None,
    client=None,
) -> TrainResult:
    """Train a one-hidden-layer network.

    Every setting left as None takes the resumed run's value (with ``resume``) or its
    default; see ``fusedmlp.settings.Settings``, which checks them all before anything
    runs.

    Parameters
    ----------
    X : array (n_x, m)
        Inputs, one sample per column. float32 data is trained in float32, anything
        else in float64. A dask array, or a list of shard files (.npz, or .npy with
        Y the list of their targets' .npy files), trains on a dask cluster: see
        ``fusedmlp.distributed``.
    Y : array (n_y, m), or (m,)
        Targets: for a sigmoid output in [0, 1] (required for cross-entropy; (m,) is one
        output); for softmax one-hot or probability columns (K, m), or integer class
        indices (m,) (the network gets max + 1 outputs); for identity any real numbers;
        for exp any real numbers >= 0 (counts or rates).
    sample_weight : array (m,), optional
        Each sample's weight (finite, >= 0, not all 0): a batch's loss and gradient are
        sum_j w_j loss_j / sum_j w_j (the L2 term divided by sum_j w_j too), as
        scikit-learn's MLP takes its ``sample_weight``; the held-out samples of
        ``validation_fraction`` are scored with their weights. Data, not a setting: a
        checkpoint does not keep it (give it again to ``resume``). Not for cluster data.
    hidden : int, default 4
        Hidden units; taken from ``init``/``resume`` when one is given.
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
        The hidden layer's.
    output : {"sigmoid", "softmax", "identity", "exp"}, default "sigmoid"
        Independent sigmoids (binary labels), a softmax over the classes, linear
        outputs for regression, or exp(Z2) for Poisson regression (counts, rates).
    loss : {"mse", "cross_entropy", "poisson"}
        Default "mse" for sigmoid and identity, "cross_entropy" for softmax (the only
        loss that goes with it; identity takes only "mse"), "poisson" for exp (its
        only one: half the Poisson deviance, (1/m) sum Y log(Y / A2) - Y + A2).
    epochs : int
        Epochs to run in this call (>= 0); with ``resume``, epochs *more*.
    lr : float
        Learning rate (> 0); default 0.2 for "gd", 0.02 for momentum and Nesterov,
        0.001 for Adam.
    optimizer : {"gd", "momentum", "nesterov", "adam"}, default "gd"
        The update (scikit-learn's formulas; see ``fusedmlp.optimizers``).
    momentum : float, default 0.9
        mu of "momentum" and "nesterov", in [0, 1).
    beta1, beta2, epsilon : float, default 0.9, 0.999, 1e-8
        Adam's.
    alpha : float, default 0
        L2 penalty: the loss gains alpha / (2 m_b) (||W1||^2 + ||W2||^2), m_b the samples
        of the batch; biases are not penalised.
    lr_schedule : {"constant", "invscaling", "adaptive"}, default "constant"
        "invscaling": lr / (samples seen + 1) ** power_t, changed after each epoch;
        "adaptive": lr divided by 5 after ``patience`` epochs whose loss fails to beat
        the best by ``tol`` (1e-4 when None), stopping where it would fall below 1e-6.
    power_t : float, default 0.5
        The exponent of "invscaling".
    init : dict, optional
        Starting parameters {"W1", "b1", "W2", "b2"}; copied, never modified.
    seed : int, optional
        Seed for ``init_params`` (when ``init`` is not given), the mini-batch shuffles
        and the validation split. None draws one, recorded in the result.
    backend : {"numba", "numpy"}
        "numba" runs the fused compiled kernels; "numpy" the plain reference.
    batch_size : int, optional
        Mini-batches of this size, reshuffled every epoch from (seed, epoch); None
        (default), or a size >= m, is full-batch.
    validation_fraction : float, optional
        Hold out this share of the samples (stratified by class), record ``val_losses``
        and ``val_scores`` after every epoch, stop once the score has not beaten its
        best by more than ``tol`` (1e-4 when None) for ``patience`` epochs, and return
        the parameters of the best epoch.
    tol, patience : float, int
        Early stopping. Without validation, on the training loss: stop once it has not
        improved on its best by more than ``tol`` for ``patience`` (default 10) epochs;
        the result holds exactly the epochs up to that one (``stop_epoch``). tol None
        (default) never stops early on the loss. With validation they apply to the
        score; with the adaptive schedule they are its own (the rate drops instead, and
        training stops when it reaches its floor).
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
        parameters, settings and optimizer state, its losses kept in front. Its
        activation, output, loss and optimizer cannot change; a new ``lr`` replaces the
        current rate. Gives the same bits as one uninterrupted run with the same backend
        and threads (with validation, only while the best epoch is the last).
    client : distributed.Client, optional
        With dask arrays or shard files: the cluster to train on (default: the active
        client).

    Returns
    -------
    TrainResult
        ``.params``, ``.losses`` (``losses[i]`` is the cost before epoch i's update),
        ``.settings``, ``.state``, ``.val_losses``/``.val_scores``, ``.interrupted``,
        ``.stop_epoch``.

    Raises
    ------
    TrainingDiverged
        If the loss or a parameter stops being finite; ``.epoch`` says when and
        ``.params`` holds the last finite parameters.

    Notes
    -----
    Ctrl-C during training stops at the next runner call boundary and returns the
    result so far with ``interrupted=True``. Calls are sized to about 50 ms but hold at
    least one epoch (compiled mini-batch epochs run whole inside a kernel call); with
    the NumPy backend and ``batch_size``, Ctrl-C is also heard after every batch, and
    the epoch it cuts short is undone (so that resuming runs it whole).

    Examples
    --------
    >>> from fusedmlp import datasets
    >>> X, Y = datasets.planar()
    >>> res = train(X, Y, epochs=10, seed=2)
    >>> res.losses.shape
    (10,)
    >>> res = train(X, Y.ravel().astype(int), output="softmax", optimizer="adam",
    ...             lr=0.01, hidden=8, epochs=20, batch_size=64, seed=2)
    >>> res.sizes, res.settings.loss
    ((2, 8, 2), 'cross_entropy')
    """
    if _data.on_cluster(X):
        if sample_weight is not None:
            raise ValueError(
                "sample_weight is not supported for data on a dask cluster (a dask array "
                "or shard files): train on in-memory arrays to weigh the samples."
            )
        args = locals()
        del args["sample_weight"]
        return _on_cluster(args)
    if client is not None:
        raise ValueError(
            f"client= trains on a dask cluster, but X is a {type(X).__name__}, which "
            "trains here: give X as a dask array (dask.array.from_array(X, chunks=...)) "
            "or a list of shard files, or leave client out."
        )
    backend = check_backend(backend)
    epochs, log_every, threads = _check_run(epochs, log_every, callback, threads)
    args = locals()
    given = {k: args[k] for k in SETTING_ARGS if args[k] is not None}
    with _driver.CtrlC() as ctrl_c:  # from here on, Ctrl-C stops training, nothing raises
        settings = _settings(given, resume, init)
        start = resume.params if resume is not None else init
        X, Y, p = _data_and_params(X, Y, hidden, settings, start, backend)
        w = _data.check_weights(sample_weight, X.shape[1], X.dtype)
        X, Y, w, holdout = _split(X, Y, w, settings, backend, resume)
        state = OptState(settings, p, None if resume is None else resume.state)
        history = np.zeros(0) if resume is None else _history(resume)
        first = len(history)
        if resume is not None and "lr" in given:  # a new rate from here on
            state.new_rate(settings.lr, first, X.shape[1])
        run = _driver.make_runner(backend, p, X, Y, state, stop=lambda: ctrl_c.hit, weights=w)
        buf = _driver.Losses(history, first + epochs)
        result = TrainResult(params=p, losses=history, settings=settings, backend=backend)
        with _threads(threads):
            done, status = _driver.drive(
                run, result, buf, X, Y, first, first + epochs,
                (settings.tol, settings.patience, args["verbose"], log_every, callback),
                ctrl_c, state, holdout,
            )  # fmt: skip
        return _finish(result, buf, done, status, state, holdout)


def _on_cluster(args: dict) -> TrainResult:
    """train's arguments handed to ``fusedmlp.distributed``'s train."""
    from .distributed import _train

    return _train.train(**args)


def _check_run(epochs, log_every, callback, threads) -> tuple:
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
    return (
        check_count("epochs", epochs, minimum=0),
        check_count("log_every", log_every, minimum=1),
        None if threads is None else _check_threads(threads),
    )


def _check_threads(threads: object) -> int:
    n = check_count("threads", threads, minimum=1)
    top = numba.config.NUMBA_NUM_THREADS
    if n > top:
        raise ValueError(
            f"threads={n} but numba was started with at most {top} threads "
            f"(NUMBA_NUM_THREADS); pass threads <= {top}."
        )
    return n


def _settings(given: dict, resume, init) -> Settings:
    """The run's settings: the arguments over the resumed run's, or the defaults."""
    kept = None
    if resume is not None:
        if init is not None:
            raise ValueError("pass either init or resume, not both: resume carries params.")
        if not isinstance(resume, TrainResult):
            raise TypeError(
                f"resume must be a TrainResult (from train or fusedmlp.load), got "
                f"{type(resume).__name__}."
            )
        kept = Settings.from_dict(resume.current_settings().to_dict())  # checked as arguments
    settings = Settings.make(given, kept)
    if settings.seed is None:
        settings.seed = int(np.random.SeedSequence().generate_state(1)[0])
    return settings


def _history(resume: TrainResult) -> np.ndarray:
    losses = np.asarray(resume.losses)
    if losses.ndim != 1 or losses.dtype.kind not in "biuf":
        raise ValueError(f"resume.losses must be a 1-D array of numbers, got {losses.shape}.")
    return losses.astype(np.float64)


def start_params(start, hidden) -> tuple[dict | None, int]:
    """(the checked starting parameters or None, the hidden units): ``hidden`` must
    agree with given parameters (default 4 without)."""
    if start is None:
        return None, check_count("hidden", 4 if hidden is None else hidden, minimum=1)
    p = check_params(start)
    n_h = p["W1"].shape[0]
    if hidden is not None and check_count("hidden", hidden, minimum=1) != n_h:
        raise ValueError(
            f"hidden={hidden!r} but the starting parameters have W1 of shape "
            f"{p['W1'].shape}, i.e. {n_h} hidden units; leave hidden out."
        )
    return p, n_h


def _data_and_params(X, Y, hidden, s: Settings, start, backend: str) -> tuple:
    """Checked X, Y and our own copy of the starting parameters, in the working dtype."""
    from .api import init_params

    p, n_h = start_params(start, hidden)
    if p is not None:
        X, Y = _data.check_targets(X, Y, s.output, s.loss, p=p)
    else:
        X, Y = _data.check_targets(X, Y, s.output, s.loss)
        n_y = _data.n_outputs(Y, s.output)
        check_network_size(X.shape[0], n_h, n_y, name="hidden")
        p = init_params(X.shape[0], n_h, n_y, seed=s.seed)
    dtype = work_dtype(X)
    p = {k: np.array(v, order="C") for k, v in params_in(p, dtype).items()}  # our own copy
    if backend == "numba":
        # once here, not in every runner call: the kernels want C-contiguous data
        for name, a in (("X", X), ("Y", Y)):
            if not a.flags.c_contiguous:
                warn_copy(name, a, "not C-contiguous (a transposed or strided view)")
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y, dtype=np.int64 if Y.ndim == 1 else dtype)
    return X, Y, p


def _split(X, Y, w, s: Settings, backend: str, resume) -> tuple:
    """(X, Y, w, Holdout or None): the training samples (and their weights w, or None)
    and the held-out ones."""
    if s.validation_fraction is None:
        return X, Y, w, None
    train, val = _data.split_index(Y, X.shape[1], s.validation_fraction, s.seed, s.output)
    X, Y, Xv, Yv = (
        _data.take(X, train),
        _data.take(Y, train),
        _data.take(X, val),
        _data.take(Y, val),
    )
    w, wv = (None, None) if w is None else (w[train], w[val])
    history = val_history(resume)
    if backend == "numba":  # the split's copies are C-contiguous already
        X, Y, Xv, Yv = (np.ascontiguousarray(a) for a in (X, Y, Xv, Yv))
    return X, Y, w, Holdout(Xv, Yv, s, backend, history, weights=wv)


def val_history(resume) -> tuple:
    """(val_losses, val_scores) of the run resumed from, which the validation record
    continues (empty for a new run, or one resumed from a run without validation)."""
    if resume is not None and resume.val_scores is not None:
        return (resume.val_losses, resume.val_scores)
    return ((), ())


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


def _finish(result: TrainResult, buf, done: int, status, state, holdout) -> TrainResult:
    """The result with its losses, state and validation record, or the exception that
    carries it."""
    result.losses = buf.final(done)
    result.state = state.arrays()
    if holdout is not None:
        if status == OK:  # a failure keeps the last finite parameters, as documented
            holdout.restore_best(result.params)
        result.val_losses = np.array(holdout.losses, dtype=np.float64)
        result.val_scores = np.array(holdout.scores, dtype=np.float64)
        result.best_epoch = holdout.best_epoch if status == OK else None
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
            what = "the update overflowed a parameter (or the optimizer's state) to inf"
        raise TrainingDiverged(
            f"training diverged at epoch {done}: {what} (lr={state.lr} is probably too "
            "large; try a smaller lr). The last finite parameters are in the exception's "
            ".params, the losses so far in .losses, and all of it in .result.",
            epoch=done,
            result=result,
        )
    return result
