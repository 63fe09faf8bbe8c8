"""The thin driver between the validated public API and the compiled kernels.

Callers (the trainer, ``predict_proba``) have already validated their inputs once; this
module only brings arrays into the form the kernels need, picks the kernel, and checks
shapes again with AssertionErrors as a last line of defence (Numba does no bounds checks,
so a wrong shape must never reach a kernel; the checks are explicit raises, not
``assert`` statements, so ``python -O`` keeps them).

- X and Y are made C-contiguous (``np.ascontiguousarray`` copies only when needed, so
  F-ordered or strided inputs give the same answer) and Y and the parameters are cast
  to X's dtype, float32 or float64; float32 is computed in float32 with float64 sums.
- Training (``train_epochs``, ``epoch_runner``) is in ``_compiled_train``.
- Thread safety: Numba's ``workqueue`` threading layer (what numba falls back to when
  neither TBB nor OpenMP is available) aborts the process if two Python threads run
  parallel kernels at once. Every parallel kernel call made here holds ``_LOCK``, which
  works with any threading layer; the kernels release the GIL, so other Python threads
  keep running meanwhile (parallel kernels run one at a time, serial ones concurrently).
  Code that calls ``fusedmlp.kernels`` directly bypasses the lock.
- Processes: fork is safe. The kernels' threading layer is chosen to be fork-safe
  (``kernels.config``: TBB, else workqueue), ``_LOCK`` is replaced by a fresh lock in
  a forked child (a thread of the parent may have held it at the fork, and that thread
  does not exist in the child), and where the parent had already started GNU OpenMP
  threads (only when the user forced ``NUMBA_THREADING_LAYER=omp``, or another library
  started them first) the child runs the serial twins of the parallel kernels, which
  give the same bits, instead of being killed by numba.
- Threads: the kernels use ``numba.get_num_threads()`` threads; this module never
  changes it (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS`` are respected), and the
  results do not depend on it.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numba
import numpy as np

from . import kernels as _k
from ._blas_threads import one_blas_thread

_LOCK = threading.Lock()
_SERIAL_ONLY = False  # True in a forked child of a process running GNU OpenMP threads


def _gnu_openmp_started() -> bool:
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: nothing was started
        return False
    if layer != "omp":
        return False
    from numba.np.ufunc import omppool

    return getattr(omppool, "openmp_vendor", "GNU") == "GNU"


def _after_fork_in_child() -> None:
    global _LOCK, _SERIAL_ONLY
    _LOCK = threading.Lock()
    _SERIAL_ONLY = _SERIAL_ONLY or _gnu_openmp_started()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _pick(parallel, serial):
    """The parallel kernel, or its serial twin where threads cannot be used."""
    return serial if _SERIAL_ONLY else parallel


def _by_size(parallel, serial, W1: np.ndarray, W2: np.ndarray, X: np.ndarray) -> tuple:
    """(kernel, lock context) for a pass over X's samples: the serial twin (the same
    chunks in order, so the same bits) where the samples cost less than a thread launch
    (``config.serial_max_m``, as for training's epochs: a held-out set scored every
    epoch is often a few dozen samples), else the parallel kernel under ``_LOCK``."""
    n_h, n_x = W1.shape
    if _SERIAL_ONLY or X.shape[1] <= _k.config.serial_max_m(n_x, n_h, W2.shape[0]):
        return serial, contextlib.nullcontext()
    return parallel, _LOCK


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(f"fusedmlp._compiled: {what}; validation should have caught this")


def _float_dtype(X: np.ndarray) -> type:
    """np.float32 or np.float64 (native byte order) for X's dtype."""
    ok = X.dtype.kind == "f" and X.dtype.itemsize in (4, 8)
    if not ok:  # the message only on failure: str of a dtype costs 3 us, more than the check
        _check(ok, f"X must be float32 or float64, got {X.dtype}")
    return np.float32 if X.dtype.itemsize == 4 else np.float64


def _writable(a: np.ndarray) -> np.ndarray:
    return a if a.flags.writeable else a.copy()


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of a (a itself when it already is)."""
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _prepare(params: dict, X: np.ndarray, Y: np.ndarray | None = None, by_sample=False):
    """(W1, b1, W2, b2, X, Y) C-contiguous in X's dtype, shapes checked. With
    ``by_sample``, an X that is column-major already (the transpose of scikit-learn's
    sample-major data) stays so: the mini-batch kernels gather from it (train._fill)."""
    _check(isinstance(X, np.ndarray) and X.ndim == 2, "X must be a 2-D array")
    dtype = _float_dtype(X)
    keep = by_sample and X.flags.f_contiguous and X.dtype == dtype and X.dtype.isnative
    X = X if keep else np.ascontiguousarray(X, dtype=dtype)
    n_x, m = X.shape
    _check(n_x >= 1 and m >= 1, f"X must have at least one row and one column, got {X.shape}")
    W1, b1, W2, b2 = (
        np.ascontiguousarray(params[k], dtype=dtype) for k in ("W1", "b1", "W2", "b2")
    )
    # one array type per role, so that each kernel has one compiled variant per dtype:
    # parameters writable (tiny: copied if not), data read-only (a view, never a copy).
    # A memory-mapped X and an in-memory X then run the very same machine code, which
    # keeps their results bit-identical (two variants may contract FMAs differently).
    W1, b1, W2, b2 = (_writable(a) for a in (W1, b1, W2, b2))
    n_h = W1.shape[0] if W1.ndim == 2 else 0
    n_y = W2.shape[0] if W2.ndim == 2 else 0
    _check(n_h >= 1 and W1.shape == (n_h, n_x), f"W1 must be (n_h, {n_x}), got {W1.shape}")
    _check(b1.shape == (n_h, 1), f"b1 must be ({n_h}, 1), got {b1.shape}")
    _check(n_y >= 1 and W2.shape == (n_y, n_h), f"W2 must be (n_y, {n_h}), got {W2.shape}")
    _check(b2.shape == (n_y, 1), f"b2 must be ({n_y}, 1), got {b2.shape}")
    if Y is not None:
        _check(isinstance(Y, np.ndarray), "Y must be an array")
        if Y.ndim == 1:  # class indices of a softmax network, read as one-hot
            if Y.dtype.kind not in "iu":
                _check(False, f"class labels must be integers, got {Y.dtype}")
            Y = _read_only(np.ascontiguousarray(Y, dtype=np.int64))
            _check(Y.shape == (m,), f"labels must be ({m},), got {Y.shape}")
        else:
            Y = _read_only(np.ascontiguousarray(Y, dtype=dtype))
            _check(Y.shape == (n_y, m), f"Y must be ({n_y}, {m}), got {Y.shape}")
    return W1, b1, W2, b2, _read_only(X), Y


def _kind(activation: str, loss: str = "mse", output: str = "sigmoid") -> tuple:
    """(activation, loss, output) as the kernels' int codes."""
    _check(activation in _k.ACTIVATIONS, f"unknown activation {activation!r}")
    _check(loss in _k.LOSSES, f"unknown loss {loss!r}")
    _check(output in _k.OUTPUTS, f"unknown output {output!r}")
    return _k.ACTIVATIONS[activation], _k.LOSSES[loss], _k.OUTPUTS[output]


_INT_MAX = 2**31 - 1  # BLAS takes leading dimensions as C ints


def _plan(W1: np.ndarray, W2: np.ndarray, X: np.ndarray, of=None) -> tuple[int, int, int]:
    """(blk, wide, n_chunk) for the kernels: kernels.config.plan (or ``of``, e.g.
    config.forward_plan for prediction, whose blocks balance the threads as no sum runs
    across samples), narrow when X's rows are too long for BLAS's int leading dimension."""
    return plan_for(W1.shape[1], W1.shape[0], W2.shape[0], X.dtype.itemsize, X.shape[1], of)


def plan_for(n_x: int, n_h: int, n_y: int, itemsize: int, m: int, of=None) -> tuple[int, int, int]:
    """_plan from the sizes alone (a distributed run's data is not in this process)."""
    if m > _INT_MAX:
        return _k.config.narrow_plan(m)
    return (of or _k.config.plan)(n_x, n_h, n_y, itemsize, m)


_NO_LIMIT = contextlib.nullcontext()


def _blas_threads(plan: tuple[int, int]):
    """BLAS at one thread while a wide kernel runs (``_blas_threads.one_blas_thread``:
    the kernels call BLAS from every one of their own threads); nothing for the loops
    of narrow ones. A context manager."""
    return one_blas_thread() if plan[1] else _NO_LIMIT


def _scratch(W1: np.ndarray, W2: np.ndarray, plan) -> tuple[np.ndarray, np.ndarray]:
    """(grad, partials) float64 for loss_and_grads: O(chunks x params), never O(m)."""
    width = _k.n_params(W1.shape[1], W1.shape[0], W2.shape[0]) + 1
    return np.empty(width), np.empty((plan[2], width))


def _unpack(grad: np.ndarray, W1: np.ndarray, W2: np.ndarray) -> dict:
    n_h, n_x = W1.shape
    n_y = W2.shape[0]
    ends = np.cumsum([n_h * n_x, n_h, n_y * n_h, n_y])
    dW1, db1, dW2, db2 = np.split(grad[: ends[-1]], ends[:-1])
    return {
        "dW1": dW1.reshape(n_h, n_x),
        "db1": db1.reshape(n_h, 1),
        "dW2": dW2.reshape(n_y, n_h),
        "db2": db2.reshape(n_y, 1),
    }


def loss_and_grads(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    activation: str = "sigmoid",
    loss: str = "mse",
    output: str = "sigmoid",
    weights: np.ndarray | None = None,
) -> tuple[float, dict]:
    """Loss and gradients in one fused parallel pass over the samples.

    Parameters
    ----------
    params : dict
        "W1" (n_h, n_x), "b1" (n_h, 1), "W2" (n_y, n_h), "b2" (n_y, 1).
    X, Y : ndarray
        (n_x, m) and (n_y, m), float32 or float64 (X's dtype decides), any layout; for
        a softmax output Y may also be (m,) integer class indices.
    activation, loss, output : str
        A key of ``kernels.ACTIVATIONS`` / ``kernels.LOSSES`` / ``kernels.OUTPUTS``.
    weights : ndarray (m,), optional
        Sample weights: each sample's loss counts w_j times, divided by sum(w), not m.

    Returns
    -------
    (loss, {"dW1", "db1", "dW2", "db2"}): a Python float and float64 arrays shaped like
    the parameters (float64 even for float32 data: the sums are accumulated in float64).

    Examples
    --------
    >>> from fusedmlp import reference
    >>> rng = np.random.default_rng(0)
    >>> p = {"W1": rng.normal(size=(4, 2)), "b1": np.zeros((4, 1)),
    ...      "W2": rng.normal(size=(1, 4)), "b2": np.zeros((1, 1))}
    >>> X, Y = rng.normal(size=(2, 100)), (rng.random((1, 100)) > 0.5) * 1.0
    >>> L, g = loss_and_grads(p, X, Y)
    >>> bool(np.isclose(L, reference.loss_and_grads(p, X, Y)[0], rtol=1e-12))
    True
    """
    kind = _kind(activation, loss, output)
    W1, b1, W2, b2, X, Y = _prepare(params, X, Y)
    plan = _plan(W1, W2, X)
    grad, partials = _scratch(W1, W2, plan)
    wt = _weights(weights, X)
    kernel = _pick(_k.loss_and_grads, _k.loss_and_grads_serial)
    with _LOCK, _blas_threads(plan):
        total = kernel(grad, partials, W1, b1, W2, b2, X, Y, wt, kind, plan)
    return float(total), _unpack(grad, W1, W2)


def _weights(weights, X: np.ndarray) -> np.ndarray:
    """The kernels' weights argument: (0,) for none, else (m,) C-contiguous in X's dtype
    (the kernels read it unchecked: its length is checked here)."""
    if weights is None:
        return np.empty(0, X.dtype)
    wt = np.ascontiguousarray(weights, dtype=X.dtype)
    _check(
        wt.shape == (X.shape[1],),
        f"weights must be one per sample, shape ({X.shape[1]},), got {wt.shape}",
    )
    return wt


def predict_proba(
    params: dict, X: np.ndarray, activation: str = "sigmoid", output: str = "sigmoid"
) -> np.ndarray:
    """A2 = o(W2 g(W1 X + b1) + b2), shape (n_y, m), in X's dtype (parallel kernel); o the
    output: sigmoid, softmax or identity.

    >>> p = {"W1": np.ones((3, 2)), "b1": np.zeros((3, 1)),
    ...      "W2": np.zeros((1, 3)), "b2": np.zeros((1, 1))}
    >>> predict_proba(p, np.zeros((2, 5)))
    array([[0.5, 0.5, 0.5, 0.5, 0.5]])
    """
    return predictor(params, X, activation, output)()  # prepared for this one call


def predictor(params: dict, X: np.ndarray, activation: str = "sigmoid", output: str = "sigmoid"):
    """``predict_proba(params, X, activation, output)`` prepared once for many calls on
    the same X while the parameters change in place (early stopping scores its held-out
    samples after every epoch): ``run() -> A2`` (n_y, m), a buffer that the next call
    overwrites. Each call reads params' arrays afresh; only where they are the arrays
    the kernels take (C-contiguous, writable, X's dtype, as ``epoch_runner`` leaves
    them) and the same objects as at the last call is their preparation skipped
    (measured, 13 samples of 13-64-3, relu and softmax, float64: 7.6 us a call against
    predict_proba's 15.6).

    >>> p = {"W1": np.ones((3, 2)), "b1": np.zeros((3, 1)),
    ...      "W2": np.zeros((1, 3)), "b2": np.zeros((1, 1))}
    >>> run = predictor(p, np.zeros((2, 5)))
    >>> p["b2"] += 1.0  # seen by the next call
    >>> bool(np.allclose(run(), 1 / (1 + np.exp(-1.0))))
    True
    """
    kind = _kind(activation, output=output)

    def prepare(given: tuple) -> tuple:
        """(given, or None where they needed converting; kernel arguments; A2; plan)."""
        W1, b1, W2, b2, Xp, _ = _prepare(params, X)
        own = all(a is b for a, b in zip(given, (W1, b1, W2, b2), strict=True))
        A2 = np.empty((W2.shape[0], Xp.shape[1]), Xp.dtype)
        plan = _plan(W1, W2, Xp, _k.config.forward_plan)
        return (given if own else None), (W1, b1, W2, b2, Xp), A2, plan

    ready = [None, None, None, None]  # as prepare returns them

    def run() -> np.ndarray:
        given = (params["W1"], params["b1"], params["W2"], params["b2"])
        if ready[0] is None or any(a is not b for a, b in zip(given, ready[0], strict=True)):
            ready[:] = prepare(given)
        (W1, b1, W2, b2, Xp), A2, plan = ready[1:]
        kernel, turn = _by_size(_k.forward, _k.forward_serial, W1, W2, Xp)
        with turn, _blas_threads(plan):
            kernel(A2, W1, b1, W2, b2, Xp, kind, plan)
        return A2

    return run


def accuracy(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    activation: str = "sigmoid",
    output: str = "sigmoid",
) -> tuple[float, int]:
    """(fraction right, entries where A2 is NaN), fused: no A2 array is made. Sigmoid:
    entries where A2 > 1/2 agrees with Y > 1/2; softmax: samples whose argmax is the
    class index in Y (m,).

    >>> p = {"W1": np.ones((3, 2)), "b1": np.zeros((3, 1)),
    ...      "W2": np.ones((1, 3)), "b2": np.zeros((1, 1))}
    >>> accuracy(p, np.ones((2, 4)), np.array([[1.0, 1.0, 0.0, 1.0]]))
    (0.75, 0)
    """
    kind = _kind(activation, output=output)
    _check((output == "softmax") == (np.ndim(Y) == 1), "softmax takes class indices (m,)")
    W1, b1, W2, b2, X, Y = _prepare(params, X, Y)
    plan = _plan(W1, W2, X, _k.config.forward_plan)
    counts = np.empty((plan[2], 2), np.int64)
    kernel, turn = _by_size(_k.count_correct, _k.count_correct_serial, W1, W2, X)
    with turn, _blas_threads(plan):
        right, nan = kernel(counts, W1, b1, W2, b2, X, Y, kind, plan)
    return int(right) / Y.size, int(nan)


def sigmoid_yardstick(params: dict, X: np.ndarray) -> float:
    """Time-only kernel: the network's n_h + n_y sigmoids per sample and nothing else.

    Its run time is the floor an epoch of the sigmoid network can approach; returns the
    sum of the sigmoids (a number with no meaning).
    """
    W1, b1, W2, b2, X, _ = _prepare(params, X)
    partials = np.empty((_k.config.narrow_plan(X.shape[1])[2], 1))
    with _LOCK:  # a timing tool: no serial twin
        return float(_k.sigmoid_yardstick(partials, W1, b1, W2, b2, X))


def __getattr__(name: str):
    # the training runners live in _compiled_train (which imports this module); these
    # names keep ``_compiled.train_epochs`` and ``_compiled.epoch_runner`` working
    if name in ("epoch_runner", "train_epochs"):
        from . import _compiled_train

        return getattr(_compiled_train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
