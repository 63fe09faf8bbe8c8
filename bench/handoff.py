"""The cost of handing data from one core to the other, as a mini-batch epoch does.

    .venv/bin/python bench/handoff.py

A mini-batch epoch on two threads hands the parameters (written by the update on the
main thread) to the worker and the worker's gradient row back, once per batch: at the
digits shape (64-64-10) about 40 KB each way. This script times a parallel region of
two threads that each read 5000 float64 (40 KB), first when nothing changed them since
the last region, then when the main thread has just written them, and prints both and
the difference: what moving 40 KB from one core's cache to the other's costs here.

On this project's 2-core VM the difference is about 4 us in most processes and about
15 us in some. It was written to test whether those are the processes in which a
mini-batch epoch at the digits shape costs 1.3-1.4 ms instead of 0.8 ms; so far they do
not line up (bench/RESULTS.md tables both, process by process).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, prange

import fusedmlp.kernels  # noqa: F401  (the threading layer fusedmlp uses)

N = 5000  # float64: 40 KB, about the digits network's parameters
REPS = 3000


@njit(parallel=True, cache=False)
def _read(out, P):
    for c in prange(2):
        s = 0.0
        for i in range(P.shape[0]):
            s += P[i]
        out[c] = s


@njit(cache=False)
def _write(P):
    for i in range(P.shape[0]):
        P[i] += 1e-9


def measure(reps: int = REPS) -> tuple[float, float]:
    """(us per region reading unchanged data, us per region reading just-written data)."""
    P, out = np.random.default_rng(0).random(N), np.zeros(2)
    _read(out, P)
    _write(P)
    times = []
    for written in (False, True):
        t = time.perf_counter()
        for _ in range(reps):
            if written:
                _write(P)
            _read(out, P)
        total = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(reps):
            if written:
                _write(P)
        times.append((total - (time.perf_counter() - t)) / reps * 1e6)
    return times[0], times[1]


if __name__ == "__main__":
    same, moved = measure()
    print(f"region reading 40 KB unchanged: {same:.1f} us; just written by the other "
          f"core: {moved:.1f} us; the hand-off: {moved - same:.1f} us")  # fmt: skip
