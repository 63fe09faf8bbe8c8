"""The benchmark's computations written in JAX and PyTorch, as a user of those would.

Same network, same work as ``fusedmlp.reference`` (2-4-1 here, any sizes in fact):

    Z1 = W1 @ X + b1     A1 = sigmoid(Z1)     X (n_x, m), W1 (n_h, n_x), b1 (n_h, 1)
    Z2 = W2 @ A1 + b2    A2 = sigmoid(Z2)     W2 (n_y, n_h), b2 (n_y, 1)
    L = sum((A2 - Y)^2) / m                                        (mse)
    delta2 = (2/m) (A2 - Y) * A2 * (1 - A2)
    dW2 = delta2 @ A1.T      db2 = row sums of delta2
    delta1 = (W2.T @ delta2) * A1 * (1 - A1)
    dW1 = delta1 @ X.T       db1 = row sums of delta1

The gradients are written by hand in this delta form, not taken by autograd, so every
implementation does the same arithmetic (``tests/test_bench_smoke.py`` checks the loss and
gradients against the reference). Only the sigmoid hidden activation and the mse loss are
written: they are what the benchmarks time.

JAX and torch are imported on first use, never at import of this module, so it imports
(and ``available`` answers) without them. Importing JAX through here turns on
``jax_enable_x64`` for the whole process: without it JAX silently computes in float32.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

NAMES = ("W1", "b1", "W2", "b2")


def available(name: str) -> bool:
    """True when the peer library ``name`` ("jax" or "torch") can be imported."""
    return importlib.util.find_spec(name) is not None


# ---------------------------------------------------------------------------
# JAX


@functools.cache
def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    return jax, jnp, lax


def _jax_loss_and_grads(p, X, Y):
    """(loss, {"dW1", ...}) in jax.numpy; traced inside jit, never called eagerly."""
    jax, jnp, _ = _jax()
    m = X.shape[1]
    A1 = jax.nn.sigmoid(p["W1"] @ X + p["b1"])  # (n_h, m)
    A2 = jax.nn.sigmoid(p["W2"] @ A1 + p["b2"])  # (n_y, m)
    diff = A2 - Y
    L = jnp.sum(diff * diff) / m
    delta2 = (2 / m) * diff * A2 * (1 - A2)  # (n_y, m)
    delta1 = (p["W2"].T @ delta2) * A1 * (1 - A1)  # (n_h, m)
    grads = {
        "dW1": delta1 @ X.T,
        "db1": jnp.sum(delta1, axis=1, keepdims=True),
        "dW2": delta2 @ A1.T,
        "db2": jnp.sum(delta2, axis=1, keepdims=True),
    }
    return L, grads


def _jax_update(p, g, lr):
    return {k: p[k] - lr * g["d" + k] for k in NAMES}


@functools.cache
def _jax_fns():
    jax, jnp, lax = _jax()

    @jax.jit
    def loss_and_grads(p, X, Y):
        return _jax_loss_and_grads(p, X, Y)

    @jax.jit
    def epoch(p, X, Y, lr):
        L, g = _jax_loss_and_grads(p, X, Y)
        return L, _jax_update(p, g, lr)

    @functools.partial(jax.jit, static_argnames="epochs")
    def train(p, X, Y, lr, epochs):
        # the whole training in one compiled program: no Python between epochs
        def body(i, carry):
            p, losses = carry
            L, g = _jax_loss_and_grads(p, X, Y)
            return _jax_update(p, g, lr), losses.at[i].set(L)

        losses = jnp.zeros(epochs, dtype=X.dtype)
        return lax.fori_loop(0, epochs, body, (p, losses))

    return loss_and_grads, epoch, train


def _to_jax(params, X, Y):
    _, jnp, _ = _jax()
    return {k: jnp.asarray(params[k]) for k in NAMES}, jnp.asarray(X), jnp.asarray(Y)


def jax_loss_and_grads(params, X, Y):
    """Loss and gradients from the jitted JAX twin, as NumPy (for the agreement tests)."""
    p, Xj, Yj = _to_jax(params, X, Y)
    L, g = _jax_fns()[0](p, Xj, Yj)
    return float(L), {k: np.asarray(v) for k, v in g.items()}


def make_jax_train(X, Y, params, lr, epochs):
    """run() -> (params, losses): ``epochs`` epochs inside one jax.jit (lax.fori_loop).

    Data and parameters are moved to JAX once, here; every run starts from ``params``.
    """
    p, Xj, Yj = _to_jax(params, X, Y)
    train = _jax_fns()[2]
    lr = np.asarray(lr, dtype=X.dtype)[()]

    def run():
        p_out, losses = train(p, Xj, Yj, lr, epochs=epochs)
        losses.block_until_ready()
        return {k: np.asarray(v) for k, v in p_out.items()}, np.asarray(losses)

    return run


def make_jax_epoch(X, Y, params, lr):
    """run() -> loss: one jitted epoch (forward, loss, backward, update), params carried."""
    p, Xj, Yj = _to_jax(params, X, Y)
    epoch = _jax_fns()[1]
    lr = np.asarray(lr, dtype=X.dtype)[()]
    state = {"p": p}

    def run():
        L, state["p"] = epoch(state["p"], Xj, Yj, lr)
        return float(L)  # float() waits for the result

    return run


# ---------------------------------------------------------------------------
# PyTorch


@functools.cache
def _torch_fns():
    # defined inside, so torch.compile traces plain references to the torch module
    import torch

    def loss_and_grads(p, X, Y):
        m = X.shape[1]
        A1 = torch.sigmoid(p["W1"] @ X + p["b1"])  # (n_h, m)
        A2 = torch.sigmoid(p["W2"] @ A1 + p["b2"])  # (n_y, m)
        diff = A2 - Y
        L = torch.sum(diff * diff) / m
        delta2 = (2 / m) * diff * A2 * (1 - A2)  # (n_y, m)
        delta1 = (p["W2"].T @ delta2) * A1 * (1 - A1)  # (n_h, m)
        grads = {
            "dW1": delta1 @ X.T,
            "db1": torch.sum(delta1, dim=1, keepdim=True),
            "dW2": delta2 @ A1.T,
            "db2": torch.sum(delta2, dim=1, keepdim=True),
        }
        return L, grads

    def epoch(p, X, Y, lr: float):
        L, g = loss_and_grads(p, X, Y)
        for k in NAMES:
            p[k].sub_(lr * g["d" + k])  # in place, as an optimiser step would
        return L

    return torch, loss_and_grads, epoch


def _to_torch(params, X, Y):
    torch = _torch_fns()[0]
    # from_numpy shares memory: no copy of the data
    p = {k: torch.from_numpy(np.array(params[k])) for k in NAMES}
    return p, torch.from_numpy(X), torch.from_numpy(Y)


def torch_loss_and_grads(params, X, Y):
    """Loss and gradients from the eager torch twin, as NumPy (for the agreement tests)."""
    torch, loss_and_grads, _ = _torch_fns()
    p, Xt, Yt = _to_torch(params, X, Y)
    with torch.no_grad():
        L, g = loss_and_grads(p, Xt, Yt)
    return float(L), {k: v.numpy() for k, v in g.items()}


def make_torch_epoch(X, Y, params, lr, *, compile: bool = False, backend: str = "inductor"):
    """run() -> loss: one epoch in torch eager, or through ``torch.compile`` when asked.

    ``dynamic=False`` specialises the compiled code to this m (as a user timing one size
    would get after the first call). The first run() compiles; time the later ones.
    ``backend="eager"`` traces without generating code (the quick smoke test uses it).
    Runs under ``torch.no_grad()``: the gradients are the hand-written ones.
    """
    torch, _, fn = _torch_fns()
    p, Xt, Yt = _to_torch(params, X, Y)
    lr = float(lr)
    if compile:
        fn = torch.compile(fn, dynamic=False, backend=backend)

    def run():
        with torch.no_grad():
            return float(fn(p, Xt, Yt, lr))

    return run


def torch_threads() -> int:
    """Threads torch's intra-op pool uses (reported beside the timings)."""
    return _torch_fns()[0].get_num_threads()
