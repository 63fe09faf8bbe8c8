"""``_compiled.predictor``: predict_proba prepared once for repeated calls (early
stopping's held-out scores). Every call must give the NumPy reference's outputs (rtol
1e-12 in float64, 1e-5 in float32: one forward pass, magnitudes of order 1) and a
freshly prepared call's very bits (``predict_proba`` prepares one per call) for the
parameters as they are at that call: updated in place, replaced, or needing a
conversion (then prepared afresh each call)."""

import numpy as np
import pytest

from fusedmlp import _compiled, reference

CASES = [("relu", "softmax"), ("tanh", "sigmoid"), ("sigmoid", "identity"), ("relu", "exp")]
RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def _as_reference(p, X, act, out):
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    return reference.predict_proba(p64, X.astype(np.float64), act, out)


def _params(n_x, n_h, n_y, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(size=(n_h, n_x)).astype(dtype) * 0.3,
        "b1": rng.normal(size=(n_h, 1)).astype(dtype),
        "W2": rng.normal(size=(n_y, n_h)).astype(dtype) * 0.3,
        "b2": rng.normal(size=(n_y, 1)).astype(dtype),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act,out", CASES)
@pytest.mark.parametrize("shape", [(13, 64, 3, 13), (2, 4, 1, 7), (64, 64, 10, 20000)])
def test_every_call_is_predict_proba_of_the_parameters_then(shape, act, out, dtype):
    # 20000 samples of 64-64-10 run the parallel kernel, the others the serial twin
    n_x, n_h, n_y, m = shape
    p = _params(n_x, n_h, n_y, dtype)
    X = np.random.default_rng(1).normal(size=(n_x, m)).astype(dtype)
    run = _compiled.predictor(p, X, act, out)
    for step in range(3):
        got = run().copy()
        np.testing.assert_array_equal(got, _compiled.predict_proba(p, X, act, out))
        np.testing.assert_allclose(got, _as_reference(p, X, act, out), rtol=RTOL[dtype],
                                   atol=RTOL[dtype])  # fmt: skip
        for v in p.values():  # an update in place, as training makes
            v -= dtype(0.01 * (step + 1))
    p["W2"] = p["W2"] * 2  # an entry replaced: prepared again
    np.testing.assert_array_equal(run(), _compiled.predict_proba(p, X, act, out))


def test_parameters_needing_conversion_are_read_afresh_each_call():
    p = _params(5, 8, 2, np.float64)  # float64 parameters, float32 data: converted
    X = np.random.default_rng(2).normal(size=(5, 30)).astype(np.float32)
    run = _compiled.predictor(p, X, "relu", "softmax")
    first = run().copy()
    p["b2"] += 1.5  # in place, on the float64 originals
    second = run()
    assert second.dtype == np.float32
    np.testing.assert_array_equal(second, _compiled.predict_proba(p, X, "relu", "softmax"))
    want = _as_reference(p, X, "relu", "softmax")
    np.testing.assert_allclose(second, want, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(first, second)


def test_the_result_is_a_buffer_the_next_call_overwrites():
    p = _params(3, 6, 1, np.float64)
    X = np.ones((3, 4))
    run = _compiled.predictor(p, X, "tanh", "identity")
    a = run()
    p["b2"] += 1.0
    b = run()
    assert a is b  # no allocation per call: a caller keeps a copy if it needs one
