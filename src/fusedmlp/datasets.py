"""Small two-dimensional classification data sets.

Every generator returns ``(X, Y)`` where ``X`` is a float64 array of shape
``(2, m)`` holding one sample per column. The binary sets (planar, circles,
moons, blobs, quantiles, random) return ``Y`` as a float64 array of shape
``(1, m)`` holding the labels 0.0 and 1.0: float64 so they can enter the
cross-entropy cost and its gradients without a cast. The several-class set
``spirals`` instead returns its labels as an int64 vector ``y`` of shape
``(m,)`` holding class indices 0..K-1, the form a softmax network takes
besides one-hot ``(K, m)``.

All randomness comes from a private ``np.random.RandomState(seed)``, so the
output depends only on the arguments and the global NumPy RNG is never
touched. The default seed is 1 everywhere (the seed of the original planar
exercise). Columns are not shuffled; each docstring states their order.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable

import numpy as np

from ._validation import check_count, check_seed

__all__ = [
    "DATASETS",
    "blobs",
    "circles",
    "load",
    "moons",
    "planar",
    "quantiles",
    "random",
    "spirals",
    "write_planar",
]

DEFAULT_SEED = 1


# --------------------------------------------------------------------------- #
# Argument checks
# --------------------------------------------------------------------------- #
def _is_int(value: object) -> bool:
    # bool is a subclass of int, but True as a sample count is surely a bug.
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_m(m: object) -> int:
    if not _is_int(m):
        raise TypeError(
            f"m must be a positive integer number of samples, got {m!r} of type {type(m).__name__}"
        )
    m = operator.index(m)
    if m < 1:
        raise ValueError(f"m must be a positive integer number of samples, got {m}")
    return m


def _check_real(name: str, value: object, *, positive: bool = False) -> float:
    expected = "a positive finite number" if positive else "a non-negative finite number"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be {expected}, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def _split_two(m: int) -> tuple[int, int]:
    # Class 0 takes the odd sample, so even m gives exactly m/2 per class.
    n1 = m // 2
    return m - n1, n1


def _labels(n0: int, n1: int) -> np.ndarray:
    y = np.zeros((1, n0 + n1))
    y[0, n0:] = 1.0
    return y


# --------------------------------------------------------------------------- #
# Generators
# --------------------------------------------------------------------------- #
def planar(m: int = 400, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Two-class "flower" with four petals.

    For class ``j`` in (0, 1) with ``N`` points, the angle is
    ``t = linspace(3.12 j, 3.12 (j + 1), N) + 0.2 randn(N)``, the radius is
    ``r = 4 sin(4 t) + 0.2 randn(N)`` and the point is ``(r sin t, r cos t)``.
    With ``m=400, seed=1`` this reproduces the classic planar exercise bit
    for bit.

    Parameters
    ----------
    m : int, default 400
        Number of samples. Class 0 gets ``ceil(m / 2)`` points and class 1
        ``floor(m / 2)``, so odd ``m`` gives class 0 the extra point and
        ``m=1`` gives a single class-0 point.
    seed : int, default 1
        Seed of the private ``RandomState``.

    Returns
    -------
    X : ndarray of float64, shape (2, m)
        Samples as columns; class 0 first, then class 1.
    Y : ndarray of float64, shape (1, m)
        Labels 0.0 / 1.0.

    Examples
    --------
    >>> X, Y = planar()
    >>> X.shape, Y.shape
    ((2, 400), (1, 400))
    >>> float(X[0, 0])
    1.204442292254319
    """
    m = _check_m(m)
    rng = np.random.RandomState(check_seed(seed))
    X = np.empty((2, m))
    start = 0
    for j, n in enumerate(_split_two(m)):
        # The operations and the order of the randn calls (t-noise then
        # r-noise, class 0 then class 1) match the original exactly; in-place
        # updates keep the peak memory at a few arrays of n floats.
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n)
        noise = rng.randn(n)
        noise *= 0.2
        t += noise
        r = np.multiply(t, 4)
        np.sin(r, out=r)
        r *= 4
        noise = rng.randn(n)
        noise *= 0.2
        r += noise
        cols = slice(start, start + n)
        np.sin(t, out=X[0, cols])
        X[0, cols] *= r
        np.cos(t, out=X[1, cols])
        X[1, cols] *= r
        start += n
    return X, _labels(*_split_two(m))


def circles(
    m: int = 200, seed: int = DEFAULT_SEED, noise: float = 0.3, factor: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles with Gaussian noise.

    Points sit at evenly spaced angles on the unit circle (label 0) and on
    the circle of radius ``factor`` (label 1); then independent Gaussian
    noise of standard deviation ``noise`` is added to each coordinate.

    Parameters
    ----------
    m : int, default 200
        Number of samples; label 0 gets ``ceil(m / 2)``, label 1 the rest.
    seed : int, default 1
        Seed of the private ``RandomState``.
    noise : float, default 0.3
        Noise standard deviation, finite and >= 0.
    factor : float, default 0.5
        Inner radius relative to the outer one, in [0, 1).

    Returns
    -------
    X : ndarray of float64, shape (2, m)
        Samples as columns; outer circle first, then inner circle.
    Y : ndarray of float64, shape (1, m)
        Labels 0.0 (outer) / 1.0 (inner).

    Examples
    --------
    >>> X, Y = circles(m=6, noise=0.0)
    >>> np.round(np.hypot(X[0], X[1]), 12).tolist()
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    """
    m = _check_m(m)
    seed = check_seed(seed)
    noise = _check_real("noise", noise)
    factor = _check_real("factor", factor)
    if factor >= 1:
        raise ValueError(f"factor must be in [0, 1), got {factor!r}")
    rng = np.random.RandomState(seed)
    n0, n1 = _split_two(m)
    a0 = np.linspace(0, 2 * np.pi, n0, endpoint=False)
    a1 = np.linspace(0, 2 * np.pi, n1, endpoint=False)
    X = np.concatenate(
        [np.vstack([np.cos(a0), np.sin(a0)]), factor * np.vstack([np.cos(a1), np.sin(a1)])],
        axis=1,
    )
    X += noise * rng.randn(2, m)
    return X, _labels(n0, n1)


def moons(
    m: int = 200, seed: int = DEFAULT_SEED, noise: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles with Gaussian noise.

    Label 0 points are ``(cos a, sin a)`` and label 1 points are
    ``(1 - cos a, 0.5 - sin a)``, each with ``a`` evenly spaced over
    ``[0, pi]``; then Gaussian noise of standard deviation ``noise`` is added
    to each coordinate.

    Parameters
    ----------
    m : int, default 200
        Number of samples; label 0 gets ``ceil(m / 2)``, label 1 the rest.
    seed : int, default 1
        Seed of the private ``RandomState``.
    noise : float, default 0.2
        Noise standard deviation, finite and >= 0.

    Returns
    -------
    X : ndarray of float64, shape (2, m)
        Samples as columns; upper moon first, then lower moon.
    Y : ndarray of float64, shape (1, m)
        Labels 0.0 (upper) / 1.0 (lower).

    Examples
    --------
    >>> X, Y = moons(m=4, noise=0.0)
    >>> np.round(X, 12).tolist()
    [[1.0, -1.0, 0.0, 2.0], [0.0, 0.0, 0.5, 0.5]]
    """
    m = _check_m(m)
    seed = check_seed(seed)
    noise = _check_real("noise", noise)
    rng = np.random.RandomState(seed)
    n0, n1 = _split_two(m)
    a0 = np.linspace(0, np.pi, n0)
    a1 = np.linspace(0, np.pi, n1)
    X = np.concatenate(
        [np.vstack([np.cos(a0), np.sin(a0)]), np.vstack([1 - np.cos(a1), 0.5 - np.sin(a1)])],
        axis=1,
    )
    X += noise * rng.randn(2, m)
    return X, _labels(n0, n1)


def blobs(
    m: int = 200, seed: int = DEFAULT_SEED, centers: int = 6, std: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs, alternately labelled.

    ``centers`` centre points are drawn uniformly in ``[-10, 10]^2``; sample
    ``i`` belongs to cluster ``k = i % centers``, is drawn from a Gaussian
    of standard deviation ``std`` around centre ``k`` and gets label
    ``k % 2``. Cluster sizes differ by at most one, so with an even number
    of centres the two labels differ in count by at most one.

    Parameters
    ----------
    m : int, default 200
        Number of samples.
    seed : int, default 1
        Seed of the private ``RandomState``.
    centers : int, default 6
        Number of clusters, >= 2.
    std : float, default 1.0
        Cluster standard deviation, finite and >= 0.

    Returns
    -------
    X : ndarray of float64, shape (2, m)
        Samples as columns, in the order of cluster ``i % centers``.
    Y : ndarray of float64, shape (1, m)
        Labels 0.0 / 1.0.

    Examples
    --------
    >>> X, Y = blobs(m=6, centers=3)
    >>> Y.tolist()
    [[0.0, 1.0, 0.0, 0.0, 1.0, 0.0]]
    """
    m = _check_m(m)
    seed = check_seed(seed)
    centers = check_count("centers", centers, minimum=2)
    std = _check_real("std", std)
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-10.0, 10.0, size=(2, centers))
    k = np.arange(m) % centers
    X = centres[:, k] + std * rng.randn(2, m)
    return X, (k % 2).astype(np.float64).reshape(1, m)


def quantiles(
    m: int = 200, seed: int = DEFAULT_SEED, cov: float = 0.5, classes: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian cloud labelled by distance from the origin.

    Samples are drawn from ``N(0, cov * I)``, ranked by squared norm and
    cut into ``classes`` consecutive groups whose sizes differ by at most
    one; a sample in group ``g`` gets label ``g % 2``. With ``classes=2``
    the inner half is label 0 and the outer half label 1.

    Parameters
    ----------
    m : int, default 200
        Number of samples.
    seed : int, default 1
        Seed of the private ``RandomState``.
    cov : float, default 0.5
        Variance of each coordinate, finite and > 0.
    classes : int, default 2
        Number of radial groups, >= 2.

    Returns
    -------
    X : ndarray of float64, shape (2, m)
        Samples as columns, in draw order (labels are mixed).
    Y : ndarray of float64, shape (1, m)
        Labels 0.0 / 1.0.

    Examples
    --------
    >>> X, Y = quantiles(m=100)
    >>> int(Y.sum())
    50
    """
    m = _check_m(m)
    seed = check_seed(seed)
    cov = _check_real("cov", cov, positive=True)
    classes = check_count("classes", classes, minimum=2)
    rng = np.random.RandomState(seed)
    X = math.sqrt(cov) * rng.randn(2, m)
    # rank[i] is the position of sample i in norm order; a stable sort makes
    # ties (possible only in theory) resolve by draw order.
    order = np.argsort(np.einsum("ij,ij->j", X, X), kind="stable")
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    group = rank * classes // m
    return X, (group % 2).astype(np.float64).reshape(1, m)


def random(m: int = 200, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Structureless noise: nothing to learn.

    ``X`` is uniform on ``[-1, 1]^2`` and ``Y`` is an independent fair coin
    per sample, so the classes are balanced only on average.

    Parameters
    ----------
    m : int, default 200
        Number of samples.
    seed : int, default 1
        Seed of the private ``RandomState``.

    Returns
    -------
    X : ndarray of float64, shape (2, m)
        Samples as columns.
    Y : ndarray of float64, shape (1, m)
        Labels 0.0 / 1.0.

    Examples
    --------
    >>> X, Y = random(m=5)
    >>> bool(np.all(np.abs(X) <= 1)), set(Y.ravel().tolist()) <= {0.0, 1.0}
    (True, True)
    """
    m = _check_m(m)
    rng = np.random.RandomState(check_seed(seed))
    X = rng.uniform(-1.0, 1.0, size=(2, m))
    Y = rng.randint(0, 2, size=(1, m)).astype(np.float64)
    return X, Y


def _split(m: int, classes: int) -> list[int]:
    # The first m % classes classes take one extra sample each, as _split_two does.
    base, extra = divmod(m, classes)
    return [base + (k < extra) for k in range(classes)]


def spirals(
    m: int = 300, seed: int = DEFAULT_SEED, classes: int = 3, noise: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """K interleaved spiral arms, one per class: the classic several-class set.

    Arm ``k`` with ``n`` points has radius ``r = linspace(0, 1, n)`` and angle
    ``theta = 4 k + 4 r + noise * randn(n)``; its points are
    ``(r sin theta, r cos theta)``. Every arm starts at the origin and turns
    through 4 radians. The randn draws are made arm by arm, class 0 first.
    Arms start 4 radians apart, as in the classic construction, which spreads
    them well for 3 classes; with more, some arms run close together (for 5,
    arms k and k + 3 are only 0.57 radians apart) and noise makes them overlap.

    Parameters
    ----------
    m : int, default 300
        Number of samples. Each class gets ``m // classes`` points and the
        first ``m % classes`` classes one more each, so the counts differ by
        at most one; with ``m < classes`` the last classes are empty.
    seed : int, default 1
        Seed of the private ``RandomState``.
    classes : int, default 3
        Number of arms (classes), >= 2.
    noise : float, default 0.2
        Standard deviation of the angle noise in radians, finite and >= 0.

    Returns
    -------
    X : ndarray of float64, shape (2, m)
        Samples as columns, in class order (arm 0 first), each arm from the
        centre outwards.
    y : ndarray of int64, shape (m,)
        Class indices 0 .. classes - 1; unlike the binary sets' (1, m) float
        row. One-hot (classes, m) is ``np.eye(classes)[:, y]``.

    Examples
    --------
    >>> X, y = spirals(m=7, noise=0.0)
    >>> X.shape, y.dtype.name, y.tolist()
    ((2, 7), 'int64', [0, 0, 0, 1, 1, 2, 2])
    >>> np.round(X[:, 2], 6).tolist()  # end of arm 0: r = 1, theta = 4
    [-0.756802, -0.653644]
    """
    m = _check_m(m)
    seed = check_seed(seed)
    classes = check_count("classes", classes, minimum=2)
    noise = _check_real("noise", noise)
    rng = np.random.RandomState(seed)
    counts = _split(m, classes)
    X = np.empty((2, m))
    start = 0
    for k, n in enumerate(counts):
        r = np.linspace(0.0, 1.0, n)
        theta = 4 * k + 4 * r + noise * rng.randn(n)
        cols = slice(start, start + n)
        X[0, cols] = r * np.sin(theta)
        X[1, cols] = r * np.cos(theta)
        start += n
    return X, np.repeat(np.arange(classes, dtype=np.int64), counts)


DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "planar": planar,
    "circles": circles,
    "moons": moons,
    "blobs": blobs,
    "quantiles": quantiles,
    "random": random,
    "spirals": spirals,
}


def load(
    name: str, m: int | None = None, seed: int | None = None, **params: object
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a data set by name.

    Parameters
    ----------
    name : str
        One of the keys of ``DATASETS``.
    m : int, optional
        Number of samples; ``None`` uses the generator's default.
    seed : int, optional
        Seed; ``None`` uses the generator's default (1), not a random seed.
    **params
        Extra keyword arguments for the generator, e.g. ``noise``.

    Returns
    -------
    X : ndarray of float64, shape (2, m)
    Y : ndarray of float64, shape (1, m)
        For ``"spirals"``: ndarray of int64, shape (m,), class indices.

    Raises
    ------
    ValueError
        If ``name`` is not a known data set; the message lists the valid names.

    Examples
    --------
    >>> X, Y = load("moons", m=10, noise=0.1)
    >>> X.shape
    (2, 10)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    kwargs = dict(params)
    # None means "the generator's default", so only pass what was given.
    if m is not None:
        kwargs["m"] = m
    if seed is not None:
        kwargs["seed"] = seed
    return DATASETS[name](**kwargs)


# planar written to disk chunk by chunk lives in its own module; part of this one's API
from ._planar_file import write_planar  # noqa: E402
