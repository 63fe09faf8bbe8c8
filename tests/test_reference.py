"""The NumPy reference against finite differences and a step worked by hand."""

import math

import numpy as np
import pytest

from fusedmlp import reference
from fusedmlp.reference import ACTIVATIONS, OUTPUT_LOSSES

LOSSES = OUTPUT_LOSSES["sigmoid"]  # the default output's (the others: PAIRS, below)

PARAMS = ("W1", "b1", "W2", "b2")


def random_problem(seed, n_x, n_h, n_y, m, loss):
    rng = np.random.RandomState(seed)
    p = {
        "W1": rng.randn(n_h, n_x),
        "b1": rng.randn(n_h, 1) * 0.5,
        "W2": rng.randn(n_y, n_h),
        "b2": rng.randn(n_y, 1) * 0.5,
    }
    X = rng.randn(n_x, m)
    # soft targets for mse exercise more of the loss than 0/1 labels
    Y = rng.randint(0, 2, (n_y, m)).astype(float) if loss == "cross_entropy" else rng.rand(n_y, m)
    return p, X, Y


def finite_differences(p, X, Y, activation, loss, eps=1e-6):
    grads = {}
    for k in PARAMS:
        g = np.zeros_like(p[k])
        for idx in np.ndindex(p[k].shape):
            keep = p[k][idx]
            p[k][idx] = keep + eps
            up = reference.cost(reference.forward(p, X, activation), Y, loss)
            p[k][idx] = keep - eps
            down = reference.cost(reference.forward(p, X, activation), Y, loss)
            p[k][idx] = keep
            g[idx] = (up - down) / (2 * eps)
        grads["d" + k] = g
    return grads


SIZES = [(2, 4, 1, 400), (1, 1, 1, 1), (3, 5, 2, 1), (5, 3, 4, 7), (2, 7, 3, 33)]


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradients_match_finite_differences(activation, loss, sizes):
    p, X, Y = random_problem(sum(sizes), *sizes, loss)
    _, grads = reference.loss_and_grads(p, X, Y, activation, loss)
    numeric = finite_differences(p, X, Y, activation, loss)
    for k in grads:
        assert grads[k].shape == p[k[1:]].shape
        # central differences with eps = 1e-6: truncation ~eps^2 |L'''| ~ 1e-12, rounding
        # ~1e-16 |L| / eps ~ 1e-10; so 1e-7 relative with a 1e-8 floor leaves a wide margin
        # while any real mistake is off by far more. relu's kink is met with probability
        # ~ m n_h 2e-6 for these normal draws, and the fixed seeds avoid it.
        np.testing.assert_allclose(grads[k], numeric[k], rtol=1e-7, atol=1e-8, err_msg=k)


def hand_problem():
    # X is the identity, so Z1 = W1 and dW1 = delta1. ln 3 makes the sigmoids rational:
    # sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2, sigmoid(-ln 3) = 1/4.
    ln3 = math.log(3)
    X = np.eye(2)
    Y = np.array([[1.0, 0.0]])
    p = {
        "W1": np.array([[ln3, 0], [0, ln3], [-ln3, 0], [0, 0]]),
        "b1": np.zeros((4, 1)),
        "W2": np.array([[1.0, -1.0, 2.0, 0.0]]),
        "b2": np.array([[-0.75]]),
    }
    return p, X, Y


def test_forward_worked_by_hand():
    p, X, Y = hand_problem()
    c = reference.forward(p, X)
    # A1 columns: sample 0 (3/4, 1/2, 1/4, 1/2), sample 1 (1/2, 3/4, 1/2, 1/2)
    A1 = np.array([[0.75, 0.5], [0.5, 0.75], [0.25, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(c["A1"], A1, rtol=1e-15)
    # Z2 = W2 A1 - 3/4: sample 0: 3/4 - 1/2 + 1/2 + 0 - 3/4 = 0, sample 1: 1/2 - 3/4 + 1 - 3/4 = 0
    np.testing.assert_allclose(c["Z2"], [[0.0, 0.0]], atol=1e-15)
    np.testing.assert_allclose(c["A2"], [[0.5, 0.5]], rtol=1e-15)
    # mse: (1/2) ((1/2 - 1)^2 + (1/2)^2) = 1/4; cross-entropy: -(1/2)(log 1/2 + log 1/2) = ln 2
    assert reference.cost(c, Y, "mse") == pytest.approx(0.25, rel=1e-15)
    assert reference.cost(c, Y, "cross_entropy") == pytest.approx(math.log(2), rel=1e-15)


def test_backward_worked_by_hand():
    p, X, Y = hand_problem()
    loss, g = reference.loss_and_grads(p, X, Y, "sigmoid", "mse")
    # delta2 = (2/m)(A2 - Y) A2 (1 - A2) = 1 * (-1/2, 1/2) * 1/4 = (-1/8, 1/8)
    # dW2[h] = -1/8 A1[h, 0] + 1/8 A1[h, 1]  ->  (-1/32, 1/32, 1/32, 0); db2 = 0
    np.testing.assert_allclose(g["dW2"], [[-1 / 32, 1 / 32, 1 / 32, 0]], atol=1e-16)
    np.testing.assert_allclose(g["db2"], [[0.0]], atol=1e-16)
    # dA1 = W2.T delta2: rows (-1/8, 1/8), (1/8, -1/8), (-1/4, 1/4), (0, 0)
    # g'(Z1) = A1 (1 - A1): sample 0 (3/16, 1/4, 3/16, 1/4), sample 1 (1/4, 3/16, 1/4, 1/4)
    # delta1 = dA1 * g' (elementwise), and dW1 = delta1 X.T = delta1 since X = I
    dW1 = np.array([[-3 / 128, 1 / 32], [1 / 32, -3 / 128], [-3 / 64, 1 / 16], [0, 0]])
    np.testing.assert_allclose(g["dW1"], dW1, atol=1e-16)
    # db1 = row sums of delta1: (1/128, 1/128, 1/64, 0)
    np.testing.assert_allclose(g["db1"], [[1 / 128], [1 / 128], [1 / 64], [0]], atol=1e-16)
    # cross-entropy: delta2 = (A2 - Y)/m = (-1/4, 1/4), twice the mse delta2 here, so
    # every gradient doubles
    _, ce = reference.loss_and_grads(p, X, Y, "sigmoid", "cross_entropy")
    for k in g:
        np.testing.assert_allclose(ce[k], 2 * g[k], atol=1e-16)


def test_train_step_worked_by_hand():
    import fusedmlp

    p, X, Y = hand_problem()
    res = fusedmlp.train(X, Y, init=p, epochs=1, lr=0.5, backend="numpy")
    assert res.losses.tolist() == pytest.approx([0.25], rel=1e-15)
    # W <- W - 0.5 dW, with the gradients worked out above
    np.testing.assert_allclose(res.params["W2"], [[1 + 1 / 64, -1 - 1 / 64, 2 - 1 / 64, 0]])
    np.testing.assert_allclose(res.params["b1"], [[-1 / 256], [-1 / 256], [-1 / 128], [0]])
    np.testing.assert_allclose(res.params["b2"], [[-0.75]])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", LOSSES)
def test_saturated_inputs_stay_finite_and_quiet(activation, loss):
    # |Z| up to 1e4: no overflow, invalid or divide warning (errstate raises on them;
    # underflow of exp(-|z|) to 0 is the intended, harmless outcome), no NaN
    X = np.array([[1e4, -1e4, 0.0, 5e3]])
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    p = {
        "W1": np.ones((1, 1)),
        "b1": np.zeros((1, 1)),
        "W2": np.full((1, 1), 1e4 if activation != "sigmoid" else 1.0),
        "b2": np.zeros((1, 1)),
    }
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss_value, grads = reference.loss_and_grads(p, X, Y, activation, loss)
    assert math.isfinite(loss_value)
    assert all(np.isfinite(g).all() for g in grads.values())


def test_sigmoid_extremes_exact():
    z = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = reference.sigmoid(z)
    np.testing.assert_array_equal(s, [0.0, 0.0, 0.5, 1.0, 1.0])
    # float32 stays float32
    assert reference.sigmoid(z.astype(np.float32)).dtype == np.float32


def test_cross_entropy_exact_when_saturated():
    # Z2 = 1e4 with Y = 0 costs softplus(1e4) = 1e4 exactly; log(1 - A2) would be -inf
    c = {"Z2": np.array([[1e4, -1e4]]), "A2": reference.sigmoid(np.array([[1e4, -1e4]]))}
    assert reference.cost(c, np.array([[0.0, 1.0]]), "cross_entropy") == 1e4
    # the right answers cost softplus(-1e4) = log1p(exp(-1e4)), which is 0 in float64
    assert reference.cost(c, np.array([[1.0, 0.0]]), "cross_entropy") == 0.0


def test_nan_propagates():
    p, X, Y = hand_problem()
    p["W2"][0, 0] = np.nan
    loss, g = reference.loss_and_grads(p, X, Y)
    assert math.isnan(loss)
    assert np.isnan(g["dW1"]).any()


# ---------------------------------------------------------------------------
# outputs (sigmoid, softmax, identity, exp) and the L2 penalty

PAIRS = [(o, loss) for o, losses in reference.OUTPUT_LOSSES.items() for loss in losses]


def output_problem(seed, n_x, n_h, n_y, m, output):
    rng = np.random.RandomState(seed)
    p, X, _ = random_problem(seed, n_x, n_h, n_y, m, "mse")
    if output == "softmax":
        Y = rng.dirichlet(np.ones(n_y), size=m).T  # probabilities: columns sum to 1
        Y[:, : m // 2] = np.eye(n_y)[:, rng.randint(0, n_y, m // 2)]  # and some one-hot
    elif output == "identity":
        Y = rng.randn(n_y, m) * 3  # real-valued targets
    elif output == "exp":
        Y = rng.poisson(2.0, (n_y, m)).astype(float)  # counts, zeros among them
    else:
        Y = rng.rand(n_y, m)
    return p, X, Y


def fd_full(p, X, Y, activation, loss, output, alpha, eps=1e-6):
    """Central differences of the whole loss, penalty included."""

    def L():
        cache = reference.forward(p, X, activation, output)
        return reference.cost(cache, Y, loss, output, p, alpha)

    grads = {}
    for k in PARAMS:
        g = np.zeros_like(p[k])
        for idx in np.ndindex(p[k].shape):
            keep = p[k][idx]
            p[k][idx] = keep + eps
            up = L()
            p[k][idx] = keep - eps
            down = L()
            p[k][idx] = keep
            g[idx] = (up - down) / (2 * eps)
        grads["d" + k] = g
    return grads


@pytest.mark.parametrize("alpha", [0.0, 0.7])
@pytest.mark.parametrize("sizes", [(3, 5, 4, 9), (2, 3, 1, 5), (1, 2, 3, 1)], ids=str)
@pytest.mark.parametrize("output, loss", PAIRS)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_output_and_the_penalty_match_finite_differences(
    activation, output, loss, sizes, alpha
):
    p, X, Y = output_problem(sum(sizes), *sizes, output)
    _, grads = reference.loss_and_grads(p, X, Y, activation, loss, output, alpha)
    numeric = fd_full(p, X, Y, activation, loss, output, alpha)
    for k in grads:  # tolerances as for the test above
        np.testing.assert_allclose(grads[k], numeric[k], rtol=1e-7, atol=1e-8, err_msg=k)


def test_softmax_and_its_loss_worked_by_hand():
    # Z2 = (0, ln 3) for one sample: softmax = (1/4, 3/4); with Y = (0, 1) the loss is
    # -log(3/4), the delta (A2 - Y) / m = (1/4, -1/4)
    ln3 = math.log(3)
    cache = {"A1": None, "Z2": np.array([[0.0], [ln3]])}
    cache["A2"] = reference.softmax(cache["Z2"])
    np.testing.assert_allclose(cache["A2"], [[0.25], [0.75]], rtol=1e-15)
    Y = np.array([[0.0], [1.0]])
    assert reference.cost(cache, Y, "cross_entropy", "softmax") == pytest.approx(
        -math.log(0.75), rel=1e-15
    )
    np.testing.assert_allclose(
        reference.output_delta(cache, Y, "cross_entropy", "softmax"), [[0.25], [-0.25]]
    )


def test_softmax_never_overflows():
    Z = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4]])
    A = reference.softmax(Z)
    np.testing.assert_allclose(A, [[1, 0, 0], [0, 1, 1]])
    cache = {"Z2": Z, "A2": A}
    Y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])  # every sample confidently wrong
    L = reference.cost(cache, Y, "cross_entropy", "softmax")
    assert L == pytest.approx((1e4 + 2e4 + 1e4) / 3, rel=1e-12)  # finite: from Z2


def test_identity_and_the_penalty_worked_by_hand():
    p = {"W1": np.array([[2.0]]), "b1": np.zeros((1, 1)),
         "W2": np.array([[3.0]]), "b2": np.array([[1.0]])}  # fmt: skip
    X, Y = np.array([[1.0, -1.0]]), np.array([[5.0, 0.0]])
    # relu: A1 = (2, 0), A2 = Z2 = (7, 1); mse = ((7-5)^2 + 1^2) / 2 = 2.5
    # penalty alpha / (2m) (4 + 9) = 0.5 / 4 * 13 = 1.625
    L, g = reference.loss_and_grads(p, X, Y, "relu", "mse", "identity", alpha=0.5)
    assert L == pytest.approx(2.5 + 1.625, rel=1e-15)
    # delta2 = (2/m)(A2 - Y) = (2, 1); dW2 = delta2 A1^T + (alpha/m) W2 = 4 + 0.75
    assert g["dW2"][0, 0] == pytest.approx(4.75, rel=1e-15)
    assert g["db2"][0, 0] == pytest.approx(3.0, rel=1e-15)  # biases unpenalised
    # delta1 = W2 delta2 * relu'(Z1) = (6, 0); dW1 = 6 * 1 + (alpha/m) W1 = 6.5
    assert g["dW1"][0, 0] == pytest.approx(6.5, rel=1e-15)
