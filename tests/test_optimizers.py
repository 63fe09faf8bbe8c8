"""The NumPy optimizers and schedules against the formulas, written out again here with
Python scalars and loops, and against values worked by hand."""

import json
import math
from dataclasses import asdict

import numpy as np
import pytest

from fusedmlp import optimizers as opt
from fusedmlp.optimizers import AdaptiveLR, new_state, scheduled_lr, step

SHAPES = {"W1": (3, 2), "b1": (3, 1), "W2": (1, 3), "b2": (1, 1)}
C = 2.0  # curvature of the tiny problem: loss sum (C/2) (P - target)^2, so g = C (P - target)
N_STEPS = 5


def tiny_problem(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}
    target = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    return params, target


def grads_of(params, target):
    return {"d" + k: C * (params[k] - target[k]) for k in SHAPES}


def copy_tree(tree):
    """A deep copy of a params or state dict (arrays copied, numbers kept)."""
    if isinstance(tree, dict):
        return {k: copy_tree(v) for k, v in tree.items()}
    return tree.copy() if isinstance(tree, np.ndarray) else tree


def assert_same_tree(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_same_tree(a[k], b[k])
        else:
            np.testing.assert_array_equal(a[k], b[k])


def scalar_trajectory(optimizer, p, target, lr, n, mu=0.9, b1=0.9, b2=0.999, eps=1e-8):
    """One parameter's values after each of n updates, from the formulas, in floats."""
    v = m1 = m2 = 0.0
    out = []
    for t in range(1, n + 1):
        g = C * (p - target)
        if optimizer == "gd":
            p = p - lr * g
        elif optimizer == "momentum":
            v = mu * v - lr * g
            p = p + v
        elif optimizer == "nesterov":
            v = mu * v - lr * g
            p = p + mu * v - lr * g
        else:  # adam
            m1 = b1 * m1 + (1 - b1) * g
            m2 = b2 * m2 + (1 - b2) * g * g
            lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            p = p - lr_t * m1 / (math.sqrt(m2) + eps)
        out.append(p)
    return out


# ---------------------------------------------------------------------------
# trajectories


@pytest.mark.parametrize("optimizer", opt.OPTIMIZERS)
def test_trajectory_matches_the_formulas(optimizer):
    params, target = tiny_problem()
    start = copy_tree(params)
    state = new_state(optimizer, params)
    lr = 0.05
    got = []
    for _ in range(N_STEPS):
        assert step(optimizer, params, grads_of(params, target), state, lr) == opt.OK
        got.append(copy_tree(params))
    for k in SHAPES:
        for idx in np.ndindex(SHAPES[k]):
            want = scalar_trajectory(optimizer, start[k][idx], target[k][idx], lr, N_STEPS)
            have = [g[k][idx] for g in got]
            np.testing.assert_allclose(have, want, rtol=1e-14, atol=0, err_msg=f"{k}{idx}")

    # and the loss went down: the signs are right
    def loss(p):
        return sum(float(np.sum((p[k] - target[k]) ** 2)) for k in SHAPES)

    assert loss(params) < 0.8 * loss(start)


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_hyperparameters_are_used(optimizer):
    params, target = tiny_problem(seed=1)
    start = copy_tree(params)
    state = new_state(optimizer, params)
    for _ in range(N_STEPS):
        step(optimizer, params, grads_of(params, target), state, 0.02, momentum=0.5)
    want = scalar_trajectory(optimizer, start["W1"][1, 0], target["W1"][1, 0], 0.02, 5, mu=0.5)
    assert params["W1"][1, 0] == pytest.approx(want[-1], rel=1e-14)


def test_adam_hyperparameters_are_used():
    params, target = tiny_problem(seed=2)
    start = copy_tree(params)
    state = new_state("adam", params)
    h = {"b1": 0.5, "b2": 0.75, "eps": 0.1}
    for _ in range(N_STEPS):
        g = grads_of(params, target)
        step("adam", params, g, state, 0.1, beta1=0.5, beta2=0.75, epsilon=0.1)
    want = scalar_trajectory("adam", start["b1"][2, 0], target["b1"][2, 0], 0.1, 5, **h)
    assert params["b1"][2, 0] == pytest.approx(want[-1], rel=1e-14)
    assert state["t"] == N_STEPS  # one t for all four arrays, counting updates


def test_nesterov_differs_from_momentum_as_the_formula_says():
    # g = 1 on every step, lr = 0.1, mu = 0.9, from P = 0:
    #   step 1: v = -0.1                   momentum P = -0.1
    #                                      nesterov P = 0.9 (-0.1) - 0.1 = -0.19
    #   step 2: v = 0.9 (-0.1) - 0.1 = -0.19
    #                                      momentum P = -0.1 - 0.19 = -0.29
    #                                      nesterov P = -0.19 + 0.9 (-0.19) - 0.1 = -0.461
    # the velocities are the same for both: only the step taken from them differs
    p = {k: {name: np.zeros(s) for name, s in SHAPES.items()} for k in ("mom", "nes")}
    s = {"mom": new_state("momentum", p["mom"]), "nes": new_state("nesterov", p["nes"])}
    g = {"d" + name: np.ones(shape) for name, shape in SHAPES.items()}
    want = {"mom": (-0.1, -0.29), "nes": (-0.19, -0.461)}
    for i in range(2):
        step("momentum", p["mom"], g, s["mom"], 0.1)
        step("nesterov", p["nes"], g, s["nes"], 0.1)
        for name in SHAPES:
            np.testing.assert_allclose(p["mom"][name], want["mom"][i], rtol=1e-15)
            np.testing.assert_allclose(p["nes"][name], want["nes"][i], rtol=1e-15)
            np.testing.assert_array_equal(s["mom"]["v"][name], s["nes"]["v"][name])
    np.testing.assert_allclose(s["mom"]["v"]["W1"], -0.19, rtol=1e-15)


def test_adam_first_step_is_lr_times_sign_of_the_gradient():
    # at t = 1: m1 = (1 - b1) g, m2 = (1 - b2) g^2, lr_t = lr sqrt(1 - b2) / (1 - b1), so
    # the step is -lr g sqrt(1 - b2) / (sqrt(1 - b2) |g| + eps) = -lr sign(g) when |g| >> eps
    params = {name: np.zeros(s) for name, s in SHAPES.items()}
    g = {
        "dW1": np.array([[3.0, -2.0], [0.25, -1e3], [7.0, -0.5]]),
        "db1": np.array([[1.0], [-1.0], [40.0]]),
        "dW2": np.array([[-6.0, 0.125, 2.0]]),
        "db2": np.array([[-9.0]]),
    }
    state = new_state("adam", params)
    assert step("adam", params, g, state, 0.01) == opt.OK
    for name in SHAPES:
        # short of lr by the relative amount eps / (sqrt(1 - b2) |g|), 2.6e-6 at |g| = 0.125
        np.testing.assert_allclose(params[name], -0.01 * np.sign(g["d" + name]), rtol=3e-6)
        np.testing.assert_allclose(state["m1"][name], 0.1 * g["d" + name], rtol=1e-15)
        np.testing.assert_allclose(state["m2"][name], 0.001 * g["d" + name] ** 2, rtol=1e-14)
    assert state["t"] == 1
    # worked: g = 3, lr 0.01: 0.01 * 3 sqrt(0.001) / (3 sqrt(0.001) + 1e-8) = 0.0099999999...
    assert params["W1"][0, 0] == pytest.approx(-0.01 / (1 + 1e-8 / (3 * math.sqrt(0.001))))
    assert abs(params["W1"][0, 0]) < 0.01  # epsilon makes it a hair smaller than lr


def test_float32_parameters_stay_float32_and_are_updated_in_place():
    params, target = tiny_problem(seed=3, dtype=np.float32)
    arrays = {k: params[k] for k in SHAPES}
    start = copy_tree(params)
    state = new_state("gd", params)
    g = grads_of(params, target)
    assert step("gd", params, g, state, 0.1) == opt.OK
    for k in SHAPES:
        assert params[k] is arrays[k] and params[k].dtype == np.float32
        # computed in float64, rounded once to float32
        want = np.float32(start[k].astype(np.float64) - 0.1 * g["d" + k])
        np.testing.assert_array_equal(params[k], want)


# ---------------------------------------------------------------------------
# all or nothing


def _after_one_step(optimizer, seed=4):
    """Parameters and a state that is not all zeros (one good step taken)."""
    params, target = tiny_problem(seed=seed)
    state = new_state(optimizer, params)
    assert step(optimizer, params, grads_of(params, target), state, 0.1) == opt.OK
    return params, target, state


@pytest.mark.parametrize("optimizer", opt.OPTIMIZERS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_changes_nothing(optimizer, bad):
    params, target, state = _after_one_step(optimizer)
    g = grads_of(params, target)
    g["db2"][0, 0] = bad  # the last array: the others must not have been touched first
    before_p, before_s = copy_tree(params), copy_tree(state)
    assert step(optimizer, params, g, state, 0.1) == opt.NONFINITE_GRADS
    assert_same_tree(params, before_p)
    assert_same_tree(state, before_s)


@pytest.mark.parametrize("optimizer", opt.OPTIMIZERS)
def test_overflowing_update_changes_nothing(optimizer):
    params, target, state = _after_one_step(optimizer)
    g = {"d" + k: np.full(s, 0.5) for k, s in SHAPES.items()}
    # one value near the float64 maximum (1.798e308), pushed up by a huge gradient: gd,
    # momentum and nesterov step by about lr |g| = 1e313 (inf already), adam by a few lr
    # (m1 / sqrt(m2) is about -3 with this g at t = 2, and lr_t about lr / 4): 1.79e308
    # plus more than 7e305 overflows
    params["W2"][0, 1] = 1.79e308
    g["dW2"][0, 1] = -1e6
    before_p, before_s = copy_tree(params), copy_tree(state)
    with np.errstate(all="raise"):  # step must not warn either: overflow is expected
        assert step(optimizer, params, g, state, 1e307) == opt.UPDATE_OVERFLOW
    assert_same_tree(params, before_p)
    assert_same_tree(state, before_s)
    # and a step that fits goes through from the untouched state
    assert step(optimizer, params, g, state, 1.0) == opt.OK


def test_overflow_is_judged_in_the_parameters_dtype():
    params = {k: np.zeros(s, dtype=np.float32) for k, s in SHAPES.items()}
    params["b1"][1, 0] = 3e38  # float32's maximum is 3.4e38
    g = {"d" + k: np.zeros(s, dtype=np.float32) for k, s in SHAPES.items()}
    g["db1"][1, 0] = -1.0
    g["dW1"][:] = 1.0
    before = copy_tree(params)
    # 3e38 + 1e38 is finite in float64, not in float32
    assert step("gd", params, g, {}, 1e38) == opt.UPDATE_OVERFLOW
    assert_same_tree(params, before)
    assert step("gd", params, g, {}, 1e37) == opt.OK
    assert params["b1"][1, 0] == np.float32(3.1e38)
    assert params["W1"][0, 0] == np.float32(-1e37)


def test_adam_second_moment_overflow_changes_nothing():
    # g = 1e200: m2 = 0.001 g^2 overflows to inf, while the step (m1 / inf = 0) would be
    # finite; an inf in m2 would freeze that parameter forever, so it counts as overflow
    params, target, state = _after_one_step("adam")
    g = grads_of(params, target)
    g["dW1"][2, 1] = 1e200
    before_p, before_s = copy_tree(params), copy_tree(state)
    assert step("adam", params, g, state, 0.1) == opt.UPDATE_OVERFLOW
    assert_same_tree(params, before_p)
    assert_same_tree(state, before_s)


def test_status_codes_equal_the_kernels():
    kernels = pytest.importorskip("fusedmlp.kernels")
    assert (opt.OK, opt.NONFINITE_GRADS, opt.UPDATE_OVERFLOW) == (
        kernels.OK,
        kernels.NONFINITE_GRADS,
        kernels.UPDATE_OVERFLOW,
    )
    assert (opt.OK, opt.NONFINITE_GRADS, opt.UPDATE_OVERFLOW) == (0, 1, 2)


def test_wrong_gradient_shape_is_refused_before_anything_changes():
    params, target, state = _after_one_step("momentum")
    g = grads_of(params, target)
    g["db1"] = g["db1"].ravel()  # (3,) instead of (3, 1): would broadcast to (3, 3)
    before_p, before_s = copy_tree(params), copy_tree(state)
    with pytest.raises(ValueError, match=r"grads\['db1'\] has shape \(3,\), but b1 .*\(3, 1\)"):
        step("momentum", params, g, state, 0.1)
    assert_same_tree(params, before_p)
    assert_same_tree(state, before_s)


def test_unknown_optimizer_names_the_choices():
    params, _ = tiny_problem()
    with pytest.raises(ValueError, match="unknown optimizer 'sgd': use one of 'gd', "):
        new_state("sgd", params)
    with pytest.raises(ValueError, match="'adam'"):
        step("Adam", params, grads_of(params, params), {}, 0.1)


@pytest.mark.parametrize("optimizer", opt.OPTIMIZERS)
def test_new_state_is_float64_zeros_of_the_shapes(optimizer):
    params, _ = tiny_problem(dtype=np.float32)
    state = new_state(optimizer, params)
    slots = {"gd": [], "momentum": ["v"], "nesterov": ["v"], "adam": ["m1", "m2"]}[optimizer]
    assert sorted(k for k in state if k != "t") == sorted(slots)
    for slot in slots:
        for k, s in SHAPES.items():
            assert state[slot][k].shape == s and state[slot][k].dtype == np.float64
            assert not state[slot][k].any()
    assert state.get("t", 0) == 0 and ("t" in state) == (optimizer == "adam")


# ---------------------------------------------------------------------------
# checkpoints


# ---------------------------------------------------------------------------
# schedules


def test_constant_schedule():
    assert [scheduled_lr("constant", 0.25, e, 100) for e in (0, 1, 50)] == [0.25] * 3


def test_invscaling_values():
    # lr0 / (epoch m + 1)^power_t: epoch 0 at lr0, then by the samples seen before the epoch
    assert scheduled_lr("invscaling", 0.3, 0, 4) == 0.3
    assert scheduled_lr("invscaling", 0.3, 1, 4) == pytest.approx(0.3 / math.sqrt(5))
    assert scheduled_lr("invscaling", 0.3, 2, 4) == pytest.approx(0.1)  # 0.3 / sqrt(9)
    assert scheduled_lr("invscaling", 1.0, 1, 9, power_t=1.0) == pytest.approx(0.1)
    assert scheduled_lr("invscaling", 2.0, 3, 5, power_t=0.25) == pytest.approx(1.0)  # 16^.25
    assert scheduled_lr("invscaling", 2.0, 3, 5, power_t=0.0) == 2.0
    assert type(scheduled_lr("invscaling", 1, 1, 3)) is float


def test_adaptive_schedule_points_to_adaptive_lr():
    with pytest.raises(ValueError, match="AdaptiveLR"):
        scheduled_lr("adaptive", 0.1, 3, 10)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        scheduled_lr("linear", 0.1, 3, 10)


# A made-up loss curve, worked by hand with tol = 0.01, patience = 3, lr0 = 1e-3.
# "fail" = the loss is not <= best - tol; best = the lowest loss so far.
CURVE = [
    # loss    count after  lr after   why
    (1.00, 0, 1e-3),  # first loss beats inf
    (0.90, 0, 1e-3),  # 0.90 <= 1.00 - 0.01
    (0.895, 1, 1e-3),  # 0.895 > 0.90 - 0.01: fail, though best becomes 0.895
    (0.889, 2, 1e-3),  # 0.889 > 0.895 - 0.01: fail; best 0.889
    (0.87, 0, 1e-3),  # 0.87 <= 0.879: improvement resets the count; best 0.87
    (0.87, 1, 1e-3),
    (0.88, 2, 1e-3),
    (0.869, 0, 2e-4),  # third failure in a row: divide by 5, count back to 0; best 0.869
    (0.80, 0, 2e-4),  # best 0.80
    (math.nan, 1, 2e-4),  # NaN is a failure, and leaves best alone
    (0.80, 2, 2e-4),
    (0.795, 0, 4e-5),  # 0.795 > 0.79: third failure
    (0.795, 1, 4e-5),
    (0.795, 2, 4e-5),
    (0.795, 0, 8e-6),
    (0.5, 0, 8e-6),  # improvement
    (0.5, 1, 8e-6),
    (0.5, 2, 8e-6),
    (0.5, 0, 1.6e-6),
    (0.5, 1, 1.6e-6),
    (0.5, 2, 1.6e-6),
    (0.5, 3, None),  # 1.6e-6 / 5 = 3.2e-7 < 1e-6: stop instead
    (0.1, 3, None),  # and stay stopped
]


def test_adaptive_lr_follows_the_worked_curve():
    sched = AdaptiveLR(1e-3, tol=0.01, patience=3)
    for epoch, (loss, count, lr) in enumerate(CURVE, start=1):
        got = sched.update(loss)
        if lr is None:
            assert got is None and sched.stopped, epoch
        else:
            assert got == pytest.approx(lr, rel=1e-12), epoch
            assert not sched.stopped, epoch
        assert sched.count == count, epoch
    assert sched.best == 0.5
    assert sched.lr == pytest.approx(1.6e-6, rel=1e-12)  # never below MIN_LR
    assert opt.MIN_LR == 1e-6


def test_adaptive_lr_defaults():
    sched = AdaptiveLR(0.1)
    assert (sched.tol, sched.patience, sched.best, sched.count) == (1e-4, 10, math.inf, 0)
    # ten epochs of 1.0 after a first: nine failures keep the rate, the tenth divides it
    rates = [sched.update(1.0) for _ in range(11)]
    assert rates[:10] == [0.1] * 10 and rates[10] == pytest.approx(0.02)


@pytest.mark.parametrize("split", [0, 1, 9, 10, 15, 21])
def test_adaptive_lr_restores_exactly_from_its_numbers(split):
    # the state saved as JSON (as a checkpoint's configuration would be) mid-curve
    sched = AdaptiveLR(1e-3, tol=0.01, patience=3)
    for loss, _, _ in CURVE[:split]:
        sched.update(loss)
    saved = json.dumps(asdict(sched))  # best may be inf: JSON's Infinity
    restored = AdaptiveLR(**json.loads(saved))
    assert restored == sched
    for loss, _, _ in CURVE[split:]:
        assert restored.update(loss) == sched.update(loss)
    assert restored == sched
