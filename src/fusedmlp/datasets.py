"""Small two-dimensional binary classification data sets.

Every generator returns ``(X, Y)`` where ``X`` is a float64 array of shape
``(2, m)`` holding one sample per column and ``Y`` is a float64 array of
shape ``(1, m)`` holding the labels 0.0 and 1.0. Labels are float64 so they
can enter the cross-entropy cost and its gradients without a cast.

All randomness comes from a private ``np.random.RandomState(seed)``, so the
output depends only on the arguments and the global NumPy RNG is never
touched. The default seed is 1 everywhere (the seed of the original planar
exercise). Columns are not shuffled; each docstring states their order.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import operator
import os
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


DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "planar": planar,
    "circles": circles,
    "moons": moons,
    "blobs": blobs,
    "quantiles": quantiles,
    "random": random,
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


# --------------------------------------------------------------------------- #
# Out of core: planar written to disk chunk by chunk
# --------------------------------------------------------------------------- #
def _skip_normals(rng: np.random.RandomState, n: int, chunk: int) -> None:
    # Legacy randn is one stream: n draws in pieces leave the state (including the
    # cached second Gaussian of the polar method) where randn(n) would.
    for start in range(0, n, chunk):
        rng.randn(min(chunk, n - start))


def _linspace_part(start: float, stop: float, n: int, lo: int, hi: int) -> np.ndarray:
    # np.linspace(start, stop, n)[lo:hi] computed as numpy computes it:
    # arange(n) * ((stop - start) / (n - 1)) + start, the last element set to stop.
    y = np.arange(lo, hi, dtype=np.int64).astype(np.float64)
    if n > 1:
        y *= (stop - start) / (n - 1)
    else:
        y *= stop - start
    y += start
    if n > 1 and hi == n:
        y[-1] = stop
    return y


def write_planar(
    x_path: str,
    y_path: str,
    m: int,
    seed: int = DEFAULT_SEED,
    dtype: str = "float32",
    chunk: int = 2**20,
) -> tuple[np.ndarray, np.ndarray]:
    """Write ``planar(m, seed)`` to two ``.npy`` files without holding it in memory.

    The values are exactly those of ``planar(m, seed)`` cast to ``dtype``, computed
    ``chunk`` columns at a time: memory stays O(chunk) whatever m is. The t-noise and
    the r-noise of the same columns come from two ``RandomState(seed)`` streams, the
    second advanced past the first's values by drawing and discarding them, so every
    sample sees the same draws as in ``planar`` (about 3m Gaussian draws instead of 2m,
    made in a second thread one chunk ahead). Written pages are unmapped as soon as
    they are filled, so the resident set stays O(chunk) too. Free space is checked and
    the files preallocated first: a memory map on a full disk would crash with SIGBUS
    instead of raising.

    The files are written under temporary names (``<path>.partial-<pid>``) and renamed
    over ``x_path`` and ``y_path`` at the end, so a failed write leaves no partial file
    and existing files (and arrays still mapped from them) untouched. Two paths naming
    one file (also through a symbolic or hard link, or ``..``) are refused up front: the
    second map would truncate the first and kill the process with SIGBUS.

    Parameters
    ----------
    x_path, y_path : str or path
        Two different files to create (or overwrite) for X (2, m) and Y (1, m).
    m : int
        Number of samples (any size the disk holds).
    seed : int, default 1
        As for ``planar``.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of both files.
    chunk : int, default 2**20
        Columns computed at a time: about 100 bytes of temporaries per column. On 2
        cores 2**16 to 2**20 all wrote about 13 million samples per second.

    Returns
    -------
    X, Y : np.memmap
        The files opened read-only (``outofcore.open_pair``).

    Raises
    ------
    ValueError
        ``x_path`` and ``y_path`` are the same file, or one is a directory; checked
        before anything is created.
    OSError
        Not enough free disk space (nothing is created), or the write failed.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     X, Y = write_planar(os.path.join(d, "X.npy"), os.path.join(d, "Y.npy"), 401,
    ...                         dtype="float64", chunk=64)
    ...     bool((X == planar(401)[0]).all() and (Y == planar(401)[1]).all())
    True
    >>> write_planar("XY.npy", "./XY.npy", 10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: x_path 'XY.npy' and y_path './XY.npy' are the same file; ...
    """
    from . import outofcore

    m = _check_m(m)
    seed = check_seed(seed)
    chunk = check_count("chunk", chunk, minimum=1)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    x_path, y_path = os.fspath(x_path), os.fspath(y_path)
    _check_targets(x_path, y_path)
    need: dict[str, int] = {}
    for path, rows in ((x_path, 2), (y_path, 1)):
        folder = os.path.dirname(os.path.abspath(path))
        need[folder] = need.get(folder, 0) + rows * m * dtype.itemsize
    for folder, nbytes in need.items():
        outofcore.check_disk(folder, nbytes, spare=64 << 20)

    # written under temporary names and renamed at the end: a failed write leaves no
    # valid-looking file, and maps of an older file at the same path stay intact
    x_tmp, y_tmp = (f"{p}.partial-{os.getpid()}" for p in (x_path, y_path))
    try:
        X = np.lib.format.open_memmap(x_tmp, mode="w+", dtype=dtype, shape=(2, m))
        Y = np.lib.format.open_memmap(y_tmp, mode="w+", dtype=dtype, shape=(1, m))
        for path in (x_tmp, y_tmp):
            outofcore.preallocate(path)
        _fill_planar(X, Y, m, seed, chunk, outofcore.release)
        X.flush()
        Y.flush()
        del X, Y
        os.replace(x_tmp, x_path)
        os.replace(y_tmp, y_path)
    finally:
        for path in (x_tmp, y_tmp):  # gone already after a successful rename
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    return outofcore.open_pair(x_path, y_path)


def _same_file(a: str, b: str) -> bool:
    """True when paths a and b name one file, whether or not it exists yet."""
    ra, rb = (os.path.normcase(os.path.realpath(p)) for p in (a, b))
    if ra == rb:  # spellings, symbolic links (even dangling ones)
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:  # one of them does not exist (yet): not one file
        return False


def _check_targets(x_path: str, y_path: str) -> None:
    # before anything is written: two maps of one file would truncate each other (SIGBUS),
    # and a rename over a directory would fail only after the whole write
    if _same_file(x_path, y_path):
        raise ValueError(
            f"x_path {x_path!r} and y_path {y_path!r} are the same file; X and Y need two "
            "different files, e.g. 'X.npy' and 'Y.npy'."
        )
    for name, path in (("x_path", x_path), ("y_path", y_path)):
        if os.path.isdir(path):
            raise ValueError(
                f"{name} {path!r} is a directory; give a file in it, e.g. "
                f"{os.path.join(path, name[0].upper() + '.npy')!r}."
            )


def _planar_noise(m: int, seed: int, chunk: int):
    """(t-noise, r-noise) of planar's columns, chunk by chunk, in column order."""
    n0, n1 = _split_two(m)
    rng_t = np.random.RandomState(seed)  # the t-noise of the columns being written
    rng_r = np.random.RandomState(seed)  # their r-noise: n0 values further on
    _skip_normals(rng_r, n0, chunk)
    for j, n in enumerate((n0, n1)):
        if j == 1:
            # class 1's t-noise starts where class 0's r-noise ended, its r-noise n1
            # values after that
            rng_t.set_state(rng_r.get_state())
            _skip_normals(rng_r, n1, chunk)
        for lo in range(0, n, chunk):
            size = min(chunk, n - lo)
            yield rng_t.randn(size), rng_r.randn(size)


def _fill_planar(X, Y, m, seed, chunk, release) -> None:
    """planar(m, seed) into the (2, m) and (1, m) memory maps X, Y, chunk columns at a time.

    The Gaussian draws (three per sample, counting the skipped ones) run in a second
    thread one chunk ahead of the rest (randn releases the GIL); each stream is still
    drawn in order by one thread, so the values do not depend on the timing.
    """
    from concurrent.futures import ThreadPoolExecutor

    noises = _planar_noise(m, seed, chunk)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(next, noises)
        col = 0
        for j, n in enumerate(_split_two(m)):
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                t_noise, r_noise = ahead.result()
                if col + hi < m:
                    ahead = pool.submit(next, noises)
                # planar's operations, in its order, on columns lo:hi of class j
                t = _linspace_part(j * 3.12, (j + 1) * 3.12, n, lo, hi)
                t_noise *= 0.2
                t += t_noise
                r = np.multiply(t, 4)
                np.sin(r, out=r)
                r *= 4
                r_noise *= 0.2
                r += r_noise
                cols = slice(col + lo, col + hi)
                row = np.sin(t)
                row *= r
                X[0, cols] = row
                np.cos(t, out=row)
                row *= r
                X[1, cols] = row
                Y[0, cols] = j
                # unmap the filled pages (the page cache writes them back): the resident
                # set stays O(chunk) instead of growing with the file
                release(X[0, cols], X[1, cols], Y[0, cols])
            col += n
