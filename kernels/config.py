"""The knobs of the compiled kernels, in one place.

Nothing else in ``kernels/`` writes ``fastmath=`` by hand: it uses one of the two flag sets
below. Both leave out ``nnan`` and ``ninf``, so ``x != x`` and ``np.isfinite`` keep
working inside the kernels and a NaN can never be optimised away.

All kernels are compiled through ``jit`` below, so the JIT options live here too.

After editing this file (or ``expfn.py``) delete ``kernels/__pycache__``: numba's cache
is keyed on the source file of the cached function only, so a change in a module it
imports from is not detected.
"""

import warnings

from numba import njit

# Kernels: contract lets LLVM fuse a*b+c into one FMA; reassoc lets it vectorise the
# float reductions over samples (several partial sums per vector lane); arcp allows
# y * (1/x) for y / x; nsz ignores the sign of zero; afn allows approximate library
# functions (none is called). No nnan/ninf (see above).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Elementary functions (exp, expm1, log1p): the same minus reassoc, whose freedom to
# regroup (x - k*LN2_HI) - k*LN2_LO into x - k*(LN2_HI + LN2_LO) would undo the
# extra-precise range reduction. LLVM keeps these per-instruction flags when it
# inlines the functions into a kernel (tests/test_exp.py measures them inside loops
# compiled with FASTMATH).
FASTMATH_ELEMENTARY = {"nsz", "arcp", "contract", "afn"}

# Exact IEEE arithmetic, for the one division that turns the summed loss into a mean:
# with arcp, LLVM may hoist 1/m out of the epoch loop of the serial kernel and multiply,
# which rounds differently from the parallel kernel's single division.
FASTMATH_EXACT = False

# Samples per block: the per-block scratch (n_h + n_y + 2 rows of BLOCK values) stays in
# L1/L2 while the block goes forward and backward. Measured on the 2-core AVX-512 machine
# (2-4-1 network, loss_and_grads at m = 10^6, float64, 1 thread): 256 -> 9.1 ms,
# 512 -> 9.0, 1024 -> 8.8, 2048 -> 8.9; the 3000-epoch m = 400 training is the same
# for all. 512 keeps the scratch of wide networks (n_h = 64: 256 KiB) within L2.
BLOCK = 512

# Contiguous sample chunks for the parallel kernels: min(N_CHUNKS, number of blocks).
# It depends only on m, never on the thread count, and each chunk sums into its own row
# of a partials array that is added up in a fixed order, so results are bit-identical
# for any number of threads. 64 chunks keep up to ~16 threads busy with little imbalance.
N_CHUNKS = 64

# train_epochs runs the whole-training serial kernel (no thread launch per epoch) when
# m <= SERIAL_MAX_M, and one parallel loss_and_grads call per epoch above it. Measured
# (2-4-1 sigmoid, 2 cores), serial vs parallel microseconds per epoch: with the omp
# threading layer 62 vs 38 at m = 8192 and 131 vs 74 at 16384; with workqueue, whose
# launch costs ~80 us, 131 vs 173 at 16384. On a busy machine a parallel launch can wait
# for a scheduler tick (4 ms), the serial kernel never does. 16384 sits between the two.
SERIAL_MAX_M = 16384

# Division by zero gives inf/NaN as in NumPy instead of raising ZeroDivisionError: the
# Python error model puts a compare-and-raise before every division, and that branch
# stops LLVM from vectorising the loop around it.
ERROR_MODEL = "numpy"


_warned = []


def _no_cache_warning(exc: Exception) -> None:
    """Say once per process, in one line, that nothing is cached and how to fix it."""
    if _warned:
        return
    _warned.append(exc)
    # warn_explicit with a module name for the file: one line (no source line follows),
    # filterable like any warning
    warnings.warn_explicit(
        "fusedmlp: no writable folder for numba's cache of the compiled kernels (kernels/"
        "__pycache__ and the user cache are read-only), so every process compiles them "
        "again (about 10 s); set NUMBA_CACHE_DIR to a writable folder to keep them.",
        UserWarning,
        filename="fusedmlp.kernels",
        lineno=0,
    )


def jit(fastmath=FASTMATH, **options):
    """numba.njit with this project's options and an on-disk cache.

    The cache goes to ``__pycache__`` beside the source, or, where that is read-only,
    numba's user-wide cache dir (``~/.cache/numba``; ``NUMBA_CACHE_DIR`` overrides both).
    If no location at all is writable, numba refuses ``cache=True``: then compile without
    a cache (every process compiles again) instead of failing at import, and say so once.
    """

    def decorate(fn):
        try:
            return njit(fastmath=fastmath, error_model=ERROR_MODEL, cache=True, **options)(fn)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available"
            _no_cache_warning(exc)
            return njit(fastmath=fastmath, error_model=ERROR_MODEL, **options)(fn)

    return decorate
