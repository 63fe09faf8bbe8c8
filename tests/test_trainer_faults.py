"""Faults a hostile tester found in train and predict, one test per example.

Callbacks that replace parameters, what a callback may return, memory that followed
``epochs=`` instead of the epochs run, resumed results with bad fields, masked arrays,
parameters that overflow float32, and data files changed during training.
"""

import os
import tracemalloc

import numpy as np
import pytest

import fusedmlp
from fusedmlp import datasets, outofcore, reference

NAMES = ("W1", "b1", "W2", "b2")
BACKENDS = ["numba", "numpy"]


def ref_loop(p, X, Y, epochs, lr=0.2):
    p = {k: np.array(v, dtype=np.float64) for k, v in p.items()}
    for _ in range(epochs):
        _, g = reference.loss_and_grads(p, X, Y)
        for k in NAMES:
            p[k] -= lr * g["d" + k]
    return p


# ---------------------------------------------------------------------------
# callbacks


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["replace", "in place"])
def test_callback_changes_reach_training_on_both_backends(planar, backend, how):
    # before: numpy trained the new array, numba kept training the old one
    X, Y = planar
    start = fusedmlp.init_params(2, 4, 1, seed=2)
    new_W1 = np.full((4, 2), 0.3)

    def cb(epoch, loss, p):
        if epoch == 10:
            if how == "replace":
                p["W1"] = new_W1.copy()
            else:
                p["W1"][...] = new_W1

    res = fusedmlp.train(X, Y, init=start, epochs=30, log_every=10, callback=cb, backend=backend)
    # the same as 11 epochs, W1 set, 19 more epochs
    p = ref_loop(start, X, Y, 11)
    p["W1"] = new_W1.copy()
    p = ref_loop(p, X, Y, 19)
    for k in NAMES:
        np.testing.assert_allclose(res.params[k], p[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "bad, words",
    [
        (lambda p: p.__setitem__("W1", np.zeros((2, 4))), "same shape"),
        (lambda p: p.__setitem__("extra", 1), "keys"),
        (lambda p: p["b2"].__setitem__((0, 0), np.nan), "NaN or inf"),
        (lambda p: p.__setitem__("W2", np.array([["a", "b", "c", "d"]])), "real numbers"),
    ],
)
def test_callback_must_leave_usable_parameters(planar, bad, words):
    X, Y = planar
    with pytest.raises(ValueError, match=words):
        fusedmlp.train(X, Y, epochs=5, seed=2, log_every=1, callback=lambda e, L, p: bad(p))


@pytest.mark.parametrize("answer", [0.25, np.array([True]), "stop", 1])
def test_callback_returns_true_false_or_none_only(planar, answer):
    # before: returning the loss stopped at epoch 0, an array raised "ambiguous"
    X, Y = planar
    with pytest.raises(TypeError, match="must return True"):
        fusedmlp.train(X, Y, epochs=5, seed=2, callback=lambda e, L, p: answer)


@pytest.mark.parametrize("answer, epochs", [(None, 20), (False, 20), (np.False_, 20), (True, 1)])
def test_callback_answers_that_count(planar, answer, epochs):
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=20, seed=2, callback=lambda e, L, p: answer)
    assert res.epochs == epochs


# ---------------------------------------------------------------------------
# memory follows the epochs run


def test_losses_memory_follows_the_epochs_run(planar):
    # before: epochs=10**9 with early stopping allocated 8 GB of losses up front
    X, Y = planar
    tracemalloc.start()
    try:
        res = fusedmlp.train(X, Y, epochs=10**9, tol=1e-3, patience=10, seed=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.stop_epoch is not None and res.epochs == res.stop_epoch + 1
    assert peak < 10 * 2**20  # a few MB, not 8 GB
    assert res.losses.base is None and res.losses.shape == (res.epochs,)  # no bigger buffer
    exact = fusedmlp.train(X, Y, epochs=res.epochs, seed=2)
    assert np.array_equal(exact.losses, res.losses)


def test_losses_grow_across_many_calls(planar):
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=5000, seed=2, log_every=7, callback=lambda e, L, p: None)
    one = fusedmlp.train(X, Y, epochs=5000, seed=2)
    assert np.array_equal(res.losses, one.losses)


# ---------------------------------------------------------------------------
# resumed results are checked like arguments


@pytest.mark.parametrize(
    "field, value, exc",
    [
        ("batch_size", -5, ValueError),
        ("batch_size", 2.5, TypeError),
        ("lr", -1.0, ValueError),
        ("lr", float("inf"), ValueError),
        ("seed", -1, ValueError),
        ("activation", "softsign", ValueError),
        ("loss", "hinge", ValueError),
        ("losses", np.zeros((2, 2)), ValueError),
    ],
)
def test_resume_with_a_bad_field_is_refused(planar, field, value, exc):
    # before: a resumed batch_size of -5 ran with loss 0.0
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=3, seed=2)
    setattr(res, field, value)
    with pytest.raises(exc):
        fusedmlp.train(X, Y, epochs=3, resume=res)


def test_resume_with_non_finite_parameters_is_refused(planar):
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=3, seed=2)
    res.params["W1"][0, 0] = np.inf
    with pytest.raises(ValueError, match="W1 contains NaN or inf"):
        fusedmlp.train(X, Y, epochs=3, resume=res)


# ---------------------------------------------------------------------------
# inputs


@pytest.mark.parametrize("which", ["X", "Y"])
def test_masked_arrays_are_refused(planar, which):
    X, Y = planar
    data = {"X": X, "Y": Y}
    data[which] = np.ma.masked_array(data[which], mask=np.zeros_like(data[which], bool))
    with pytest.raises(TypeError, match=f"{which} is a masked array.*filled"):
        fusedmlp.train(data["X"], data["Y"], epochs=1)
    if which == "X":
        with pytest.raises(TypeError, match="masked"):
            fusedmlp.predict(fusedmlp.init_params(2, 4, 1, seed=0), data["X"])


# ---------------------------------------------------------------------------
# float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_parameters_beyond_float32_are_refused_with_float32_data(planar, backend):
    X, Y = planar
    p = fusedmlp.init_params(2, 4, 1, seed=0)
    p["W2"][0, 1] = 1e39  # finite in float64, inf in float32
    X32 = X.astype(np.float32)
    for call in (
        lambda: fusedmlp.predict_proba(p, X32, backend=backend),
        lambda: fusedmlp.accuracy(p, X32, Y, backend=backend),
        lambda: fusedmlp.train(X32, Y, init=p, epochs=1, backend=backend),
    ):
        with pytest.raises(ValueError, match=r"W2 holds values up to 1e\+39, beyond .*float32"):
            call()
    # float64 data are fine
    assert np.isfinite(fusedmlp.predict_proba(p, X, backend=backend)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_overflow_inside_the_network_is_reported(planar, backend):
    X, _ = planar
    p = {  # both hidden units overflow to +inf, the output takes their difference
        "W1": np.full((2, 2), 1e38, np.float32),
        "b1": np.zeros((2, 1), np.float32),
        "W2": np.array([[1.0, -1.0]], np.float32),
        "b2": np.zeros((1, 1), np.float32),
    }
    X32 = np.abs(X).astype(np.float32) + 2  # Z1 = inf, Z2 = inf - inf = NaN
    with pytest.warns(RuntimeWarning, match="outputs are NaN"):
        A2 = fusedmlp.predict_proba(p, X32, activation="relu", backend=backend)
    assert np.isnan(A2).any()
    # accuracy counts those outputs as wrong, and says why (before: silently, numba)
    Y = np.ones((1, X32.shape[1]), np.float32)
    with pytest.warns(RuntimeWarning, match=f"{X32.shape[1]} of {X32.shape[1]} outputs are NaN"):
        acc = fusedmlp.accuracy(p, X32, Y, activation="relu", backend=backend)
    assert acc == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [None, 50])
def test_diverged_params_are_finite(planar, backend, dtype, batch_size):
    X, Y = planar
    for lr in (1e30, 1e300):
        with pytest.raises(fusedmlp.TrainingDiverged) as info:
            fusedmlp.train(
                X.astype(dtype), Y, epochs=200, lr=lr, seed=2, activation="relu",
                loss="cross_entropy", backend=backend, batch_size=batch_size,
            )  # fmt: skip
        exc = info.value
        assert all(np.isfinite(v).all() for v in exc.params.values())
        assert exc.params["W1"].dtype == dtype
        assert len(exc.losses) == exc.epoch


# ---------------------------------------------------------------------------
# data files that change during training


def test_changed_data_file_stops_training_and_names_it(tmp_path):
    xp, yp = tmp_path / "X.npy", tmp_path / "Y.npy"
    X, Y = datasets.write_planar(xp, yp, m=2000)
    rewritten = []

    def rewrite(epoch, loss, p):  # another program rewrites the labels in place
        if epoch == 2 and not rewritten:
            Yw = np.lib.format.open_memmap(yp, mode="r+")
            Yw[...] = 1 - Yw
            Yw.flush()
            del Yw
            os.utime(yp, ns=(1, 1))  # a different time stamp, whatever the clock's grain
            rewritten.append(epoch)

    with pytest.raises(fusedmlp.DataChanged) as info:
        fusedmlp.train(X, Y, epochs=1000, seed=2, log_every=1, callback=rewrite)
    assert str(yp) in str(info.value) and "must not change" in str(info.value)
    res = info.value.result
    assert res.epochs == info.value.epoch == 3  # epochs 0, 1 and 2: nothing lost
    assert all(np.isfinite(v).all() for v in res.params.values())
    assert outofcore.FileWatch(Y=Y).changed() is None  # a fresh watch: the file as it is now


# ---------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_is_heard_between_mini_batches(tmp_path):
    # before: only after a whole epoch (3.8 s for m = 2e5 and batch_size = 1); the epoch
    # it cuts short is undone, so a resumed run repeats it whole and bit for bit. The
    # NumPy backend, whose batches Python drives; compiled mini-batch epochs run whole
    # inside one kernel call (about 20 ms here), so Ctrl-C waits for the call's end.
    import signal
    import threading

    X, Y = datasets.planar(m=50000)
    init = fusedmlp.init_params(2, 4, 1, seed=2)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        res = fusedmlp.train(
            X, Y, init=init, epochs=3, batch_size=1, seed=5, optimizer="adam", backend="numpy"
        )
    finally:
        timer.cancel()
    assert res.interrupted and res.epochs == 0  # the first epoch (about 2 s) was cut
    for k in NAMES:
        assert np.array_equal(res.params[k], init[k])
    assert not res.state["moments"].any() and res.state["clock"][0] == 0  # undone too
    X, Y = X[:, :2000], Y[:, :2000]
    more = fusedmlp.train(X, Y, epochs=1, resume=res, backend="numpy")
    whole = fusedmlp.train(
        X, Y, init=init, epochs=1, batch_size=1, seed=5, optimizer="adam", backend="numpy"
    )
    assert np.array_equal(more.losses, whole.losses)


def test_ctrl_c_restores_a_handler_python_could_not_see(planar, monkeypatch):
    # signal.signal returns None when the old handler was set outside Python; the
    # trainer's handler must not stay behind (Ctrl-C would be ignored afterwards)
    import signal

    from fusedmlp import _driver

    real = signal.signal
    calls = []

    def fake(signum, handler):
        calls.append(handler)
        real(signum, handler)
        return None if len(calls) == 1 else signal.default_int_handler

    monkeypatch.setattr(_driver.signal, "signal", fake)
    X, Y = planar
    fusedmlp.train(X, Y, epochs=2, seed=2)
    assert calls[-1] is signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---------------------------------------------------------------------------
# smaller ones


def test_submodules_are_attributes_of_the_package():
    # the lazy import of the package still reaches its modules as attributes
    for name in ("kernels", "trainer", "checkpoint", "api", "diagnostics", "plots"):
        assert getattr(fusedmlp, name).__name__ == f"fusedmlp.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        fusedmlp.nothing  # noqa: B018


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_load_names_a_path_that_is_not_a_file(tmp_path, kind):
    path = tmp_path / "model.npz"
    if kind == "folder":
        path.mkdir()
        with pytest.raises(IsADirectoryError, match="model.npz is a folder"):
            fusedmlp.load(path)
    else:
        os.mkfifo(path)
        with pytest.raises(ValueError, match="not a regular file"):
            fusedmlp.load(path)


def test_warnings_point_at_the_users_line(planar):
    X, _ = planar
    Y = np.linspace(-1, 3, X.shape[1]).reshape(1, -1)
    with pytest.warns(UserWarning, match="sigmoid output") as record:
        fusedmlp.train(X, Y, epochs=1, seed=2)  # this line
    assert record[0].filename == __file__


def test_threading_layer_choice_survives_numbas_config_reload():
    # numba re-reads its configuration from the environment when a NUMBA_* variable
    # changes; a choice kept only in numba.config was lost (GNU OpenMP again)
    import subprocess
    import sys

    script = (
        "import os, numba, fusedmlp.kernels\n"
        "assert os.environ['NUMBA_THREADING_LAYER'] == 'forksafe'\n"
        "os.environ['NUMBA_OPT'] = '2'\n"
        "from numba.core import config; config.reload_config()\n"
        "print(numba.config.THREADING_LAYER)\n"
    )
    for value in (None, ""):
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
        if value is not None:
            env["NUMBA_THREADING_LAYER"] = value
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "forksafe"
    env["NUMBA_THREADING_LAYER"] = "workqueue"  # an explicit choice is kept
    out = subprocess.run(
        [sys.executable, "-c", script.replace("forksafe'", "workqueue'")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.stdout.strip() == "workqueue", out.stderr
