"""The trainer around the kernels: progress, stopping, Ctrl-C, checkpoints, mini-batches."""

import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numba
import numpy as np
import pytest

import fusedmlp
from fusedmlp import _driver, reference

NAMES = ("W1", "b1", "W2", "b2")
BACKENDS = ["numba", "numpy"]


def same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in NAMES)


def ref_loop(init, X, Y, epochs, lr=0.2, activation="sigmoid", loss="mse"):
    """Plain full-batch gradient descent on the reference: (params, losses)."""
    p = {k: v.astype(np.float64).copy() for k, v in init.items()}
    losses = []
    for _ in range(epochs):
        L, g = reference.loss_and_grads(p, X, Y, activation, loss)
        losses.append(L)
        for k in NAMES:
            p[k] -= lr * g["d" + k]
    return p, np.array(losses)


# ---------------------------------------------------------------------------
# progress and callback


def test_plain_lines_every_log_every(planar, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=250, seed=2, verbose=True, log_every=100)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"Epoch {i}: loss {res.losses[i]:.6f}" for i in (0, 100, 200)]
    # the logged values are the reference's losses at those epochs
    _, losses = ref_loop(fusedmlp.init_params(2, 4, 1, seed=2), X, Y, 201)
    assert float(out[2].split()[-1]) == pytest.approx(losses[200], abs=1e-6)


def test_silent_by_default(planar, capsys):
    X, Y = planar
    fusedmlp.train(X, Y, epochs=50, seed=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_tqdm_bar_on_a_terminal(planar, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    X, Y = planar
    fusedmlp.train(X, Y, epochs=300, seed=2, verbose=True, log_every=100)
    captured = capsys.readouterr()
    assert captured.out == ""  # no plain lines on a terminal
    assert "300/300" in captured.err and "epoch" in captured.err
    assert "loss=" in captured.err and "samples_per_s=" in captured.err


@pytest.mark.parametrize("backend", BACKENDS)
def test_callback_sees_loss_and_params_after_the_epoch(planar, backend):
    X, Y = planar
    init = fusedmlp.init_params(2, 4, 1, seed=2)
    seen = []
    res = fusedmlp.train(
        X, Y, init=init, epochs=250, log_every=100, backend=backend,
        callback=lambda e, L, p: seen.append((e, L, {k: v.copy() for k, v in p.items()})),
    )  # fmt: skip
    assert [e for e, _, _ in seen] == [0, 100, 200]
    for e, L, p in seen:
        # the epoch's loss, and the parameters after its update (e + 1 updates)
        assert L == res.losses[e]
        expected, _ = ref_loop(init, X, Y, e + 1)
        for k in NAMES:
            np.testing.assert_allclose(p[k], expected[k], rtol=1e-10)


def test_callback_returning_true_stops(planar):
    X, Y = planar
    res = fusedmlp.train(
        X, Y, epochs=1000, seed=2, log_every=50, callback=lambda e, L, p: e == 150
    )
    assert res.epochs == 151 and res.stop_epoch == 150
    assert same(res.params, fusedmlp.train(X, Y, epochs=151, seed=2).params)


def test_chunking_does_not_change_the_result(planar, monkeypatch):
    # calls of any length give the same bits: log_every cuts calls, so does the timer
    X, Y = planar
    one = fusedmlp.train(X, Y, epochs=700, seed=2, log_every=10_000)
    cut = fusedmlp.train(X, Y, epochs=700, seed=2, log_every=7)
    monkeypatch.setattr(_driver, "CALL_SECONDS", 0.0)  # never grow calls past 1 epoch
    tiny = fusedmlp.train(X, Y, epochs=700, seed=2, log_every=10_000)
    for r in (cut, tiny):
        assert same(one.params, r.params) and np.array_equal(one.losses, r.losses)


# ---------------------------------------------------------------------------
# early stopping


def first_stall(losses, tol, patience):
    """Independent statement of the rule: the first i whose last `patience` losses never
    beat the best loss before them by more than tol."""
    for i in range(patience, len(losses)):
        if min(losses[i - patience + 1 : i + 1]) > min(losses[: i - patience + 1]) - tol:
            return i
    return None


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stop_ends_exactly_at_the_stop_epoch(planar, backend):
    X, Y = planar
    kw = dict(seed=2, lr=1.2, activation="tanh", loss="cross_entropy", backend=backend)
    full = fusedmlp.train(X, Y, epochs=3000, **kw)
    tol, patience = 5e-4, 20
    stop = first_stall(list(full.losses), tol, patience)
    assert stop is not None and 100 < stop < 2900  # a stop mid-run (922 here)
    res = fusedmlp.train(X, Y, epochs=3000, tol=tol, patience=patience, **kw)
    assert res.stop_epoch == stop and res.epochs == stop + 1
    np.testing.assert_array_equal(res.losses, full.losses[: stop + 1])
    # params after exactly stop + 1 epochs, whatever the call boundaries were
    assert same(res.params, fusedmlp.train(X, Y, epochs=stop + 1, **kw).params)


def test_early_stop_rule_on_a_made_up_curve():
    stop = _driver.EarlyStop(tol=0.1, patience=3)
    losses = np.array([5.0, 4.0, 3.0, 2.95, 2.92, 2.91, 1.0])
    # epoch 5: the last 3 (2.95, 2.92, 2.91) never beat 3.0 by more than 0.1
    assert stop.check(losses, 0, 4) == -1  # epochs 3: 2.95 < 4.0 - 0.1, improving
    assert stop.check(losses, 4, 7) == 5
    assert first_stall(list(losses), 0.1, 3) == 5


# ---------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_returns_the_result_so_far(planar):
    X, Y = planar

    def press_ctrl_c(epoch, loss, params):
        if epoch == 300:
            os.kill(os.getpid(), signal.SIGINT)

    res = fusedmlp.train(X, Y, epochs=3000, seed=2, log_every=100, callback=press_ctrl_c)
    assert res.interrupted
    assert res.epochs == 301  # stopped at the next call boundary, right after epoch 300
    # nothing lost, nothing inconsistent: exactly the state after 301 epochs
    assert same(res.params, fusedmlp.train(X, Y, epochs=301, seed=2).params)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_real_ctrl_c_in_a_subprocess(tmp_path):
    # a real SIGINT from outside during a long run: the run returns, saves and exits 0
    script = textwrap.dedent(
        f"""
        import os, signal, threading, fusedmlp
        X, Y = fusedmlp.datasets.planar(m=20000)
        started = threading.Event()

        def press_ctrl_c():  # from another thread, once training is surely running
            started.wait()
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=press_ctrl_c, daemon=True).start()
        res = fusedmlp.train(X, Y, epochs=10**7, seed=2, log_every=1000,
                             callback=lambda e, L, p: started.set())
        fusedmlp.save({str(tmp_path / "run.npz")!r}, res)
        print(res.interrupted, res.epochs)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    interrupted, epochs = proc.stdout.split()
    assert interrupted == "True" and 0 < int(epochs) < 10**7
    back = fusedmlp.load(tmp_path / "run.npz")
    assert back.interrupted and back.epochs == int(epochs)


# ---------------------------------------------------------------------------
# checkpoints and resume


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_is_bit_identical(planar, tmp_path, backend):
    X, Y = planar
    whole = fusedmlp.train(X, Y, epochs=3000, seed=2, backend=backend)
    first = fusedmlp.train(X, Y, epochs=1000, seed=2, backend=backend)
    fusedmlp.save(tmp_path / "a.npz", first)
    rest = fusedmlp.train(
        X, Y, epochs=2000, resume=fusedmlp.load(tmp_path / "a.npz"), backend=backend
    )
    assert same(whole.params, rest.params)
    np.testing.assert_array_equal(whole.losses, rest.losses)
    assert rest.epochs == 3000


def test_resume_minibatch_is_bit_identical(planar, tmp_path):
    X, Y = planar
    kw = dict(seed=5, batch_size=64, lr=0.5)
    whole = fusedmlp.train(X, Y, epochs=30, **kw)
    first = fusedmlp.train(X, Y, epochs=12, **kw)
    fusedmlp.save(tmp_path / "a.npz", first)
    rest = fusedmlp.train(X, Y, epochs=18, resume=fusedmlp.load(tmp_path / "a.npz"))
    assert rest.batch_size == 64 and rest.seed == 5 and rest.lr == 0.5
    assert same(whole.params, rest.params)


def test_resume_refuses_a_different_network(planar):
    X, Y = planar
    first = fusedmlp.train(X, Y, epochs=3, seed=2, activation="tanh")
    with pytest.raises(ValueError, match="activation='relu' but the resumed run used 'tanh'"):
        fusedmlp.train(X, Y, epochs=3, resume=first, activation="relu")
    with pytest.raises(ValueError, match="either init or resume"):
        fusedmlp.train(X, Y, epochs=3, resume=first, init=first.params)
    with pytest.raises(TypeError, match="resume must be a TrainResult"):
        fusedmlp.train(X, Y, epochs=3, resume=first.params)


def test_checkpoint_holds_the_configuration(planar, tmp_path):
    X, Y = planar
    res = fusedmlp.train(
        X.astype(np.float32), Y, epochs=20, seed=3, hidden=5, loss="cross_entropy", lr=0.7
    )
    path = fusedmlp.save(tmp_path / "c.npz", res)
    with np.load(path) as npz:
        import json

        config = json.loads(str(npz["config"]))
    assert config["sizes"] == {"n_x": 2, "n_h": 5, "n_y": 1}
    assert (config["activation"], config["loss"], config["lr"]) == (
        "sigmoid",
        "cross_entropy",
        0.7,
    )
    assert (config["epochs"], config["dtype"], config["seed"]) == (20, "float32", 3)
    assert config["versions"]["numpy"] == np.__version__
    assert config["versions"]["numba"] == numba.__version__
    assert config["versions"]["fusedmlp"] == fusedmlp.__version__
    back = fusedmlp.load(path)
    assert back.dtype == np.float32 and same(back.params, res.params)
    np.testing.assert_array_equal(back.losses, res.losses)


def test_truncated_and_foreign_files_are_refused(planar, tmp_path):
    X, Y = planar
    good = fusedmlp.save(tmp_path / "good.npz", fusedmlp.train(X, Y, epochs=5, seed=2))
    data = good.read_bytes()
    for n in (10, len(data) // 2, len(data) - 30):
        cut = tmp_path / f"cut{n}.npz"
        cut.write_bytes(data[:n])
        with pytest.raises(ValueError, match="not a readable fusedmlp checkpoint"):
            fusedmlp.load(cut)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, X=X, Y=Y)
    with pytest.raises(ValueError, match="no configuration entry"):
        fusedmlp.load(foreign)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable fusedmlp checkpoint"):
        fusedmlp.load(junk)
    # a zip that holds the right names but a doctored parameter
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    doctored = tmp_path / "doctored.npz"
    with zipfile.ZipFile(doctored, "w") as z:
        for n, b in members.items():
            z.writestr(n, b if n != "W2.npy" else b"x")
    with pytest.raises(ValueError, match="not a readable fusedmlp checkpoint"):
        fusedmlp.load(doctored)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        fusedmlp.load(tmp_path / "missing.npz")


def test_save_replaces_atomically(planar, tmp_path, monkeypatch):
    X, Y = planar
    path = tmp_path / "m.npz"
    first = fusedmlp.train(X, Y, epochs=5, seed=2)
    fusedmlp.save(path, first)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        fusedmlp.save(path, fusedmlp.train(X, Y, epochs=9, seed=2))
    assert fusedmlp.load(path).epochs == 5  # the old checkpoint survived intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


def test_diverged_result_can_be_saved(planar, tmp_path):
    X, Y = planar
    init = fusedmlp.init_params(2, 4, 1, seed=3, scale=1.0)
    with pytest.raises(fusedmlp.TrainingDiverged) as info:
        fusedmlp.train(
            X, Y, init=init, activation="relu", loss="cross_entropy", lr=1e150, epochs=50
        )
    e = info.value
    back = fusedmlp.load(fusedmlp.save(tmp_path / "d.npz", e.result))
    assert back.epochs == e.epoch and same(back.params, e.params)


# ---------------------------------------------------------------------------
# mini-batches


@pytest.mark.parametrize("backend", BACKENDS)
def test_minibatch_matches_a_reference_loop(planar, backend):
    X, Y = planar
    m, bs, lr, seed = X.shape[1], 96, 0.5, 4
    init = fusedmlp.init_params(2, 4, 1, seed=seed)
    res = fusedmlp.train(X, Y, epochs=6, seed=seed, batch_size=bs, lr=lr, backend=backend)
    p = {k: v.copy() for k, v in init.items()}
    for epoch in range(6):
        order = np.random.default_rng([seed, epoch]).permutation(m)
        total = 0.0
        for s in range(0, m, bs):
            idx = order[s : s + bs]
            L, g = reference.loss_and_grads(p, X[:, idx], Y[:, idx])
            total += L * len(idx)
            for k in NAMES:
                p[k] -= lr * g["d" + k]
        # losses[epoch]: the mean over the epoch's batches of each batch's loss
        assert res.losses[epoch] == pytest.approx(total / m, rel=1e-10)
    for k in NAMES:
        np.testing.assert_allclose(res.params[k], p[k], rtol=1e-10)


def test_batch_size_of_m_is_full_batch(planar):
    X, Y = planar
    a = fusedmlp.train(X, Y, epochs=20, seed=2, batch_size=X.shape[1], backend="numpy")
    b = fusedmlp.train(X, Y, epochs=20, seed=2, backend="numpy")
    # the same samples in another order: equal up to summation order
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)


# ---------------------------------------------------------------------------
# threads and bad arguments


def test_threads_set_for_the_call_and_restored(planar):
    X, Y = planar
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 numba threads to tell 1 from the default")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        seen = []
        fusedmlp.train(X, Y, epochs=3, seed=2, threads=1, log_every=1,
                       callback=lambda e, L, p: seen.append(numba.get_num_threads()))  # fmt: skip
        assert seen == [1, 1, 1]
        assert numba.get_num_threads() == 2  # restored to what it was before the call
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"threads": 0}, ValueError, "threads must be an integer >= 1"),
        ({"threads": 10**6}, ValueError, "NUMBA_NUM_THREADS"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"tol": -1.0}, ValueError, "tol must be a finite number >= 0"),
        ({"tol": "small"}, TypeError, "tol must be a number"),
        ({"patience": 0}, ValueError, "patience must be an integer >= 1"),
        ({"log_every": 0}, ValueError, "log_every must be an integer >= 1"),
        ({"callback": 3}, TypeError, "callback must be callable"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
    ],
)
def test_bad_trainer_arguments(planar, kwargs, exc, match):
    X, Y = planar
    with pytest.raises(exc, match=match):
        fusedmlp.train(X, Y, epochs=2, **kwargs)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"dtype": "int8"}, "not float32 or float64"),
        ({"dtype": "complex128"}, "not float32 or float64"),
        ({"version": "2"}, "format version is '2'"),
        ({"version": None}, "format version is None"),
        ({"lr": -1}, "lr must be a finite number > 0"),
        ({"backend": "cuda"}, "unknown backend 'cuda'"),
        ({"batch_size": "abc"}, "batch_size must be an integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"epochs": "5"}, "epochs must be an integer"),
        ({"activation": "softmax"}, "unknown activation"),
    ],
)
def test_doctored_configuration_is_refused(planar, tmp_path, change, words):
    # every value load hands back is checked: a bad one never becomes a model
    import json

    X, Y = planar
    good = fusedmlp.save(tmp_path / "good.npz", fusedmlp.train(X, Y, epochs=5, seed=2))
    with np.load(good) as npz:
        arrays = {k: npz[k] for k in npz.files}
    config = json.loads(str(arrays["config"]))
    config.update(change)
    arrays["config"] = np.array(json.dumps(config))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="not a readable fusedmlp checkpoint") as err:
        fusedmlp.load(bad)
    assert words in str(err.value)


def test_save_to_a_missing_folder_or_a_directory(planar, tmp_path):
    X, Y = planar
    res = fusedmlp.train(X, Y, epochs=2, seed=2)
    with pytest.raises(FileNotFoundError, match="the folder .*nowhere does not exist"):
        fusedmlp.save(tmp_path / "nowhere" / "m.npz", res)
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        fusedmlp.save(tmp_path, res)
    res.info["count"] = np.int64(3)  # numpy scalars in info are stored as plain numbers
    assert fusedmlp.load(fusedmlp.save(tmp_path / "i.npz", res)).info["count"] == 3
    assert oct((tmp_path / "i.npz").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old
