"""scikit-learn's per-epoch shuffles, drawn many epochs at a time.

scikit-learn's MLP reorders its samples once an epoch with ``sklearn.utils.shuffle``,
which draws a permutation of range(n) by ``RandomState.shuffle``. ``Stream(rs).orders``
draws k such shuffles, composed one after another, from the same stream, and leaves
the stream where k epochs of scikit-learn's loop would; ``save`` and ``restore`` take
the stream back (the epochs a kernel call did not reach).

When the RandomState runs on MT19937, as every one scikit-learn makes from a seed
does, the shuffles are drawn by the compiled twin of RandomState.shuffle
(``fusedmlp.kernels.shuffle``) straight from the generator's state in memory (a view
of its 624 words and position, through the ctypes address NumPy publishes): the
state's ``get_state``/``set_state`` copy it word by word, about 34 us each, the cost
of 13 shuffles of 124 samples. Before the view is trusted, the state's layout is
checked once per process against ``get_state`` on a generator of its own; where it
differs, or for another bit generator, get_state/set_state and RandomState.shuffle do
the same work. Measured for a fit of 124 samples (wine) whose 200 epochs come in calls
of 1, 16 and 183: 0.22 ms of shuffles a fit, against 0.68 ms by RandomState.shuffle
with a get_state per call.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from .. import kernels as _k

_WORDS = 624  # MT19937's state: 624 uint32 words, then the position (a C int)


class Stream:
    """The shuffles of one RandomState ``rs``, and its stream saved and restored. The
    view of its state is made once (about 5 us)."""

    def __init__(self, rs: np.random.RandomState):
        self.rs, self.view = rs, _view(rs)

    def orders(self, order: np.ndarray, k: int, keep: bool) -> np.ndarray:
        """Shuffle ``order`` (n,) int64 in place k times, as k epochs of scikit-learn's
        loop would (each a permutation of range(n) drawn from the stream and applied to
        the order so far); returns the orders after each, (k, n), or (0, n) unless
        ``keep``."""
        out = np.empty((k if keep else 0, order.shape[0]), np.int64)
        view = self.view
        if view is None or order.shape[0] >= 2**32:
            return _python(self.rs, order, k, out)
        with self.rs._bit_generator.lock:
            view[_WORDS] = _k.shuffle.shuffles(view[:_WORDS], int(view[_WORDS]), order, k, out)
        return out

    def save(self):
        """Where the stream stands, for ``restore``."""
        if self.view is None:
            return self.rs.get_state(legacy=False)
        with self.rs._bit_generator.lock:
            return self.view.copy()

    def restore(self, saved) -> None:
        """Put the stream back where ``save`` found it."""
        if self.view is None:
            self.rs.set_state(saved)
            return
        with self.rs._bit_generator.lock:
            self.view[:] = saved


def _view(rs: np.random.RandomState) -> np.ndarray | None:
    """The MT19937 state of rs as a writable (625,) uint32 view (the words, then the
    position), or None where it is not MT19937 or its layout is not the one expected."""
    bg = getattr(rs, "_bit_generator", None)
    if type(bg) is not np.random.MT19937 or not _layout_ok():
        return None
    return _state_of(bg)


def _state_of(bg: np.random.MT19937) -> np.ndarray:
    """A (625,) uint32 view of bg's state struct (its memory: bg must outlive it)."""
    words = ctypes.cast(bg.ctypes.state_address, ctypes.POINTER(ctypes.c_uint32))
    return np.ctypeslib.as_array(words, shape=(_WORDS + 1,))


@functools.cache
def _layout_ok() -> bool:
    """Whether an MT19937's state in memory is its 624 words, then its position, as
    get_state reports them: checked fresh, after draws past a regeneration, and after
    a write through the view."""
    bg = np.random.MT19937(20261205)
    view = _state_of(bg)

    def same() -> bool:
        state = bg.state["state"]
        return np.array_equal(view[:_WORDS], state["key"]) and view[_WORDS] == state["pos"]

    ok = same()
    bg.random_raw(_WORDS + 5)
    ok = ok and same()
    view[_WORDS] = 7
    view[0] ^= 1
    return ok and same()


def _python(rs: np.random.RandomState, order: np.ndarray, k: int, out: np.ndarray):
    """``orders`` by RandomState.shuffle (any bit generator)."""
    for e in range(k):
        perm = np.arange(order.shape[0])
        rs.shuffle(perm)
        order[:] = order[perm]
        if e < out.shape[0]:
            out[e] = order
    return out
