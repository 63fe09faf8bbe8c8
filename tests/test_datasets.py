"""Tests for fusedmlp.datasets."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusedmlp import datasets
from fusedmlp.datasets import (
    DATASETS,
    blobs,
    circles,
    load,
    moons,
    planar,
    quantiles,
    random,
    spirals,
)

ALL = sorted(DATASETS)
# Sets whose Y is a (1, m) float64 row of 0/1 labels: all but the several-class spirals.
BINARY = [name for name in ALL if name != "spirals"]
# Sets whose construction promises label counts that differ by at most one.
BALANCED = ["planar", "circles", "moons", "blobs", "quantiles"]


def _original_planar(m, seed):
    """Loop version written straight from the exercise's description."""
    rng = np.random.RandomState(seed)
    n = m // 2
    X = np.zeros((m, 2))
    for j in range(2):
        ix = range(n * j, n * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n) + rng.randn(n) * 0.2
        r = 4 * np.sin(4 * t) + rng.randn(n) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
    return X.T


def _check_xy(X, Y, m):
    assert X.shape == (2, m)
    assert Y.shape == (1, m)
    assert X.dtype == np.float64
    assert Y.dtype == np.float64
    assert np.all(np.isfinite(X))
    assert set(np.unique(Y).tolist()) <= {0.0, 1.0}


# --------------------------------------------------------------------------- #
# planar
# --------------------------------------------------------------------------- #
def test_planar_reproduces_original_values():
    X, Y = planar()
    assert X[:, 0].tolist() == [1.204442292254319, 3.5761141481288448]
    assert X[:, 399].tolist() == [0.7307808250007513, 3.0683292081876545]
    assert X.sum() == 10.087983277441666
    assert Y[0, :200].tolist() == [0.0] * 200
    assert Y[0, 200:].tolist() == [1.0] * 200


@pytest.mark.parametrize(("m", "seed"), [(400, 1), (2, 3), (1000, 7)])
def test_planar_matches_loop_reference_bitwise(m, seed):
    assert np.array_equal(planar(m, seed)[0], _original_planar(m, seed))


@pytest.mark.parametrize("m", [1, 2, 3, 399, 400, 401])
def test_planar_shapes_and_balance(m):
    X, Y = planar(m)
    _check_xy(X, Y, m)
    # Class 0 first with ceil(m/2) points, class 1 after with floor(m/2).
    n0 = (m + 1) // 2
    assert Y[0, :n0].tolist() == [0.0] * n0
    assert Y[0, n0:].tolist() == [1.0] * (m // 2)


def test_planar_m1_is_first_class0_point_of_linspace_start():
    X, _ = planar(1, seed=1)
    rng = np.random.RandomState(1)
    t = 0.0 + rng.randn(1)[0] * 0.2
    r = 4 * math.sin(4 * t) + rng.randn(1)[0] * 0.2
    np.testing.assert_allclose(X[:, 0], [r * math.sin(t), r * math.cos(t)], rtol=1e-15)


def test_planar_large_m_runs():
    X, Y = planar(10**6)
    _check_xy(X, Y, 10**6)
    assert Y.sum() == 5 * 10**5


# --------------------------------------------------------------------------- #
# Shared properties
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("m", [1, 2, 7, 200])
def test_shapes_dtypes_labels(name, m):
    _check_xy(*DATASETS[name](m=m), m)


@pytest.mark.parametrize("name", BALANCED)
@pytest.mark.parametrize("m", [1, 2, 7, 200, 201])
def test_balanced(name, m):
    _, Y = DATASETS[name](m=m)
    ones = int(Y.sum())
    assert abs((m - ones) - ones) <= 1


@pytest.mark.parametrize("name", ALL)
def test_deterministic_per_seed(name):
    gen = DATASETS[name]
    X1, Y1 = gen(m=50, seed=3)
    X2, Y2 = gen(m=50, seed=3)
    X3, _ = gen(m=50, seed=4)
    assert np.array_equal(X1, X2)
    assert np.array_equal(Y1, Y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("name", ALL)
def test_default_seed_is_1(name):
    X1, Y1 = DATASETS[name]()
    X2, Y2 = DATASETS[name](seed=1)
    assert np.array_equal(X1, X2)
    assert np.array_equal(Y1, Y2)


@pytest.mark.parametrize("name", ALL)
def test_global_rng_untouched(name):
    # The legacy global-state API is exactly what is being checked here.
    before = np.random.get_state()  # noqa: NPY002
    DATASETS[name](m=30, seed=2)
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.parametrize("name", ALL)
def test_numpy_integer_m_and_seed_accepted(name):
    X1, Y1 = DATASETS[name](m=np.int64(9), seed=np.uint32(5))
    X2, Y2 = DATASETS[name](m=9, seed=5)
    assert np.array_equal(X1, X2)
    assert np.array_equal(Y1, Y2)


# --------------------------------------------------------------------------- #
# Geometry of each set
# --------------------------------------------------------------------------- #
def test_circles_radii():
    X, Y = circles(m=400, noise=0.0, factor=0.3)
    radius = np.hypot(X[0], X[1])
    np.testing.assert_allclose(radius[Y[0] == 0], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(radius[Y[0] == 1], 0.3, rtol=0, atol=1e-12)
    Xn, Yn = circles(m=400)
    rn = np.hypot(Xn[0], Xn[1])
    assert rn[Yn[0] == 1].mean() < rn[Yn[0] == 0].mean()


def test_circles_noise_is_gaussian_offset_from_clean_set():
    clean, _ = circles(m=300, seed=9, noise=0.0)
    noisy, _ = circles(m=300, seed=9, noise=0.1)
    expected = clean + 0.1 * np.random.RandomState(9).randn(2, 300)
    np.testing.assert_allclose(noisy, expected, rtol=0, atol=1e-15)


def test_moons_lie_on_half_circles_without_noise():
    X, Y = moons(m=101, noise=0.0)
    up, low = X[:, Y[0] == 0], X[:, Y[0] == 1]
    np.testing.assert_allclose(up[0] ** 2 + up[1] ** 2, 1.0, rtol=0, atol=1e-12)
    assert np.all(up[1] >= -1e-12)
    np.testing.assert_allclose((low[0] - 1) ** 2 + (low[1] - 0.5) ** 2, 1.0, rtol=0, atol=1e-12)
    assert np.all(low[1] <= 0.5 + 1e-12)
    # Both ends of each arc are present: a runs over the whole [0, pi].
    np.testing.assert_allclose(up[:, [0, -1]], [[1, -1], [0, 0]], atol=1e-12)
    np.testing.assert_allclose(low[:, [0, -1]], [[0, 2], [0.5, 0.5]], atol=1e-12)


def test_quantiles_label1_outside_label0():
    X, Y = quantiles(m=501, seed=4)
    norm = np.hypot(X[0], X[1])
    assert norm[Y[0] == 1].min() >= norm[Y[0] == 0].max()
    assert int(Y.sum()) in (250, 251)


def test_quantiles_more_classes_alternate_by_rank():
    m, classes = 300, 3
    X, Y = quantiles(m=m, seed=2, classes=classes)
    ranked = Y[0, np.argsort(np.hypot(X[0], X[1]))]
    assert ranked.tolist() == [0.0] * 100 + [1.0] * 100 + [0.0] * 100


def test_quantiles_cov_scales_spread():
    X, _ = quantiles(m=20000, seed=0, cov=2.0)
    np.testing.assert_allclose(X.var(axis=1), 2.0, rtol=0.05)


def test_blobs_tiny_std_points_sit_on_few_centres():
    X, Y = blobs(m=120, seed=5, centers=4, std=1e-9)
    centres = np.unique(np.round(X, 6), axis=1)
    assert centres.shape[1] == 4
    assert np.all(np.abs(centres) <= 10)
    # Sample i belongs to cluster i % 4, whose label is (i % 4) % 2.
    np.testing.assert_allclose(X[:, :4], X[:, 4:8], atol=1e-7)
    assert Y[0].tolist() == [float(i % 4 % 2) for i in range(120)]


def test_random_is_uniform_box_and_coin():
    X, Y = random(m=20000, seed=3)
    assert np.all(np.abs(X) <= 1)
    assert X.min() < -0.99 and X.max() > 0.99
    assert abs(Y.mean() - 0.5) < 0.02


# --------------------------------------------------------------------------- #
# spirals: several classes, integer labels
# --------------------------------------------------------------------------- #
def _cs231n_spirals(m, classes, noise, seed):
    """The cs231n loop, with np.array_split's sizes (first m % classes one larger)."""
    rng = np.random.RandomState(seed)
    X = np.zeros((m, 2))
    y = np.zeros(m, dtype="uint8")
    for j, ix in enumerate(np.array_split(np.arange(m), classes)):
        n = len(ix)
        r = np.linspace(0.0, 1, n)
        t = np.linspace(j * 4, (j + 1) * 4, n) + rng.randn(n) * noise
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X.T, y


@pytest.mark.parametrize(
    ("m", "classes", "noise", "seed"),
    [(300, 3, 0.2, 1), (301, 3, 0.2, 7), (50, 4, 0.5, 0), (11, 5, 0.0, 2), (2, 3, 0.2, 3)],
)
def test_spirals_match_the_classic_loop(m, classes, noise, seed):
    X, y = spirals(m=m, seed=seed, classes=classes, noise=noise)
    X_ref, y_ref = _cs231n_spirals(m, classes, noise, seed)
    # 4 j + 4 linspace(0, 1) and linspace(4 j, 4 j + 4) may differ in the last bit
    np.testing.assert_allclose(X, X_ref, rtol=0, atol=1e-13)
    assert y.tolist() == y_ref.tolist()


def test_spirals_values_without_noise():
    X, y = spirals(m=4, classes=2, noise=0.0)
    # arm 0: r = 0, 1 at theta = 0, 4; arm 1: r = 0, 1 at theta = 4, 8
    expected = [[0.0, math.sin(4), 0.0, math.sin(8)], [0.0, math.cos(4), 0.0, math.cos(8)]]
    np.testing.assert_allclose(X, expected, rtol=0, atol=1e-15)
    assert y.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("classes", [2, 3, 5, 10])
@pytest.mark.parametrize("m", [1, 2, 3, 7, 100, 301])
def test_spirals_shapes_dtypes_and_class_counts(m, classes):
    X, y = spirals(m=m, classes=classes)
    assert X.shape == (2, m) and X.dtype == np.float64 and np.all(np.isfinite(X))
    assert y.shape == (m,) and y.dtype == np.int64
    # the first m % classes classes take one extra sample, classes in column order
    base, extra = m // classes, m % classes
    counts = [base + 1] * extra + [base] * (classes - extra)
    assert np.bincount(y, minlength=classes).tolist() == counts
    assert y.tolist() == sorted(y.tolist())
    assert max(counts) - min(counts) <= 1 and sum(counts) == m


def test_spirals_defaults():
    X, y = spirals()
    assert X.shape == (2, 300)
    assert np.bincount(y).tolist() == [100, 100, 100]
    X2, y2 = spirals(m=300, seed=1, classes=3, noise=0.2)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_spirals_radius_runs_from_centre_to_one_whatever_the_noise():
    X, y = spirals(m=90, seed=4, classes=3, noise=0.7)
    for k in range(3):
        np.testing.assert_allclose(
            np.hypot(*X[:, y == k]), np.linspace(0, 1, 30), rtol=0, atol=1e-15
        )


def test_spirals_seed_and_noise():
    X1, y1 = spirals(m=60, seed=5, classes=4)
    X2, y2 = spirals(m=60, seed=5, classes=4)
    X3, y3 = spirals(m=60, seed=6, classes=4)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3) and np.array_equal(y1, y3)
    # without noise no randomness is left
    assert np.array_equal(spirals(m=60, seed=5, noise=0)[0], spirals(m=60, seed=6, noise=0)[0])


def test_spirals_through_load():
    X1, y1 = load("spirals", m=40, seed=3, classes=4, noise=0.1)
    X2, y2 = spirals(m=40, seed=3, classes=4, noise=0.1)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (0, ValueError, "m must be a positive integer number of samples, got 0"),
        (-1, ValueError, "got -1"),
        (2.5, TypeError, "m must be a positive integer.*got 2.5 of type float"),
        ("10", TypeError, "got '10' of type str"),
        (True, TypeError, "got True of type bool"),
    ],
)
def test_bad_m(name, bad, exc, match):
    with pytest.raises(exc, match=match):
        DATASETS[name](m=bad)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("bad", "exc"), [(-1, ValueError), (2**32, ValueError), (None, TypeError), (1.0, TypeError)]
)
def test_bad_seed(name, bad, exc):
    with pytest.raises(exc, match="seed must be an integer"):
        DATASETS[name](seed=bad)


@pytest.mark.parametrize("gen", [circles, moons, spirals])
@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (-0.1, ValueError, r"noise must be a non-negative finite number, got -0\.1"),
        (float("nan"), ValueError, "got nan"),
        (float("inf"), ValueError, "got inf"),
        ("0.2", TypeError, "of type str"),
        (False, TypeError, "of type bool"),
    ],
)
def test_bad_noise(gen, bad, exc, match):
    with pytest.raises(exc, match=match):
        gen(noise=bad)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: circles(factor=1.0), ValueError, r"factor must be in \[0, 1\)"),
        (lambda: circles(factor=-0.5), ValueError, "factor must be a non-negative"),
        (lambda: blobs(std=-1.0), ValueError, "std must be a non-negative"),
        (lambda: blobs(centers=1), ValueError, "centers must be an integer >= 2, got 1"),
        (lambda: blobs(centers=2.0), TypeError, "centers must be an integer"),
        (lambda: quantiles(cov=0.0), ValueError, "cov must be a positive finite number"),
        (lambda: quantiles(classes=1), ValueError, "classes must be an integer >= 2"),
        (lambda: spirals(classes=1), ValueError, "classes must be an integer >= 2, got 1"),
        (lambda: spirals(classes=3.0), TypeError, "classes must be an integer"),
        (lambda: spirals(classes=True), TypeError, "classes must be an integer"),
    ],
)
def test_bad_other_params(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_zero_noise_and_std_allowed():
    _check_xy(*circles(m=10, noise=0), 10)
    _check_xy(*blobs(m=10, std=0), 10)


# --------------------------------------------------------------------------- #
# Registry and load
# --------------------------------------------------------------------------- #
def test_registry_contents():
    assert DATASETS == {
        "planar": planar,
        "circles": circles,
        "moons": moons,
        "blobs": blobs,
        "quantiles": quantiles,
        "random": random,
        "spirals": spirals,
    }


@pytest.mark.parametrize("name", ALL)
def test_load_matches_direct_call(name):
    X1, Y1 = load(name, m=33, seed=8)
    X2, Y2 = DATASETS[name](m=33, seed=8)
    assert np.array_equal(X1, X2) and np.array_equal(Y1, Y2)
    X3, Y3 = load(name)
    X4, Y4 = DATASETS[name]()
    assert np.array_equal(X3, X4) and np.array_equal(Y3, Y4)


def test_load_passes_extra_params():
    assert np.array_equal(load("moons", m=20, noise=0.0)[0], moons(m=20, noise=0.0)[0])


def test_load_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown data set 'spiral'") as info:
        load("spiral")
    for name in ALL:
        assert name in str(info.value)


def test_module_exports():
    assert set(datasets.__all__) == {"DATASETS", "load", "write_planar", *ALL}


# --------------------------------------------------------------------------- #
# Property-based
# --------------------------------------------------------------------------- #
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(BINARY),
    m=st.integers(1, 500),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_shapes_and_counts(name, m, seed):
    X, Y = DATASETS[name](m=m, seed=seed)
    _check_xy(X, Y, m)
    ones = int(Y.sum())
    if name in ("planar", "circles", "moons"):
        # Class-ordered sets: ceil(m/2) zeros first, then floor(m/2) ones.
        assert ones == m // 2
        assert Y[0].tolist() == [0.0] * (m - m // 2) + [1.0] * (m // 2)
    elif name == "quantiles":
        assert ones == m // 2
    elif name == "blobs":
        # Six clusters cycling 0..5: labels follow i % 6 % 2, i.e. i % 2.
        assert Y[0].tolist() == [float(i % 2) for i in range(m)]
    else:  # random: the documented draws, in order, from RandomState(seed)
        rng = np.random.RandomState(seed)
        assert np.array_equal(X, rng.uniform(-1.0, 1.0, (2, m)))
        assert np.array_equal(Y, rng.randint(0, 2, (1, m)).astype(np.float64))


def test_write_planar_default_seed_is_the_data_sets_default():
    from fusedmlp import _planar_file

    assert _planar_file._SEED == datasets.DEFAULT_SEED
