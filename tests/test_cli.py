"""The command line: each command against the Python API it wraps, run independently."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusedmlp
import fusedmlp.cli
import fusedmlp.cli.training
from fusedmlp import datasets
from fusedmlp.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    """main(argv) in this process -> (exit status, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def same_params(a, b):
    return all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def assert_one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fusedmlp: error: ")
    assert "Traceback" not in err


# ---------------------------------------------------------------------------
# train


def test_defaults_reproduce_the_exercise(capsys, tmp_path, planar):
    X, Y = planar
    ref = fusedmlp.train(X, Y, epochs=3000, seed=2, lr=0.2)  # 2-4-1, sigmoid + mse
    acc = fusedmlp.accuracy(ref.params, X, Y)
    out_dir = tmp_path / "run"
    rc, out, err = run(capsys, "train", "--out", out_dir)
    assert rc == 0, err
    logged = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert logged == [f"Epoch {i}: loss {ref.losses[i]:.6f}" for i in range(0, 3000, 100)]
    assert f"Accuracy: {100 * acc:.2f}%" in out

    model = fusedmlp.load(out_dir / "model.npz")
    assert same_params(model.params, ref.params)
    assert np.array_equal(model.losses, ref.losses)
    for png in ("decision_boundary.png", "loss.png"):
        assert (out_dir / png).read_bytes()[:8] == PNG_SIGNATURE

    s = json.loads((out_dir / "summary.json").read_text())
    expected = {
        "dataset": "planar",
        "data_file": None,
        "m": 400,
        "data_seed": 1,
        "sizes": {"n_x": 2, "n_h": 4, "n_y": 1},
        "activation": "sigmoid",
        "loss": "mse",
        "lr": 0.2,
        "epochs": 3000,
        "final_loss": float(ref.losses[-1]),
        "accuracy": acc,
        "backend": "numba",
        "dtype": "float64",
        "init_seed": 2,
        "batch_size": None,
        "stop_epoch": None,
        "interrupted": False,
    }
    assert {k: s[k] for k in expected} == expected
    assert 0 < s["seconds"] < 60
    assert s["threads"] >= 1
    assert set(s["files"]) == {"checkpoint", "decision_boundary", "loss_curve", "summary"}
    assert all(Path(p).is_file() for p in s["files"].values())


def test_every_trainer_option_reaches_train(capsys, tmp_path):
    X, Y = datasets.moons(m=90, seed=3)
    kw = dict(hidden=5, activation="tanh", loss="cross_entropy", lr=0.5, batch_size=32)
    ref = fusedmlp.train(X.astype(np.float32), Y, epochs=40, seed=7, backend="numpy", **kw)
    rc, out, err = run(
        capsys,
        "train", "--dataset", "moons", "--m", 90, "--seed", 3, "--hidden", 5,
        "--activation", "tanh", "--loss", "cross_entropy", "--lr", 0.5, "--batch-size", 32,
        "--epochs", 40, "--init-seed", 7, "--backend", "numpy", "--dtype", "float32",
        "--log-every", 10, "--threads", 1, "--out", tmp_path,
    )  # fmt: skip
    assert rc == 0, err
    assert [line for line in out.splitlines() if line.startswith("Epoch")] == [
        f"Epoch {i}: loss {ref.losses[i]:.6f}" for i in (0, 10, 20, 30)
    ]
    model = fusedmlp.load(tmp_path / "model.npz")
    assert model.params["W1"].dtype == np.float32
    assert same_params(model.params, ref.params)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert (s["dataset"], s["m"], s["data_seed"], s["batch_size"]) == ("moons", 90, 3, 32)
    assert (s["backend"], s["dtype"], s["threads"]) == ("numpy", "float32", 1)


def test_early_stop_and_quiet(capsys, tmp_path, planar):
    X, Y = planar
    ref = fusedmlp.train(X, Y, epochs=300, seed=2, lr=0.2, tol=1e-4, patience=5)
    assert ref.stop_epoch is not None  # the loss is flat at first
    rc, out, err = run(
        capsys, "train", "--epochs", 300, "--tol", 1e-4, "--patience", 5, "--quiet",
        "--out", tmp_path,
    )  # fmt: skip
    assert rc == 0, err
    assert out.splitlines() == [out.strip()]  # --quiet: the result line only
    assert out.startswith("Accuracy: ")
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["stop_epoch"] == ref.stop_epoch and s["epochs"] == ref.epochs
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_SIGNATURE


def test_resume_continues_bit_for_bit(capsys, tmp_path, planar):
    X, Y = planar
    ref = fusedmlp.train(X, Y, epochs=3000, seed=2, lr=0.2)
    assert run(capsys, "train", "--epochs", 1000, "--out", tmp_path / "a")[0] == 0
    # no data options: the checkpoint says which data it was trained on
    rc, out, err = run(
        capsys, "train", "--resume", tmp_path / "a" / "model.npz", "--epochs", 2000,
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert rc == 0, err
    assert f"Epoch 1000: loss {ref.losses[1000]:.6f}" in out
    back = fusedmlp.load(tmp_path / "b" / "model.npz")
    assert back.epochs == 3000
    assert same_params(back.params, ref.params)
    assert np.array_equal(back.losses, ref.losses)
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert (s["epochs"], s["epochs_this_run"]) == (3000, 2000)


# ---------------------------------------------------------------------------
# data files


def features(m=60, seed=0):
    """Three features, labels from the first: one sample per column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, m))
    return X, (X[:1] > 0).astype(np.float64)


def train_ref(X, Y, epochs=50):
    return fusedmlp.train(X, Y, epochs=epochs, seed=2, lr=0.2)


def test_data_npz(capsys, tmp_path):
    X, Y = features()
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    rc, out, err = run(capsys, "train", "--data", tmp_path / "d.npz", "--epochs", 50,
                       "--out", tmp_path / "o")  # fmt: skip
    assert rc == 0, err
    assert "decision_boundary.png skipped" in out  # 3 inputs
    assert not (tmp_path / "o" / "decision_boundary.png").exists()
    assert same_params(fusedmlp.load(tmp_path / "o" / "model.npz").params, train_ref(X, Y).params)
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["data_file"] == str((tmp_path / "d.npz").resolve()) and s["dataset"] is None
    assert s["sizes"] == {"n_x": 3, "n_h": 4, "n_y": 1} and s["m"] == 60


def test_data_npy_pair(capsys, tmp_path):
    X, Y = features()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y.ravel())  # (m,) is one output
    rc, out, err = run(capsys, "train", "--data", tmp_path / "X.npy", "--labels",
                       tmp_path / "Y.npy", "--epochs", 50, "--out", tmp_path)  # fmt: skip
    assert rc == 0, err
    assert same_params(fusedmlp.load(tmp_path / "model.npz").params, train_ref(X, Y).params)


def test_data_csv_rows_are_samples(capsys, tmp_path):
    X, Y = features()
    # label in the middle, named in a header: features are the other columns, in order
    rows = ["a,label,b,c"] + [
        f"{x[0]!r},{y:g},{x[1]!r},{x[2]!r}"
        for x, y in zip(X.T.tolist(), Y[0].tolist(), strict=True)
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    rc, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--label-column",
                       "label", "--epochs", 50, "--out", tmp_path / "o")  # fmt: skip
    assert rc == 0, err
    assert "m = 60" in out and "network 3-4-1" in out
    assert same_params(fusedmlp.load(tmp_path / "o" / "model.npz").params, train_ref(X, Y).params)

    # no header, label last by default
    np.savetxt(tmp_path / "n.csv", np.column_stack([X.T, Y.T]), delimiter=",", fmt="%.17g")
    rc, out, err = run(capsys, "train", "--data", tmp_path / "n.csv", "--epochs", 50,
                       "--out", tmp_path / "n")  # fmt: skip
    assert rc == 0, err
    assert same_params(fusedmlp.load(tmp_path / "n" / "model.npz").params, train_ref(X, Y).params)


# ---------------------------------------------------------------------------
# sweep, explain, predict


def test_sweep(capsys, tmp_path, planar):
    X, Y = planar
    rc, out, err = run(capsys, "sweep", "--hidden", 2, 3, "--epochs", 200, "--out", tmp_path)
    assert rc == 0, err
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG_SIGNATURE
    table = json.loads((tmp_path / "sweep.json").read_text())
    assert (table["activation"], table["loss"], table["lr"]) == ("tanh", "cross_entropy", 1.2)
    assert [r["hidden"] for r in table["runs"]] == [2, 3]
    lines = out.splitlines()
    for h, row in zip((2, 3), table["runs"], strict=True):
        ref = fusedmlp.train(
            X, Y, hidden=h, activation="tanh", loss="cross_entropy", lr=1.2, epochs=200, seed=2
        )
        acc = fusedmlp.accuracy(ref.params, X, Y, activation="tanh")
        assert row["accuracy"] == acc and row["final_loss"] == float(ref.losses[-1])
        printed = [line.split() for line in lines if line.split()[:1] == [str(h)]]
        assert printed[0][:3] == [str(h), f"{100 * acc:.2f}%", f"{ref.losses[-1]:.6f}"]


def test_explain_prints_the_shapes(capsys):
    rc, out, err = run(capsys, "explain", "--n-x", 3, "--n-h", 5, "--n-y", 2, "--m", 10,
                       "--activation", "tanh", "--loss", "cross_entropy")  # fmt: skip
    assert rc == 0, err
    shapes = {line.split()[0]: line for line in out.splitlines()[2:]}
    for term, shape in {"X": "(3, 10)", "Z1": "(5, 10)", "A2": "(2, 10)", "dW1": "(5, 3)",
                        "db1": "(5, 1)", "dW2": "(2, 5)", "db2": "(2, 1)"}.items():  # fmt: skip
        assert shape in shapes[term], shapes[term]
    assert "tanh" in out and "cross_entropy" in out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    X, Y = datasets.planar(m=50)
    res = fusedmlp.train(X, Y, epochs=200, seed=2, activation="tanh", lr=1.0)
    d = tmp_path_factory.mktemp("model")
    fusedmlp.save(d / "model.npz", res)
    return d / "model.npz", res, X


def test_predict_labels_and_proba(capsys, tmp_path, model):
    path, res, X = model
    np.savez(tmp_path / "x.npz", X=X)
    labels = fusedmlp.predict(res.params, X, activation="tanh")
    proba = fusedmlp.predict_proba(res.params, X, activation="tanh")

    rc, out, err = run(capsys, "predict", path, tmp_path / "x.npz")
    assert rc == 0, err
    assert out.splitlines() == [str(v) for v in labels[0]]
    rc, out, err = run(capsys, "predict", path, tmp_path / "x.npz", "--proba")
    assert rc == 0, err
    assert np.array_equal(np.array([float(v) for v in out.split()]), proba[0])

    # a csv of samples in rows, with a label column to leave out; outputs by suffix
    np.savetxt(tmp_path / "x.csv", np.column_stack([X.T, labels.T]), delimiter=",", fmt="%.17g")
    rc, out, err = run(capsys, "predict", path, tmp_path / "x.csv", "--label-column", -1,
                       "--proba", "--output", tmp_path / "p.csv")  # fmt: skip
    assert rc == 0, err
    assert np.array_equal(np.loadtxt(tmp_path / "p.csv", delimiter=",", ndmin=2).T, proba)
    np.save(tmp_path / "x.npy", X)
    rc, out, err = run(capsys, "predict", path, tmp_path / "x.npy", "--output",
                       tmp_path / "l.npy")  # fmt: skip
    assert rc == 0, err
    assert np.array_equal(np.load(tmp_path / "l.npy"), labels)


# ---------------------------------------------------------------------------
# errors: one line, no traceback, 2 for usage and 1 for the rest


def write_bad_files(d):
    (d / "bad.csv").write_text("a,b,y\n1,2,0\n3,red,1\n")
    (d / "garbage.npz").write_bytes(b"\x00garbage, not a checkpoint\xff" * 10)
    X, Y = features()
    np.savez(d / "rows.npz", X=X.T, Y=Y)


@pytest.mark.parametrize(
    "argv, code, words",
    [
        (["train", "--data", "{d}/missing.npz"], 1, "no data file"),
        (["train", "--dataset", "nosuch"], 2, "invalid choice"),
        (["train", "--lr", "-1"], 2, "--lr"),
        (["train", "--lr", "fast"], 2, "--lr"),
        (["train", "--epochs", "1.5"], 2, "--epochs"),
        (["train", "--data", "{d}/bad.csv"], 1, "'b' (index 1) is not numeric"),
        (["train", "--data", "{d}/rows.npz"], 1, "save X.T"),
        (["train", "--resume", "{d}/garbage.npz"], 1, "not a readable fusedmlp checkpoint"),
        (["predict", "{d}/garbage.npz", "{d}/rows.npz"], 1, "not a readable fusedmlp checkpoint"),
        (["predict", "{d}/missing.npz", "{d}/rows.npz"], 1, "no checkpoint"),
        (["train", "--hidden", "0"], 2, "--hidden"),
        (["sweep", "--activation", "softmax"], 2, "invalid choice"),
        ([], 2, "required"),
    ],
)
def test_errors_are_one_line(capsys, tmp_path, argv, code, words):
    write_bad_files(tmp_path)
    argv = [a.format(d=tmp_path) for a in argv] + (
        ["--out", str(tmp_path / "o")] * ("train" in argv)
    )
    rc, out, err = run(capsys, *argv)
    assert rc == code
    assert_one_error_line(err)
    assert words in err


def test_divergence_saves_last_finite_params(capsys, tmp_path, planar):
    X, Y = planar
    kw = dict(activation="relu", loss="cross_entropy", lr=1e150, epochs=50, seed=2)
    with pytest.raises(fusedmlp.TrainingDiverged) as info:
        fusedmlp.train(X, Y, **kw)
    rc, out, err = run(capsys, "train", "--activation", "relu", "--loss", "cross_entropy",
                       "--lr", 1e150, "--epochs", 50, "--out", tmp_path)  # fmt: skip
    assert rc == 1
    assert_one_error_line(err)
    assert f"diverged at epoch {info.value.epoch}" in err
    saved = fusedmlp.load(tmp_path / "model.npz")
    assert same_params(saved.params, info.value.params)
    assert all(np.isfinite(v).all() for v in saved.params.values())


def test_interrupted_run_is_saved(capsys, tmp_path, monkeypatch):
    real = fusedmlp.cli.training.train

    def ctrl_c(*args, **kwargs):  # what train returns when Ctrl-C stopped it
        res = real(*args, **kwargs)
        res.interrupted = True
        return res

    monkeypatch.setattr(fusedmlp.cli.training, "train", ctrl_c)
    rc, out, err = run(capsys, "train", "--epochs", 30, "--out", tmp_path)
    assert rc == 130
    assert "interrupted" in out and "--resume" in out
    assert json.loads((tmp_path / "summary.json").read_text())["interrupted"] is True
    assert fusedmlp.load(tmp_path / "model.npz").interrupted
    for png in ("decision_boundary.png", "loss.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_SIGNATURE


def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.strip() == f"fusedmlp {fusedmlp.__version__}"


# ---------------------------------------------------------------------------
# the installed entry points


def test_console_script(tmp_path, planar):
    X, Y = planar
    ref = fusedmlp.train(X, Y, epochs=300, seed=2, lr=0.2)
    exe = Path(sys.executable).with_name("fusedmlp" + (".exe" if os.name == "nt" else ""))
    done = subprocess.run(
        [str(exe), "train", "--epochs", "300"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"Epoch 200: loss {ref.losses[200]:.6f}" in done.stdout
    acc = fusedmlp.accuracy(ref.params, X, Y)
    assert f"Accuracy: {100 * acc:.2f}%" in done.stdout
    assert (tmp_path / "out" / "model.npz").is_file()  # the default --out


def test_python_m_reports_errors_without_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fusedmlp", "train", "--data", "missing.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert_one_error_line(done.stderr)
    assert "missing.csv" in done.stderr
