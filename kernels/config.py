"""The knobs of the compiled kernels, in one place.

Nothing else in ``kernels/`` writes ``fastmath=`` by hand: it uses one of the two flag sets
below. Both leave out ``nnan`` and ``ninf``, so ``x != x`` and ``np.isfinite`` keep
working inside the kernels on values read back from arrays. A test of a value the same
fastmath function has just computed is another matter: reassoc with nsz lets LLVM fold
the x - x inside isfinite to 0, so such tests go through ``optim.finite`` (no fastmath).

All kernels are compiled through ``jit`` below, so the JIT options live here too.

After editing this file (or ``expfn.py``, ``_linking.py``) delete ``kernels/__pycache__``:
numba's cache is keyed on the source file of the cached function only, so a change in a
module it imports from is not detected.
"""

import warnings

from numba import njit

from . import _linking  # noqa: F401 (each kernel runs its own copies: see there)

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

# Wide networks: the block's products go to BLAS (kernels/wide.py) once the hidden layer
# has WIDE_MIN_H units and the input WIDE_MIN_X features; loops (kernels/narrow.py)
# below. Measured, m = 10^5, one epoch, 2 threads, narrow / wide time (> 1: BLAS wins),
# float64 and float32: 2-4-1 0.94 0.86; 2-64-1 0.68 0.81; 2-256-1 0.68 0.91 (two inputs:
# the loops win at any width); 4-128-1 1.00 1.03; 5-64-1 1.04 1.04; 6-32-1 1.14 1.09;
# 8-2-1 1.04 0.86; 8-4-1 1.17 1.05; 8-16-1 1.06 1.27; 12-8-1 1.28 1.45; 16-32-1 1.61
# 1.77; 30-64-1 1.51 1.56; 64-32-10 1.67 1.24; 100-4-1 1.20 1.81; 100-8-1 1.40 1.64;
# 784-2-1 0.74 0.73; 784-4-1 0.99 0.78; 784-8-1 1.47 1.28. Below 8 hidden units the
# products are too thin for BLAS at any input size.
WIDE_MIN_X, WIDE_MIN_H = 5, 8

# The block size of a wide network: the per-block arrays that the elementwise passes
# walk (A1, the deltas: 2 n_h + n_y rows) take about WIDE_BLOCK_BYTES, so they stay in
# the 1 MiB L2 of a core beside what BLAS keeps there, but never fewer samples than
# WIDE_BLOCK_MIN (BLAS's per-call costs) nor more than WIDE_BLOCK_MAX; and a small data
# set gets at least WIDE_MIN_BLOCKS blocks, for the threads to share. Measured, ms per
# epoch, 2 threads (differences under ~5% are the shared machine's noise):
#   784-128-10, m = 60000: float64 blk 128 292, 256 289, 384 275, 512 283-308, 1024 298;
#                          float32 128 165-175, 256 161-170, 384 168, 512 154-169, 1024 170
#   100-256-1, m = 10^5:   float64 blk 64 153, 128 135, 256 130, 512 139
#   30-64-1, m = 10^5:     float64 blk 128 18.9, 256 15.1, 384 15.2, 512 16.4-17.0,
#                          1024 17.5-18.1, 2048 19.5; float32 256 7.4, 384 7.2, 512 7.4,
#                          1024 10.3-10.9
#   64-32-10, m = 1797:    float64 blk 64 0.43, 128 0.42, 192 0.38, 256 0.40, 448 0.50,
#                          832 0.60; float32 0.33, 0.27, 0.17, 0.19, 0.22, 0.28
# A budget of all of L2 (1 MiB) chose 1024 for 30-64-1, 20% slower than 384.
WIDE_BLOCK_BYTES = 384 << 10
WIDE_BLOCK_MIN, WIDE_BLOCK_MAX = 256, 1024
WIDE_MIN_BLOCKS = 8

# Chunks of a wide network: each holds a float64 row of all the parameters (784-128-10:
# 0.8 MB), and its blocks are long, so fewer chunks balance the threads as well as
# N_CHUNKS would, with less to zero and to add up every epoch.
WIDE_CHUNKS = 16


def chunks(m: int, blk: int, most: int) -> int:
    """Chunks of blocks for m samples: min(most, number of blocks), at least 1."""
    return max(1, min(most, -(-m // blk)))


def plan(n_x: int, n_h: int, n_y: int, itemsize: int, m: int) -> tuple[int, int, int]:
    """(blk, wide, n_chunk) for a network and m samples: the block size, 1 when the
    block's products go to BLAS, and the number of chunks. A function of these numbers
    only (never of the thread count), so the chunking, and with it every sum, is the
    same for any number of threads."""
    if n_x < WIDE_MIN_X or n_h < WIDE_MIN_H:
        return narrow_plan(m)
    by_cache = WIDE_BLOCK_BYTES // ((2 * n_h + n_y) * itemsize)
    by_m = -(-m // WIDE_MIN_BLOCKS)
    blk = max(WIDE_BLOCK_MIN, min(WIDE_BLOCK_MAX, -(-min(by_cache, by_m) // 64) * 64))
    return blk, 1, chunks(m, blk, WIDE_CHUNKS)


# Samples per chunk of a mini-batch of a wide network whose chunks run on threads: at
# least this many, so each chunk's products stay worth a BLAS call. Measured at the digits
# shape (64-64-10, batches of 200, 2 cores), ms per epoch of 1797 samples: serial 1.12,
# 2 chunks of 100 0.85, 4 chunks of 50 1.31.
BATCH_CHUNK_MIN = 96


def batch_plan(n_x: int, n_h: int, n_y: int, itemsize: int, batch: int) -> tuple[int, int, int]:
    """plan for mini-batches of ``batch`` samples: a wide network's batch too costly for
    one thread (batch > serial_max_m) is cut into chunks of one block each, of at least
    BATCH_CHUNK_MIN samples (at most WIDE_CHUNKS chunks), which the parallel batch
    kernel shares out; otherwise plan(..., m=batch). A function of the sizes only, as
    plan is: the same sums for any thread count."""
    blk, wide, n_chunk = plan(n_x, n_h, n_y, itemsize, batch)
    if wide and batch > serial_max_m(n_x, n_h, n_y):
        n_chunk = max(1, min(WIDE_CHUNKS, batch // BATCH_CHUNK_MIN))
        blk = -(-batch // n_chunk)
        blk = -(-blk // 8) * 8
        n_chunk = chunks(batch, blk, n_chunk)
    return blk, wide, n_chunk


# A mini-batch of a wide network is gathered sample-major (its scratch column-major, a
# sample's features contiguous; BLAS reads it transposed) once a sample's features span
# BY_SAMPLE_MIN_BYTES: the gather copies whole samples, contiguous runs where X is
# sample-major too (as scikit-learn's data are). The choice depends on the sizes only,
# never on X's layout, so a batch's bits do not either. Measured, epochs of 1000
# samples, batches of 200, relu, Adam, 2 cores, time sample-major / feature-major
# (data and batch alike): float64, 64 hidden: n_x 6 1.15, 10 1.12, 16 1.08, 24 0.91,
# 32 0.92, 64 0.89; 128 hidden: 16 0.96, 24 0.91, 64 0.93; float32, 32 hidden: 16 1.04,
# 32 1.00-1.02, 48 0.93, 64 0.91.
BY_SAMPLE_MIN_BYTES = 192


def by_sample(n_x: int, itemsize: int, wide: int) -> bool:
    """Whether batches of a network with n_x inputs are gathered sample-major."""
    return bool(wide) and n_x * itemsize >= BY_SAMPLE_MIN_BYTES


# Prediction (forward, count_correct) sums nothing across samples, so its blocks are
# free to balance the threads: the wide plan's block size, then the number of blocks
# rounded up to a multiple of FORWARD_BLOCKS (TBB shares three blocks out as two and
# one), halved while a block would hold fewer than FORWARD_MIN samples. Measured, us a
# pass, 2 threads, float64, plan's blocks against these: 64-64-10 at m = 54 17 vs 12,
# 135 36 vs 24, 540 139 vs 70, 1797 278 vs 242; 13-64-3 at 540 45 vs 33, 5000 313 vs
# 201; 10-64-1 at 1797 73 vs 48.
FORWARD_BLOCKS, FORWARD_MIN = 4, 24


def forward_plan(n_x: int, n_h: int, n_y: int, itemsize: int, m: int) -> tuple[int, int, int]:
    """plan for the forward pass alone (prediction); a function of the sizes only, as
    plan is, so a prediction's bits never depend on the thread count."""
    blk, wide, n_chunk = plan(n_x, n_h, n_y, itemsize, m)
    if not wide:
        return blk, wide, n_chunk
    n_block = _round_up(_ceil_div(m, blk), FORWARD_BLOCKS)
    while n_block > 1 and m < FORWARD_MIN * n_block:
        n_block //= 2
    blk = _round_up(_ceil_div(m, n_block), 8)
    return blk, wide, chunks(m, blk, WIDE_CHUNKS)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    """a rounded up to a multiple of b."""
    return _ceil_div(a, b) * b


def narrow_plan(m: int) -> tuple[int, int, int]:
    """The plan of the loops (kernels/narrow.py) for m samples."""
    return BLOCK, 0, chunks(m, BLOCK, N_CHUNKS)


def serial_max_m(n_x: int, n_h: int, n_y: int) -> int:
    """Largest m whose epochs run on the serial whole-training kernel.

    SERIAL_MAX_M was measured on the 2-4-1 network; a sample of a wider network costs
    more, so fewer samples fill the time a thread launch costs. The cost of a sample is
    counted as its multiply-adds plus 8 per unit for the exps and divisions.
    """
    cost = n_x * n_h + n_h * n_y + 8 * (n_h + n_y)
    return max(1, SERIAL_MAX_M * (2 * 4 + 4 * 1 + 8 * 5) // cost)


# Softmax's loss: samples whose sums of exps share one log (elementwise._sum_lse; a
# log is a library call that does not vectorise). Measured, loss_delta of one block,
# float64: 13-64-3 at 124 samples (wine) 1.43 us, against 1.93 with a log per sample.
# 8: the product of 8 sums, each at most n_y, stays finite for any n_y below 1e38.
LSE_GROUP = 8


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
