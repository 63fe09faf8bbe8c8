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

import contextlib
import mmap
import os
import shutil
import struct
import threading
import zipfile
import zlib

import numpy as np

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

_ADVICE = {
    "normal": "MADV_NORMAL",
    "sequential": "MADV_SEQUENTIAL",
    "random": "MADV_RANDOM",
    "willneed": "MADV_WILLNEED",
}

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
# memory


def memory_status() -> dict[str, int]:
    """This process's memory from ``/proc/self/status``, in bytes.

    Keys (those the kernel reports): ``VmRSS`` (resident now), ``VmHWM`` (peak resident
    since start or ``reset_peak``), ``RssAnon`` (heap, stacks: memory really held),
    ``RssFile`` (file pages mapped in, reclaimable when clean), ``RssShmem``. Empty
    where there is no ``/proc`` (not Linux).

    >>> s = memory_status()
    >>> sorted(s) == sorted(k for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")
    ...                     if k in s)
    True
    """
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    value, unit = rest.split()
                    out[key] = int(value) * (1024 if unit == "kB" else 1)
    except OSError:
        pass
    return out


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current resident size (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# page advice


def _mapping(a: np.ndarray):
    """(mmap, first byte, end byte, np.memmap or None) of the mapping behind a, or None.

    Byte positions are relative to the start of the mmap and cover a's memory; None when
    a is not (a view of) a memory map.
    """
    root = None
    obj = a
    while isinstance(obj, np.ndarray):
        if isinstance(obj, np.memmap) and root is None:
            root = obj
        obj = obj.base
    if not isinstance(obj, mmap.mmap) or obj.closed:
        return None
    if a.size == 0:
        return None
    base = np.frombuffer(obj, np.uint8).ctypes.data
    lo, hi = _byte_bounds(a)
    return obj, lo - base, hi - base, root


def is_mapped(a: object) -> bool:
    """True when ``a`` is a memory map or a view of one (its data lives in a file).

    >>> is_mapped(np.zeros(3))
    False
    """
    return isinstance(a, np.ndarray) and _mapping(a) is not None


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    try:
        bounds = np.lib.array_utils.byte_bounds  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        bounds = np.byte_bounds
    return bounds(a)


def _madvise(m: mmap.mmap, option: int, lo: int, hi: int) -> None:
    start = lo - lo % mmap.PAGESIZE  # madvise wants a page-aligned start
    m.madvise(option, start, hi - start)


def advise(*arrays: np.ndarray, how: str) -> int:
    """Give the kernel an ``madvise`` hint for each memory-mapped array.

    Parameters
    ----------
    *arrays : ndarray
        Memory maps or views of them; other arrays are skipped.
    how : {"sequential", "normal", "random", "willneed"}
        ``"sequential"``: aggressive read-ahead, pages behind the reader reclaimed first;
        ``"normal"`` restores the default; ``"willneed"`` starts reading the data in now.

    Returns
    -------
    int : how many arrays were advised (0 where madvise is unavailable).
    """
    if how not in _ADVICE:
        raise ValueError(f"unknown advice {how!r}: expected one of {', '.join(_ADVICE)}.")
    option = getattr(mmap, _ADVICE[how], None)
    if option is None or not hasattr(mmap.mmap, "madvise"):
        return 0
    done = 0
    for a in arrays:
        found = _mapping(a) if isinstance(a, np.ndarray) else None
        if found is not None:
            m, lo, hi, _ = found
            _madvise(m, option, lo, hi)
            done += 1
    return done


def release(*arrays: np.ndarray, evict: bool = False) -> int:
    """Unmap the resident pages of memory-mapped arrays (``MADV_DONTNEED``).

    The arrays stay valid: the next access faults the pages in again, from the page
    cache or from disk. Only shared mappings (np.memmap modes ``"r"``, ``"r+"``,
    ``"w+"``) are released; a copy-on-write map (mode ``"c"``) would lose its changes
    and is skipped, as are arrays that are not memory maps. Dirty pages of a writable
    map are kept for write-back by the kernel, not lost.

    Parameters
    ----------
    *arrays : ndarray
        Memory maps or views of them. A strided view releases the whole span of its
        memory (for X[:, a:b] of a C-ordered X that is most of the file).
    evict : bool
        Also drop the file's pages from the page cache (``posix_fadvise`` DONTNEED) for
        the array's byte range, so the next pass reads from disk; clean pages only.

    Returns
    -------
    int : how many arrays were released.
    """
    option = getattr(mmap, "MADV_DONTNEED", None)
    if option is None or not hasattr(mmap.mmap, "madvise"):
        return 0
    done = 0
    for a in arrays:
        found = _mapping(a) if isinstance(a, np.ndarray) else None
        if found is None:
            continue
        m, lo, hi, root = found
        if root is None or root.mode not in ("r", "r+", "w+"):  # np.memmap's normalised modes
            continue
        _madvise(m, option, lo, hi)
        if evict and root.filename is not None and hasattr(os, "posix_fadvise"):
            # file offset of mapping byte 0: the map starts at the data offset rounded
            # down to the allocation granularity (how np.memmap creates it)
            start = root.offset - root.offset % mmap.ALLOCATIONGRANULARITY
            fd = os.open(root.filename, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, start + lo, hi - lo, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        done += 1
    return done


def resident_bytes(a: np.ndarray) -> int:
    """Bytes of the file mapping behind ``a`` now resident in this process (0 if none).

    Read from ``/proc/self/smaps`` (Linux): the ``Rss`` of every memory area inside the
    mapping, which ``madvise`` may have split into several.
    """
    found = _mapping(a) if isinstance(a, np.ndarray) else None
    if found is None:
        return 0
    m = found[0]
    lo = np.frombuffer(m, np.uint8).ctypes.data
    hi = lo + len(m)
    total, inside = 0, False
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):
                    start, end = (int(x, 16) for x in head.split("-"))
                    inside = start < hi and end > lo
                elif inside and head == "Rss:":
                    total += int(line.split()[1]) * 1024
    except OSError:
        return 0
    return total


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


class _Trim:
    count = 0


@contextlib.contextmanager
def trimming(*arrays: np.ndarray, interval: float = 1.0):
    """Keep the resident pages of memory-mapped arrays bounded while the block runs.

    A daemon thread calls ``release(*arrays)`` every ``interval`` seconds,
    and once more on exit, so the file pages a pass over the data has touched stop
    counting in this process's resident set: it stays at about what the reader touches
    in ``interval`` seconds instead of growing to the size of the data. Safe while a
    kernel reads the arrays (a released page is simply faulted in again); the
    compiled kernels release the GIL, so the thread runs during them. The pages stay in
    the page cache (evicting them here would also drop the read-ahead in front of the
    reader); the kernel reclaims them when it needs the memory.

    Yields an object whose ``count`` is the number of releases done so far.

    Examples
    --------
    >>> with trimming(np.zeros(3), interval=0.01) as t:  # not a memory map: no-op
    ...     pass
    >>> t.count >= 1
    True
    """
    if not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    state = _Trim()
    stop = threading.Event()

    def loop():
        while not stop.wait(interval):
            release(*arrays)
            state.count += 1

    thread = threading.Thread(target=loop, name="fusedmlp-trim", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join()
        release(*arrays)
        state.count += 1
