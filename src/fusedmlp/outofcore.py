"""Data sets larger than memory: memory-mapped files, page advice, memory reports.

A data set that does not fit in RAM lives on disk as a pair of ``.npy`` files (X of
shape (n_x, m), Y of shape (n_y, m), both C-ordered), or as one ``.npz`` whose members
are stored without compression. Opened here as read-only memory maps, they go to
``fusedmlp.train`` like any array: validation scans them once in column slices, the
compiled kernels read them in place (nothing is copied when X and Y already have one
float dtype and C order), and the operating system streams the file pages in as the
kernel's chunks walk over the samples and drops them again under memory pressure.

File pages a process has touched count in its resident set (``RssFile`` in
``/proc/self/status``) although the kernel can reclaim them at any time; only
``RssAnon`` is memory the process really holds. ``memory_status`` reports both, and
``release`` unmaps the pages of a memory-mapped array (they stay in the page cache
unless ``evict=True``) so that ``RssFile`` falls back to zero, e.g. after every epoch.
``advise`` passes ``madvise`` hints; the kernel's default read-around already serves
the trainer's access pattern (one sequential stream per thread and row): reading the
data from disk, an epoch at m = 10^7 (float32, 2 threads) took 0.09-0.11 s with the
default, 0.11-0.18 s with ``"sequential"`` and 1.3-1.5 s with ``"random"``. All of these
helpers are optional and do nothing to arrays that are not memory maps.

The files must not be modified, truncated or replaced while arrays mapped from them are
in use: the arrays read the file's pages, not a copy. Reading a page past the end of a
truncated file kills the process with SIGBUS (a signal Python cannot turn into an
exception), and a file rewritten in place silently changes the data under the reader; a
file replaced by a new one (``os.replace``) or deleted leaves the maps reading the old
data. ``FileWatch`` notices such changes with one ``os.stat`` per file, cheap enough to
call between the kernel calls of an epoch and name the file before the damage spreads.

>>> import os, tempfile
>>> import fusedmlp
>>> from fusedmlp import datasets
>>> with tempfile.TemporaryDirectory() as d:
...     paths = os.path.join(d, "X.npy"), os.path.join(d, "Y.npy")
...     _ = datasets.write_planar(*paths, m=1000)  # float32, chunk by chunk
...     X, Y = open_pair(*paths)
...     res = fusedmlp.train(X, Y, epochs=5, seed=2)
...     X.shape, X.dtype.name, X.flags.writeable, res.losses.shape
((2, 1000), 'float32', False, (5,))
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import zipfile
import zlib

import numpy as np

from ._pages import (
    _madvise,
    _mapping,
    advise,
    is_mapped,
    memory_status,
    release,
    reset_peak,
    resident_bytes,
    trimming,
)

__all__ = [
    "FileWatch",
    "advise",
    "check_disk",
    "is_mapped",
    "memory_status",
    "open_npz",
    "open_pair",
    "release",
    "reset_peak",
    "resident_bytes",
    "trimming",
]


# the fixed part of a zip local file header: signature, versions, flags, method, time,
# date, crc, sizes, then the lengths of the name and the extra field (APPNOTE 4.3.7)
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_SIGNATURE = 0x04034B50

# bytes of a mapped member checksummed (and then unmapped) at a time by open_npz(verify=True)
_CRC_CHUNK = 4 << 20


# ---------------------------------------------------------------------------
# opening


def open_pair(x_path: str | os.PathLike, y_path: str | os.PathLike) -> tuple:
    """X and Y from two ``.npy`` files as read-only memory maps.

    Parameters
    ----------
    x_path, y_path : path
        ``.npy`` files written by ``np.save``, ``np.lib.format.open_memmap`` or
        ``datasets.write_planar``.

    Returns
    -------
    (X, Y) : np.memmap
        Read-only; nothing is read until it is used.

    Notes
    -----
    The files must not be modified, truncated or replaced while X and Y (or views of
    them) are in use: a truncated file kills the process with SIGBUS when the lost pages
    are read, a file rewritten in place silently changes the data. ``FileWatch(X=X, Y=Y)``
    detects such changes.

    Examples
    --------
    See the module docstring, and ``FileWatch``.
    """
    out = []
    for name, path in (("X", x_path), ("Y", y_path)):
        if str(path).endswith(".npz"):
            raise ValueError(
                f"{name} path {os.fspath(path)!r} is an .npz archive: open it with "
                "outofcore.open_npz(path), which maps its stored members."
            )
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if not isinstance(arr, np.memmap):  # np.load gives a dict-like for zip files
            raise ValueError(
                f"{os.fspath(path)!r} is not a .npy file; use outofcore.open_npz for .npz."
            )
        out.append(arr)
    return tuple(out)


def open_npz(
    path: str | os.PathLike, keys: tuple[str, ...] = ("X", "Y"), *, verify: bool = False
) -> tuple:
    """Members of an uncompressed ``.npz`` as read-only memory maps.

    ``np.load(path, mmap_mode="r")`` does not map the members of a zip archive (it reads
    them into memory when accessed). A member written by ``np.savez`` is stored as is
    (``ZIP_STORED``): its ``.npy`` bytes lie contiguously in the archive, so each one is
    mapped at its data offset, found from the member's local header.

    Parameters
    ----------
    path : path
        Archive written by ``np.savez`` (not ``np.savez_compressed``).
    keys : tuple of str
        Member names without ``.npy``, in the order to return them.
    verify : bool, default False
        Check each member's CRC-32 against the zip directory before returning. Without
        it a damaged archive (a flipped byte in the data) is returned silently: unlike
        ``np.load``, which reads a member through ``zipfile`` and so checks its CRC, a
        memory map reads the bytes as they are. Verifying reads the whole data once, 4 MB
        at a time, unmapping each piece after it is summed (memory stays bounded).

    Returns
    -------
    tuple of np.memmap, one per key, read-only.

    Raises
    ------
    ValueError
        A member is missing, compressed, encrypted, or not a plain numeric ``.npy``;
        or, with ``verify=True``, its CRC-32 does not match the zip directory's.

    Notes
    -----
    The archive must not be modified, truncated or replaced while the arrays are in use:
    a truncated file kills the process with SIGBUS when the lost pages are read, a file
    rewritten in place silently changes the data. ``FileWatch`` detects such changes.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.savez(os.path.join(d, "d.npz"), X=np.ones((2, 3)), Y=np.zeros((1, 3)))
    ...     X, Y = open_npz(os.path.join(d, "d.npz"), verify=True)
    ...     X.shape, Y.shape, type(X).__name__, float(X.sum())
    ((2, 3), (1, 3), 'memmap', 6.0)
    """
    path = os.fspath(path)
    if isinstance(keys, str):
        keys = (keys,)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz (zip) file; write one with np.savez.")
    with zipfile.ZipFile(path) as zf:
        infos = {}
        for key in keys:
            try:
                infos[key] = zf.getinfo(key + ".npy")
            except KeyError:
                have = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                raise ValueError(f"{path!r} has no member {key!r}; it holds {have}.") from None
    out = []
    with open(path, "rb") as f:
        for key, info in infos.items():
            out.append(_map_member(path, f, key, info, verify))
    return tuple(out)


def _map_member(path: str, f, key: str, info: zipfile.ZipInfo, verify: bool) -> np.memmap:
    where = f"{path!r} member {key!r}"
    if info.compress_type != zipfile.ZIP_STORED:
        method = {zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2"}.get(
            info.compress_type, f"method {info.compress_type}"
        )
        raise ValueError(
            f"{where} is compressed ({method}), and compressed data cannot be memory-mapped. "
            "Save it with np.savez (not np.savez_compressed), or save X and Y as .npy "
            "files and use outofcore.open_pair; np.load(path) reads it into memory instead."
        )
    if info.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted and cannot be memory-mapped.")
    f.seek(info.header_offset)
    raw = f.read(_LOCAL_HEADER.size)
    fields = _LOCAL_HEADER.unpack(raw) if len(raw) == _LOCAL_HEADER.size else None
    if fields is None or fields[0] != _LOCAL_SIGNATURE:
        raise ValueError(f"{where}: no zip local header at offset {info.header_offset}.")
    name_len, extra_len = fields[-2], fields[-1]
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    f.seek(start)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"{where}: .npy format version {version} is not supported here.")
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects; only numeric arrays can be mapped.")
    offset = f.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset - start + nbytes != info.file_size:
        raise ValueError(
            f"{where}: header and shape {shape} ({nbytes} bytes of data) do not match the "
            f"member's size {info.file_size}; the archive looks damaged."
        )
    order = "F" if fortran else "C"
    if nbytes == 0:  # mmap cannot map zero bytes
        arr = np.zeros(shape, dtype, order=order)
    else:
        arr = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
    if verify:
        f.seek(start)
        crc = _crc32(arr, zlib.crc32(f.read(offset - start)))  # the .npy header, then data
        if crc != info.CRC:
            raise ValueError(
                f"{where} is damaged: the CRC-32 of its bytes is {crc:08x} but the zip "
                f"directory records {info.CRC:08x}. Write the archive again (np.savez)."
            )
    return arr


def _crc32(a: np.ndarray, crc: int) -> int:
    """crc continued over the bytes of the mapped, contiguous a, unmapping them as it goes."""
    found = _mapping(a)
    if found is None:  # an empty member
        return zlib.crc32(a.tobytes(order="A"), crc)
    m, lo, hi, _ = found
    dontneed = getattr(mmap, "MADV_DONTNEED", None)
    if not hasattr(mmap.mmap, "madvise"):
        dontneed = None
    with memoryview(m) as view:
        for start in range(lo, hi, _CRC_CHUNK):
            end = min(hi, start + _CRC_CHUNK)
            crc = zlib.crc32(view[start:end], crc)
            if dontneed is not None:  # keep the resident set at one chunk, not the file
                _madvise(m, dontneed, start, end)
    return crc


# ---------------------------------------------------------------------------
# disk


def check_disk(directory: str | os.PathLike, nbytes: int, *, spare: int = 10**9) -> int:
    """Raise OSError unless ``directory``'s file system has ``nbytes + spare`` free.

    Returns the free bytes. Writing a memory map on a full disk kills the process with
    SIGBUS instead of raising, so check (and preallocate) before writing.
    """
    free = shutil.disk_usage(os.fspath(directory)).free
    if free < nbytes + spare:
        raise OSError(
            f"not enough disk space in {os.fspath(directory)!r}: the data needs "
            f"{nbytes / 1e9:.2f} GB (+ {spare / 1e9:.2f} GB spare) but only {free / 1e9:.2f} GB "
            "are free; choose another directory or a smaller m."
        )
    return free


def preallocate(path: str | os.PathLike) -> None:
    """Reserve the blocks of an existing (sparse) file so that writing it cannot hit ENOSPC."""
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDWR)
    try:
        if hasattr(os, "posix_fallocate") and size:
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# file changes


class FileWatch:
    """Watch the files behind memory-mapped arrays for changes.

    ``FileWatch(X=X, Y=Y)``: for each keyword whose array is a memory map (or a view of
    one), the backing file's path and ``os.stat`` identity (device, inode, size,
    modification time) are recorded now; ``changed()`` compares them again with one
    ``os.stat`` per file (a few microseconds), so a trainer can call it between its
    kernel calls and stop with the file's name instead of dying of SIGBUS or silently
    training on changed data. Arrays that are not memory maps are ignored: then nothing
    is watched, ``bool(watch)`` is False and ``changed()`` costs nothing.

    A file rewritten in place without a change of size is seen through its modification
    time, so not when the rewrite falls within the file system's timestamp granularity
    (a clock tick on Linux) of the recording. A change can also land between two checks:
    the watch names the culprit early, it cannot prevent the crash.

    Parameters
    ----------
    **arrays : ndarray
        Name (used in the messages) and array, e.g. ``X=X, Y=Y``.

    Attributes
    ----------
    files : dict of str to str
        The watched names and their files' paths.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(os.path.join(d, "X.npy"), np.ones((2, 1000)))
    ...     X = np.load(os.path.join(d, "X.npy"), mmap_mode="r")
    ...     watch = FileWatch(X=X, Y=np.zeros((1, 1000)))  # Y is in memory: not watched
    ...     before = watch.changed()
    ...     os.truncate(os.path.join(d, "X.npy"), 128)  # reading X now would be SIGBUS
    ...     print(bool(watch), list(watch.files), before)
    ...     print(watch.changed().replace(d, "..."))  # doctest: +ELLIPSIS
    True ['X'] None
    X: file '.../X.npy' changed size: 16128 -> 128 bytes (truncated; ... SIGBUS)...
    """

    def __init__(self, **arrays: np.ndarray) -> None:
        self.files: dict[str, str] = {}
        # path -> [names, (st_dev, st_ino, st_size, st_mtime_ns) or None, bytes mapped]
        self._watched: dict[str, list] = {}
        for name, a in arrays.items():
            found = _mapping(a) if isinstance(a, np.ndarray) else None
            root = None if found is None else found[3]
            if root is None or root.filename is None:
                continue
            path = os.fspath(root.filename)
            # np.memmap maps the file from offset rounded down to the allocation
            # granularity, so the map ends at that start plus its length
            need = root.offset - root.offset % mmap.ALLOCATIONGRANULARITY + len(found[0])
            self.files[name] = path
            if path in self._watched:
                entry = self._watched[path]
                entry[0].append(name)
                entry[2] = max(entry[2], need)
            else:
                self._watched[path] = [[name], _identity(path), need]

    def changed(self) -> str | None:
        """None if every watched file is as recorded, else one line saying what changed.

        The line names the array(s), the file and the change: its size (``a -> b
        bytes``), its contents (modified), or the file itself (replaced or deleted).
        """
        for path, (names, was, need) in self._watched.items():
            now = _identity(path)
            if now is None:
                what = "was deleted or renamed; the map still reads the old data"
            elif was is None or now[:2] != was[:2]:
                what = "was replaced by another file; the map still reads the old data"
            elif now[2] != was[2]:
                what = f"changed size: {was[2]} -> {now[2]} bytes"
                if now[2] < need:
                    what += " (truncated; reading the lost pages kills the process: SIGBUS)"
                else:
                    what += " (its contents may have changed too)"
            elif now[3] != was[3]:
                what = "was modified: the data read from it has changed"
            elif now[2] < need:
                what = (
                    f"is {now[2]} bytes, shorter than its map ({need} bytes): it was "
                    "truncated; reading the lost pages kills the process: SIGBUS"
                )
            else:
                continue
            return (
                f"{' and '.join(names)}: file {path!r} {what}. Do not change a data file "
                "while arrays mapped from it are in use."
            )
        return None

    def __bool__(self) -> bool:
        return bool(self._watched)

    def __repr__(self) -> str:
        inside = ", ".join(f"{name}={path!r}" for name, path in self.files.items())
        return f"FileWatch({inside})"


def _identity(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
