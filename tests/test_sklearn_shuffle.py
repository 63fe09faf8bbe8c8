"""The estimators' per-epoch shuffles (fusedmlp.sklearn._shuffle and its kernel,
fusedmlp.kernels.shuffle) against RandomState.shuffle, their twin: every order equal,
the stream left where k shuffles in Python leave it, for MT19937 (the compiled path)
and for another bit generator (RandomState.shuffle itself)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neural_network import MLPClassifier

from fusedmlp.kernels import shuffle as kshuffle
from fusedmlp.sklearn import FusedMLPClassifier, _shuffle


def _python_orders(rs, order, k):
    """What scikit-learn's loop does k times: a permutation of range(n) by
    RandomState.shuffle, applied to the order so far."""
    out = []
    for _ in range(k):
        perm = np.arange(order.shape[0])
        rs.shuffle(perm)
        order = order[perm]
        out.append(order)
    return np.array(out).reshape(k, order.shape[0])


def _streams(seed, skip):
    """Two RandomStates at the same point of one stream (skip draws in)."""
    a, b = np.random.RandomState(seed), np.random.RandomState(seed)
    a.random_sample(skip)
    b.random_sample(skip)
    return a, b


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 1500),
    k=st.integers(0, 6),
    seed=st.integers(0, 2**32 - 1),
    skip=st.integers(0, 1300),  # past a regeneration of the 624 words, or not
)
def test_orders_are_randomstate_shuffles(n, k, seed, skip):
    ours_rs, theirs_rs = _streams(seed, skip)
    start = np.random.default_rng(seed).permutation(n)  # an order so far, not range(n)
    order = start.copy()
    got = _shuffle.Stream(ours_rs).orders(order, k, keep=True)
    want = _python_orders(theirs_rs, start, k)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(order, want[-1] if k else start)
    assert ours_rs.randint(2**31) == theirs_rs.randint(2**31)  # the streams go on alike


def test_kernel_draws_as_numpy_at_sizes_crossing_mask_widths():
    # n - 1 at and around powers of two: the rejection mask changes width there
    for n in (2, 3, 4, 5, 8, 9, 16, 17, 255, 256, 257, 1024, 1025, 4097):
        ours_rs, theirs_rs = _streams(n, 3)
        state = ours_rs.get_state()
        key, order = state[1].copy(), np.arange(n)
        out = np.empty((2, n), np.int64)
        pos = kshuffle.shuffles(key, state[2], order, 2, out)
        np.testing.assert_array_equal(out, _python_orders(theirs_rs, np.arange(n), 2))
        want = theirs_rs.get_state()
        np.testing.assert_array_equal(key, want[1])
        assert pos == want[2]


def test_orders_not_kept_still_draw_and_shuffle():
    ours_rs, theirs_rs = _streams(3, 0)
    order = np.arange(50)
    assert _shuffle.Stream(ours_rs).orders(order, 4, keep=False).shape == (0, 50)
    np.testing.assert_array_equal(order, _python_orders(theirs_rs, np.arange(50), 4)[-1])
    assert ours_rs.random() == theirs_rs.random()


def test_save_and_restore_take_the_stream_back():
    rs = np.random.RandomState(11)
    stream = _shuffle.Stream(rs)
    saved = stream.save()
    first = rs.random_sample(700)  # past a regeneration
    stream.restore(saved)
    np.testing.assert_array_equal(rs.random_sample(700), first)


def test_layout_check_passes_here():
    # the compiled path is the one the estimators take on this NumPy
    assert _shuffle._layout_ok()
    assert _shuffle._view(np.random.RandomState(0)) is not None


@pytest.mark.parametrize("why", ["other generator", "layout refused"])
def test_without_the_view_numpy_does_the_same_work(why, monkeypatch):
    def make(seed):
        if why == "other generator":
            return np.random.RandomState(np.random.PCG64(seed))
        return np.random.RandomState(seed)

    if why == "layout refused":
        monkeypatch.setattr(_shuffle, "_layout_ok", lambda: False)
    ours_rs, theirs_rs = make(4), make(4)
    stream = _shuffle.Stream(ours_rs)
    assert stream.view is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no get_state(legacy) warning for PCG64
        saved = stream.save()
        got = stream.orders(np.arange(30), 3, keep=True)
        np.testing.assert_array_equal(got, _python_orders(theirs_rs, np.arange(30), 3))
        stream.restore(saved)
        again = stream.orders(np.arange(30), 3, keep=True)
    np.testing.assert_array_equal(again, got)


@pytest.mark.parametrize("generator", [None, "PCG64"])
def test_fits_shuffle_as_scikit_learn_whatever_the_generator(generator):
    # the estimators' batches (and so their curves) follow scikit-learn's shuffles,
    # and the user's RandomState ends where scikit-learn leaves it
    X = np.random.default_rng(0).standard_normal((90, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    streams = [np.random.RandomState(np.random.PCG64(8) if generator else 8) for _ in range(2)]
    kw = dict(hidden_layer_sizes=(6,), batch_size=16, max_iter=15, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = FusedMLPClassifier(**kw, random_state=streams[0]).fit(X, y)
        theirs = MLPClassifier(**kw, random_state=streams[1]).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    assert streams[0].random() == streams[1].random()
