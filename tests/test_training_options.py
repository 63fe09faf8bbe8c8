"""The training options of ``fusedmlp.train`` end to end: outputs, optimizers, L2,
schedules, mini-batches, validation and resume.

Three yardsticks, from the most to the least independent:

- ``by_hand`` below: the issue's formulas (momentum, Nesterov, Adam, the L2 gradient
  alpha W / m_b on the weights only, invscaling and the adaptive rule) written out again
  here over ``reference.loss_and_grads`` with alpha = 0, the mini-batches drawn here from
  ``default_rng([seed, epoch]).permutation(m)``;
- the NumPy backend (``backend="numpy"``) against the compiled one, over hypothesis
  cases of every output x loss x activation x optimizer x dtype;
- the run itself: resumed runs against uninterrupted ones, bit for bit.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fusedmlp
from fusedmlp import datasets, reference
from fusedmlp._optstate import LR, T

NAMES = ("W1", "b1", "W2", "b2")
PAIRS = [
    ("sigmoid", "mse"),
    ("sigmoid", "cross_entropy"),
    ("softmax", "cross_entropy"),
    ("identity", "mse"),
]
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")
SCHEDULES = ("constant", "invscaling", "adaptive")
# rates small enough that no hypothesis case diverges within a few epochs
SAFE_LR = {"gd": 0.1, "momentum": 0.02, "nesterov": 0.02, "adam": 0.01}


def one_hot(Y, n_y):
    return np.eye(n_y)[:, Y] if Y.ndim == 1 else np.asarray(Y, np.float64)


def same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in NAMES)


def by_hand(
    init, X, Y, epochs, *, activation="sigmoid", output="sigmoid", loss="mse",
    optimizer="gd", lr=0.2, momentum=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8,
    alpha=0.0, lr_schedule="constant", power_t=0.5, tol=1e-4, patience=10,
    batch_size=None, seed=0, new_lr=None,
):  # fmt: skip
    """The issue's training loop, in float64: params, losses, the rate of every epoch,
    the parameters after every epoch and the epoch the adaptive rule stopped at.
    ``new_lr`` = (epoch, lr): from that epoch on, lr is the initial rate and the
    current one (a resumed run given a new lr)."""
    p = {k: np.array(v, np.float64) for k, v in init.items()}
    n_y, m = p["W2"].shape[0], X.shape[1]
    X, Y = np.asarray(X, np.float64), one_hot(Y, n_y)
    v = {k: np.zeros_like(p[k]) for k in NAMES}  # momentum's v, Adam's m1
    m2 = {k: np.zeros_like(p[k]) for k in NAMES}
    t, rate, lr0, best, count = 0, lr, lr, math.inf, 0
    losses, rates, after, stop = [], [], [], None
    for e in range(epochs):
        if new_lr is not None and e == new_lr[0]:
            rate = lr0 = new_lr[1]
        if batch_size is None or batch_size >= m:
            batches = [slice(None)]
        else:
            order = np.random.default_rng([seed, e]).permutation(m)
            batches = [order[s : s + batch_size] for s in range(0, m, batch_size)]
        total = 0.0
        for idx in batches:
            Xb, Yb = X[:, idx], Y[:, idx]
            mb = Xb.shape[1]
            L, d = reference.loss_and_grads(p, Xb, Yb, activation, loss, output)
            g = {k: d["d" + k] for k in NAMES}
            for k in ("W1", "W2"):  # L2 on the weights only, biases unpenalised
                g[k] = g[k] + alpha / mb * p[k]
            L += alpha / (2 * mb) * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
            total += L * mb
            t += 1
            for k in NAMES:
                if optimizer == "gd":
                    p[k] = p[k] - rate * g[k]
                elif optimizer == "momentum":
                    v[k] = momentum * v[k] - rate * g[k]
                    p[k] = p[k] + v[k]
                elif optimizer == "nesterov":
                    v[k] = momentum * v[k] - rate * g[k]
                    p[k] = p[k] + momentum * v[k] - rate * g[k]
                else:
                    v[k] = beta1 * v[k] + (1 - beta1) * g[k]
                    m2[k] = beta2 * m2[k] + (1 - beta2) * g[k] ** 2
                    lr_t = rate * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                    p[k] = p[k] - lr_t * v[k] / (np.sqrt(m2[k]) + epsilon)
        losses.append(total / m)
        rates.append(rate)
        after.append({k: a.copy() for k, a in p.items()})
        if lr_schedule == "invscaling":  # epoch e + 1 runs after (e + 1) m samples seen
            rate = lr0 / ((e + 1) * m + 1) ** power_t
        elif lr_schedule == "adaptive":
            count = count + 1 if losses[-1] > best - tol else 0
            best = min(best, losses[-1])
            if count >= patience:
                if rate / 5 < 1e-6:
                    stop = e
                    break
                rate, count = rate / 5, 0
    return SimpleNamespace(
        params=p, losses=np.array(losses), rates=rates, after=after, stop=stop, t=t
    )


def assert_params_close(got, want, rtol, what=""):
    """Each array within rtol of the largest entry of its reference (entries that are
    near 0 by cancellation carry the rounding of the large terms they came from)."""
    for k in NAMES:
        scale = float(np.abs(want[k]).max()) + 1e-12
        err = float(np.abs(np.asarray(got[k], np.float64) - want[k]).max()) / scale
        assert err <= rtol, (what, k, err)


# ---------------------------------------------------------------------------
# 1. kernels vs reference, every output x loss x activation x optimizer x dtype

# Both backends run the same epochs on the same float32 or float64 data, init, batches
# and schedule. float64: only the order of the sums (chunked, vectorised, fused
# multiply-adds) and the kernels' own exp differ, a few ulps per operation, grown by a
# handful of epochs to ~5e-14 (measured over 576 cases); 1e-10 leaves room. float32: the
# reference sums its float32 products in float32 while the kernels accumulate in float64,
# so each loss and gradient differs by up to ~m * 2^-24 relative (m <= 300: ~2e-5), and
# each update rounds the parameters to float32 (6e-8); measured at most 4e-6 over five
# epochs, so 1e-4.
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


@st.composite
def cases(draw):
    wide = draw(st.booleans())  # wide networks take the BLAS path (kernels/wide.py)
    m = draw(st.sampled_from([1, 5, 64, 300]))
    schedule = draw(st.sampled_from(SCHEDULES))
    return {
        "n_x": draw(st.integers(5, 9) if wide else st.integers(1, 4)),
        "n_h": draw(st.integers(8, 12) if wide else st.integers(1, 6)),
        "n_y": draw(st.integers(1, 4)),
        "m": m,
        "epochs": draw(st.integers(1, 5)),
        "batch_size": draw(st.one_of(st.none(), st.integers(1, m + 3))),
        "alpha": draw(st.sampled_from([0.0, 0.01, 0.5])),
        "schedule": schedule,
        "power_t": draw(st.sampled_from([0.25, 0.5])) if schedule == "invscaling" else None,
        "patience": draw(st.integers(1, 3)),  # the adaptive rule acts within a few epochs
        "labels": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _problem(case, output, dtype):
    """X, Y, init of the case: softmax targets as class indices or one-hot columns."""
    rng = np.random.default_rng(case["seed"])
    n_x, n_h, m = case["n_x"], case["n_h"], case["m"]
    n_y = case["n_y"] + (output == "softmax")  # softmax needs 2 classes at least
    X = rng.normal(size=(n_x, m)).astype(dtype)
    if output == "softmax":
        y = rng.integers(0, n_y, m)
        Y = y if case["labels"] else np.eye(n_y, dtype=dtype)[:, y]
    elif output == "sigmoid":
        Y = (rng.random((n_y, m)) < 0.5).astype(dtype)
    else:
        Y = rng.normal(size=(n_y, m)).astype(dtype)
    init = {
        "W1": rng.normal(size=(n_h, n_x)) / np.sqrt(n_x),
        "b1": rng.normal(size=(n_h, 1)) * 0.1,
        "W2": rng.normal(size=(n_y, n_h)) / np.sqrt(n_h),
        "b2": rng.normal(size=(n_y, 1)) * 0.1,
    }
    return X, Y, init


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output, loss", PAIRS)
@settings(max_examples=4, deadline=None, derandomize=True)
@given(case=cases())
def test_kernels_match_the_reference(output, loss, activation, optimizer, dtype, case):
    X, Y, init = _problem(case, output, dtype)
    kw = dict(
        init=init, epochs=case["epochs"], activation=activation, output=output, loss=loss,
        optimizer=optimizer, lr=SAFE_LR[optimizer], alpha=case["alpha"],
        lr_schedule=case["schedule"], power_t=case["power_t"], patience=case["patience"],
        batch_size=case["batch_size"], seed=case["seed"],
    )  # fmt: skip
    fast = fusedmlp.train(X, Y, backend="numba", **kw)
    ref = fusedmlp.train(X, Y, backend="numpy", **kw)
    rtol = RTOL[dtype]
    assert fast.epochs == ref.epochs and fast.stop_epoch == ref.stop_epoch
    assert fast.dtype == ref.dtype == dtype
    np.testing.assert_allclose(fast.losses, ref.losses, rtol=rtol, atol=rtol * 1e-3)
    assert_params_close(fast.params, ref.params, rtol)
    # the optimizer's state: the same count of updates, rate and moments
    assert fast.state["clock"][T] == ref.state["clock"][T]
    np.testing.assert_allclose(fast.state["clock"][LR], ref.state["clock"][LR], rtol=1e-14)
    moments = ref.state["moments"]
    scale = np.abs(moments).max(axis=1, keepdims=True) + 1e-12
    assert (np.abs(fast.state["moments"] - moments) <= rtol * scale).all()


# ---------------------------------------------------------------------------
# 2. optimizer trajectories against the formulas


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("batch_size", [None, 32])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_trajectories_follow_the_formulas(optimizer, schedule, batch_size, backend):
    X, Y = datasets.planar(m=120)
    init = fusedmlp.init_params(2, 5, 1, seed=3)
    lr = {"gd": 0.5, "momentum": 0.05, "nesterov": 0.05, "adam": 0.01}[optimizer]
    hyper = {"momentum": 0.8} if optimizer in ("momentum", "nesterov") else {}
    if optimizer == "adam":
        hyper = {"beta1": 0.85, "beta2": 0.99, "epsilon": 1e-7}
    sched = {"power_t": 0.3} if schedule == "invscaling" else {}
    if schedule == "adaptive":  # stalls within 20 epochs: divides the rate, even stops
        sched = {"patience": 2}
        lr = lr / 20 if optimizer == "adam" else lr
    common = dict(activation="tanh", loss="cross_entropy", optimizer=optimizer, lr=lr,
                  alpha=0.05, lr_schedule=schedule, batch_size=batch_size, seed=7,
                  **hyper, **sched)  # fmt: skip
    res = fusedmlp.train(X, Y, init=init, epochs=20, backend=backend, **common)
    want = by_hand(init, X, Y, 20, **common)
    assert res.epochs == len(want.losses)
    assert res.stop_epoch == want.stop
    np.testing.assert_allclose(res.losses, want.losses, rtol=1e-10)
    assert_params_close(res.params, want.params, 1e-10)
    assert res.state["clock"][T] == want.t  # one update per batch
    if schedule == "adaptive":  # the case must exercise the rule
        assert min(want.rates) < lr


def test_l2_penalises_the_weights_only(planar):
    """With a huge alpha the weights shrink by (1 - lr alpha / m) per gd epoch on top of
    the loss gradient, the biases not at all: compared with alpha = 0 over one epoch."""
    X, Y = planar
    init = fusedmlp.init_params(2, 4, 1, seed=2)
    lr, alpha, m = 0.2, 40.0, X.shape[1]
    plain = fusedmlp.train(X, Y, init=init, epochs=1, lr=lr)
    l2 = fusedmlp.train(X, Y, init=init, epochs=1, lr=lr, alpha=alpha)
    for k in ("W1", "W2"):
        np.testing.assert_allclose(
            l2.params[k], plain.params[k] - lr * alpha / m * init[k], rtol=1e-12, atol=1e-15
        )
    for k in ("b1", "b2"):
        np.testing.assert_array_equal(l2.params[k], plain.params[k])
    extra = alpha / (2 * m) * (np.sum(init["W1"] ** 2) + np.sum(init["W2"] ** 2))
    assert l2.losses[0] == pytest.approx(plain.losses[0] + extra, rel=1e-13)


# ---------------------------------------------------------------------------
# 3. mini-batches: the compiled path and the reference fed the same batches


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_minibatches_of_class_indices_match_a_loop_fed_the_same_batches(
    spirals, optimizer, backend
):
    X, y = spirals
    bs, seed = 37, 11  # 150 = 4 x 37 + 2: a last batch of 2
    init = fusedmlp.init_params(2, 8, 3, seed=seed)
    kw = dict(activation="relu", output="softmax", optimizer=optimizer, lr=0.01,
              alpha=0.1, batch_size=bs, seed=seed)  # fmt: skip
    res = fusedmlp.train(X, y, init=init, epochs=6, backend=backend, **kw)
    want = by_hand(init, X, y, 6, loss="cross_entropy", **kw)
    assert want.t == 6 * 5  # five batches an epoch
    np.testing.assert_allclose(res.losses, want.losses, rtol=1e-10)
    assert_params_close(res.params, want.params, 1e-10)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_batch_size_at_least_m_is_the_full_batch_bit_for_bit(spirals, backend):
    X, y = spirals
    m = X.shape[1]
    kw = dict(output="softmax", optimizer="nesterov", hidden=6, seed=4, alpha=0.01)
    full = fusedmlp.train(X, y, epochs=15, backend=backend, **kw)
    for bs in (m, m + 1, 10 * m):
        res = fusedmlp.train(X, y, epochs=15, backend=backend, batch_size=bs, **kw)
        assert same(res.params, full.params), bs
        np.testing.assert_array_equal(res.losses, full.losses)
    init = fusedmlp.init_params(2, 6, 3, seed=4)
    want = by_hand(init, X, y, 15, output="softmax", loss="cross_entropy",
                   optimizer="nesterov", lr=0.02, alpha=0.01)  # fmt: skip
    np.testing.assert_allclose(full.losses, want.losses, rtol=1e-10)


def test_compiled_and_reference_minibatches_agree_to_rounding(spirals):
    """One-hot columns and class indices, float64: the two backends' mini-batch runs
    differ only in the order of their sums."""
    X, y = spirals
    for Y in (y, np.eye(3)[:, y]):
        kw = dict(output="softmax", optimizer="adam", lr=0.01, hidden=5, seed=9,
                  batch_size=40, alpha=0.2, lr_schedule="invscaling", power_t=0.1)  # fmt: skip
        a = fusedmlp.train(X, Y, epochs=10, backend="numba", **kw)
        b = fusedmlp.train(X, Y, epochs=10, backend="numpy", **kw)
        np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)
        assert_params_close(a.params, b.params, 1e-12)


# ---------------------------------------------------------------------------
# 4. resume, bit for bit


def _resume_kw(optimizer, schedule, batch_size):
    lr = {"gd": 0.5, "momentum": 0.05, "nesterov": 0.05, "adam": 0.01}[optimizer]
    kw = dict(activation="tanh", loss="cross_entropy", optimizer=optimizer, lr=lr,
              alpha=0.01, lr_schedule=schedule, batch_size=batch_size, seed=3)  # fmt: skip
    if schedule == "adaptive":
        kw["patience"] = 200  # reaches its floor (if at all) after epoch 1000
    return kw


@pytest.mark.parametrize("batch_size", [None, 64])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_resume_is_bit_identical(planar, tmp_path, optimizer, schedule, batch_size):
    X, Y = planar
    kw = _resume_kw(optimizer, schedule, batch_size)
    whole = fusedmlp.train(X, Y, epochs=3000, **kw)
    # a stop inside the first 1000 epochs is the next test's case
    assert whole.stop_epoch is None or whole.stop_epoch >= 1000
    first = fusedmlp.train(X, Y, epochs=1000, **kw)
    rest = fusedmlp.train(X, Y, epochs=2000, resume=first)
    path = fusedmlp.save(tmp_path / "first.npz", first)
    loaded = fusedmlp.train(X, Y, epochs=2000, resume=fusedmlp.load(path))
    for res in (rest, loaded):
        assert res.epochs == whole.epochs and res.stop_epoch == whole.stop_epoch
        assert same(res.params, whole.params)
        np.testing.assert_array_equal(res.losses, whole.losses)
        np.testing.assert_array_equal(res.state["moments"], whole.state["moments"])
        np.testing.assert_array_equal(res.state["clock"], whole.state["clock"])
        assert res.settings == whole.settings


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_resume_after_the_adaptive_floor_equals_one_run(planar, backend):
    X, Y = planar
    kw = dict(seed=1, lr=1e-4, lr_schedule="adaptive", patience=2, backend=backend)
    whole = fusedmlp.train(X, Y, epochs=30, **kw)
    first = fusedmlp.train(X, Y, epochs=20, **kw)
    assert whole.stop_epoch == first.stop_epoch == 6
    rest = fusedmlp.train(X, Y, epochs=10, resume=first, backend=backend)
    assert rest.epochs == whole.epochs and same(rest.params, whole.params)


def test_resume_refuses_another_output_or_optimizer(planar, tmp_path):
    X, Y = planar
    first = fusedmlp.train(X, Y, epochs=3, seed=2, optimizer="momentum")
    saved = fusedmlp.load(fusedmlp.save(tmp_path / "first.npz", first))
    for resume in (first, saved):
        with pytest.raises(ValueError, match="output='identity' but the resumed run used 'sigm"):
            fusedmlp.train(X, Y, epochs=3, resume=resume, output="identity")
        with pytest.raises(ValueError, match="optimizer='adam' but the resumed run used 'mom"):
            fusedmlp.train(X, Y, epochs=3, resume=resume, optimizer="adam")
        with pytest.raises(ValueError, match="loss='cross_entropy' but the resumed run used"):
            fusedmlp.train(X, Y, epochs=3, resume=resume, loss="cross_entropy")


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
@pytest.mark.parametrize("schedule", ["constant", "adaptive"])
def test_resume_with_a_new_lr_changes_the_rate(planar, optimizer, schedule):
    X, Y = planar
    init = fusedmlp.init_params(2, 4, 1, seed=2)
    lr, new = {"gd": (0.2, 0.05), "adam": (0.01, 0.002)}[optimizer]
    kw = dict(optimizer=optimizer, lr_schedule=schedule, patience=3)
    first = fusedmlp.train(X, Y, init=init, epochs=10, lr=lr, **kw)
    rest = fusedmlp.train(X, Y, epochs=10, resume=first, lr=new)
    assert rest.lr == new
    want = by_hand(init, X, Y, 20, lr=lr, new_lr=(10, new), **kw)
    np.testing.assert_allclose(rest.losses, want.losses, rtol=1e-10)
    assert_params_close(rest.params, want.params, 1e-10)
    if schedule == "constant":
        assert rest.state["clock"][LR] == new
    else:  # the new rate replaced one the rule had divided already, and is divided in turn
        assert min(want.rates[:10]) < lr and min(want.rates[10:]) < new


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_resume_with_a_new_lr_under_invscaling_keeps_the_schedule(planar, backend):
    X, Y = planar
    init = fusedmlp.init_params(2, 4, 1, seed=2)
    kw = dict(lr_schedule="invscaling", power_t=0.5, backend=backend)
    first = fusedmlp.train(X, Y, init=init, epochs=10, lr=0.2, **kw)
    rest = fusedmlp.train(X, Y, epochs=2, resume=first, lr=0.1, backend=backend)
    want = by_hand(init, X, Y, 10, lr=0.2, lr_schedule="invscaling")
    # epoch e runs at 0.1 / (e m + 1) ** 0.5 from epoch 10 on, epoch 10 included
    p = dict(want.params)
    for e in (10, 11):
        L, g = reference.loss_and_grads(p, X, Y)
        p = {k: p[k] - 0.1 / (e * X.shape[1] + 1) ** 0.5 * g["d" + k] for k in NAMES}
    assert_params_close(rest.params, p, 1e-10)
