"""Tests for the public API, continued: bad input refused with a clear error, and the
NaN/inf scan of the data in bounded slices. (Helpers are test_api.py's.)"""

import math
import re
import warnings

import numpy as np
import pytest
from test_api import _assert_params_equal, _ref_loop, _small

import fusedmlp
from fusedmlp import _validation, datasets


@pytest.fixture(scope="module")
def data():
    return datasets.planar(m=40, seed=1)


# --------------------------------------------------------------------------- #
# 5. bad inputs
# --------------------------------------------------------------------------- #
def _init(n_x=2, n_h=4, n_y=1, **changes):
    p = fusedmlp.init_params(n_x, n_h, n_y, seed=0)
    for k, v in changes.items():
        if v is None:
            del p[k]
        else:
            p[k] = v
    return p


def _case(**kw):
    """Train arguments for _small() with some replaced."""
    X, Y = _small()
    args = {"X": X, "Y": Y, "epochs": 2}
    args.update(kw)
    return args


def _set(a, idx, value):
    a = np.array(a, dtype=np.float64)
    a[idx] = value
    return a


_X, _Y = _small()

BAD_TRAIN = [
    # orientation and sample counts
    ("X (m, n_x)", _case(X=_X.T), ValueError, r"X looks like one sample per row; pass X\.T"),
    ("X (m, n_x), 1-D Y", _case(X=_X.T, Y=_Y.ravel()), ValueError, r"pass X\.T, shape \(2, 6\)"),
    ("Y (m, 1)", _case(Y=_Y.T), ValueError, r"Y looks like one sample per row; pass Y\.T"),
    ("different m", _case(Y=_Y[:, :5]), ValueError, r"same number of samples.*\(2, 6\).*\(1, 5\)"),
    ("X 1-D", _case(X=_X[0]), ValueError, r"X must be 2-D.*X\.reshape\(1, -1\)"),
    ("X 3-D", _case(X=_X[None]), ValueError, r"X must be 2-D"),
    ("Y 3-D", _case(Y=_Y[None]), ValueError, r"Y must be 2-D"),
    ("m = 0", _case(X=np.ones((2, 0)), Y=np.ones((1, 0))), ValueError, r"no samples.*at least 1"),
    # labels out of range for cross-entropy
    (
        "Y > 1 with CE",
        _case(Y=_set(_Y, (0, 2), 2.0), loss="cross_entropy"),
        ValueError,
        r"\[0, 1\].*cross_entropy.*0\.0 to 2\.0.*loss='mse'",
    ),
    (
        "Y < 0 with CE",
        _case(Y=_set(_Y, (0, 1), -1.0), loss="cross_entropy"),
        ValueError,
        r"labels in \[0, 1\].*-1\.0 to 1\.0",
    ),
    # NaN / inf, with the position
    (
        "NaN in X",
        _case(X=_set(_X, (1, 3), np.nan)),
        ValueError,
        r"X contains NaN.*X\[1, 3\] = nan",
    ),
    ("inf in X", _case(X=_set(_X, (0, 5), np.inf)), ValueError, r"X\[0, 5\] = inf"),
    ("-inf in X", _case(X=_set(_X, (1, 0), -np.inf)), ValueError, r"X\[1, 0\] = -inf"),
    (
        "NaN in Y",
        _case(Y=_set(_Y, (0, 2), np.nan)),
        ValueError,
        r"Y contains NaN.*Y\[0, 2\] = nan",
    ),
    (
        "inf in Y, CE",
        _case(Y=_set(_Y, (0, 4), np.inf), loss="cross_entropy"),
        ValueError,
        r"Y contains NaN or inf.*Y\[0, 4\] = inf",
    ),
    # dtypes
    (
        "X strings",
        _case(X=_X.astype(str)),
        TypeError,
        r"X must hold numbers.*astype\(np\.float64\)",
    ),
    ("X object", _case(X=_X.astype(object)), TypeError, r"X must hold numbers.*dtype object"),
    ("Y strings", _case(Y=np.array([["1", "0", "1", "0", "1", "0"]])), TypeError, r"Y must hold"),
    ("X complex", _case(X=_X + 0j), TypeError, r"X has complex dtype.*X\.real"),
    ("Y complex", _case(Y=_Y + 0j), TypeError, r"Y has complex dtype.*Y\.real"),
    ("X ragged", _case(X=[[1.0, 2.0], [3.0]]), TypeError, r"X could not be read"),
    # epochs
    ("epochs < 0", _case(epochs=-1), ValueError, r"epochs must be an integer >= 0, got -1"),
    ("epochs 2.5", _case(epochs=2.5), TypeError, r"epochs must be an integer.*float"),
    ("epochs 2.0", _case(epochs=2.0), TypeError, r"epochs must be an integer.*int\(epochs\)"),
    ("epochs True", _case(epochs=True), TypeError, r"epochs must be an integer.*bool"),
    ("epochs str", _case(epochs="10"), TypeError, r"epochs must be an integer"),
    # lr
    ("lr 0", _case(lr=0), ValueError, r"lr must be a finite number > 0.*lr=0\.2"),
    ("lr < 0", _case(lr=-0.1), ValueError, r"lr must be a finite number > 0, got -0\.1"),
    ("lr NaN", _case(lr=math.nan), ValueError, r"lr must be a finite number > 0, got nan"),
    ("lr inf", _case(lr=math.inf), ValueError, r"lr must be a finite number > 0, got inf"),
    ("lr np.nan32", _case(lr=np.float32("nan")), ValueError, r"lr must be a finite number"),
    ("lr str", _case(lr="0.1"), TypeError, r"lr must be a positive real number"),
    ("lr True", _case(lr=True), TypeError, r"lr must be a positive real number"),
    ("lr complex", _case(lr=0.1 + 0j), TypeError, r"lr must be a positive real number"),
    # names
    ("activation typo", _case(activation="sigmod"), ValueError, r"Did you mean 'sigmoid'\?"),
    ("activation tanhh", _case(activation="tanhh"), ValueError, r"activation 'tanhh'.*'tanh'\?"),
    ("loss typo", _case(loss="crossentropy"), ValueError, r"Did you mean 'cross_entropy'\?"),
    ("loss unknown", _case(loss="hinge"), ValueError, r"unknown loss 'hinge'.*'mse'"),
    ("backend unknown", _case(backend="cuda"), ValueError, r"unknown backend 'cuda'.*'numpy'"),
    ("hidden 0", _case(hidden=0), ValueError, r"hidden must be an integer >= 1"),
    ("hidden 2.5", _case(hidden=2.5), TypeError, r"hidden must be an integer"),
    # init
    ("init not dict", _case(init=[1, 2]), TypeError, r"must be a dict.*init_params"),
    ("init missing", _case(init=_init(b2=None)), ValueError, r"missing \['b2'\], unexpected \[\]"),
    ("init extra", _case(init=_init(W3=np.ones((1, 1)))), ValueError, r"unexpected \['W3'\]"),
    ("init b1 1-D", _case(init=_init(b1=np.zeros(4))), ValueError, r"b1 must be 2-D.*reshape"),
    (
        "init W2 vs W1",
        _case(init=_init(W2=np.ones((1, 3)))),
        ValueError,
        r"W2 has shape \(1, 3\) but must be \(1, 4\)",
    ),
    (
        "init b1 shape",
        _case(init=_init(b1=np.zeros((3, 1)))),
        ValueError,
        r"b1 has shape \(3, 1\)",
    ),
    (
        "init b2 shape",
        _case(init=_init(b2=np.zeros((2, 1)))),
        ValueError,
        r"b2 has shape \(2, 1\)",
    ),
    (
        "init NaN",
        _case(init=_init(W1=_set(np.ones((4, 2)), (2, 1), np.nan))),
        ValueError,
        "W1.*NaN",
    ),
    (
        "init inf",
        _case(init=_init(b2=np.full((1, 1), np.inf))),
        ValueError,
        r"b2 contains NaN or inf",
    ),
    ("init str", _case(init=_init(W1=np.full((4, 2), "a"))), TypeError, r"W1 must hold numbers"),
    ("init n_x", _case(init=_init(n_x=3)), ValueError, r"X has shape \(2, 6\).*n_x = 3"),
    ("init n_y", _case(init=_init(n_y=2)), ValueError, r"Y has 1 rows.*W2 is \(2, 4\).*2 outputs"),
]


@pytest.mark.parametrize(
    "kwargs, exc, match", [c[1:] for c in BAD_TRAIN], ids=[c[0] for c in BAD_TRAIN]
)
def test_train_rejects_bad_input(kwargs, exc, match):
    kwargs = dict(kwargs)
    X, Y = kwargs.pop("X"), kwargs.pop("Y")
    with pytest.raises(exc, match=match):
        fusedmlp.train(X, Y, **kwargs)


def test_mse_accepts_labels_outside_unit_interval():
    X, _ = _small()
    Y = np.array([[2.0, -1.0, 0.5, 3.0, 0.0, 1.0]])
    init = fusedmlp.init_params(2, 4, 1, seed=0, scale=0.5)
    # trains as asked, but says the sigmoid output cannot reach such targets
    with pytest.warns(UserWarning, match=r"Y holds values from -1 to 3, but the sigmoid"):
        res = fusedmlp.train(X, Y, init=init, loss="mse", epochs=3)
    p, losses = _ref_loop(init, X, Y, "sigmoid", "mse", 0.2, 3)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-12, atol=0)
    _assert_params_equal(res.params, p)


def test_edge_values_that_are_fine():
    X, Y = _small()
    # labels exactly 0 and 1, lr as numpy float, epochs as numpy int, tiny positive lr
    res = fusedmlp.train(X, Y, loss="cross_entropy", lr=np.float32(0.5), epochs=np.int64(2))
    assert res.losses.shape == (2,) and res.lr == 0.5 and isinstance(res.lr, float)
    res = fusedmlp.train(X, Y, lr=1e-300, epochs=1, seed=0)
    p, L = _ref_loop(fusedmlp.init_params(2, 4, 1, seed=0), X, Y, lr=1e-300, epochs=1)
    np.testing.assert_allclose(res.losses, L, rtol=1e-12, atol=0)
    _assert_params_equal(res.params, p, rtol=1e-10)


@pytest.mark.parametrize("func", ["predict_proba", "predict"])
def test_predict_wrong_orientation_says_transpose(func):
    p = fusedmlp.init_params(2, 4, 1, seed=0)
    X = np.ones((7, 2))  # (m, n_x)
    with pytest.raises(ValueError, match=r"X has shape \(7, 2\).*n_x = 2.*pass X\.T"):
        getattr(fusedmlp, func)(p, X)


@pytest.mark.parametrize(
    "X, exc, match",
    [
        (np.ones((3, 5)), ValueError, r"n_x = 2 rows.*check the data"),
        (_set(np.ones((2, 5)), (1, 4), np.nan), ValueError, r"X\[1, 4\] = nan"),
        (np.ones((2, 0)), ValueError, r"no samples"),
        (np.ones(2), ValueError, r"X must be 2-D"),
        (np.ones((2, 3), dtype=complex), TypeError, r"complex"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, r"X must hold numbers"),
    ],
)
def test_predict_proba_bad_X(X, exc, match):
    p = fusedmlp.init_params(2, 4, 1, seed=0)
    with pytest.raises(exc, match=match):
        fusedmlp.predict_proba(p, X)


def test_predict_and_accuracy_bad_params_and_activation():
    X, Y = _small()
    with pytest.raises(ValueError, match=r"missing \['W1'\]"):
        fusedmlp.predict(_init(W1=None), X)
    with pytest.raises(ValueError, match=r"Did you mean 'relu'\?"):
        fusedmlp.predict_proba(_init(), X, activation="reluu")
    with pytest.raises(ValueError, match=r"X looks like one sample per row; pass X\.T"):
        fusedmlp.accuracy(_init(), X.T, Y)
    with pytest.raises(ValueError, match=r"Y\[0, 1\] = nan"):
        fusedmlp.accuracy(_init(), X, _set(Y, (0, 1), np.nan))


# --------------------------------------------------------------------------- #
# 6. the NaN/inf scan works in bounded slices, in one pass
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("col", [0, 6, 7, 20, 29])
def test_scan_finds_nan_beyond_first_slice(monkeypatch, col):
    monkeypatch.setattr(_validation, "_SCAN_COLUMNS", 7)
    X = np.random.RandomState(0).randn(2, 30)
    X[1, col] = np.nan
    Y = np.zeros((1, 30))
    with pytest.raises(ValueError, match=rf"X\[1, {col}\] = nan"):
        fusedmlp.train(X, Y, epochs=1)
    with pytest.raises(ValueError, match=rf"X\[1, {col}\] = nan"):
        fusedmlp.predict_proba(fusedmlp.init_params(2, 3, 1, seed=0), X)


def test_scan_finds_bad_label_beyond_first_slice(monkeypatch):
    monkeypatch.setattr(_validation, "_SCAN_COLUMNS", 7)
    X = np.random.RandomState(0).randn(2, 30)
    Y = np.zeros((1, 30))
    Y[0, 23] = np.inf
    with pytest.raises(ValueError, match=r"Y\[0, 23\] = inf"):
        fusedmlp.train(X, Y, epochs=1)
    Y[0, 23] = 1.5  # out of [0, 1] only in the fourth slice
    with pytest.raises(ValueError, match=r"\[0, 1\] for loss='cross_entropy'"):
        fusedmlp.train(X, Y, epochs=1, loss="cross_entropy")


class _IsfiniteSpy:
    """Stands in for numpy inside _validation, recording what np.isfinite is given."""

    def __init__(self):
        self.shapes = []

    def isfinite(self, a):
        self.shapes.append(np.shape(a))
        return np.isfinite(a)

    def __getattr__(self, name):
        return getattr(np, name)


def test_scan_reads_each_column_once_in_bounded_slices(monkeypatch):
    spy = _IsfiniteSpy()
    monkeypatch.setattr(_validation, "_SCAN_COLUMNS", 7)
    monkeypatch.setattr(_validation, "np", spy)
    X = np.random.RandomState(0).randn(2, 30)
    Y = np.zeros((1, 30))
    fusedmlp.train(X, Y, epochs=0)
    # X then Y, each in slices of at most 7 columns that cover the 30 columns exactly
    # once; then the four parameters, checked once more after the cast to X's dtype
    scans = [(2, 7)] * 4 + [(2, 2)] + [(1, 7)] * 4 + [(1, 2)]
    assert spy.shapes == scans + [(4, 2), (4, 1), (1, 4), (1, 1)]


@pytest.mark.parametrize(
    "x_shape, y_shape, fix",
    [
        ((6, 2), (6, 1), "pass X.T and Y.T"),  # scikit-learn habit: both one sample per row
        ((1, 6), (6, 1), "pass Y.T"),  # one feature: Y is the odd one out
        ((6, 1), (1, 6), "pass X.T"),
    ],
)
def test_orientation_hints(x_shape, y_shape, fix):
    X = np.zeros(x_shape)
    Y = np.zeros(y_shape)
    with pytest.raises(ValueError, match=re.escape(fix)):
        fusedmlp.train(X, Y, epochs=1, backend="numpy")


def test_divergence_is_quiet(data):
    # the error says everything; numpy's overflow warnings must not leak out before it
    X, Y = data
    init = fusedmlp.init_params(2, 4, 1, seed=3, scale=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(fusedmlp.TrainingDiverged, match="epoch"):
            fusedmlp.train(
                X, Y, init=init, activation="relu", loss="cross_entropy", lr=1e150, epochs=50
            )


def test_hidden_type_checked_with_init():
    init = fusedmlp.init_params(2, 4, 1, seed=0)
    X, Y = np.zeros((2, 3)), np.zeros((1, 3))
    with pytest.raises(TypeError, match="hidden"):
        fusedmlp.train(X, Y, init=init, hidden=4.0, epochs=1, backend="numpy")


def test_exotic_float_dtypes_train_in_float64():
    X = np.array([[0.5, -1.0, 2.0]], dtype=np.float16)
    Y = np.array([[1.0, 0.0, 1.0]])
    p = fusedmlp.init_params(1, 2, 1, seed=0)
    assert fusedmlp.predict_proba(p, X).dtype == np.float64
    expected = fusedmlp.reference.predict_proba(p, X.astype(np.float64))
    np.testing.assert_allclose(fusedmlp.predict_proba(p, X), expected, rtol=1e-12, atol=0)
    res = fusedmlp.train(X, Y, init=p, epochs=2, backend="numpy")
    assert res.params["W1"].dtype == np.float64


def test_none_means_the_default(data):
    # activation, loss and lr default to None so that train(resume=...) can tell "not
    # given" from a choice; None is the documented default, sigmoid + mse + 0.2
    X, Y = data
    a = fusedmlp.train(X, Y, epochs=3, seed=1, activation=None, loss=None, lr=None)
    b = fusedmlp.train(X, Y, epochs=3, seed=1, activation="sigmoid", loss="mse", lr=0.2)
    assert (a.activation, a.loss, a.lr) == ("sigmoid", "mse", 0.2)
    np.testing.assert_array_equal(a.losses, b.losses)


@pytest.mark.parametrize(
    "seed, exc, words",
    [("a", TypeError, "seed must be an integer"), (-1, ValueError, "seed must be an integer >= 0"),
     (2**40, ValueError, r"<= 2\*\*32 - 1, got 1099511627776")],
)  # fmt: skip
def test_one_seed_check_everywhere(seed, exc, words):
    # init_params, train and the data sets accept exactly what RandomState accepts
    for call in (
        lambda: fusedmlp.init_params(2, 4, 1, seed=seed),
        lambda: fusedmlp.train(*datasets.planar(m=10), epochs=1, seed=seed),
        lambda: datasets.planar(m=10, seed=seed),
    ):
        with pytest.raises(exc, match=words):
            call()
