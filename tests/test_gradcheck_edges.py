"""gradcheck at its edges: gradients that are exactly zero, relu kinks, the ends of the
eps range, complex and unusable gradients, and the noise floor, which excuses rounding
noise but never a wrong gradient. (The classic mistakes are test_diagnostics.py's; the
``problem`` fixture is in conftest.py.)"""

import warnings

import numpy as np
import pytest
from test_diagnostics import user_backprop

import fusedmlp
from fusedmlp import gradcheck, init_params

# ---------------------------------------------------------------------------
# zero gradients, relu kinks, eps range, complex gradients

ACTIVATIONS = ["sigmoid", "tanh", "relu"]
LOSSES = ["mse", "cross_entropy"]
ALL_PASS = {"W1": "pass", "b1": "pass", "W2": "pass", "b2": "pass"}


def ref_grads(activation, loss, change=None):
    """The reference gradients, optionally changed by change(grads) (a planted bug)."""

    def fn(p, X, Y):
        g = fusedmlp.reference.loss_and_grads(p, X, Y, activation, loss)[1]
        if change is not None:
            change(g)
        return g

    return fn


def verdicts(r):
    return {row.name: row.verdict for row in r.rows}


@pytest.fixture
def small():
    # balanced labels: with A2 = 0.5 everywhere (W2 = 0, b2 = 0) db2 is exactly 0, while its
    # finite difference is rounding noise; column 2 is an all-zero sample
    X = np.random.RandomState(1).randn(2, 6)
    X[:, 2] = 0
    return X, np.array([[0, 1, 0, 1, 1, 0]])


def point(kind):
    """A 2-3-1 network: an ordinary point, or one where some gradients are exactly 0."""
    p = init_params(2, 3, 1, seed=0, scale=1.0)
    if kind == "all":  # every weight 0
        p = init_params(2, 3, 1, scale=0.0)
    elif kind == "W2":  # only the output layer 0: dW1 and db1 are exactly 0
        p["W2"][...] = 0
    elif kind == "b1":  # b1 = 0 with an all-zero sample: Z1 = 0 there, a relu kink
        p["b1"][...] = 0
    elif kind == "W1b1":  # Z1 = 0 everywhere
        p["W1"][...] = 0
        p["b1"][...] = 0
    return p


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("kind", ["all", "W2"])
def test_right_gradients_pass_where_they_are_zero(small, kind, activation, loss):
    X, Y = small
    p = point(kind)
    exact = fusedmlp.reference.loss_and_grads(p, X, Y, activation, loss)[1]
    assert np.all(exact["db2"] == 0) and np.all(exact["dW1"] == 0)  # the case in question
    r = gradcheck(ref_grads(activation, loss), p, X, Y, activation=activation, loss=loss)
    assert verdicts(r) == ALL_PASS, str(r)
    assert r.ok and "all gradients match" in str(r)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("kind", ["b1", "W1b1"])
def test_smooth_activations_have_no_kink(small, activation, kind):
    X, Y = small
    r = gradcheck(ref_grads(activation, "mse"), point(kind), X, Y, activation=activation)
    assert verdicts(r) == ALL_PASS, str(r)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(
    "kind, expected",
    [
        # only b1 moves Z1 of the all-zero sample: W1's steps cross no kink
        ("b1", {"W1": "pass", "b1": "inconclusive", "W2": "pass", "b2": "pass"}),
        # A1 = 0 whatever W2 is, so dW2 is exactly 0 on both sides
        ("W1b1", {"W1": "inconclusive", "b1": "inconclusive", "W2": "pass", "b2": "pass"}),
    ],
)
def test_relu_kink_is_inconclusive_not_a_false_diagnosis(small, loss, kind, expected):
    X, Y = small
    r = gradcheck(ref_grads("relu", loss), point(kind), X, Y, activation="relu", loss=loss)
    assert verdicts(r) == expected, str(r)
    assert not r.ok
    for row in r.rows:
        assert row.passed == (row.verdict == "pass")
        if row.verdict == "inconclusive":
            assert "relu kink" in row.hint and "exactly 0" in row.hint
            assert "randn" in row.hint
            for other in ("sigmoid", "tanh", "derivative of", "output layer is right"):
                assert other not in row.hint
    lines = {line.split()[0]: line for line in str(r).splitlines()[2:6]}
    assert " inconclusive  relu kink" in lines["db1"] and " pass" in lines["dW2"]
    assert "could not be judged" in str(r) and "some gradients are wrong" not in str(r)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["all", "W2"])
def test_wrong_gradient_at_a_zero_point_is_caught(small, activation, kind):
    X, Y = small

    def plus(key, v):
        return lambda g: g.update({key: g[key] + v})

    fn = ref_grads(activation, "mse", plus("dW1", 1e-3))  # the right dW1 is exactly 0
    r = gradcheck(fn, point(kind), X, Y, activation=activation)
    assert verdicts(r) == {**ALL_PASS, "W1": "FAIL"}, str(r)
    assert "derivative of" not in r["W1"].hint  # no pattern: every mistake gives 0 here
    # the floor is the noise of the differences (~1e-9), not a blanket tolerance
    fn = ref_grads(activation, "mse", plus("db2", 1e-7))
    r = gradcheck(fn, point(kind), X, Y, activation=activation)
    assert verdicts(r) == {**ALL_PASS, "b2": "FAIL"}, str(r)
    assert 0 < r["b2"].floor < 1e-8


def test_wrong_gradient_at_a_relu_kink_is_caught(small):
    X, Y = small
    p = point("b1")

    def bugs(g):
        g["dW2"] = 2 * g["dW2"]  # dW2 has no kink: judged as anywhere
        g["db1"] = g["db1"] + 1.0  # wrong beyond anything the kink can explain

    r = gradcheck(ref_grads("relu", "mse", bugs), p, X, Y, activation="relu")
    assert verdicts(r) == {"W1": "pass", "b1": "FAIL", "W2": "FAIL", "b2": "pass"}, str(r)
    assert "constant factor 2" in r["W2"].hint


@pytest.mark.parametrize("eps", [1e-8, 1e-2])
def test_eps_at_the_ends_of_its_range(problem, eps):
    p, X, Y = problem
    assert gradcheck(user_backprop, p, X[:, :10], Y[:, :10], eps=eps).ok
    r = gradcheck(lambda p, X, Y: user_backprop(p, X, Y, bug="abs"), p, X, Y, eps=eps)
    assert r["W2"].hint == "|A2 - Y| used where A2 - Y belongs (abs loses the sign)"


def test_complex_gradient_fails_without_warning(small):
    X, Y = small
    p = point("ordinary")

    def complexify(g):
        g["dW1"] = g["dW1"].astype(np.complex128)  # imaginary part 0: still complex maths
        g["db1"] = g["db1"] + 1e-3j

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = gradcheck(ref_grads("sigmoid", "mse", complexify), p, X, Y)
    assert verdicts(r) == {**ALL_PASS, "W1": "FAIL", "b1": "FAIL"}, str(r)
    for k in ("W1", "b1"):
        assert r[k].hint.startswith(f"d{k} has complex dtype complex128")
        assert "gradients are real" in r[k].hint
    assert "imaginary part is all 0" in r["W1"].hint
    assert "imaginary part" not in r["b1"].hint


def test_unusable_gradient_values_give_hints_not_crashes(small):
    X, Y = small
    p = point("ordinary")

    def garble(g):
        g["dW1"] = [[1.0, 2.0], [3.0]]  # ragged
        g["db1"] = np.array([["1"], ["2"], ["3"]])  # text of the right shape
        g["dW2"] = np.array([[1 + 0j, 2, 3]], dtype=object)  # complex inside an object array
        g["db2"] = np.array([[None]])  # object, not a number

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = gradcheck(ref_grads("sigmoid", "mse", garble), p, X, Y)
    assert verdicts(r) == {k: "FAIL" for k in ALL_PASS}
    assert "dW1 is not a numeric array" in r["W1"].hint
    assert "db1 holds <U1 (text or bytes)" in r["b1"].hint
    assert "complex" in r["W2"].hint and "gradients are real" in r["W2"].hint
    assert "db2 is an object array holding NoneType entries" in r["b2"].hint


# ---------------------------------------------------------------------------
# the floor excuses noise, never a wrong gradient (a 5% error at any eps and scale)

EPS_GRID = [1e-2, 1e-3, 1e-5, 1e-8]


def scaled(factor):
    return lambda g: g.update({k: factor * v for k, v in g.items()})


def noisy(level, seed=0):
    """Add to each gradient a random vector of norm level * ||g||."""

    def change(g):
        rng = np.random.RandomState(seed)
        for k, v in g.items():
            z = rng.randn(*v.shape)
            g[k] = v + level * np.linalg.norm(v) / np.linalg.norm(z) * z

    return change


@pytest.fixture(scope="module")
def unbalanced():
    # the flower's inputs (up to ~4: sharp curvature at eps = 1e-2), with 7 of 10 labels 1:
    # db2 is far from 0 even with tiny weights, so every gradient stands well above the
    # differences' rounding at every eps in the grid
    X = fusedmlp.datasets.planar(m=10, seed=3)[0]
    return X, np.array([[1, 1, 0, 1, 1, 1, 0, 1, 1, 0]])


@pytest.mark.parametrize("eps", EPS_GRID)
@pytest.mark.parametrize("scale", [0.01, 1.0, 5.0])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_five_percent_wrong_fails_at_every_eps(unbalanced, activation, scale, eps):
    X, Y = unbalanced
    p = init_params(2, 3, 1, seed=0, scale=scale)
    for loss in LOSSES:
        kw = {"activation": activation, "loss": loss, "eps": eps}
        r = gradcheck(ref_grads(activation, loss), p, X, Y, **kw)
        assert verdicts(r) == ALL_PASS, f"{loss}\n{r}"
        exact = fusedmlp.reference.loss_and_grads(p, X, Y, activation, loss)[1]
        for change in (scaled(1.05), noisy(0.05)):
            r = gradcheck(ref_grads(activation, loss, change), p, X, Y, **kw)
            assert verdicts(r) == {k: "FAIL" for k in ALL_PASS}, f"{loss}\n{r}"
            for row in r.rows:  # the cap: at most 1% of the gradient, whatever eps
                assert row.floor <= 0.0101 * np.abs(exact["d" + row.name]).max(), str(r)


@pytest.mark.parametrize("eps", EPS_GRID)
def test_the_reported_case_dW1_five_percent_off_fails(eps):
    # the reviewer's case: tanh, only dW1 wrong, at the eps where the old floor
    # (100 x the h^2 truncation of g_fd(1e-2)) was ~5e-3 and passed it
    X, Y = fusedmlp.datasets.planar(m=10, seed=3)
    p = init_params(2, 3, 1, seed=0, scale=1.0)
    for loss in LOSSES:
        fn = ref_grads("tanh", loss, lambda g: g.update(dW1=1.05 * g["dW1"]))
        r = gradcheck(fn, p, X, Y, activation="tanh", loss=loss, eps=eps)
        assert verdicts(r) == {**ALL_PASS, "W1": "FAIL"}, str(r)
        assert "output layer is right" in r["W1"].hint


def test_large_eps_is_extrapolated_not_excused(unbalanced):
    # at eps = 1e-2 g_fd(eps) is off by ~1e-4 relative; its Richardson extrapolation
    # meets the right gradient within tol, so no floor is needed at all
    X, Y = unbalanced
    p = init_params(2, 3, 1, seed=0, scale=1.0)
    r = gradcheck(ref_grads("tanh", "mse"), p, X, Y, activation="tanh", eps=1e-2)
    assert r.ok and all(row.rel_error <= 1e-6 for row in r.rows), str(r)
    assert all(np.isnan(row.floor) for row in r.rows)


def test_differences_too_coarse_for_a_tiny_gradient_are_inconclusive():
    # balanced labels and weights ~1e-4: dW2 is ~6e-6, and at eps = 1e-8 the differences
    # are good only to ~5e-7: over 1% of it, so a 5% error can be neither passed nor failed
    X, Y = fusedmlp.datasets.planar(m=10, seed=3)
    p = init_params(2, 3, 1, seed=0, scale=1e-4)
    r = gradcheck(ref_grads("sigmoid", "mse"), p, X, Y, eps=1e-8)
    assert verdicts(r) == ALL_PASS, str(r)  # the right gradient still passes
    wrong = ref_grads("sigmoid", "mse", scaled(1.05))
    r = gradcheck(wrong, p, X, Y, eps=1e-8)
    row = r["W2"]
    assert row.verdict == "inconclusive", str(r)
    assert row.hint.startswith("finite differences too coarse: at eps=1e-08")
    assert "mostly rounding" in row.hint and "a larger eps" in row.hint
    assert "relu" not in row.hint
    assert row.floor < row.abs_error  # not passed: the cap held
    assert "could not be judged" in str(r) and "some gradients are wrong" not in str(r)
    # at the default eps the same mistake is plainly a FAIL
    assert gradcheck(wrong, p, X, Y)["W2"].verdict == "FAIL"
    # where truncation dominates instead, the hint says to go the other way
    hint = fusedmlp.diagnostics._coarse_hint("W1", 1e-2, 1e-12, 1e-6, 1e-5)
    assert "mostly truncation" in hint and "a smaller eps" in hint


@pytest.mark.parametrize("eps", [1e-2, 1e-8])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["all", "W2"])
def test_zero_gradients_pass_at_the_ends_of_the_eps_range(small, kind, activation, eps):
    X, Y = small
    for loss in LOSSES:
        fn = ref_grads(activation, loss)
        r = gradcheck(fn, point(kind), X, Y, activation=activation, loss=loss, eps=eps)
        assert verdicts(r) == ALL_PASS, str(r)


@pytest.mark.parametrize("eps", [1e-3, 1e-5])
def test_right_gradient_at_a_saturated_mse_fit_passes(eps):
    # weights x20: A2 rounds to within 1e-12 of Y, and L ~ 1e-23 is computed from A2 ~ 1,
    # so the loss's rounding is ~1e11 times u |L|: the floor's rounding term must count it
    rng = np.random.RandomState(1)
    X, Y = rng.randn(2, 5), rng.randint(0, 2, (1, 5))
    p = init_params(2, 3, 1, seed=1, scale=20.0)
    r = gradcheck(ref_grads("tanh", "mse"), p, X, Y, activation="tanh", eps=eps)
    assert verdicts(r) == ALL_PASS, str(r)


def test_right_gradient_next_to_a_harmless_relu_kink_passes():
    # unit 2 lies within eps = 1e-2 of its kink for one sample, where the loss hardly
    # depends on it: the entry is still extrapolated, and the kink's bound is ~1e-19
    rng = np.random.RandomState(1)
    X, Y = rng.randn(2, 40), rng.randint(0, 2, (1, 40))
    p = init_params(2, 3, 1, seed=1, scale=5.0)
    r = gradcheck(ref_grads("relu", "mse"), p, X, Y, activation="relu", eps=1e-2)
    assert verdicts(r) == ALL_PASS, str(r)
