"""BLAS at one thread while the wide kernels run, in a process where nothing imported
scipy.linalg before the first wide call.

The library that matters is the one the kernels call: SciPy's (numba forwards to
scipy.linalg.cython_blas), loaded by that first call. A scan of the libraries made
before it missed that library, so every later call ran it at full threads. The case
runs in a fresh interpreter, where that import has not happened yet.
"""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits
    from fusedmlp import _compiled

    def counts():
        # a fresh scan of every library loaded now, not the controller's list
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}

    assert "scipy.linalg" not in sys.modules
    rng = np.random.default_rng(0)
    p = {"W1": rng.normal(size=(64, 64)), "b1": np.zeros((64, 1)),
         "W2": rng.normal(size=(10, 64)), "b2": np.zeros((10, 1))}
    X = rng.normal(size=(64, 500))
    with threadpool_limits(limits=2, user_api="blas"):
        _compiled.predict_proba(p, X, "relu", "softmax")  # the first wide call
        assert "scipy.linalg.cython_blas" in sys.modules
        outside = counts()
        with _compiled._blas_threads((256, 1, 2)):
            inside = counts()
        assert set(inside.values()) == {1}, inside
        assert counts() == outside
    print("ok")
    """
)


def test_the_first_wide_call_before_scipy_is_imported_limits_scipys_blas_too():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok"), proc.stdout
