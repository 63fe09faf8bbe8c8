"""The compiled update (kernels/optim.py ``update``) called directly: the optimizers'
trajectories against the formulas of tests/test_optimizers.py, and all or nothing: a
gradient that is not finite, or a new parameter (in its dtype) or moment that would not
be, changes nothing, with the reference's status codes."""

import numpy as np
import pytest
from test_optimizers import SHAPES, C, scalar_trajectory, tiny_problem

from fusedmlp import kernels
from fusedmlp.kernels import optim

NAMES = ("W1", "b1", "W2", "b2")
N_PAR = sum(int(np.prod(s)) for s in SHAPES.values())


class Kernel:
    """update's arguments for the tiny problem's parameters: one optimizer, rate lr."""

    def __init__(self, optimizer, params, lr):
        self.p = {k: params[k].copy() for k in NAMES}  # the caller's stay as they were
        dtype = self.p["W1"].dtype
        self.new, self.fresh = np.empty(N_PAR, dtype), np.empty((2, N_PAR))
        self.codes = np.array([optim.OPTIMIZERS[optimizer], optim.CONSTANT, 10], np.int64)
        self.hyper = np.array([0.9, 0.9, 0.999, 1e-8, 0.0, lr, 0.5, 1e-4])
        self.moments = np.zeros((2, N_PAR))
        self.clock = np.array([0.0, lr, np.inf, 0.0, 0.0])

    def step(self, grads):
        """One update from grads (name -> array); the status."""
        flat = np.concatenate([np.ravel(grads["d" + k]) for k in NAMES] + [[0.5]])  # + loss
        W1, b1, W2, b2 = (self.p[k] for k in NAMES)
        return optim.update(W1, b1, W2, b2, self.new, self.fresh, flat.astype(np.float64),
                            1.0, self.codes, self.hyper, self.moments, self.clock)  # fmt: skip

    def snapshot(self):
        return [a.copy() for a in (*self.p.values(), self.moments, self.clock)]


def _unchanged(kernel, before):
    for a, b in zip(kernel.snapshot(), before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer", list(optim.OPTIMIZERS))
def test_trajectory_matches_the_formulas(optimizer):
    params, target = tiny_problem()
    k = Kernel(optimizer, params, lr=0.05)
    for _ in range(5):
        assert k.step({"d" + n: C * (k.p[n] - target[n]) for n in NAMES}) == kernels.OK
    for n in NAMES:
        for i in np.ndindex(SHAPES[n]):
            want = scalar_trajectory(optimizer, params[n][i], target[n][i], 0.05, 5)[-1]
            assert k.p[n][i] == pytest.approx(want, rel=1e-12, abs=1e-14)
    assert k.clock[optim.T] == 5


@pytest.mark.parametrize("optimizer", list(optim.OPTIMIZERS))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_gradient_that_is_not_finite_changes_nothing(optimizer, bad):
    params, target = tiny_problem()
    k = Kernel(optimizer, params, lr=0.1)
    assert k.step({"d" + n: C * (k.p[n] - target[n]) for n in NAMES}) == kernels.OK
    g = {"d" + n: C * (k.p[n] - target[n]) for n in NAMES}
    g["db2"][0, 0] = bad  # the last array: the others must not have been touched first
    before = k.snapshot()
    assert k.step(g) == kernels.NONFINITE_GRADS
    _unchanged(k, before)


@pytest.mark.parametrize("optimizer", list(optim.OPTIMIZERS))
def test_an_overflowing_update_changes_nothing(optimizer):
    params, target = tiny_problem()
    k = Kernel(optimizer, params, lr=0.1)
    assert k.step({"d" + n: np.full(SHAPES[n], 0.5) for n in NAMES}) == kernels.OK
    k.p["W2"][0, 1] = 1.79e308  # as in test_optimizers: a huge step past float64's max
    g = {"d" + n: np.full(SHAPES[n], 0.5) for n in NAMES}
    g["dW2"][0, 1] = -1e6
    k.clock[optim.LR] = 1e307
    before = k.snapshot()
    assert k.step(g) == kernels.UPDATE_OVERFLOW
    _unchanged(k, before)
    k.clock[optim.LR] = 1.0
    assert k.step(g) == kernels.OK  # a step that fits goes through


def test_adam_second_moment_overflow_changes_nothing():
    params, target = tiny_problem()
    k = Kernel("adam", params, lr=0.1)
    assert k.step({"d" + n: C * (k.p[n] - target[n]) for n in NAMES}) == kernels.OK
    g = {"d" + n: C * (k.p[n] - target[n]) for n in NAMES}
    g["dW1"][2, 1] = 1e200  # m2 = 0.001 g^2 overflows, the step itself would not
    before = k.snapshot()
    assert k.step(g) == kernels.UPDATE_OVERFLOW
    _unchanged(k, before)


def test_overflow_is_judged_in_the_parameters_dtype():
    params = {n: np.zeros(s, np.float32) for n, s in SHAPES.items()}
    params["b1"][1, 0] = 3e38  # float32's maximum is 3.4e38
    g = {"d" + n: np.zeros(s) for n, s in SHAPES.items()}
    g["db1"][1, 0], g["dW1"][:] = -1.0, 1.0
    k = Kernel("gd", params, lr=1e38)
    before = k.snapshot()
    assert k.step(g) == kernels.UPDATE_OVERFLOW  # 3e38 + 1e38 is finite in float64, not in float32
    _unchanged(k, before)
    k.clock[optim.LR] = 1e37
    assert k.step(g) == kernels.OK
    assert k.p["b1"][1, 0] == np.float32(3.1e38)
