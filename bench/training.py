"""What bench/test_optim.py times: the optimizers, mini-batch epochs, and the time to an
accuracy on digits against scikit-learn's MLPClassifier. Plain functions returning a
``run()`` closure, as in workloads.py; tests/test_bench_smoke.py runs each once small.

- ``make_optimizer_epochs``: ``per_call`` epochs of one optimizer through
  ``_compiled.epoch_runner`` (the trainer's own path), full batch, the planar 2-4-1
  network; every run starts again from the same parameters and a fresh state, so each
  does the same work.
- ``make_digits_epochs``: epochs at the digits shape (64-64-10, relu, softmax, Adam, the
  cross-entropy), full batch or in mini-batches of 200, on random data of that shape.
- ``digits``, ``epochs_to``, ``make_fusedmlp_fit``, ``make_sklearn_fit``: scikit-learn's
  bundled digits (1797 samples, pixels / 16, a stratified 70/30 split), the number of
  epochs each trainer needs to reach a test accuracy, and a run of that many epochs.
- ``make_products_floor``: the matrix products of such a run alone, on two threads
  that never wait for each other: the floor under any trainer's time on this machine.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import workloads as W

import fusedmlp
from fusedmlp import _compiled
from fusedmlp._optstate import OptState
from fusedmlp.kernels.blas import mm, mm_nt, mm_tn
from fusedmlp.kernels.config import jit
from fusedmlp.settings import Settings

LR = {"gd": 0.2, "momentum": 0.02, "nesterov": 0.02, "adam": 0.001}
DIGITS = dict(activation="relu", output="softmax", optimizer="adam", lr=0.001, alpha=1e-4)
BATCH = 200


def make_optimizer_epochs(m: int, optimizer: str, per_call: int, dtype=np.float64):
    """run() -> the first loss: per_call epochs of ``optimizer`` on planar(m), 2-4-1."""
    X, Y = W.make_data(m, dtype)
    start = W.make_params(dtype)
    settings = Settings.make({"optimizer": optimizer, "lr": LR[optimizer]})
    return _afresh(start, settings, per_call, X, Y, W.ACT, W.LOSS)


def _afresh(start: dict, settings: Settings, per_call: int, X, Y, *kind, **options):
    """run() -> the first loss: per_call epochs through _compiled.epoch_runner, each run
    from the parameters ``start`` and a fresh optimizer state, so each does the same work."""
    p = W.copy_params(start)
    state = OptState(settings, p)
    fresh = state.arrays()
    run_k = _compiled.epoch_runner(p, X, Y, *kind, state=state, **options)
    losses = np.zeros(per_call)

    def run():
        for k in W.NAMES:
            p[k][...] = start[k]
        state.restore(fresh)
        done, status = run_k(per_call, losses)
        if done != per_call or status != 0:
            raise RuntimeError(f"stopped at epoch {done} with status {status}")
        return float(losses[0])

    return run


def digits_shaped(m: int = 1797, dtype=np.float64):
    """(X (64, m), labels (m,), params 64-64-10): random data of the digits' shape."""
    rng = np.random.default_rng(64)
    X = rng.random((64, m)).astype(dtype)
    y = rng.integers(0, 10, m)
    return X, y, glorot(64, 64, 10, seed=0, dtype=dtype)


def glorot(n_x: int, n_h: int, n_y: int, seed: int, dtype=np.float64) -> dict:
    """scikit-learn's MLP initialisation: weights uniform in +-sqrt(6 / (fan_in +
    fan_out)) (relu), and so are the biases; used for both trainers of the comparison."""
    rng = np.random.default_rng(seed)

    def layer(fan_in, fan_out):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        W_ = rng.uniform(-bound, bound, (fan_out, fan_in))
        b = rng.uniform(-bound, bound, (fan_out, 1))
        return W_.astype(dtype), b.astype(dtype)

    W1, b1 = layer(n_x, n_h)
    W2, b2 = layer(n_h, n_y)
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def make_digits_epochs(batch: int | None, per_call: int, m: int = 1797, dtype=np.float64):
    """run() -> the first loss: per_call epochs at the digits shape, Adam, full batch
    (batch None) or mini-batches, from the same parameters and a fresh state each run."""
    X, y, start = digits_shaped(m, dtype)
    settings = Settings.make({**DIGITS, "batch_size": batch, "seed": 0})
    return _afresh(start, settings, per_call, X, y, "relu", "cross_entropy",
                   output="softmax", batch_size=batch)  # fmt: skip


# ---------------------------------------------------------------------------
# time to an accuracy on the real digits


def digits(seed: int = 0, dtype=np.float64):
    """(X_train, y_train, X_test, y_test), samples in rows as scikit-learn takes them, X
    in dtype (both trainers then compute in it: scikit-learn keeps float32 too)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    parts = train_test_split(
        (X / 16.0).astype(dtype), y, test_size=0.3, random_state=seed, stratify=y
    )
    X_train, X_test, y_train, y_test = parts
    return X_train, y_train, X_test, y_test


def _sklearn_model(epochs: int, seed: int):
    from sklearn.neural_network import MLPClassifier

    # the settings fusedmlp runs with; tol=0 and a patience beyond max_iter, so that fit
    # runs exactly ``epochs`` epochs
    return MLPClassifier(
        hidden_layer_sizes=(64,), activation="relu", solver="adam", alpha=1e-4,
        batch_size=BATCH, learning_rate_init=0.001, max_iter=epochs, tol=0.0,
        n_iter_no_change=epochs + 1, random_state=seed,
    )  # fmt: skip


def make_sklearn_fit(data, epochs: int, seed: int = 0):
    """run() -> test accuracy after MLPClassifier.fit of ``epochs`` epochs."""
    from sklearn.exceptions import ConvergenceWarning

    Xtr, ytr, Xte, yte = data

    def run():
        model = _sklearn_model(epochs, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xtr, ytr)
        return float(model.score(Xte, yte))

    return run


def make_fusedmlp_fit(data, epochs: int, seed: int = 0):
    """run() -> test accuracy after fusedmlp.train of ``epochs`` epochs (same settings)."""
    Xtr, ytr, Xte, yte = data
    X, Xt = np.ascontiguousarray(Xtr.T), np.ascontiguousarray(Xte.T)
    init = glorot(64, 64, 10, seed, X.dtype)

    def run():
        res = fusedmlp.train(
            X, ytr, init=init, epochs=epochs, batch_size=BATCH, seed=seed, **DIGITS
        )
        return float(res.score(Xt, yte))

    return run


def epochs_to(make_fit, data, target: float, start: int = 1, limit: int = 2000) -> int:
    """The fewest epochs (searched by doubling, then bisection) after which a fresh run of
    that many epochs reaches ``target`` test accuracy. A run is a fresh training, as the
    timed one is, so no per-epoch evaluation enters the count."""
    lo, hi = 0, start
    while make_fit(data, hi)() < target:
        lo, hi = hi, 2 * hi
        if hi > limit:
            raise RuntimeError(f"{target} not reached in {limit} epochs")
    while hi - lo > 1:  # accuracy is not quite monotone in epochs: hi always reaches it
        mid = (lo + hi) // 2
        if make_fit(data, mid)() >= target:
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------
# the floor: a run's matrix products alone


def make_products_floor(data, epochs: int, threads: int = 2):
    """run() -> epochs: the matrix products of ``epochs`` epochs at the digits shape
    (64-64-10, batches of BATCH; per batch W1 X, W2 A1, D2 A1^T, W2^T D2, D1 X^T, the
    five the wide kernels call, through the same BLAS entry point), and nothing else:
    the samples split evenly over ``threads`` Python threads that run without waiting
    for each other (each its share of every batch, in nogil compiled code, BLAS at one
    thread). No trainer on this machine can run those epochs faster with that many
    threads, so sklearn's time over this is the most any could be faster."""
    from fusedmlp._blas_threads import one_blas_thread

    X = np.ascontiguousarray(data[0].T)
    p = glorot(64, 64, 10, 0, X.dtype)
    share = -(-BATCH // threads)  # each thread's samples of a batch
    parts = [np.ascontiguousarray(X[:, t::threads]) for t in range(threads)]

    def work(Xt):
        n_h, n_y = 64, 10
        scratch = [np.zeros(s, X.dtype) for s in ((n_h, share), (n_y, share), (n_h, share))]
        grads = np.zeros((n_h, 64), X.dtype), np.zeros((n_y, n_h), X.dtype)
        _products(*scratch, *grads, p["W1"], p["W2"], Xt, share, epochs)

    def run():
        with one_blas_thread():
            pool = [threading.Thread(target=work, args=(Xt,)) for Xt in parts]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        return epochs

    return run


@jit(nogil=True)
def _products(A1, D2, P, G1, G2, W1, W2, X, share, epochs):
    for _ in range(epochs):
        for j0 in range(0, X.shape[1], share):
            L = min(share, X.shape[1] - j0)
            Xb, A, D, Pb = X[:, j0 : j0 + L], A1[:, :L], D2[:, :L], P[:, :L]
            mm(A, W1, Xb, 0.0)
            mm(D, W2, A, 0.0)
            mm_nt(G2, D, A, 1.0)
            mm_tn(Pb, W2, D, 0.0)
            mm_nt(G1, Pb, Xb, 1.0)
