"""NumPy's legacy ``RandomState.shuffle``, compiled: the same draws from the same stream.

scikit-learn's MLP shuffles the samples once per epoch with its RandomState;
fusedmlp.sklearn draws the same shuffles so that its batches, and its stream
afterwards, are scikit-learn's. Drawn in Python, a shuffle costs about 3 us (most of it
the call), about a tenth of a small data set's epoch; here a call draws the shuffles of
many epochs.

RandomState is the Mersenne Twister MT19937 (state: 624 32-bit words and a position),
and its ``shuffle`` of a 1-D array is Fisher-Yates from the last element down: for i =
n-1 .. 1, swap x[i] with x[j], j drawn uniformly from 0..i by masked rejection (the
next 32-bit output ANDed with the smallest all-ones mask covering i, drawn again while
above i; numpy's ``random_interval``). The caller passes the generator's state words
and position (fusedmlp.sklearn._shuffle: a view of them in the generator's memory),
which the kernel updates as the generator would; the tests check every draw, and the
state after, against ``RandomState.shuffle`` itself, which is this kernel's twin.

All arithmetic is on uint64 holding 32-bit values, masked where a shift left could
carry past bit 31 (numba would turn a mix of uint32 and signed integers into floats).
"""

import numpy as np

from .config import jit

_inner = jit()
_serial = jit(nogil=True)

N, M = 624, 397  # MT19937's state words, and its middle offset
_MATRIX_A = np.uint64(0x9908B0DF)
_UPPER, _LOWER = np.uint64(0x80000000), np.uint64(0x7FFFFFFF)


@_inner
def _mix(key, i, nxt, far):
    """Word i of the next state from words i, nxt (= i + 1) and far (= i + M), mod N."""
    y = (np.uint64(key[i]) & _UPPER) | (np.uint64(key[nxt]) & _LOWER)
    odd = (np.uint64(0) - (y & np.uint64(1))) & _MATRIX_A  # MATRIX_A where y is odd
    key[i] = np.uint64(key[far]) ^ (y >> np.uint64(1)) ^ odd


@_inner
def _twist(key):
    """The next 624 words of the state, in place (the generator's regeneration step;
    the index ranges written out: a ``% N`` per word cost as much as the draws)."""
    for i in range(N - M):
        _mix(key, i, i + 1, i + M)
    for i in range(N - M, N - 1):
        _mix(key, i, i + 1, i + M - N)
    _mix(key, N - 1, 0, M - 1)


@_inner
def _below(key, pos, top):
    """(j uniform in 0..top, the new position) for 0 < top < 2^32, as numpy's
    random_interval draws it: tempered outputs masked to the smallest all-ones mask
    covering top, drawn again while above top."""
    mask = np.uint64(top)
    for s in (1, 2, 4, 8, 16):
        mask |= mask >> np.uint64(s)
    while True:
        if pos >= N:
            _twist(key)
            pos = 0
        y = np.uint64(key[pos])
        pos += 1
        y ^= y >> np.uint64(11)
        y ^= (y << np.uint64(7)) & np.uint64(0x9D2C5680)
        y ^= (y << np.uint64(15)) & np.uint64(0xEFC60000)
        y ^= y >> np.uint64(18)
        v = y & mask
        if v <= np.uint64(top):
            return np.int64(v), pos


@_serial
def shuffles(key, pos, order, k, orders):
    """Shuffle ``order`` (n,) int64 in place k times, as RandomState.shuffle would one
    after another, writing the order after shuffle e to orders[e] while e <
    orders.shape[0] (orders (k, n) int64, or (0, n) to keep none); the generator's state
    is key (624,) uint32 (updated in place) and pos. Returns the new pos. n must be
    below 2^32 (the caller checks)."""
    n = order.shape[0]
    for e in range(k):
        for i in range(n - 1, 0, -1):
            j, pos = _below(key, pos, i)
            order[i], order[j] = order[j], order[i]
        if e < orders.shape[0]:
            orders[e, :] = order
    return pos
