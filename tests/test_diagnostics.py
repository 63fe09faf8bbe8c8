"""gradcheck catches the classic back-propagation mistakes; explain gets the shapes right."""

import numpy as np
import pytest

import fusedmlp
from fusedmlp import explain, gradcheck, init_params


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def user_backprop(p, X, Y, *, bug=None):
    """A hand-written 2-layer backprop in the exercise's style, with optional bugs."""
    m = X.shape[1]
    A1 = sigmoid(p["W1"] @ X + p["b1"])
    A2 = sigmoid(p["W2"] @ A1 + p["b2"])
    err = np.abs(A2 - Y) if bug == "abs" else A2 - Y
    scale = 2.0 if bug == "no_1_over_m" else 2.0 / m
    dZ2 = scale * err * A2 * (1 - A2)
    dW2 = A1 @ dZ2.T if bug == "order" else dZ2 @ A1.T
    db2 = dZ2.sum(axis=1, keepdims=True)
    if bug == "matmul":
        dZ1 = (p["W2"].T @ dZ2) @ (A1 * (1 - A1)).T  # @ where * belongs
    else:
        dZ1 = (p["W2"].T @ dZ2) * A1 * (1 - A1)
    dW1 = dZ1 @ X if bug == "untransposed" else dZ1 @ X.T
    db1 = np.sum(dZ1) if bug == "sum_all" else dZ1.sum(axis=1, keepdims=True)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def check(bug, p, X, Y):
    return gradcheck(lambda p, X, Y: user_backprop(p, X, Y, bug=bug), p, X, Y)


def test_correct_backprop_passes(problem):
    r = check(None, *problem)
    assert r.ok, str(r)
    assert all(row.rel_error < 1e-8 for row in r.rows)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_reference_passes(problem, activation, loss):
    p, X, Y = problem
    r = gradcheck(
        lambda p, X, Y: fusedmlp.reference.loss_and_grads(p, X, Y, activation, loss)[1],
        p,
        X,
        Y,
        activation=activation,
        loss=loss,
    )
    assert r.ok, str(r)


def test_missing_one_over_m(problem):
    r = check("no_1_over_m", *problem)
    assert not r.ok
    for k in ("W1", "b1", "W2", "b2"):
        assert not r[k].passed
        assert "40x too large" in r[k].hint and "1/m" in r[k].hint


def test_abs_of_error(problem):
    r = check("abs", *problem)
    assert not r.ok
    assert not r["W2"].passed
    # named exactly: a misdiagnosis as a sign flip must fail
    assert (
        r["b2"].hint == r["W2"].hint == "|A2 - Y| used where A2 - Y belongs (abs loses the sign)"
    )


def test_wrong_order_gives_shape_message(problem):
    r = check("order", *problem)
    assert not r["W2"].passed
    assert "dW2 has shape (4, 1) but W2 is (1, 4)" in r["W2"].hint
    assert "transposed" in r["W2"].hint
    assert r["W1"].passed  # the other gradients are still right


def test_untransposed_X(problem):
    p, X, Y = problem
    r = check("untransposed", p, X, Y)
    # dZ1 (4, 40) @ X (2, 40) cannot multiply: the function raises, and the report says
    # what and where, and what it usually means
    assert not r.ok
    assert "ValueError" in r.error and "matrix product" in r.error
    assert "test_diagnostics.py" in r.error


def test_matmul_where_elementwise_belongs(problem):
    r = check("matmul", *problem)
    assert not r.ok
    assert "elementwise product (*)" in r.error


def test_matmul_with_m_equal_n_h_gives_wrong_values():
    # with m == n_h the wrong product goes through: only the values show the damage
    X, Y = fusedmlp.datasets.planar(m=4, seed=3)
    p = init_params(2, 4, 1, seed=0, scale=1.0)
    r = check("matmul", p, X, Y)
    assert not r.ok and not r.error
    # dZ1 is (4, 4) in place of (4, m); dW1 = dZ1 @ X.T is (4, 4) @ (4, 2) -> (4, 2), the
    # right shape with wrong values, and db1 sums the wrong thing
    assert not r["W1"].passed and not r["b1"].passed
    assert r["W2"].passed
    assert "output layer is right" in r["W1"].hint


def test_sum_over_everything(problem):
    r = check("sum_all", *problem)
    assert "db1 has shape () but b1 is (4, 1)" in r["b1"].hint
    assert "keepdims" in r["b1"].hint


def test_square_transpose_detected():
    # with n_x == n_h a transposed dW1 has the right shape but wrong values
    rng = np.random.RandomState(0)
    X, Y = rng.randn(3, 20), rng.randint(0, 2, (1, 20))
    p = init_params(3, 3, 1, seed=1, scale=1.0)

    def transposed(p, X, Y):
        g = fusedmlp.reference.loss_and_grads(p, X, Y)[1]
        g["dW1"] = g["dW1"].T
        return g

    r = gradcheck(transposed, p, X, Y)
    assert not r["W1"].passed and "transpose" in r["W1"].hint


def test_report_prints_table_and_accepts_param_keys(problem):
    p, X, Y = problem
    r = gradcheck(lambda p, X, Y: {k[1:]: v for k, v in user_backprop(p, X, Y).items()}, p, X, Y)
    assert r.ok
    text = str(r)
    assert text.splitlines()[0].split()[:3] == ["gradient", "expected", "given"]
    assert "all gradients match" in text


def test_missing_key_and_bad_return(problem):
    p, X, Y = problem
    r = gradcheck(lambda p, X, Y: {"dW1": p["W1"]}, p, X, Y)
    assert not r.ok and 'no "db2"' in r["b2"].hint
    r = gradcheck(lambda p, X, Y: [1, 2], p, X, Y)
    assert not r.ok and "must return a dict" in r.error


def test_user_function_cannot_change_the_check(problem):
    p, X, Y = problem
    before = {k: v.copy() for k, v in p.items()}

    def vandal(p, X, Y):
        g = user_backprop(p, X, Y)
        p["W1"][...] = 0
        X[...] = 0
        return g

    assert gradcheck(vandal, p, X, Y).ok
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])


def test_gradcheck_validates_inputs(problem):
    p, X, Y = problem
    with pytest.raises(ValueError, match="X.T"):
        gradcheck(user_backprop, p, X.T, Y)
    with pytest.raises(ValueError, match="unknown activation"):
        gradcheck(user_backprop, p, X, Y, activation="softmax")


def test_explain_shapes_and_operations():
    e = explain(3, 5, 2, 7, activation="tanh", loss="cross_entropy")
    rows = {r[0]: r for r in e.rows}
    expected = {
        "X": "(3, 7)",
        "Z1": "(5, 7)",
        "A1": "(5, 7)",
        "Z2": "(2, 7)",
        "A2": "(2, 7)",
        "delta2": "(2, 7)",
        "dW2": "(2, 5)",
        "db2": "(2, 1)",
        "dA1": "(5, 7)",
        "delta1": "(5, 7)",
        "dW1": "(5, 3)",
        "db1": "(5, 1)",
    }
    for term, shape in expected.items():
        assert rows[term][2] == shape, term
    assert rows["delta1"][3] == "elementwise" and "1 - A1**2" in rows["delta1"][1]
    assert rows["dW1"][3].startswith("matrix product (5, 7) @ (7, 3)")
    assert rows["delta2"][1] == "(A2 - Y) / m"
    assert "(2/m)" in [r for r in explain().rows if r[0] == "delta2"][0][1]
    assert "tanh" in str(e) and "dW1" in str(e)
    with pytest.raises(ValueError, match="n_h"):
        explain(2, 0, 1, 10)


@pytest.mark.parametrize(
    "mistake, expected",
    [
        (lambda c, Y, m: (2 / m) * (c["A2"] - Y), "A2 * (1 - A2) is missing"),
        (lambda c, Y, m: (2 / m) * (Y - c["A2"]) * c["A2"] * (1 - c["A2"]), "sign flipped"),
        (lambda c, Y, m: (c["A2"] - Y) * c["A2"] * (1 - c["A2"]) / m, "factor 2"),
    ],
    ids=["no-sigmoid-derivative", "Y-minus-A2", "no-factor-2"],
)
def test_output_delta_mistakes_are_named(problem, mistake, expected):
    p, X, Y = problem

    def fn(p, X, Y):
        c = fusedmlp.reference.forward(p, X)
        d2 = mistake(c, Y, X.shape[1])
        return fusedmlp.reference.backward(p, X, Y, c, delta2=d2)

    r = gradcheck(fn, p, X, Y)
    assert not r.ok
    assert expected in r["W2"].hint and expected in r["b2"].hint


def test_wrong_activation_derivative_is_named(problem):
    p, X, Y = problem

    def fn(p, X, Y):  # a sigmoid network back-propagated with tanh' = 1 - A1**2
        c = fusedmlp.reference.forward(p, X, "sigmoid")
        return fusedmlp.reference.backward(p, X, Y, c, "tanh")

    r = gradcheck(fn, p, X, Y)
    assert r["W2"].passed and r["b2"].passed
    assert "derivative of tanh" in r["W1"].hint


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"eps": 0}, ValueError, "eps must be a finite number > 0"),
        ({"eps": -1e-5}, ValueError, "eps must be a finite number > 0"),
        ({"eps": "a"}, TypeError, "eps must be a finite number > 0"),
        ({"tol": float("nan")}, ValueError, "tol must be a finite number > 0"),
        ({"eps": 1e-9}, ValueError, r"eps must be in \[1e-08, 0.01\].*default eps=1e-5"),
        ({"eps": 0.1}, ValueError, r"eps must be in \[1e-08, 0.01\].*default eps=1e-5"),
        ({"tol": 1.0}, ValueError, r"tol must be in \(0, 1\)"),
        ({"tol": 5}, ValueError, r"tol must be in \(0, 1\)"),
        ({"tol": "x"}, TypeError, "tol must be a finite number > 0"),
        ({"fn": None}, TypeError, "fn must be your gradient function"),
    ],
)
def test_gradcheck_checks_its_own_arguments(problem, kwargs, exc, words):
    p, X, Y = problem
    kw = {"fn": user_backprop, **kwargs}
    fn = kw.pop("fn")
    with pytest.raises(exc, match=words):
        gradcheck(fn, p, X, Y, **kw)
