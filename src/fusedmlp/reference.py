"""Plain-NumPy reference network: the yardstick every compiled kernel is tested against.

Written for reading, not speed. Legend (one sample per column):

    n_x inputs, n_h hidden units, n_y outputs, m samples
    X  (n_x, m)   Y  (n_y, m)
    W1 (n_h, n_x) b1 (n_h, 1)   Z1, A1 (n_h, m)
    W2 (n_y, n_h) b2 (n_y, 1)   Z2, A2 (n_y, m)

    Z1 = W1 @ X + b1     A1 = g(Z1)           g in {"sigmoid", "tanh", "relu"}
    Z2 = W2 @ A1 + b2    A2 = out(Z2)         out in {"sigmoid", "softmax", "identity", "exp"}

The output and the loss go in pairs (OUTPUT_LOSSES): a sigmoid per output with mse or
(binary) cross-entropy, softmax over the outputs of a sample with (categorical)
cross-entropy, identity (regression) with mse, exp (regression of counts or rates,
Y >= 0) with the Poisson loss, half the Poisson deviance (scikit-learn's):

    sigmoid + mse            L = (1/m) sum (A2 - Y)^2
    sigmoid + cross_entropy  L = -(1/m) sum Y log A2 + (1 - Y) log(1 - A2)
    softmax + cross_entropy  L = -(1/m) sum_i sum_k Y_ki log A2_ki
    identity + mse           L = (1/m) sum (A2 - Y)^2
    exp + poisson            L = (1/m) sum Y log(Y / A2) - Y + A2   (Y log Y = 0 at Y = 0)

and an L2 penalty ``alpha`` adds (alpha / (2 m)) (||W1||^2 + ||W2||^2) to L (biases
unpenalised). Back-propagation in delta form (``*`` elementwise, ``@`` a matrix product):

    delta2 = dL/dZ2                  sigmoid + mse: (2/m) (A2 - Y) * A2 * (1 - A2)
                                     sigmoid or softmax + cross_entropy: (A2 - Y) / m
                                     exp + poisson: (A2 - Y) / m
                                     identity + mse: (2/m) (A2 - Y)
    dW2 = delta2 @ A1.T + (alpha/m) W2      db2 = row sums of delta2
    delta1 = (W2.T @ delta2) * g'(Z1)
    dW1 = delta1 @ X.T + (alpha/m) W1       db1 = row sums of delta1

The functions here do no validation: the public API (``fusedmlp.train`` and friends)
validates once and then calls them.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------
# activations: each a pair (g, g') where g' takes the *output* A = g(Z), so the
# forward cache serves backward without keeping Z.


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, computed without overflow for any finite z."""
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def _sigmoid_grad(a: np.ndarray) -> np.ndarray:
    return a * (1 - a)


def _tanh_grad(a: np.ndarray) -> np.ndarray:
    return 1 - a * a


def relu(z: np.ndarray) -> np.ndarray:
    """max(z, 0); NaN stays NaN."""
    return np.where(z > 0, z, z * 0)  # z * 0 keeps NaN and the dtype


def _relu_grad(a: np.ndarray) -> np.ndarray:
    # subgradient 0 at z = 0, the usual choice (and the one the kernels make)
    return (a > 0).astype(a.dtype)


ACTIVATIONS = {
    "sigmoid": (sigmoid, _sigmoid_grad),
    "tanh": (np.tanh, _tanh_grad),
    "relu": (relu, _relu_grad),
}

LOSSES = ("mse", "cross_entropy", "poisson")
OUTPUTS = ("sigmoid", "softmax", "identity", "exp")
REGRESSION = ("identity", "exp")  # the outputs that predict values, not classes
# the losses each output goes with (anything else is refused before training)
OUTPUT_LOSSES = {
    "sigmoid": ("mse", "cross_entropy"),
    "softmax": ("cross_entropy",),
    "identity": ("mse",),
    "exp": ("poisson",),
}


def softmax(z: np.ndarray) -> np.ndarray:
    """exp(z) / sum exp(z) over the outputs (axis 0) of every sample, the max subtracted
    first so that nothing overflows."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _logsumexp(z: np.ndarray) -> np.ndarray:
    """log sum exp(z) over axis 0, shape (1, m), without overflow."""
    top = z.max(axis=0, keepdims=True)
    return top + np.log(np.exp(z - top).sum(axis=0, keepdims=True))


_OUT = {"sigmoid": sigmoid, "softmax": softmax, "identity": lambda z: z, "exp": np.exp}


def ylogy(y: np.ndarray) -> np.ndarray:
    """y log y, 0 where y is 0 (its limit): the Poisson loss's constant term."""
    return np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0 * y)


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


# ---------------------------------------------------------------------------
# the network


def forward(
    params: dict, X: np.ndarray, activation: str = "sigmoid", output: str = "sigmoid"
) -> dict:
    """Forward pass; returns the cache {"Z1", "A1", "Z2", "A2"} that backward needs."""
    g, _ = ACTIVATIONS[activation]
    Z1 = params["W1"] @ X + params["b1"]  # (n_h, n_x) @ (n_x, m) + (n_h, 1) -> (n_h, m)
    A1 = g(Z1)  # (n_h, m)
    Z2 = params["W2"] @ A1 + params["b2"]  # (n_y, n_h) @ (n_h, m) + (n_y, 1) -> (n_y, m)
    A2 = _OUT[output](Z2)  # (n_y, m)
    return {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2}


def penalty(params: dict, alpha: float, m: int) -> float:
    """The L2 term of the loss: (alpha / (2 m)) (||W1||^2 + ||W2||^2)."""
    if not alpha:
        return 0.0
    return alpha / (2 * m) * float(np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))


def cost(
    cache: dict,
    Y: np.ndarray,
    loss: str = "mse",
    output: str = "sigmoid",
    params: dict | None = None,
    alpha: float = 0.0,
    weights: np.ndarray | None = None,
) -> float:
    """The loss of a forward cache against targets Y (plus the L2 term when ``alpha`` and
    ``params`` are given), a Python float. With ``weights`` (m,), each sample's loss
    counts w_j times and the loss (L2 term included) is divided by sum(w), not m."""
    m = Y.shape[1] if weights is None else float(np.sum(weights))
    A2, Z2 = cache["A2"], cache["Z2"]
    if loss == "mse":
        terms = (A2 - Y) ** 2  # (n_y, m)
    elif loss == "cross_entropy" and output == "softmax":
        # -sum_k Y_k log softmax(Z)_k = sum_k Y_k (logsumexp(Z) - Z_k): exact from Z2
        terms = Y * (_logsumexp(Z2) - Z2)
    elif loss == "cross_entropy":
        # -[Y log s(Z) + (1-Y) log(1 - s(Z))] = Y softplus(-Z) + (1-Y) softplus(Z):
        # exact from Z2, no log of an A2 that has rounded to 0 or 1.
        terms = Y * softplus(-Z2) + (1 - Y) * softplus(Z2)
    elif loss == "poisson":
        # Y log(Y / A2) - Y + A2 with log A2 = Z2: from Z2, no log of an A2 rounded to 0
        terms = A2 - Y * Z2 + ylogy(Y) - Y
    else:
        raise ValueError(f"unknown loss {loss!r}")
    total = np.sum(terms if weights is None else terms * weights)  # over n_y * m entries
    extra = penalty(params, alpha, m) if params is not None else 0.0
    return float(total) / m + extra


def output_delta(
    cache: dict,
    Y: np.ndarray,
    loss: str = "mse",
    output: str = "sigmoid",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """delta2 = dL/dZ2, shape (n_y, m); with ``weights`` (m,), sample j's column is
    w_j / sum(w) of its loss's derivative instead of 1/m of it."""
    m = Y.shape[1]
    A2 = cache["A2"]
    f = 1 / m if weights is None else weights / np.sum(weights)  # each sample's share
    if loss == "mse" and output == "identity":
        return (2 * f) * (A2 - Y)  # (n_y, m)
    if loss == "mse":
        return (2 * f) * (A2 - Y) * A2 * (1 - A2)  # (n_y, m), all elementwise
    # sigmoid' cancels the log's derivative; for softmax the Jacobian does the same,
    # given that every column of Y sums to 1; for exp + poisson, d(A2 - Y Z2)/dZ2 = A2 - Y
    return (A2 - Y) / m if weights is None else f * (A2 - Y)  # (n_y, m)


def backward(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    cache: dict,
    activation: str = "sigmoid",
    loss: str = "mse",
    delta2: np.ndarray | None = None,
    output: str = "sigmoid",
    alpha: float = 0.0,
    weights: np.ndarray | None = None,
) -> dict:
    """Gradients {"dW1", "db1", "dW2", "db2"}, each the shape of its parameter.

    ``delta2`` overrides dL/dZ2 (the diagnostics use it to replay common mistakes);
    ``weights`` (m,) weigh the samples as in ``cost``.
    """
    _, dg = ACTIVATIONS[activation]
    A1 = cache["A1"]
    m = X.shape[1] if weights is None else float(np.sum(weights))
    if delta2 is None:
        delta2 = output_delta(cache, Y, loss, output, weights)  # (n_y, m)
    dW2 = delta2 @ A1.T  # (n_y, m) @ (m, n_h) -> (n_y, n_h)
    db2 = delta2.sum(axis=1, keepdims=True)  # (n_y, 1)
    delta1 = (params["W2"].T @ delta2) * dg(A1)  # (n_h, n_y) @ (n_y, m) -> (n_h, m), * (n_h, m)
    dW1 = delta1 @ X.T  # (n_h, m) @ (m, n_x) -> (n_h, n_x)
    db1 = delta1.sum(axis=1, keepdims=True)  # (n_h, 1)
    if alpha:
        dW1 = dW1 + (alpha / m) * params["W1"]  # (n_h, n_x)
        dW2 = dW2 + (alpha / m) * params["W2"]  # (n_y, n_h)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def loss_and_grads(
    params: dict,
    X: np.ndarray,
    Y: np.ndarray,
    activation: str = "sigmoid",
    loss: str = "mse",
    output: str = "sigmoid",
    alpha: float = 0.0,
    weights: np.ndarray | None = None,
) -> tuple[float, dict]:
    """One forward and one backward pass: (loss, {"dW1", "db1", "dW2", "db2"}).
    ``weights`` (m,), optional: the samples' weights (scikit-learn's sample_weight)."""
    cache = forward(params, X, activation, output)
    L = cost(cache, Y, loss, output, params, alpha, weights)
    return L, backward(params, X, Y, cache, activation, loss, None, output, alpha, weights)


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Class indices (m,) as one-hot columns (n_classes, m): Y[labels[j], j] = 1."""
    Y = np.zeros((n_classes, labels.shape[0]), dtype)
    Y[labels, np.arange(labels.shape[0])] = 1
    return Y


def predict_proba(
    params: dict, X: np.ndarray, activation: str = "sigmoid", output: str = "sigmoid"
) -> np.ndarray:
    """A2, the outputs (probabilities for sigmoid and softmax), shape (n_y, m)."""
    return forward(params, X, activation, output)["A2"]
