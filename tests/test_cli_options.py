"""The command line's output, optimizer and validation options, against the Python API."""

import json

import numpy as np
import pytest

# the command runners and checks of test_cli (pytest puts tests/ on sys.path)
from test_cli import PNG_SIGNATURE, assert_one_error_line, run, same_params

import fusedmlp
from fusedmlp import datasets


def summary(folder):
    return json.loads((folder / "summary.json").read_text())


# ---------------------------------------------------------------------------
# every option reaches train


@pytest.mark.parametrize(
    "options, kw",
    [
        (
            ["--optimizer", "nesterov", "--momentum", 0.8, "--alpha", 0.01,
             "--lr-schedule", "invscaling", "--power-t", 0.3, "--batch-size", 16],
            dict(optimizer="nesterov", momentum=0.8, alpha=0.01, lr_schedule="invscaling",
                 power_t=0.3, batch_size=16),
        ),
        (
            ["--optimizer", "adam", "--beta1", 0.8, "--beta2", 0.99, "--epsilon", 1e-6,
             "--lr", 0.01, "--lr-schedule", "adaptive"],
            dict(optimizer="adam", beta1=0.8, beta2=0.99, epsilon=1e-6, lr=0.01,
                 lr_schedule="adaptive"),
        ),
        (["--optimizer", "momentum"], dict(optimizer="momentum")),  # its own default lr
    ],
)  # fmt: skip
def test_optimizer_options_reach_train(capsys, tmp_path, options, kw):
    X, Y = datasets.moons(m=60, seed=3)
    ref = fusedmlp.train(X, Y, epochs=20, seed=2, **kw)
    rc, out, err = run(
        capsys, "train", "--dataset", "moons", "--m", 60, "--seed", 3, "--epochs", 20,
        *options, "--quiet", "--out", tmp_path,
    )  # fmt: skip
    assert rc == 0, err
    assert same_params(fusedmlp.load(tmp_path / "model.npz").params, ref.params)
    s = summary(tmp_path)
    expected = ref.settings.to_dict()
    assert expected.pop("seed") == s["init_seed"] == 2
    assert {k: s[k] for k in expected} == expected
    assert s["accuracy"] == fusedmlp.accuracy(ref.params, X, Y) and s["r2"] is None


def test_validation_fraction(capsys, tmp_path):
    X, Y = datasets.moons(m=80, seed=3)
    kw = dict(hidden=6, activation="tanh", lr=1.0, epochs=150, validation_fraction=0.25)
    ref = fusedmlp.train(X, Y, seed=2, patience=5, **kw)
    assert ref.best_epoch is not None and ref.best_epoch < ref.epochs - 1  # kept an earlier one
    rc, out, err = run(
        capsys, "train", "--dataset", "moons", "--m", 80, "--seed", 3, "--hidden", 6,
        "--activation", "tanh", "--lr", 1.0, "--epochs", 150, "--validation-fraction", 0.25,
        "--patience", 5, "--out", tmp_path,
    )  # fmt: skip
    assert rc == 0, err
    best = ref.best_epoch
    assert f"best accuracy {100 * ref.val_scores[best]:.2f}%" in out
    assert f"at epoch {best}" in out
    s = summary(tmp_path)
    assert (s["validation_fraction"], s["best_epoch"], s["stop_epoch"]) == (
        0.25, best, ref.stop_epoch,
    )  # fmt: skip
    assert s["val_score"] == ref.val_scores[best] and s["val_loss"] == ref.val_losses[best]
    assert s["final_val_score"] == ref.val_scores[-1]
    model = fusedmlp.load(tmp_path / "model.npz")
    assert same_params(model.params, ref.params)  # the best epoch's
    assert np.array_equal(model.val_scores, ref.val_scores)


def test_identity_output_prints_r2_and_skips_the_boundary(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 50))
    Y = np.sin(X[:1]) + 0.5 * X[1:]
    np.savez(tmp_path / "reg.npz", X=X, Y=Y)
    ref = fusedmlp.train(X, Y, output="identity", hidden=5, lr=0.05, epochs=100, seed=2)
    r2 = fusedmlp.score(ref.params, X, Y, output="identity")
    rc, out, err = run(
        capsys, "train", "--data", tmp_path / "reg.npz", "--output", "identity", "--hidden", 5,
        "--lr", 0.05, "--epochs", 100, "--out", tmp_path / "o",
    )  # fmt: skip
    assert rc == 0, err
    assert f"R^2: {r2:.6f}" in out and "Accuracy" not in out
    assert "decision_boundary.png skipped: an identity output" in out
    assert not (tmp_path / "o" / "decision_boundary.png").exists()
    s = summary(tmp_path / "o")
    assert (s["output"], s["loss"], s["r2"], s["accuracy"]) == ("identity", "mse", r2, None)

    # predict from the saved model: values, no flag repeated, exactly as printed
    rc, out, err = run(capsys, "predict", tmp_path / "o" / "model.npz", tmp_path / "reg.npz")
    assert rc == 0, err
    values = fusedmlp.predict(ref.params, X, output="identity")
    assert np.array_equal(np.array([float(v) for v in out.split()]), values[0])


# ---------------------------------------------------------------------------
# several classes: spirals, softmax, predict


def test_spirals_trains_softmax_and_draws_its_classes(capsys, tmp_path):
    X, y = datasets.spirals(m=90)
    ref = fusedmlp.train(X, y, output="softmax", hidden=8, epochs=30, seed=2)
    rc, out, err = run(capsys, "train", "--dataset", "spirals", "--m", 90, "--hidden", 8,
                       "--epochs", 30, "--out", tmp_path)  # fmt: skip
    assert rc == 0, err
    assert "network 2-8-3" in out and "softmax output, cross_entropy" in out
    acc = fusedmlp.accuracy(ref.params, X, y, output="softmax")
    assert f"Accuracy: {100 * acc:.2f}%" in out
    assert same_params(fusedmlp.load(tmp_path / "model.npz").params, ref.params)
    s = summary(tmp_path)
    assert (s["dataset"], s["m"], s["output"], s["loss"]) == ("spirals", 90, "softmax",
                                                             "cross_entropy")  # fmt: skip
    assert s["sizes"] == {"n_x": 2, "n_h": 8, "n_y": 3} and s["accuracy"] == acc
    assert (tmp_path / "decision_boundary.png").read_bytes()[:8] == PNG_SIGNATURE


def test_spirals_with_a_sigmoid_output_is_refused(capsys, tmp_path):
    rc, out, err = run(capsys, "train", "--dataset", "spirals", "--output", "sigmoid",
                       "--out", tmp_path)  # fmt: skip
    assert rc == 2
    assert_one_error_line(err)
    assert "class indices of 3 classes" in err and "--output softmax" in err
    assert not (tmp_path / "model.npz").exists()


def test_a_csv_label_column_of_classes_takes_output_softmax(capsys, tmp_path):
    X, y = datasets.spirals(m=60)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X.T, y]), delimiter=",", fmt="%.17g")
    rc, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--out", tmp_path / "a")
    assert rc == 2  # float labels 0, 1, 2 under the default sigmoid: refused, with the fix
    assert_one_error_line(err)
    assert "--output softmax" in err
    ref = fusedmlp.train(X, y, output="softmax", epochs=20, seed=2)
    rc, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--output", "softmax",
                       "--epochs", 20, "--out", tmp_path / "b")  # fmt: skip
    assert rc == 0, err
    assert same_params(fusedmlp.load(tmp_path / "b" / "model.npz").params, ref.params)


@pytest.fixture(scope="module")
def softmax_model(tmp_path_factory):
    X, y = datasets.spirals(m=60)
    res = fusedmlp.train(X, y, output="softmax", activation="relu", hidden=8, epochs=50, seed=2)
    d = tmp_path_factory.mktemp("softmax")
    fusedmlp.save(d / "model.npz", res)
    np.savez(d / "x.npz", X=X)
    return d, res, X


def test_predict_from_a_softmax_model_gives_class_indices(capsys, tmp_path, softmax_model):
    d, res, X = softmax_model
    classes = fusedmlp.predict(res.params, X, activation="relu", output="softmax")
    assert len(set(classes.tolist())) > 1  # not one class for everything

    rc, out, err = run(capsys, "predict", d / "model.npz", d / "x.npz")
    assert rc == 0, err
    assert out.splitlines() == [str(c) for c in classes]
    rc, out, err = run(capsys, "predict", d / "model.npz", d / "x.npz", "--proba")
    assert rc == 0, err
    proba = fusedmlp.predict_proba(res.params, X, activation="relu", output="softmax")
    assert np.array_equal(np.loadtxt(out.splitlines(), ndmin=2).T, proba)
    rc, out, err = run(capsys, "predict", d / "model.npz", d / "x.npz", "--output",
                       tmp_path / "c.npy")  # fmt: skip
    assert rc == 0, err
    saved = np.load(tmp_path / "c.npy")
    assert saved.dtype == np.int64 and np.array_equal(saved, classes)  # usable as --labels


def test_sweep_takes_the_options(capsys, tmp_path):
    X, y = datasets.spirals(m=60)
    rc, out, err = run(capsys, "sweep", "--dataset", "spirals", "--m", 60, "--hidden", 3, 5,
                       "--optimizer", "adam", "--lr", 0.01, "--epochs", 20,
                       "--out", tmp_path)  # fmt: skip
    assert rc == 0, err
    assert "sweep.png skipped" in out  # the sweep picture draws sigmoid networks only
    table = json.loads((tmp_path / "sweep.json").read_text())
    assert (table["output"], table["optimizer"], table["activation"]) == ("softmax", "adam",
                                                                         "tanh")  # fmt: skip
    for h, row in zip((3, 5), table["runs"], strict=True):
        ref = fusedmlp.train(X, y, hidden=h, activation="tanh", output="softmax",
                             optimizer="adam", lr=0.01, epochs=20, seed=2)  # fmt: skip
        assert row["accuracy"] == fusedmlp.accuracy(
            ref.params, X, y, activation="tanh", output="softmax"
        )


# ---------------------------------------------------------------------------
# bad values and resumed runs


@pytest.mark.parametrize(
    "options, words",
    [
        (["--optimizer", "momentum", "--momentum", "1.5"], "momentum must be in [0, 1), got 1.5"),
        (["--alpha", "-1"], "alpha (the L2 penalty) must be >= 0, got -1.0"),
        (["--optimizer", "adam", "--momentum", "0.5"], "momentum=0.5 is an option of momentum"),
        (["--validation-fraction", "2"], "validation_fraction must be in (0, 1), got 2.0"),
        (["--optimizer", "adam", "--epsilon", "0"], "epsilon must be > 0, got 0.0"),
        (["--power-t", "0.3"], "power_t=0.3 is an option of lr_schedule='invscaling'"),
        (["--output", "identity", "--loss", "cross_entropy"], "loss='cross_entropy' does not go"),
        (["--beta2", "x"], "--beta2: expected a number, got 'x'"),
        (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    ],
)
def test_bad_values_are_usage_errors(capsys, tmp_path, options, words):
    rc, out, err = run(capsys, "train", *options, "--out", tmp_path)
    assert rc == 2
    assert_one_error_line(err)
    assert words in err
    assert not (tmp_path / "model.npz").exists()  # refused before anything ran


def test_resume_keeps_the_saved_settings(capsys, tmp_path):
    # adam's moments and the invscaling rate carry on: 10 + 10 epochs equal 20
    X, Y = datasets.moons(m=60, seed=3)
    kw = dict(optimizer="adam", lr=0.01, lr_schedule="invscaling", power_t=0.3, alpha=0.01)
    ref = fusedmlp.train(X, Y, epochs=20, seed=2, **kw)
    data = ["--dataset", "moons", "--m", 60, "--seed", 3]
    rc, out, err = run(
        capsys, "train", *data, "--optimizer", "adam", "--lr", 0.01, "--lr-schedule",
        "invscaling", "--power-t", 0.3, "--alpha", 0.01, "--epochs", 10, "--out", tmp_path / "a",
    )  # fmt: skip
    assert rc == 0, err
    model = tmp_path / "a" / "model.npz"
    rc, out, err = run(capsys, "train", "--resume", model, "--epochs", 10, "--out", tmp_path / "b")
    assert rc == 0, err
    back = fusedmlp.load(tmp_path / "b" / "model.npz")
    assert same_params(back.params, ref.params) and np.array_equal(back.losses, ref.losses)
    s = summary(tmp_path / "b")
    assert (s["optimizer"], s["lr_schedule"], s["power_t"], s["alpha"]) == (
        "adam", "invscaling", 0.3, 0.01,
    )  # fmt: skip

    # another optimizer or output for the resumed run: the API's refusal, one line
    for option, value in (("--optimizer", "momentum"), ("--output", "identity")):
        rc, out, err = run(capsys, "train", "--resume", model, option, value,
                           "--out", tmp_path / "c")  # fmt: skip
        assert rc == 2
        assert_one_error_line(err)
        assert f"{option[2:]}='{value}' but the resumed run used" in err
    assert not (tmp_path / "c" / "model.npz").exists()


def test_m_help_names_each_default_size(capsys):
    rc, out, _ = run(capsys, "train", "--help")
    assert rc == 0
    text = " ".join(out.split())
    assert "400 for planar, 300 for spirals, 200 for the others" in text


# ---------------------------------------------------------------------------
# explain shows the output layer and the L2 terms


def test_explain_takes_the_output_and_alpha(capsys):
    rc, out, _ = run(capsys, "explain", "--n-y", 3, "--output", "softmax", "--alpha", 0.1)
    assert rc == 0
    assert "softmax output, cross_entropy, L2 alpha = 0.1" in out
    assert "E / E.sum(axis=0, keepdims=True)" in out and "(alpha/m) * W1" in out
    rc, out, _ = run(capsys, "explain", "--output", "identity")
    assert rc == 0 and "identity: no output function" in out and "(2/m) * (A2 - Y)" in out
    rc, _, err = run(capsys, "explain", "--output", "softmax")  # one output
    assert rc == 1
    assert_one_error_line(err)
    assert "softmax needs at least 2 outputs" in err
