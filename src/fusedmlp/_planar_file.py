"""``datasets.write_planar``: the planar data set written to disk chunk by chunk.

Part of ``fusedmlp.datasets`` (which re-exports ``write_planar``): the values are those
of ``datasets.planar``, computed a chunk of columns at a time so that any m the disk
holds can be written with O(chunk) memory.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from ._atomic import same_file
from ._validation import check_count, check_seed

_SEED = 1  # datasets.DEFAULT_SEED, the exercise's (a test checks they agree)


def _split_two(m: int) -> tuple[int, int]:
    from .datasets import _split_two  # here: datasets imports this module

    return _split_two(m)


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
    seed: int = _SEED,
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
    >>> from fusedmlp.datasets import planar
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
    from . import datasets, outofcore  # here: datasets imports this module

    m = datasets._check_m(m)
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


def _check_targets(x_path: str, y_path: str) -> None:
    # before anything is written: two maps of one file would truncate each other (SIGBUS),
    # and a rename over a directory would fail only after the whole write
    if same_file(x_path, y_path):
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
