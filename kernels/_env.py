"""The process environment the kernels need, set before numba is imported.

The one place in kernels/ that touches more than numpy, numba and math: what it does
must happen before numba reads its configuration, so it cannot wait for a kernel call.

- NUMBA_NUM_THREADS must be a whole number of threads the machine can run: numba fails
  at import on 0 or less (a long traceback), and with tens of thousands of threads the
  process runs out of them and crashes; a value that is not a number numba ignores with
  a multi-line warning. All three are refused here, in one line with the fix.
- The threading layer: fork-safe and thread-safe. GNU OpenMP (numba's pick on Linux when
  TBB cannot be loaded) kills every child of a fork once the parent has run a parallel
  kernel ("Terminating: fork() called from a process already using GNU OpenMP"), which
  hangs multiprocessing pools. numba's "forksafe" choice is TBB where it loads, else
  workqueue (never GNU OpenMP); TBB is also thread-safe, and the lock in
  fusedmlp._compiled covers workqueue. Measured per epoch (2-4-1 sigmoid + mse,
  float64, 2 threads, parallel path; medians of 5 processes each, from
  bench/threading_layers.py, in bench/RESULTS.md): m = 10^4: omp 0.046 ms, tbb 0.046,
  workqueue 0.155; m = 10^6: omp 4.26, tbb 4.19, workqueue 5.96; m = 10^7: omp 41.3,
  tbb 43.4, workqueue 44.5. It is set as NUMBA_THREADING_LAYER when that is unset or
  empty (numba re-reads its configuration from the environment, so setting
  numba.config alone would not last); an explicit choice is respected, and so is a
  numba.config.THREADING_LAYER set before fusedmlp.kernels is imported. Child
  processes inherit the variable.
- TBB's wheel on PyPI puts libtbb.so.12 in <prefix>/lib, which the dynamic loader does
  not search inside a virtual environment, so numba's TBB layer fails to load there
  ("No threading layer could be loaded ... pip install tbb"). Loading the library by
  its full path first makes numba's later load by name find it.
"""

import ctypes
import importlib.metadata
import os
import sys

THREADING_LAYER = "forksafe"
_TBB_LIBS = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib"}


def _check_threads() -> None:
    value = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if not value:
        return
    cores = os.cpu_count() or 1
    top = max(64, 8 * cores)
    fix = f"set it to a whole number from 1 to {top} (this machine has {cores} cores), or unset it"
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"NUMBA_NUM_THREADS={value} is not a number of threads: {fix}.") from None
    if not 1 <= n <= top:
        raise ValueError(f"NUMBA_NUM_THREADS={value} is not a usable number of threads: {fix}.")


def _preload_tbb() -> bool:
    """Load the tbb package's libtbb by path, if installed; True when it is loaded."""
    name = _TBB_LIBS.get(sys.platform)
    if name is None:
        return False
    try:
        dist = importlib.metadata.distribution("tbb")
        for f in dist.files or ():
            if f.name == name:
                ctypes.CDLL(os.fspath(dist.locate_file(f)), mode=ctypes.RTLD_GLOBAL)
                return True
    except (importlib.metadata.PackageNotFoundError, OSError):
        pass
    return False


def _choose_threading_layer() -> None:
    if os.environ.get("NUMBA_THREADING_LAYER", "").strip():
        return  # the user's choice
    numba = sys.modules.get("numba")
    if numba is not None and numba.config.THREADING_LAYER not in ("default", ""):
        return  # set in numba.config by the user before fusedmlp.kernels was imported
    os.environ["NUMBA_THREADING_LAYER"] = THREADING_LAYER
    if numba is not None:
        numba.config.THREADING_LAYER = THREADING_LAYER  # already read: tell it too


_check_threads()
_preload_tbb()
_choose_threading_layer()
