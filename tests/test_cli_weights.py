"""``--sample-weight FILE`` of train and sweep: the Python API's sample_weight from a file
(``fusedmlp.files.read_weights``), recorded in the summary, read again by --resume."""

import json

import numpy as np
import pytest
from test_cli import assert_one_error_line, run, same_params

import fusedmlp
from fusedmlp import files


@pytest.fixture
def weights(planar, tmp_path):
    X, _ = planar
    w = np.random.default_rng(4).uniform(0.2, 3.0, X.shape[1])
    np.save(tmp_path / "w.npy", w)
    return w


def test_train_weighs_the_samples_as_the_api(capsys, tmp_path, planar, weights):
    X, Y = planar
    ref = fusedmlp.train(X, Y, epochs=200, seed=2, lr=0.2, sample_weight=weights)
    plain = fusedmlp.train(X, Y, epochs=200, seed=2, lr=0.2)
    rc, out, err = run(capsys, "train", "--sample-weight", tmp_path / "w.npy", "--epochs", 200,
                       "--out", tmp_path / "o")  # fmt: skip
    assert rc == 0, err
    assert f"weighted by {tmp_path / 'w.npy'}" in out
    model = fusedmlp.load(tmp_path / "o" / "model.npz")
    assert same_params(model.params, ref.params)
    assert not same_params(model.params, plain.params)  # the weights did change the run
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["weights_file"] == str((tmp_path / "w.npy").resolve())


def test_a_text_file_of_weights_gives_the_same_run(capsys, tmp_path, planar, weights):
    np.savetxt(tmp_path / "w.csv", weights, fmt="%.17g")  # one number per line, exact
    for name in ("w.npy", "w.csv"):
        rc, _, err = run(capsys, "train", "--sample-weight", tmp_path / name, "--epochs", 20,
                         "--out", tmp_path / name.replace(".", "-"))  # fmt: skip
        assert rc == 0, err
    a = fusedmlp.load(tmp_path / "w-npy" / "model.npz")
    b = fusedmlp.load(tmp_path / "w-csv" / "model.npz")
    assert same_params(a.params, b.params)


def test_resume_reads_the_weights_again(capsys, tmp_path, planar, weights):
    X, Y = planar
    ref = fusedmlp.train(X, Y, epochs=300, seed=2, lr=0.2, sample_weight=weights)
    rc, _, err = run(capsys, "train", "--sample-weight", tmp_path / "w.npy", "--epochs", 100,
                     "--out", tmp_path / "a")  # fmt: skip
    assert rc == 0, err
    rc, out, err = run(capsys, "train", "--resume", tmp_path / "a" / "model.npz",
                       "--epochs", 200, "--out", tmp_path / "b")  # fmt: skip
    assert rc == 0, err
    assert "weighted by" in out
    model = fusedmlp.load(tmp_path / "b" / "model.npz")
    assert same_params(model.params, ref.params)  # 100 + 200 weighted epochs = 300
    (tmp_path / "w.npy").unlink()
    rc, _, err = run(capsys, "train", "--resume", tmp_path / "b" / "model.npz",
                     "--epochs", 1, "--out", tmp_path / "c")  # fmt: skip
    assert rc == 2
    assert_one_error_line(err)
    assert "sample weights of" in err and "which is gone; pass them with --sample-weight" in err


def test_sweep_takes_the_weights(capsys, tmp_path, planar, weights):
    X, Y = planar
    rc, out, err = run(capsys, "sweep", "--sample-weight", tmp_path / "w.npy", "--hidden", 3,
                       "--epochs", 50, "--out", tmp_path / "s")  # fmt: skip
    assert rc == 0, err
    table = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert table["weights_file"] == str((tmp_path / "w.npy").resolve())
    # the sweep's defaults: tanh, cross-entropy, lr 1.2, the exercise's seed 2
    kw = dict(hidden=3, epochs=50, seed=2, activation="tanh", loss="cross_entropy", lr=1.2)
    ref = fusedmlp.train(X, Y, sample_weight=weights, **kw)
    plain = fusedmlp.train(X, Y, **kw)
    final = [row["final_loss"] for row in table["runs"]]
    assert final == [float(ref.losses[-1])] and final != [float(plain.losses[-1])]


@pytest.mark.parametrize(
    "content, code, words",
    [
        (np.ones(7), 2, "holds 7 weights but the data has 400 samples"),
        (np.ones((2, 400)), 1, "holds an array of shape (2, 400)"),
        (np.r_[-1.0, np.ones(399)], 1, "sample_weight must be finite and >= 0; sample 0 has -1"),
        (np.zeros(400), 1, "sample_weight is 0 for every sample"),
        ("1\n2\nthree\n", 1, "cannot read"),
    ],
)
def test_bad_weights_are_one_clear_error(capsys, tmp_path, content, code, words):
    path = tmp_path / ("w.txt" if isinstance(content, str) else "w.npy")
    if isinstance(content, str):
        path.write_text(content)
    else:
        np.save(path, content)
    rc, _, err = run(capsys, "train", "--sample-weight", path, "--epochs", 1,
                     "--out", tmp_path / "o")  # fmt: skip
    assert rc == code, err
    assert_one_error_line(err)
    assert words in err


def test_missing_weights_file_and_weights_as_an_output(capsys, tmp_path):
    rc, _, err = run(capsys, "train", "--sample-weight", tmp_path / "none.npy", "--out",
                     tmp_path / "o")  # fmt: skip
    assert rc == 1 and "none.npy" in err
    assert_one_error_line(err)
    (tmp_path / "summary.json").write_text("1\n" * 400)  # weights where the summary goes
    rc, _, err = run(capsys, "train", "--sample-weight", tmp_path / "summary.json",
                     "--epochs", 1, "--out", tmp_path)  # fmt: skip
    assert rc == 2
    assert_one_error_line(err)
    assert "would destroy the weights file" in err
    assert (tmp_path / "summary.json").read_text() == "1\n" * 400


def test_read_weights_takes_a_row_or_a_column():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        for shape in ((5,), (1, 5), (5, 1)):
            np.save(Path(folder) / "w.npy", np.arange(5.0).reshape(shape))
            w = files.read_weights(Path(folder) / "w.npy", 5)
            assert w.shape == (5,) and w.dtype == np.float64
