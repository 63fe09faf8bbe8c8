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
from fusedmlp import _data, _driver, datasets, optimizers, reference
from fusedmlp._compiled_train import train_epochs
from fusedmlp._optstate import COUNT, LR, STOPPED, OptState, T
from fusedmlp.kernels import SCHEDULE_STOP
from fusedmlp.kernels import optim as koptim

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


@pytest.fixture(scope="module")
def planar():
    return datasets.planar()


@pytest.fixture(scope="module")
def spirals():
    return datasets.spirals(m=150, classes=3)


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


# ---------------------------------------------------------------------------
# 5. bad input: a clear error naming the value, before any kernel runs


@pytest.fixture
def no_kernel(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started: the input should have been refused")

    monkeypatch.setattr(_driver, "make_runner", refuse)


def _labels():
    return np.array([0, 1, 2, 1, 0, 2, 1, 0, 2, 1])


BAD = [
    # (Y, kwargs, error, words the message must hold)
    (np.array([0, 1, -1, 1, 0, 2, 1, 0, 2, 1]), {}, ValueError, "Y[2] = -1 is out of range"),
    (np.array([0, 1.5, 2, 1, 0, 2, 1, 0, 2, 1]), {}, ValueError, "Y[1] = 1.5"),
    (np.array([0, 1, 2, 1, 0, 2, 1, 0, np.nan, 1]), {}, ValueError, "Y[8] = nan"),
    (np.array(list("0121021021")), {}, TypeError, "Y must hold numbers, got dtype <U1"),
    (np.eye(3)[:, _labels()] * 0.9, {}, ValueError, "column 0 sums to 0.9"),
    (np.eye(3)[:, _labels()] + [[0.0], [0.0], [0.1]], {}, ValueError, "sums to 1.1"),
    (np.where(np.arange(10) == 3, [[1.5], [-0.5], [0.0]], np.eye(3)[:, _labels()]), {},
     ValueError, "Y[1, 3] = -0.5 < 0"),
    (_labels(), {"alpha": -0.1}, ValueError, "alpha (the L2 penalty) must be >= 0, got -0.1"),
    (_labels(), {"optimizer": "momentum", "momentum": 1.0}, ValueError,
     "momentum must be in [0, 1), got 1.0"),
    (_labels(), {"optimizer": "nesterov", "momentum": -0.1}, ValueError,
     "momentum must be in [0, 1), got -0.1"),
    (_labels(), {"optimizer": "adam", "beta1": 1.0}, ValueError,
     "beta1 must be in [0, 1), got 1.0"),
    (_labels(), {"optimizer": "adam", "beta2": -0.5}, ValueError,
     "beta2 must be in [0, 1), got -0.5"),
    (_labels(), {"optimizer": "adam", "beta2": 1.5}, ValueError,
     "beta2 must be in [0, 1), got 1.5"),
    (_labels(), {"optimizer": "adam", "epsilon": 0.0}, ValueError, "epsilon must be > 0, got 0.0"),
    (_labels(), {"optimizer": "adam", "epsilon": -1e-8}, ValueError,
     "epsilon must be > 0, got -1e-08"),
    (_labels(), {"validation_fraction": 0.0}, ValueError, "validation_fraction must be in (0, 1)"),
    (_labels(), {"validation_fraction": 1.0}, ValueError, "validation_fraction must be in (0, 1)"),
    (_labels(), {"validation_fraction": -0.2}, ValueError, "got -0.2"),
    (_labels(), {"validation_fraction": 0.01}, ValueError,
     "validation_fraction=0.01 leaves class 0 (3 samples) with 0 for validation"),
    (np.array([0, 1, 2, 1, 0, 0, 1, 0, 1, 1]), {"validation_fraction": 0.5}, ValueError,
     "leaves class 2 (1 samples) with 0 for validation and 1 for training"),
    (_labels(), {"optimizer": "adam", "momentum": 0.5}, ValueError,
     "momentum=0.5 is an option of momentum and nesterov, not of optimizer='adam'"),
    (_labels(), {"beta1": 0.8}, ValueError,
     "beta1=0.8 is an option of adam, not of optimizer='gd'"),
    (_labels(), {"optimizer": "momentum", "epsilon": 1e-6}, ValueError,
     "epsilon=1e-06 is an option of adam, not of optimizer='momentum'"),
    (_labels(), {"optimizer": "nesterov", "beta2": 0.9}, ValueError,
     "beta2=0.9 is an option of adam, not of optimizer='nesterov'"),
    (_labels(), {"power_t": 0.3}, ValueError,
     "power_t=0.3 is an option of lr_schedule='invscaling', not of 'constant'"),
    (_labels(), {"power_t": 0.3, "lr_schedule": "adaptive"}, ValueError,
     "not of 'adaptive'"),
    (_labels(), {"loss": "mse"}, ValueError, "loss='mse' does not go with output='softmax'"),
]  # fmt: skip


@pytest.mark.parametrize("Y, kwargs, exc, words", BAD)
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_bad_softmax_input_is_refused_before_training(no_kernel, Y, kwargs, exc, words, backend):
    X = np.random.default_rng(0).normal(size=(2, Y.shape[-1]))
    with pytest.raises(exc) as err:
        fusedmlp.train(X, Y, output="softmax", epochs=2, seed=0, backend=backend, **kwargs)
    assert words in str(err.value), str(err.value)


def test_bad_identity_and_sigmoid_input_is_refused_before_training(no_kernel, planar):
    X, Y = planar
    with pytest.raises(ValueError) as err:
        fusedmlp.train(X, Y, output="identity", loss="cross_entropy", epochs=2)
    assert "loss='cross_entropy' does not go with output='identity'" in str(err.value)
    # regression: no classes, but each side needs a sample
    with pytest.raises(ValueError) as err:
        fusedmlp.train(X, Y, output="identity", validation_fraction=0.001, epochs=2)
    assert "validation_fraction=0.001 of 400 samples leaves 0 for validation" in str(err.value)
    # class indices beyond the outputs of the starting network
    init = fusedmlp.init_params(2, 4, 3, seed=0)
    y = np.array([0, 1, 2, 3, 1])
    with pytest.raises(ValueError) as err:
        fusedmlp.train(X[:, :5], y, init=init, output="softmax", epochs=2)
    assert "Y[3] = 3 is out of range: expected 0..2 (the network has 3 outputs)" in str(err.value)


def test_whole_float_labels_are_class_indices(spirals):
    X, y = spirals
    a = fusedmlp.train(X, y, output="softmax", epochs=5, seed=1)
    b = fusedmlp.train(X, y.astype(np.float64), output="softmax", epochs=5, seed=1)
    assert same(a.params, b.params)


# ---------------------------------------------------------------------------
# 6. validation


def _expected_stop(scores, tol, patience):
    """The first epoch after ``patience`` epochs in a row without beating the best score
    by more than tol; None when there is none."""
    best, count = -math.inf, 0
    for e, s in enumerate(scores):
        count = 0 if s > best + tol else count + 1
        best = max(best, s)
        if count >= patience:
            return e
    return None


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_validation_returns_the_best_epoch_of_the_held_out_split(planar, backend):
    X, Y = planar
    f, seed = 0.25, 6
    init = fusedmlp.init_params(2, 5, 1, seed=seed)
    res = fusedmlp.train(X, Y, init=init, epochs=150, seed=seed, lr=1.0, activation="tanh",
                         validation_fraction=f, patience=1000, backend=backend)  # fmt: skip
    assert len(res.val_losses) == len(res.val_scores) == res.epochs == 150
    assert res.stop_epoch is None
    assert res.best_epoch == int(np.argmax(res.val_scores))  # the first of the best
    assert res.best_epoch < res.epochs - 1  # else this test shows nothing
    Xt, Yt, Xv, Yv = _data.split(X, Y, f, seed, "sigmoid")
    assert Xv.shape[1] == 100 and Xt.shape[1] == 300
    # trained on the other samples alone: the same trajectory as by hand
    want = by_hand(init, Xt, Yt, 150, lr=1.0, activation="tanh")
    np.testing.assert_allclose(res.losses, want.losses, rtol=1e-10)
    assert_params_close(res.params, want.after[res.best_epoch], 1e-10)
    # the score and loss on the held-out samples, recomputed
    A2 = reference.predict_proba(res.params, Xv, "tanh")
    assert res.val_scores[res.best_epoch] == np.mean((A2 > 0.5) == (Yv > 0.5))
    L = reference.loss_and_grads(res.params, Xv, Yv, "tanh")[0]
    assert res.val_losses[res.best_epoch] == pytest.approx(L, rel=1e-10)
    for e in (0, 77, 149):
        A2 = reference.predict_proba(want.after[e], Xv, "tanh")
        assert res.val_scores[e] == np.mean((A2 > 0.5) == (Yv > 0.5))


@pytest.mark.parametrize("tol", [None, 0.0, 0.02])
def test_validation_stops_after_patience_epochs_without_improvement(spirals, tol):
    X, y = spirals
    res = fusedmlp.train(X, y, output="softmax", optimizer="adam", lr=0.05, hidden=8,
                         epochs=2000, seed=2, validation_fraction=0.2, patience=8,
                         tol=tol)  # fmt: skip
    stop = _expected_stop(res.val_scores, 1e-4 if tol is None else tol, 8)
    assert stop is not None and res.stop_epoch == stop
    assert res.epochs == len(res.val_scores) == len(res.val_losses) == stop + 1
    assert res.best_epoch == int(np.argmax(res.val_scores))
    _, _, Xv, yv = _data.split(X, y, 0.2, 2, "softmax")
    got = np.mean(reference.predict_proba(res.params, Xv, "sigmoid", "softmax").argmax(0) == yv)
    assert got == res.val_scores[res.best_epoch]


def test_stratified_split_keeps_every_class_share():
    y = np.repeat([0, 1, 2, 3], [40, 25, 12, 3])
    X = np.vstack([np.arange(80.0), np.zeros(80)])
    Xt, yt, Xv, yv = _data.split(X, y, 1 / 3, 5, "softmax")
    for c, n in zip(range(4), [40, 25, 12, 3], strict=True):
        assert np.sum(yv == c) == round(n / 3) and np.sum(yt == c) == n - round(n / 3)
    # a partition of the samples, each keeping its label
    cols = np.concatenate([Xt[0], Xv[0]]).astype(int)
    assert sorted(cols) == list(range(80))
    np.testing.assert_array_equal(y[Xv[0].astype(int)], yv)
    # one-hot columns split as their labels, the draw repeatable from the seed
    _, Yt, _, Yv = _data.split(X, np.eye(4)[:, y], 1 / 3, 5, "softmax")
    np.testing.assert_array_equal(Yv.argmax(0), yv)
    assert np.array_equal(_data.split(X, y, 1 / 3, 5, "softmax")[3], yv)
    assert not np.array_equal(_data.split(X, y, 1 / 3, 6, "softmax")[2], Xv)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_validation_score_of_identity_is_r2(backend):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(1, 200))
    Y = np.sin(X) + 0.1 * rng.normal(size=(1, 200))
    res = fusedmlp.train(X, Y, output="identity", activation="tanh", hidden=8, epochs=300,
                         optimizer="adam", lr=0.02, seed=3, validation_fraction=0.3,
                         patience=1000, backend=backend)  # fmt: skip
    _, _, Xv, Yv = _data.split(X, Y, 0.3, 3, "identity")
    assert Xv.shape[1] == 60
    A2 = reference.predict_proba(res.params, Xv, "tanh", "identity")
    r2 = 1 - np.sum((Yv - A2) ** 2) / np.sum((Yv - Yv.mean()) ** 2)
    assert res.val_scores[res.best_epoch] == pytest.approx(r2, rel=1e-10)
    assert res.val_scores[res.best_epoch] > 0.8  # a fit, not a constant
    assert res.val_losses[res.best_epoch] == pytest.approx(np.mean((A2 - Yv) ** 2), rel=1e-10)


# ---------------------------------------------------------------------------
# 7. schedules: the kernel's epoch_end, the reference's AdaptiveLR, the clock


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    losses=st.lists(
        st.one_of(st.floats(0.0, 2.0), st.sampled_from([1.0, 0.5, math.nan, math.inf])),
        min_size=1, max_size=60,
    ),
    lr=st.sampled_from([1e-3, 3e-5, 1e-5, 5e-6]),
    tol=st.sampled_from([0.0, 1e-4, 0.1]),
    patience=st.integers(1, 4),
)  # fmt: skip
def test_adaptive_epoch_end_matches_adaptive_lr(losses, lr, tol, patience):
    codes = np.array([0, koptim.ADAPTIVE, patience], np.int64)
    hyper = np.array([0.9, 0.9, 0.999, 1e-8, 0.0, lr, 0.5, tol])
    clock = np.array([0.0, lr, math.inf, 0.0, 0.0])
    sched = optimizers.AdaptiveLR(lr, tol=tol, patience=patience)
    for e, loss in enumerate(losses):
        stop = koptim.epoch_end(loss, e, 10, codes, hyper, clock)
        want = sched.update(loss)
        assert stop == (want is None), e
        if stop:
            break
        # FASTMATH's arcp lets the kernel divide by 5 as a product by 0.2: an ulp apart
        assert clock[LR] == pytest.approx(want, rel=1e-15) and clock[COUNT] == sched.count, e


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_adaptive_rate_sequence_and_stop_epoch(planar, backend):
    X, Y = planar
    kw = dict(seed=1, lr=1e-4, lr_schedule="adaptive", patience=2, backend=backend)
    whole = fusedmlp.train(X, Y, epochs=100, **kw)
    sched = optimizers.AdaptiveLR(1e-4, patience=2)
    rates = [sched.update(loss) for loss in whole.losses]
    # epoch 0 improves on inf; 1, 2 fail: 2e-5; 3, 4 fail: 4e-6; 5, 6 fail: below the floor
    assert rates[:6] == pytest.approx([1e-4, 1e-4, 2e-5, 2e-5, 4e-6, 4e-6], rel=1e-15)
    assert rates[6] is None
    assert whole.stop_epoch == 6 and whole.epochs == 7
    # one epoch a call: the clock after each holds the rate of the next
    res, seen = fusedmlp.train(X, Y, epochs=1, **kw), []
    while res.stop_epoch is None:
        seen.append(float(res.state["clock"][LR]))
        res = fusedmlp.train(X, Y, epochs=1, resume=res, backend=backend)
    assert seen == pytest.approx(rates[:6], rel=1e-15)  # see the test above
    assert res.stop_epoch == 6 and same(res.params, whole.params)
    assert res.state["clock"][STOPPED] == 1
    # underneath, the runner's status SCHEDULE_STOP after epoch 6 is what set stop_epoch
    if backend == "numba":
        p = fusedmlp.init_params(2, 4, 1, seed=1)
        state = OptState(whole.settings, p)
        losses = np.empty(100)
        assert train_epochs(p, X, Y, "sigmoid", "mse", None, 100, losses, state=state) == (
            7,
            SCHEDULE_STOP,
        )
        np.testing.assert_array_equal(losses[:7], whole.losses)
        assert same(p, whole.params)


def test_adaptive_with_a_tol_divides_the_rate_instead_of_stopping(planar):
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=300, seed=1, lr_schedule="adaptive", tol=1e-3,
                         patience=3)  # fmt: skip
    # only the schedule's floor may end the run, and not before the rate was divided
    assert res.stop_epoch is None or res.state["clock"][STOPPED] == 1


@pytest.mark.parametrize("batch_size", [None, 50])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_invscaling_rate_in_the_clock(planar, backend, batch_size):
    X, Y = planar
    kw = dict(seed=2, lr=0.3, lr_schedule="invscaling", power_t=0.4, backend=backend,
              batch_size=batch_size)  # fmt: skip
    for n in (1, 7, 40):
        res = fusedmlp.train(X, Y, epochs=n, **kw)
        assert res.state["clock"][LR] == pytest.approx(0.3 / (n * 400 + 1) ** 0.4, rel=1e-15)
    # with validation, m counts the training samples only
    res = fusedmlp.train(X, Y, epochs=7, validation_fraction=0.25, **kw)
    assert res.state["clock"][LR] == pytest.approx(0.3 / (7 * 300 + 1) ** 0.4, rel=1e-15)


# ---------------------------------------------------------------------------
# 8. predict, accuracy and score for the new outputs, and from a saved result


def test_softmax_predict_accuracy_score(spirals, tmp_path):
    X, y = spirals
    res = fusedmlp.train(X, y, output="softmax", optimizer="adam", lr=0.05, hidden=10,
                         activation="relu", epochs=200, seed=3)  # fmt: skip
    A2 = reference.predict_proba(res.params, X, "relu", "softmax")
    pred = res.predict(X)
    assert pred.dtype == np.int64 and pred.shape == (150,)
    np.testing.assert_array_equal(pred, A2.argmax(axis=0))
    acc = np.mean(pred == y)
    assert acc > 0.6  # trained, so the check below is not of a constant guess
    kw = dict(activation="relu", output="softmax")
    assert fusedmlp.accuracy(res.params, X, y, **kw) == acc
    assert fusedmlp.accuracy(res.params, X, np.eye(3)[:, y], **kw) == acc
    assert fusedmlp.accuracy(res.params, X, y, backend="numpy", **kw) == acc
    assert fusedmlp.score(res.params, X, y, **kw) == acc
    assert res.score(X, y) == acc
    np.testing.assert_allclose(res.predict_proba(X).sum(axis=0), 1.0, rtol=1e-12)
    back = fusedmlp.load(fusedmlp.save(tmp_path / "softmax.npz", res))
    assert back.output == "softmax" and back.activation == "relu"
    np.testing.assert_array_equal(back.predict(X), pred)
    assert back.score(X, y) == acc


def test_identity_predict_and_score(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 120))
    Y = np.vstack([X[0] * X[1], np.tanh(X[0])]) + 0.05 * rng.normal(size=(2, 120))
    res = fusedmlp.train(X, Y, output="identity", activation="tanh", hidden=12, epochs=300,
                         optimizer="adam", lr=0.03, seed=4)  # fmt: skip
    A2 = reference.predict_proba(res.params, X, "tanh", "identity")
    pred = res.predict(X)
    assert pred.shape == (2, 120) and pred.dtype == np.float64
    np.testing.assert_allclose(pred, A2, rtol=1e-12, atol=1e-12)
    # R^2 by hand, averaged over the two outputs
    r2 = np.mean(1 - ((Y - A2) ** 2).sum(1) / ((Y - Y.mean(1, keepdims=True)) ** 2).sum(1))
    assert r2 > 0.5
    assert fusedmlp.score(res.params, X, Y, activation="tanh", output="identity") == (
        pytest.approx(r2, rel=1e-12)
    )
    assert res.score(X, Y) == pytest.approx(r2, rel=1e-12)
    with pytest.raises(ValueError, match="use fusedmlp.score"):
        fusedmlp.accuracy(res.params, X, Y, activation="tanh", output="identity")
    back = fusedmlp.load(fusedmlp.save(tmp_path / "identity.npz", res))
    assert back.output == "identity" and back.optimizer == "adam"
    np.testing.assert_array_equal(back.predict(X), pred)
    assert back.score(X, Y) == res.score(X, Y)
