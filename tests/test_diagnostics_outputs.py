"""gradcheck and explain for the softmax, identity and exp outputs and the L2 penalty alpha.

Every gradient here is judged by gradcheck's central differences of the reference loss
(reference.cost, L2 term included), an independent computation from the back-propagation
under test; the wrong gradients come from a hand-written back-propagation below, not from
the mistakes gradcheck replays.
"""

import doctest

import numpy as np
import pytest

from fusedmlp import _explain, explain, gradcheck, init_params, reference

ALL_PASS = {"W1": "pass", "b1": "pass", "W2": "pass", "b2": "pass"}
NETWORKS = [(out, loss) for out, losses in reference.OUTPUT_LOSSES.items() for loss in losses]
ALPHA = 0.5  # the L2 term is then ~10% of the weight gradients at these points: plainly seen
M = 12


def verdicts(r):
    return {row.name: row.verdict for row in r.rows}


def targets(output, seed=0):
    """Y for a 3-output network on M samples: class indices for softmax (every class 4
    times), regression values for identity, counts for exp, 0/1 labels for sigmoid."""
    rng = np.random.RandomState(seed)
    if output == "softmax":
        return rng.permutation(np.arange(M) % 3)
    if output == "identity":
        return 2 * rng.randn(3, M)
    if output == "exp":
        return rng.poisson(2.0, (3, M)).astype(float)
    return rng.randint(0, 2, (3, M)).astype(float)


@pytest.fixture(scope="module")
def point():
    """A 2-4-3 network (n_h != n_x: no transpose has the right shape) with biases != 0,
    so that an L2 term on the biases shows."""
    rng = np.random.RandomState(7)
    p = init_params(2, 4, 3, seed=1, scale=1.0)
    p["b1"] = 0.5 * rng.randn(4, 1)
    p["b2"] = 0.5 * rng.randn(3, 1)
    return p, rng.randn(2, M)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


L2_FACTOR = {  # bug: what multiplies W in dW (the right one is alpha / m)
    "l2_missing": lambda a, m: 0.0,
    "l2_no_m": lambda a, m: a,
    "l2_doubled": lambda a, m: 2 * a / m,
}
DERIV = {  # the hidden activation's derivative from its output
    "sigmoid": lambda A: A * (1 - A),
    "tanh": lambda A: 1 - A**2,
    "relu": lambda A: (A > 0).astype(A.dtype),
}
ACT = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}


def user_net(p, X, Y, *, output, loss, activation="sigmoid", alpha=0.0, bug=None):
    """A hand-written back-propagation for every output, with optional bugs."""
    m, n_y = X.shape[1], p["W2"].shape[0]
    if Y.ndim == 1:  # class indices
        Y = np.eye(n_y)[:, Y]
    A1 = ACT[activation](p["W1"] @ X + p["b1"])
    Z2 = p["W2"] @ A1 + p["b2"]
    if output == "softmax":
        axis = 1 if bug == "softmax_axis1" else 0
        E = np.exp(Z2 - Z2.max(axis=axis, keepdims=True))
        A2 = E / E.sum(axis=axis, keepdims=True)
    else:
        A2 = {"identity": Z2, "exp": np.exp(Z2)}.get(output, sigmoid(Z2))
    err = {"sign": Y - A2, "abs": np.abs(A2 - Y)}.get(bug, A2 - Y)
    if bug == "dA2":  # dL/dA2 of the Poisson loss
        err = 1 - Y / A2
    dZ2 = (2 if loss == "mse" else 1) * err / m
    if loss == "mse" and output == "sigmoid":
        dZ2 = dZ2 * A2 * (1 - A2)
    if bug == "sigmoid_deriv":  # the output sigmoid's derivative where none belongs
        dZ2 = dZ2 * A2 * (1 - A2)
    if bug == "exp_deriv":  # the exp's derivative A2 left in
        dZ2 = dZ2 * A2
    if bug == "no_2":
        dZ2 = dZ2 / 2
    if bug == "no_1_over_m":
        dZ2 = dZ2 * m
    dZ1 = (p["W2"].T @ dZ2) * DERIV["tanh" if bug == "tanh_deriv" else activation](A1)
    g = {
        "dW1": dZ1 @ X.T,
        "db1": dZ1.sum(axis=1, keepdims=True),
        "dW2": dZ2 @ A1.T,
        "db2": dZ2.sum(axis=1, keepdims=True),
    }
    factor = L2_FACTOR.get(bug, lambda a, m: a / m)(alpha, m)
    g["dW2"] = g["dW2"] + factor * p["W2"]
    if bug != "l2_missing_W1":
        g["dW1"] = g["dW1"] + factor * p["W1"]
    if bug == "l2_biases":
        g["db1"] = g["db1"] + alpha / m * p["b1"]
        g["db2"] = g["db2"] + alpha / m * p["b2"]
    return g


def check(point, output, loss, *, activation="sigmoid", alpha=0.0, bug=None, seed=0, **kw):
    p, X = point
    net = {"output": output, "loss": loss, "activation": activation, "alpha": alpha}

    def fn(p, X, Y):
        return user_net(p, X, Y, bug=bug, **net)

    return gradcheck(fn, p, X, targets(output, seed), **net, **kw)


# ---------------------------------------------------------------------------
# right gradients pass


# Tolerance: gradcheck's default tol = 1e-6 on ||g - g_fd|| / (||g|| + ||g_fd||), with
# eps = 1e-5. At these points (weights ~1, |Z| up to ~5) central differences are off by the
# truncation eps**2 |L'''| / 6 ~ 1e-11 and the rounding u |L| / eps ~ 1e-11, relative
# (measured: below 1e-9 for all 48 cases), so the right gradients pass with three orders
# to spare, while every real mistake errs by 1e-3 or more. The bound 1e-8 asserted below
# shows the differences and the reference agree far inside tol, not merely within it.
@pytest.mark.parametrize("alpha", [0.0, ALPHA])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("output, loss", NETWORKS)
def test_reference_gradients_pass(point, output, loss, activation, alpha):
    p, X = point
    Y = targets(output)
    Yr = reference.one_hot(Y, 3) if Y.ndim == 1 else Y
    net = {"activation": activation, "loss": loss, "output": output, "alpha": alpha}

    def ref(p, X, Y):
        return reference.loss_and_grads(p, X, Yr, **net)[1]

    r = gradcheck(ref, p, X, Y, **net)
    assert verdicts(r) == ALL_PASS, str(r)
    assert max(row.rel_error for row in r.rows) < 1e-8, str(r)
    # the hand-written back-propagation agrees too
    r = check(point, output, loss, activation=activation, alpha=alpha)
    assert verdicts(r) == ALL_PASS, str(r)


@pytest.mark.parametrize("alpha", [0.0, ALPHA])
@pytest.mark.parametrize("output, loss", NETWORKS)
@pytest.mark.parametrize("zero", ["all", "W2"])
def test_right_gradients_pass_where_they_are_zero(output, loss, alpha, zero):
    # every weight 0, or only W2: db1 and dW1's data term are exactly 0 (and with balanced
    # classes the softmax db2 is 0 up to rounding): only the floor, the differences' own
    # rounding measured at the point, can pass them
    rng = np.random.RandomState(3)
    X, Y = rng.randn(2, M), targets(output, seed=3)
    p = init_params(2, 4, 3, seed=2, scale=0.0 if zero == "all" else 1.0)
    p["W2"][...] = 0
    net = {"activation": "tanh", "loss": loss, "output": output, "alpha": alpha}
    exact = reference.loss_and_grads(p, X, reference.one_hot(Y, 3) if Y.ndim == 1 else Y, **net)
    assert np.all(exact[1]["db1"] == 0) and np.all(exact[1]["dW1"] == alpha / M * p["W1"])
    r = check((p, X), output, loss, activation="tanh", alpha=alpha, seed=3)
    assert verdicts(r) == ALL_PASS, str(r)


def test_class_indices_and_one_hot_agree(point):
    p, X = point
    y = targets("softmax")
    seen = []

    def fn(p, X, Y):
        seen.append(Y)
        return user_net(p, X, Y, output="softmax", loss="cross_entropy", alpha=ALPHA)

    by_index = gradcheck(fn, p, X, y, output="softmax", alpha=ALPHA)
    by_column = gradcheck(fn, p, X, np.eye(3)[:, y], output="softmax", alpha=ALPHA)
    assert by_index.ok and by_column.ok, f"{by_index}\n{by_column}"
    for a, b in zip(by_index.rows, by_column.rows, strict=True):
        assert a.rel_error == b.rel_error
    # fn gets the targets as given: indices stay indices
    assert seen[0].dtype == np.int64 and seen[0].shape == (M,)
    np.testing.assert_array_equal(seen[0], y)
    assert seen[1].shape == (3, M)


def test_the_differences_follow_output_and_alpha(point):
    p, X = point
    y = targets("softmax")
    # sigmoid cross-entropy gradients are not softmax's: the output matters to the check
    Y = np.eye(3)[:, y]

    def sig(p, X, Y):
        return reference.loss_and_grads(p, X, Y, "sigmoid", "cross_entropy")[1]

    r = gradcheck(sig, p, X, Y, output="softmax")
    assert verdicts(r) == {k: "FAIL" for k in ALL_PASS}, str(r)
    assert gradcheck(sig, p, X, Y, loss="cross_entropy").ok
    # and so does alpha: the same gradients pass at alpha = 0 only
    r = gradcheck(sig, p, X, Y, loss="cross_entropy", alpha=ALPHA)
    assert verdicts(r) == {**ALL_PASS, "W1": "FAIL", "W2": "FAIL"}, str(r)


# ---------------------------------------------------------------------------
# wrong gradients are caught and named

NAMED = [
    # (output, loss, alpha, bug, the rows that fail, words of their hint)
    (
        "softmax",
        "cross_entropy",
        0.0,
        "sigmoid_deriv",
        "W1 b1 W2 b2",
        "extra factor A2 * (1 - A2)",
    ),
    ("softmax", "cross_entropy", ALPHA, "sigmoid_deriv", "W1 b1 W2 b2", "sigmoid derivative left"),
    ("identity", "mse", 0.0, "sigmoid_deriv", "W1 b1 W2 b2", "but the output is the identity"),
    ("identity", "mse", ALPHA, "sigmoid_deriv", "W1 b1 W2 b2", "sigmoid derivative A2 * (1 -"),
    (
        "sigmoid",
        "cross_entropy",
        0.0,
        "sigmoid_deriv",
        "W1 b1 W2 b2",
        "cross-entropy's derivative",
    ),
    ("softmax", "cross_entropy", 0.0, "softmax_axis1", "W1 b1 W2 b2", "over the samples (axis=1)"),
    ("identity", "mse", 0.0, "no_2", "W1 b1 W2 b2", "factor 2 of the squared error"),
    ("softmax", "cross_entropy", ALPHA, "sign", "W1 b1 W2 b2", "sign flipped"),
    ("identity", "mse", ALPHA, "sign", "W1 b1 W2 b2", "sign flipped"),
    ("identity", "mse", 0.0, "abs", "W1 b1 W2 b2", "abs loses the sign"),
    ("softmax", "cross_entropy", 0.0, "abs", "W1 b1 W2 b2", "abs loses the sign"),
    ("softmax", "cross_entropy", 0.0, "no_1_over_m", "W1 b1 W2 b2", f"{M}x too large"),
    ("identity", "mse", 0.0, "no_1_over_m", "W1 b1 W2 b2", f"{M}x too large"),
    ("softmax", "cross_entropy", ALPHA, "tanh_deriv", "W1 b1", "derivative of tanh"),
    ("identity", "mse", ALPHA, "tanh_deriv", "W1 b1", "derivative of tanh"),
    # the L2 term's mistakes, for every output
    ("softmax", "cross_entropy", ALPHA, "l2_missing", "W1 W2", "L2 term missing"),
    ("identity", "mse", ALPHA, "l2_missing", "W1 W2", "L2 term missing"),
    ("sigmoid", "mse", ALPHA, "l2_missing", "W1 W2", "L2 term missing"),
    ("softmax", "cross_entropy", ALPHA, "l2_missing_W1", "W1", "L2 term missing"),
    ("softmax", "cross_entropy", ALPHA, "l2_biases", "b1 b2", "L2 applied to the biases"),
    ("identity", "mse", ALPHA, "l2_biases", "b1 b2", "L2 applied to the biases"),
    ("softmax", "cross_entropy", ALPHA, "l2_no_m", "W1 W2", "L2 term not divided by m"),
    ("sigmoid", "cross_entropy", ALPHA, "l2_no_m", "W1 W2", "L2 term not divided by m"),
    ("identity", "mse", ALPHA, "l2_doubled", "W1 W2", "L2 term doubled"),
    # exp with the Poisson loss
    ("exp", "poisson", 0.0, "exp_deriv", "W1 b1 W2 b2", "extra factor A2 (the exp's"),
    ("exp", "poisson", ALPHA, "dA2", "W1 b1 W2 b2", "is dL/dA2, not dL/dZ2"),
    ("exp", "poisson", 0.0, "sign", "W1 b1 W2 b2", "sign flipped"),
    ("exp", "poisson", 0.0, "no_1_over_m", "W1 b1 W2 b2", f"{M}x too large"),
    ("exp", "poisson", ALPHA, "tanh_deriv", "W1 b1", "derivative of tanh"),
    ("exp", "poisson", ALPHA, "l2_missing", "W1 W2", "L2 term missing"),
    ("exp", "poisson", ALPHA, "l2_biases", "b1 b2", "L2 applied to the biases"),
]


@pytest.mark.parametrize(
    "output, loss, alpha, bug, wrong, words",
    NAMED,
    ids=[f"{o}-{b}-alpha{a:g}" for o, _, a, b, _, _ in NAMED],
)
def test_mistake_is_named(point, output, loss, alpha, bug, wrong, words):
    r = check(point, output, loss, alpha=alpha, bug=bug)
    assert verdicts(r) == {**ALL_PASS, **dict.fromkeys(wrong.split(), "FAIL")}, str(r)
    for k in wrong.split():
        assert words in r[k].hint, str(r)
    delta1 = "output layer is right, so look at delta1"
    # delta1 is blamed where delta1 is wrong, and never for the penalty's mistakes
    assert all((delta1 in r[k].hint) == (bug == "tanh_deriv") for k in wrong.split()), str(r)


def test_no_l2_hint_without_alpha(point):
    # at alpha = 0 the penalty's mistakes are not in the catalogue: a dW1 off by
    # (alpha/m) W1 is some other error
    p, X = point
    Y = targets("identity")

    def fn(p, X, Y):
        g = user_net(p, X, Y, output="identity", loss="mse")
        g["dW1"] = g["dW1"] + 0.05 * p["W1"]
        return g

    r = gradcheck(fn, p, X, Y, output="identity")
    assert verdicts(r) == {**ALL_PASS, "W1": "FAIL"}, str(r)
    assert "L2" not in r["W1"].hint


# ---------------------------------------------------------------------------
# the settings are checked, with messages that name the value and the fix


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"output": "softmax", "loss": "mse"}, ValueError, "loss='mse' does not go with output="),
        ({"output": "identity", "loss": "cross_entropy"}, ValueError, "use loss='mse'"),
        ({"output": "exp", "loss": "mse"}, ValueError, "use loss='poisson'"),
        ({"output": "identity", "loss": "poisson"}, ValueError, "use loss='mse'"),
        ({"output": "softmx"}, ValueError, "unknown output 'softmx'.*Did you mean 'softmax'"),
        ({"alpha": -0.1}, ValueError, r"alpha \(the L2 penalty\) must be >= 0, got -0.1"),
        ({"alpha": "big"}, TypeError, "alpha must be a number"),
        ({"alpha": float("inf")}, ValueError, "alpha must be a finite number"),
    ],
)
def test_bad_settings_are_refused(point, kwargs, exc, words):
    p, X = point
    with pytest.raises(exc, match=words):
        gradcheck(user_net, p, X, targets(kwargs.get("output", "sigmoid")), **kwargs)


def test_bad_targets_are_refused(point):
    p, X = point
    y = targets("softmax")
    with pytest.raises(
        ValueError, match=r"class label Y\[\d+\] = 3 is out of range: expected 0..2"
    ):
        gradcheck(user_net, p, X, np.where(y == 2, 3, y), output="softmax")
    with pytest.raises(ValueError, match="must sum to 1 in every column"):
        gradcheck(user_net, p, X, 0.5 * np.eye(3)[:, y], output="softmax")
    one = init_params(2, 4, 1, seed=0)
    with pytest.raises(ValueError, match=r"softmax needs at least 2 outputs.*W2 is \(1, 4\)"):
        gradcheck(user_net, one, X, np.zeros(M, dtype=int), output="softmax")
    with pytest.raises(ValueError, match=r"needs targets >= 0.*Y\[0, 0\] is -1"):
        gradcheck(user_net, p, X, -np.ones((3, M)), output="exp")


def test_loss_defaults_to_the_outputs(point):
    # loss=None: cross_entropy for softmax, mse for identity and sigmoid (as before)
    p, X = point
    for output, loss in (("softmax", "cross_entropy"), ("identity", "mse"), ("exp", "poisson")):

        def fn(p, X, Y, output=output, loss=loss):
            return user_net(p, X, Y, output=output, loss=loss, alpha=ALPHA)

        r = gradcheck(fn, p, X, targets(output), output=output, alpha=ALPHA)
        assert verdicts(r) == ALL_PASS, str(r)


# ---------------------------------------------------------------------------
# explain


def rows_of(e):
    return {r[0]: r for r in e.rows}


def test_explain_softmax_with_l2():
    e = explain(3, 5, 4, 7, "relu", output="softmax", alpha=0.1)
    rows = rows_of(e)
    assert (
        e.title
        == "3-5-4 network, m = 7, relu hidden, softmax output, cross_entropy, L2 alpha = 0.1"
    )
    # the output step, max subtracted, with the (1, m) column max and sums
    assert rows["S"][1:3] == ("Z2 - Z2.max(axis=0, keepdims=True)", "(4, 7)")
    assert "(1, 7)" in rows["S"][3]
    assert rows["E"][1:3] == ("exp(S)", "(4, 7)")
    assert rows["A2"][1:3] == ("E / E.sum(axis=0, keepdims=True)", "(4, 7)")
    assert "(1, 7)" in rows["A2"][3]
    assert rows["Y"][2] == "(4, 7)" and "(7,)" in rows["Y"][3]
    # loss and delta2 of softmax cross-entropy, and the L2 term
    assert rows["L"][1] == "-(1/m) sum Y * log A2 + L2"
    assert rows["L2"][1:3] == ("(alpha/(2m)) * (sum(W1**2) + sum(W2**2))", "()")
    assert "(5, 3)" in rows["L2"][3] and "(4, 5)" in rows["L2"][3]
    assert "biases not penalised" in rows["L2"][3]
    assert rows["delta2"][1:3] == ("(A2 - Y) / m", "(4, 7)")
    assert rows["dW2"][1:3] == ("delta2 @ A1.T + (alpha/m) * W2", "(4, 5)")
    assert rows["dW1"][1:3] == ("delta1 @ X.T + (alpha/m) * W1", "(5, 3)")
    assert "(4, 5)" in rows["dW2"][3] and "(5, 3)" in rows["dW1"][3]
    assert rows["db1"][1] == "delta1.sum(axis=1, keepdims=True)"  # biases: no L2
    assert rows["delta1"][1] == "dA1 * (Z1 > 0)"
    text = str(e)
    assert "Z2 - Z2.max(axis=0, keepdims=True)" in text and "(alpha/m) * W1" in text


def test_explain_identity():
    e = explain(2, 3, 2, 10, "tanh", output="identity")
    rows = rows_of(e)
    assert e.title == "2-3-2 network, m = 10, tanh hidden, identity output, mse"
    assert rows["A2"][1:3] == ("Z2", "(2, 10)")
    assert rows["L"][1] == "(1/m) sum (A2 - Y)**2"
    assert rows["delta2"][1:3] == ("(2/m) * (A2 - Y)", "(2, 10)")
    assert rows["dW2"][1] == "delta2 @ A1.T"  # alpha = 0: no L2 anywhere
    assert "L2" not in rows and "alpha" not in str(e)


def test_explain_l2_on_the_default_network():
    rows = rows_of(explain(alpha=2.0))
    assert rows["delta2"][1] == "(2/m) * (A2 - Y) * A2 * (1 - A2)"
    assert rows["L"][1] == "(1/m) sum (A2 - Y)**2 + L2"
    assert rows["dW1"][1].endswith("+ (alpha/m) * W1") and rows["dW1"][2] == "(4, 2)"


def test_explain_refuses_what_cannot_be_trained():
    with pytest.raises(ValueError, match="softmax needs at least 2 outputs.*n_y=1"):
        explain(output="softmax")
    with pytest.raises(ValueError, match="loss='mse' does not go with output='softmax'"):
        explain(2, 4, 3, output="softmax", loss="mse")
    with pytest.raises(ValueError, match="must be >= 0"):
        explain(alpha=-1)


def test_explain_knows_every_output_and_loss():
    assert set(_explain._LOSS_ROWS) == set(NETWORKS)
    for output, loss in NETWORKS:
        assert explain(2, 3, 3, 5, output=output, loss=loss).title.endswith(
            f"{output} output, {loss}"
        )
    result = doctest.testmod(_explain, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
