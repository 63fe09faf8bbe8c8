"""No writable place for numba's cache: one line, once, saying how to fix it.

Simulated in a subprocess by giving numba no usable cache locator (only the IPython one,
which declines files that are not notebook cells): the state numba reaches when
kernels/__pycache__, the user cache and NUMBA_CACHE_DIR are all unwritable (checked by
hand with read-only mounts: the same RuntimeError, the same single line).
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import fusedmlp
    X, Y = fusedmlp.datasets.planar(m=50)
    res = fusedmlp.train(X, Y, epochs=3, seed=2)
    fusedmlp.predict(res.params, X)
    print("trained", res.epochs)
    """
)


def test_no_cache_location_is_said_once_in_one_line():
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "trained 3"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "no writable folder for numba's cache" in lines[0]
    assert "set NUMBA_CACHE_DIR to a writable folder" in lines[0]
