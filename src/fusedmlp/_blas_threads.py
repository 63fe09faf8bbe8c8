"""BLAS at one thread while the wide kernels run, for the whole process.

The wide kernels (kernels/wide.py) call BLAS from each of their own threads, a block
each; BLAS's own threads would oversubscribe the cores, serialise the kernel's threads
on BLAS's thread pool, and change the bits (OpenBLAS runs other code for a call on one
thread: a 64-64-10 forward pass at m = 540 differs by 2e-14 between one and two BLAS
threads). So every BLAS library of the process runs one thread from the first kernel
call that needs it to the last one that ends, whichever Python threads make them:

- a count of the calls inside, under a lock: the first entry saves the libraries'
  counts and sets 1, the last exit restores them. (threadpoolctl's ``limit`` context,
  used before, restored at each call's end: with two Python threads' calls overlapping,
  the first to end gave BLAS its threads back under the other's kernel, and the other's
  end then restored the 1 it had found, for good.)
- the counts are read and set through OpenBLAS's own C functions (for other BLAS
  libraries, through threadpoolctl's). threadpoolctl's ``set_num_threads`` lets only
  one thread set OpenBLAS's count, the first to set it, and silently ignores the others
  until released; a kernel call from a worker thread would have left the main
  thread's later calls unable to limit BLAS (around threadpoolctl's own, the
  controlling thread is released before and after each change).
- the libraries are looked up once, after numba's BLAS is loaded (``ensure_blas``):
  SciPy's, which the kernels call, is loaded only when ``scipy.linalg`` is imported,
  often after NumPy's own, and a lookup made before missed it (a process whose first
  wide call came before that import ran SciPy's OpenBLAS at full threads for good).

Entering and leaving cost 3.1 us together on the 2-core VM, against 11.1 us for
threadpoolctl's ``limit`` context (it reads every library's state through its Python
wrappers on each entry), which a prediction pays once and an early-stopping epoch twice.
"""

from __future__ import annotations

import itertools
import os
import threading

_lock = threading.Lock()
_inside = 0  # kernel calls inside one_blas_thread() now, in all threads
_libs: list = []  # (get, set) thread-count functions of the BLAS libraries, found once
_looked: list = []  # [True] once they were looked up (a process may have none)
_saved: list[int] = []  # their thread counts before the first of the calls inside


def blas_libraries() -> list:
    """The thread-count functions ``(get, set)`` of this process's BLAS libraries, found
    once, after numba's BLAS (SciPy's, which the kernels call) is loaded."""
    if not _looked:
        from numba.np.linalg import ensure_blas
        from threadpoolctl import ThreadpoolController

        ensure_blas()  # imports scipy.linalg.cython_blas: its library is found below
        found = ThreadpoolController().select(user_api="blas").lib_controllers
        _libs.extend(_calls(lib) for lib in found)
        _looked.append(True)
    return _libs


def _calls(lib) -> tuple:
    """(get, set) for one library: OpenBLAS's own C functions where it runs its own
    thread pool (the wheels' build), else threadpoolctl's methods, releasing its
    controlling thread around each change (see the module docstring)."""
    dynlib = getattr(lib, "dynlib", None)
    if lib.internal_api == "openblas" and lib.threading_layer != "openmp" and dynlib:
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            get = getattr(dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
            put = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                return get, put
    release = getattr(lib, "clear_controlling_thread", None)  # 3.8 has it; older ones may not

    def put(n: int) -> None:
        if release is not None:
            release(force=True)
        lib.set_num_threads(n)
        if release is not None:
            release(force=True)

    return lib.get_num_threads, put


def _set(counts: list[int]) -> None:
    for (_, put), n in zip(_libs, counts, strict=True):
        put(n)


class _OneBlasThread:
    """The context of ``one_blas_thread`` (a class: a generator's context costs more)."""

    def __enter__(self) -> None:
        global _inside
        with _lock:
            if _inside == 0:
                libs = blas_libraries()
                _saved[:] = [get() for get, _ in libs]
                _set([1] * len(libs))
            _inside += 1

    def __exit__(self, *exc) -> None:
        global _inside
        with _lock:
            _inside -= 1
            if _inside == 0:
                _set(_saved)


_CONTEXT = _OneBlasThread()


def one_blas_thread() -> _OneBlasThread:
    """Every BLAS library at one thread inside (see the module docstring).

    >>> from threadpoolctl import threadpool_info
    >>> with one_blas_thread():
    ...     {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    {1}
    """
    return _CONTEXT


def _after_fork_in_child() -> None:
    """The calls inside at the fork belong to threads the child does not have: a fresh
    lock, no call inside, the libraries' own counts back."""
    global _lock, _inside
    _lock = threading.Lock()
    if _inside:
        _inside = 0
        _set(_saved)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
