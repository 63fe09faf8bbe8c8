"""Training through the compiled whole-training kernels (kernels/train.py).

``epoch_runner`` prepares everything once (conversions, shape checks, scratch, the path)
and returns ``run(n_epochs, losses, first=0) -> (n_done, status)``, which only calls a
kernel: many epochs per call, the optimizer's state (``_optstate.OptState``) in the
call. Paths:

- full batch, m up to ``kernels.config.serial_max_m``: ``train_epochs`` (serial, no
  thread launch per epoch);
- full batch above it: ``train_epochs_parallel`` (each epoch's chunks in parallel);
  both chunk and sum alike, so they give the same bits;
- mini-batches: ``train_batches``: epoch e visits the samples in the order
  ``default_rng([seed, e]).permutation(m)``, the reference's order, drawn here in Python
  once per epoch (about 15 us at m = 1797), never per batch. A batch of a wide network
  that costs more than a thread launch (batch > serial_max_m) is cut into
  ``config.BATCH_CHUNKS`` chunks run on threads, one launch per batch; smaller batches
  run serially. Either way the same chunks and sums, so the same bits.

``train_epochs`` is the one-call form the tests and benchmarks use. Importing this
module's names from ``_compiled`` keeps the old spelling ``_compiled.train_epochs``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import _compiled as _c
from . import kernels as _k
from ._optstate import OptState
from .settings import Settings


def train_epochs(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    activation: str,
    loss: str,
    lr: float,
    n_epochs: int,
    losses_out: np.ndarray,
    *,
    path: str | None = None,
    output: str = "sigmoid",
    state: OptState | None = None,
) -> tuple[int, int]:
    """Run up to n_epochs of full-batch training (gradient descent W -= lr dW unless
    ``state`` says otherwise); (n_done, status).

    Parameters
    ----------
    params : dict
        Updated in place: arrays already C-contiguous, writable and of X's dtype are
        modified in place; any other entry is replaced by an updated converted copy.
    X, Y, activation, loss, output
        As for ``_compiled.loss_and_grads``.
    lr : float
        Step size (ignored when ``state`` is given: its settings hold the rate).
    n_epochs : int
        Epochs to run.
    losses_out : ndarray
        float64, length >= n_epochs: losses_out[e] is the loss before epoch e's update.
    path : {None, "serial", "parallel"}
        None picks by m (see the module docstring); for tests.
    state : OptState, optional
        The optimizer, schedule and L2 penalty, and their state (updated in place).

    Returns
    -------
    (n_done, status): epochs whose update was applied, and ``kernels.OK`` (0),
    ``NONFINITE_GRADS`` (1: the loss or a gradient of epoch n_done is not finite),
    ``UPDATE_OVERFLOW`` (2: epoch n_done's update would make a parameter or the
    optimizer's state non-finite) or ``SCHEDULE_STOP`` (3: the adaptive schedule's rate
    reached its floor after epoch n_done - 1). On status 1 or 2 the parameters are
    those before epoch n_done and losses_out[n_done] holds that epoch's loss.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = {"W1": rng.normal(size=(4, 2)), "b1": np.zeros((4, 1)),
    ...      "W2": rng.normal(size=(1, 4)), "b2": np.zeros((1, 1))}
    >>> X, Y = rng.normal(size=(2, 100)), (rng.random((1, 100)) > 0.5) * 1.0
    >>> losses = np.empty(50)
    >>> train_epochs(p, X, Y, "tanh", "cross_entropy", 0.5, 50, losses)
    (50, 0)
    >>> bool(losses[-1] < losses[0])
    True
    """
    n_epochs = int(n_epochs)
    _c._check(n_epochs >= 0, f"n_epochs must be >= 0, got {n_epochs}")
    _c._check(
        isinstance(losses_out, np.ndarray)
        and losses_out.ndim == 1
        and losses_out.dtype == np.float64
        and losses_out.shape[0] >= n_epochs,
        f"losses_out must be 1-D float64 of length >= {n_epochs}",
    )
    run = epoch_runner(params, X, Y, activation, loss, lr, path=path, output=output, state=state)
    out = losses_out[:n_epochs]
    direct = out.flags.c_contiguous and out.flags.writeable
    losses = out if direct else np.empty(n_epochs)
    n_done, status = run(n_epochs, losses)
    if not direct:
        out[:] = losses
    return n_done, status


def gd_state(params: dict, activation: str, loss: str, output: str, lr: float) -> OptState:
    """The state of plain gradient descent at rate lr, constant."""
    settings = Settings(activation=activation, loss=loss, output=output, lr=lr)
    return OptState(settings, params)


def epoch_runner(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    activation: str,
    loss: str,
    lr: float | None = None,
    *,
    path: str | None = None,
    output: str = "sigmoid",
    state: OptState | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    weights: np.ndarray | None = None,
):
    """Prepare once, then run epochs with little per-call cost:
    ``run(n_epochs, losses, first=0) -> (n_done, status)``.

    ``losses`` is a C-contiguous float64 array of length >= n_epochs; ``first`` the
    number of epochs run before (the schedule's clock and the mini-batch orders depend
    on it). ``state`` (default: gradient descent at rate ``lr``) is updated in place,
    like the parameters: entries of ``params`` that were not C-contiguous writable
    arrays of X's dtype are replaced here by converted copies, which ``run`` updates.
    With ``batch_size``, epochs of shuffled mini-batches (orders from ``seed``, or the
    (n_epochs, m) sample orders given to ``run(..., orders=...)``).
    ``weights`` (m,), optional: each sample's weight, as scikit-learn's ``sample_weight``
    (a batch's sums are divided by its weights' sum instead of its size).
    The trainer uses this so that reporting progress every few epochs costs next to
    nothing (about 1 us per call instead of about 15).
    """
    kind = _c._kind(activation, loss, output)
    mini = batch_size is not None and batch_size < X.shape[1]
    W1, b1, W2, b2, X, Y = _c._prepare(params, X, Y, by_sample=mini)
    for key, arr in zip(("W1", "b1", "W2", "b2"), (W1, b1, W2, b2), strict=True):
        if params[key] is not arr:
            params[key] = arr
    if state is None:
        state = gd_state(params, activation, loss, output, float(lr))
    n_par = _k.n_params(W1.shape[1], W1.shape[0], W2.shape[0])
    _c._check(state.moments.shape == (2, n_par), "the optimizer state has the wrong size")
    opt = (state.codes, state.hyper, state.moments, state.clock)
    wt = _c._weights(weights, X)
    if mini:
        return _batch_runner(W1, b1, W2, b2, X, Y, wt, kind, opt, int(batch_size), seed)
    m = X.shape[1]
    if wt.size:
        check_batch_weights(wt, None, m)
    if path is None:
        serial = m <= _k.config.serial_max_m(W1.shape[1], W1.shape[0], W2.shape[0])
        path = "serial" if serial else "parallel"
    _c._check(path in ("serial", "parallel"), f"unknown path {path!r}")
    plan = _c._plan(W1, W2, X)
    _, partials = _c._scratch(W1, W2, plan)

    def run(n_epochs: int, losses: np.ndarray, first: int = 0) -> tuple[int, int]:
        _checked(n_epochs, losses)
        if n_epochs == 0:
            return 0, _k.OK
        kernel = _k.train_epochs
        if path == "parallel":
            kernel = _c._pick(_k.train_epochs_parallel, _k.train_epochs)
        # only parallel kernels take turns; serial ones run side by side
        turn = _c._LOCK if kernel is _k.train_epochs_parallel else contextlib.nullcontext()
        with turn, _c._blas_threads(plan):
            n_done, status = kernel(
                losses, partials, W1, b1, W2, b2, X, Y, wt, kind, plan, n_epochs, first, *opt
            )
        return int(n_done), int(status)

    return run


def epoch_order(seed: int, epoch: int, m: int) -> np.ndarray:
    """The order in which mini-batch epoch ``epoch`` visits m samples: from (seed,
    epoch) only, so a resumed run (or a cluster's worker) shuffles as an uninterrupted
    one."""
    return np.random.default_rng([seed, epoch]).permutation(m)


def _batch_setup(W1, W2, X, Y, batch: int) -> tuple:
    """(plan, parallel, partials, Xb, Yb) for batches of ``batch`` samples of X, Y (only
    their rows and dtypes are read): a batch's plan, whether its chunks run on threads
    (once a batch costs more than a thread launch), the rows, the gather scratch."""
    n_h, n_x = W1.shape
    n_y = W2.shape[0]
    plan = _k.config.batch_plan(n_x, n_h, n_y, X.dtype.itemsize, batch)
    parallel = batch > _k.config.serial_max_m(n_x, n_h, n_y) and plan[2] > 1
    _, partials = _c._scratch(W1, W2, plan)
    if _k.config.by_sample(n_x, X.dtype.itemsize, plan[1]):
        Xb = np.empty((n_x, batch), X.dtype, order="F")  # see kernels.train._batch_view
    else:
        Xb = np.empty(n_x * batch, X.dtype)
    Yb = np.empty(batch, np.int64) if Y.ndim == 1 else np.empty(Y.shape[0] * batch, Y.dtype)
    return plan, parallel, partials, Xb, Yb


def _batch_runner(W1, b1, W2, b2, X, Y, wt, kind, opt, batch: int, seed: int):
    """``run`` for mini-batch epochs (see epoch_runner)."""
    m = X.shape[1]
    plan, parallel, partials, Xb, Yb = _batch_setup(W1, W2, X, Y, batch)
    if Xb.ndim == 1 and not X.flags.c_contiguous:
        # a feature-major batch gathers a feature's row at a time: from rows (measured,
        # scikit-learn's diabetes fit, 10-64-1: 4% slower from sample-major X)
        X = _c._read_only(np.ascontiguousarray(X))
    zeros_possible = wt.size and not (wt > 0).all()  # a batch's weights could sum to 0

    def run(n_epochs: int, losses: np.ndarray, first: int = 0, orders=None) -> tuple[int, int]:
        _checked(n_epochs, losses)
        if n_epochs == 0:
            return 0, _k.OK
        if orders is None:
            orders = np.empty((n_epochs, m), np.int64)
            for i in range(n_epochs):
                orders[i] = epoch_order(seed, first + i, m)
        else:
            orders = _checked_orders(orders, n_epochs, m)
        if zeros_possible:
            check_batch_weights(wt, orders, batch)
        threads = parallel and not _c._SERIAL_ONLY
        turn = _c._LOCK if threads else contextlib.nullcontext()
        with turn, _c._blas_threads(plan):
            n_done, status = _k.train_batches(
                losses, partials, W1, b1, W2, b2, X, Y, wt, kind, plan, n_epochs, first, *opt,
                orders, batch, Xb, Yb, threads,
            )  # fmt: skip
        return int(n_done), int(status)

    return run


def window_runner(p: dict, Y0: np.ndarray, kind: tuple, state: OptState, batch: int):
    """For an epoch streamed in windows (``fusedmlp.distributed``'s mini-batches):
    ``step(X, Y, idx, losses, e, first, total, m, end) -> (status, total)`` runs the
    batches of one window with the mini-batch kernel's code (``kernels.train_window``).
    p holds the parameters (C-contiguous, the working dtype; updated in place), Y0 is a
    target array of no samples in the targets' form (class indices or rows)."""
    W1, b1, W2, b2 = (p[k] for k in ("W1", "b1", "W2", "b2"))
    X0 = np.empty((W1.shape[1], 0), W1.dtype)
    plan, parallel, partials, Xb, Yb = _batch_setup(W1, W2, X0, Y0, batch)
    opt = (state.codes, state.hyper, state.moments, state.clock)

    def step(X, Y, idx, losses, e: int, first: int, total: float, m: int, end: bool):
        # idx indexes X unchecked in the kernel: the caller builds it from X's columns
        _c._check(
            idx.dtype == np.int64 and idx.shape[0] <= X.shape[1],
            f"a window's order must be int64 and at most its {X.shape[1]} samples long, "
            f"got {idx.dtype} of {idx.shape[0]}",
        )
        threads = parallel and not _c._SERIAL_ONLY
        turn = _c._LOCK if threads else contextlib.nullcontext()
        with turn, _c._blas_threads(plan):
            status, total = _k.train_window(
                losses, partials, W1, b1, W2, b2, X, Y, kind, plan, e, first, *opt, idx,
                batch, Xb, Yb, threads, total, m, end,
            )  # fmt: skip
        return int(status), float(total)

    return step


def check_batch_weights(w: np.ndarray, orders: np.ndarray | None, batch: int) -> None:
    """ValueError if a batch's sample weights add up to 0: its loss and gradient are
    divided by that sum (scikit-learn's MLP raises ZeroDivisionError there). orders:
    each epoch's sample order (a row per epoch), cut into batches of ``batch``; None
    for full batches (one sum, no copy of the weights)."""
    if orders is None:
        m, sums = w.shape[0], np.array([[np.sum(w, dtype=np.float64)]])
    else:
        m = orders.shape[1]
        sums = np.add.reduceat(w[orders].astype(np.float64), np.arange(0, m, batch), axis=1)
    bad = np.argwhere(sums == 0)
    if bad.size:
        b = int(bad[0][1])
        raise ValueError(
            f"The sample weights of a batch add up to 0 (places {b * batch} to "
            f"{min(m, (b + 1) * batch) - 1} of an epoch's order of {m} samples, batches "
            f"of {batch}), so its loss cannot be normalised. Give fewer zero weights, a "
            f"larger batch size, or drop the samples of weight 0."
        )


def _checked_orders(orders, n_epochs: int, m: int) -> np.ndarray:
    """orders given by the caller (the scikit-learn estimators' shuffles): (n_epochs, m)
    int64 sample indices in [0, m), as the kernel reads them unchecked."""
    orders = np.ascontiguousarray(orders, dtype=np.int64)
    _c._check(
        orders.shape == (n_epochs, m) and (m == 0 or (orders.min() >= 0 and orders.max() < m)),
        f"orders must be ({n_epochs}, {m}) sample indices in [0, {m}), got shape {orders.shape}",
    )
    return orders


def _checked(n_epochs: int, losses: np.ndarray) -> None:
    # the kernel writes losses[0 .. n_epochs): a short or foreign buffer must stop here
    # (about 0.3 us), never reach it
    _c._check(
        isinstance(losses, np.ndarray)
        and losses.ndim == 1
        and losses.dtype == np.float64
        and losses.flags.c_contiguous
        and losses.flags.writeable
        and 0 <= n_epochs <= losses.shape[0],
        f"losses must be a writable C-contiguous 1-D float64 array of length >= "
        f"n_epochs = {n_epochs}",
    )
