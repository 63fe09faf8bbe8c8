"""Memory of memory-mapped data: resident set reports, page advice, releasing pages.

Part of ``fusedmlp.outofcore``, which re-exports everything public here; see its
docstring for how these fit together.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading

import numpy as np

_ADVICE = {
    "normal": "MADV_NORMAL",
    "sequential": "MADV_SEQUENTIAL",
    "random": "MADV_RANDOM",
    "willneed": "MADV_WILLNEED",
}


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
# trimming


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
