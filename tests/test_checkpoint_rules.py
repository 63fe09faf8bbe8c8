"""Checkpoint files, continued: save checks a result with load's rules before it touches
the file, and load lets nothing from deep inside the reader escape. (Helpers are
test_checkpoint.py's; the ``runs`` fixture is in conftest.py.)"""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from test_checkpoint import NAMES, _arrays, _write

import fusedmlp
from fusedmlp import checkpoint

# ---------------------------------------------------------------------------
# save checks the result with load's rules before it touches the file


def _changed(res, **changes):
    return fusedmlp.TrainResult(**{**vars(res), **changes})


def _with_param(res, name, value):
    return _changed(res, params={**res.params, name: value})


def test_parameters_that_overflow_float32_are_refused(runs, tmp_path):
    X, Y = fusedmlp.datasets.planar(m=40)
    res = fusedmlp.train(X.astype(np.float32), Y, epochs=4, seed=2)
    assert res.dtype == np.float32
    path = tmp_path / "m.npz"
    fusedmlp.save(path, res)
    before = path.read_bytes()
    big = np.full_like(res.params["W1"], 1e39, dtype=np.float64)
    with np.errstate(over="ignore"):
        cases = {
            # float64 1e39 cast to float32: inf already
            "W1": _with_param(res, "W1", big.astype(np.float32)),
            # finite float64 in a float32 checkpoint: it would be inf once loaded
            "b2": _with_param(res, "b2", np.full((1, 1), -1e39)),
        }
    for name, bad in cases.items():
        with pytest.raises(
            ValueError, match=f"{name} contains inf: the parameters do not fit float32"
        ) as err:
            fusedmlp.save(path, bad)
        assert str(err.value).startswith(f"cannot save to {path}: ")
        assert path.read_bytes() == before  # the good checkpoint is untouched
        back = fusedmlp.load(path)
        assert back.epochs == 4 and all(np.isfinite(back.params[k]).all() for k in NAMES)
        assert os.listdir(tmp_path) == ["m.npz"]
    # and load, applying the same rules, refuses such a file written by hand
    arrays = _arrays(path)
    arrays["b2"] = np.full((1, 1), -1e39)
    text = str(arrays.pop("config"))
    _write(tmp_path / "hand.npz", arrays, text)
    with pytest.raises(ValueError, match="b2 contains inf: the parameters do not fit float32"):
        fusedmlp.load(tmp_path / "hand.npz")


def _bad_results(res):
    """(result that must not be saved, words the refusal contains, config change)."""
    n = res.epochs
    return [
        (_changed(res, lr=float("inf")), "lr must be a finite number > 0", {"lr": 1e400}),
        (_changed(res, lr=float("nan")), "lr must be a finite number > 0", None),
        (_changed(res, lr=0.0), "lr must be a finite number > 0", {"lr": 0}),
        (_changed(res, lr=10**400), "an integer of about 401 digits", {"lr": 10**400}),
        (
            _changed(res, seed=2**32),
            "seed must be an integer >= 0 and <= 2**32 - 1",
            {"seed": 2**32},
        ),  # fmt: skip
        (_changed(res, seed=-1), "seed must be an integer >= 0", {"seed": -1}),
        (_changed(res, seed=1.5), "seed must be an integer", {"seed": 1.5}),
        (_changed(res, batch_size=0), "batch_size must be an integer >= 1", {"batch_size": 0}),
        (_changed(res, activation="softmax"), "unknown activation", {"activation": "x"}),
        (_changed(res, loss="hinge"), "unknown loss", {"loss": "hinge"}),
        (_changed(res, backend="cuda"), "unknown backend 'cuda'", {"backend": "cuda"}),
        (
            _changed(res, stop_epoch=n),
            f"stop_epoch {n} is not one of the {n} epochs",
            {"stop_epoch": n},
        ),  # fmt: skip
        (
            _changed(res, stop_epoch=-1),
            "stop_epoch must be an integer >= 0",
            {"stop_epoch": -1},
        ),  # fmt: skip
        (
            _changed(res, interrupted="yes"),
            "interrupted must be true or false",
            {"interrupted": "yes"},
        ),  # fmt: skip
        (_changed(res, info={"f": object()}), "its info cannot be written as JSON", None),
        (_changed(res, info={(1, 2): 3}), "its info cannot be written as JSON", None),
        (_changed(res, info=[1, 2]), "info must be a dict", {"info": [1, 2]}),
        (_with_param(res, "W2", np.full((1, 4), np.nan)), "W2 contains NaN", None),
        (
            _with_param(res, "b1", np.zeros((4, 2))),
            "b1 has shape (4, 2) but must be (4, 1)",
            None,
        ),  # fmt: skip
        (
            _with_param(res, "W1", np.ones((4, 2), dtype=int)),
            "dtype int64 is not float32",
            {"dtype": "int64"},
        ),  # fmt: skip
        (
            _with_param(res, "W1", np.ones((4, 2), dtype=complex)),
            "complex128 is not float32",
            None,
        ),  # fmt: skip
        (_changed(res, losses=np.ones((n, 1))), "they must be 1-D", None),
        (_changed(res, losses=np.ones(n) + 1j), "losses have dtype complex128", None),
    ]


def test_results_that_would_not_load_are_not_saved(runs, tmp_path):
    good = runs[0]
    path = tmp_path / "m.npz"
    fusedmlp.save(path, good)
    before = path.read_bytes()
    fresh = tmp_path / "fresh.npz"
    for bad, words, change in _bad_results(good):
        for target in (path, fresh):
            with pytest.raises(ValueError) as err:
                fusedmlp.save(target, bad)
            message = str(err.value)
            assert words in message, (words, message)
            assert message.startswith(f"cannot save to {target}: ")
            assert "nothing was written" in message
        assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]
        if change is None:
            continue
        # the same rule, applied by load to a file written by hand
        arrays = _arrays(path)
        config = json.loads(str(arrays.pop("config")))
        config.update(change)
        _write(tmp_path / "hand.npz", arrays, json.dumps(config))
        with pytest.raises(ValueError, match="not a readable fusedmlp checkpoint") as err:
            fusedmlp.load(tmp_path / "hand.npz")
        assert words in str(err.value), (words, str(err.value))
        os.remove(tmp_path / "hand.npz")
    assert fusedmlp.load(path).epochs == 3


def test_results_of_every_kind_round_trip(tmp_path):
    X, Y = fusedmlp.datasets.planar(m=60)
    results = [
        fusedmlp.train(X, Y, epochs=0, seed=1),
        fusedmlp.train(X.astype(np.float32), Y, epochs=5, seed=2**32 - 1, batch_size=16),
        fusedmlp.train(X, Y, epochs=4000, seed=3, tol=1e-2, patience=2),
        fusedmlp.train(X, Y, epochs=6, seed=None, activation="relu", backend="numpy"),
    ]
    assert results[2].stop_epoch is not None and results[2].stop_epoch < results[2].epochs
    results[3].info.update(n=np.int64(3), v=np.arange(3.0), nested={"a": [1, None, "x"]})
    results.append(_changed(results[3], interrupted=True, lr=np.float32(0.25)))
    for i, res in enumerate(results):
        back = fusedmlp.load(fusedmlp.save(tmp_path / f"{i}.npz", res))
        assert back.dtype == res.dtype and back.sizes == res.sizes
        for k in NAMES:
            np.testing.assert_array_equal(back.params[k], res.params[k])
            assert back.params[k].dtype == res.params[k].dtype
        np.testing.assert_array_equal(back.losses, res.losses)
        for field in ("activation", "loss", "lr", "backend", "seed", "batch_size"):
            assert getattr(back, field) == getattr(res, field), field
        assert (back.interrupted, back.stop_epoch) == (res.interrupted, res.stop_epoch)
    assert fusedmlp.load(tmp_path / "3.npz").info["v"] == [0.0, 1.0, 2.0]
    assert fusedmlp.load(tmp_path / "3.npz").info["nested"] == {"a": [1, None, "x"]}


def test_save_and_load_share_one_rule_book(runs, tmp_path, monkeypatch):
    # a rule added in one place holds for both: save refuses what load would refuse
    seen = []
    validate = checkpoint._validate

    def spy(arrays, text):
        seen.append(json.loads(text)["epochs"])
        return validate(arrays, text)

    monkeypatch.setattr(checkpoint, "_validate", spy)
    fusedmlp.load(fusedmlp.save(tmp_path / "m.npz", runs[1]))
    assert seen == [7, 7]


# ---------------------------------------------------------------------------
# load: nothing from deep inside the reader escapes


def _good(path, res) -> tuple[dict, dict]:
    fusedmlp.save(path, res)
    arrays = _arrays(path)
    return arrays, json.loads(str(arrays.pop("config")))


def _refused(path, *words):
    with pytest.raises(ValueError, match="is not a readable fusedmlp checkpoint: ") as err:
        fusedmlp.load(path)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_deeply_nested_configuration(runs, tmp_path):
    arrays, config = _good(tmp_path / "good.npz", runs[0])
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(config)[:-1] + f', "info": {{"x": {deep}}}}}'
    _write(tmp_path / "deep_info.npz", arrays, text)
    _refused(tmp_path / "deep_info.npz", "nests too deeply")
    _write(tmp_path / "deep.npz", arrays, deep)
    _refused(tmp_path / "deep.npz", "nests too deeply")
    _write(tmp_path / "deep_dicts.npz", arrays, '{"a":' * 100_000 + "1" + "}" * 100_000)
    _refused(tmp_path / "deep_dicts.npz", "nests too deeply")


@pytest.mark.parametrize(
    "literal, words",
    [
        ("1" + "0" * 400, "lr must be a finite number > 0, got an integer of about 401 digits"),
        ("1e400", "lr must be a finite number > 0, got inf"),
        ("-1e400", "lr must be a finite number > 0, got -inf"),
        ("9" * 5000, "configuration is not valid JSON"),  # past Python's limit on digits
    ],
)
def test_numbers_too_large_for_a_float(runs, tmp_path, literal, words):
    arrays, config = _good(tmp_path / "good.npz", runs[0])
    config["lr"] = "LR"
    _write(tmp_path / "lr.npz", arrays, json.dumps(config).replace('"LR"', literal))
    _refused(tmp_path / "lr.npz", words)


@pytest.mark.parametrize("seed", [2**32, 10**400, -(10**400)])
def test_huge_seeds(runs, tmp_path, seed):
    arrays, config = _good(tmp_path / "good.npz", runs[0])
    config["seed"] = seed
    _write(tmp_path / "seed.npz", arrays, json.dumps(config))
    _refused(tmp_path / "seed.npz", "seed must be an integer >= 0")


@pytest.mark.parametrize("key", ["epochs", "stop_epoch", "n_h"])
def test_huge_counts(runs, tmp_path, key):
    arrays, config = _good(tmp_path / "good.npz", runs[0])
    (config["sizes"] if key == "n_h" else config)[key] = 10**400
    _write(tmp_path / "count.npz", arrays, json.dumps(config))
    _refused(tmp_path / "count.npz")


def _npy(header: dict, payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


@pytest.mark.parametrize("name", ["W1", "losses", "config"])
def test_an_entry_claiming_enormous_size(runs, tmp_path, name):
    fusedmlp.save(tmp_path / "good.npz", runs[0])
    with zipfile.ZipFile(tmp_path / "good.npz") as z:
        members = {n: z.read(n) for n in z.namelist()}
    descr = "<U10" if name == "config" else "<f8"
    members[f"{name}.npy"] = _npy(
        {"descr": descr, "fortran_order": False, "shape": (10**6, 10**7)}, b"\0" * 80
    )
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    _refused(tmp_path / "huge.npz")


@pytest.mark.parametrize(
    "config", [np.array(3.0), np.array(["{}", "{}"]), np.array(b'{"format": 1}')]
)
def test_a_configuration_that_is_not_text(runs, tmp_path, config):
    fusedmlp.save(tmp_path / "good.npz", runs[0])
    arrays = _arrays(tmp_path / "good.npz")
    arrays["config"] = config
    np.savez(tmp_path / "odd.npz", **arrays)
    _refused(tmp_path / "odd.npz", "configuration entry")


def test_a_newer_format_still_asks_for_an_upgrade(runs, tmp_path):
    arrays, config = _good(tmp_path / "good.npz", runs[0])
    config["version"] = checkpoint.VERSION + 1
    _write(tmp_path / "new.npz", arrays, json.dumps(config))
    with pytest.raises(ValueError, match="written by a newer fusedmlp .* upgrade fusedmlp"):
        fusedmlp.load(tmp_path / "new.npz")
