"""Two Python threads using the parallel kernels at once.

Numba's ``workqueue`` threading layer (fusedmlp's where TBB cannot be loaded) aborts the
whole process when two threads enter parallel code together, so this runs in a
subprocess (an abort there fails the test instead of killing pytest) and
fusedmlp._compiled must serialise its parallel calls.
Both the driver's functions and the public ``fusedmlp.train`` are exercised.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    import numba
    import fusedmlp
    from fusedmlp import _compiled
    from fusedmlp.kernels import SERIAL_MAX_M

    m = 100_000
    assert m > SERIAL_MAX_M  # train_epochs takes the per-epoch parallel path
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, m))
    Y = (rng.random((1, m)) > 0.5) * 1.0
    P = {"W1": rng.normal(size=(6, 2)), "b1": rng.normal(size=(6, 1)),
         "W2": rng.normal(size=(1, 6)), "b2": rng.normal(size=(1, 1))}

    def work():
        L, g = _compiled.loss_and_grads(P, X, Y, "tanh", "cross_entropy")
        A2 = _compiled.predict_proba(P, X, "tanh")
        q = {k: v.copy() for k, v in P.items()}
        losses = np.empty(2)
        status = _compiled.train_epochs(q, X, Y, "tanh", "cross_entropy", 0.5, 2, losses)
        # the public trainer, on the parallel path and on the serial whole-training kernel
        big = fusedmlp.train(X, Y, init=P, activation="tanh", loss="cross_entropy",
                             lr=0.5, epochs=2)
        small = fusedmlp.train(X[:, :500], Y[:, :500], init=P, epochs=300)
        return [np.float64(L), *g.values(), A2, *q.values(), losses, np.array(status),
                *big.params.values(), big.losses, *small.params.values(), small.losses]

    expected = work()  # one thread: the results every concurrent call must reproduce
    errors = []

    def runner():
        try:
            for _ in range(int(sys.argv[1])):
                if not all(np.array_equal(a, b) for a, b in zip(work(), expected)):
                    errors.append("a result differs from the single-threaded one")
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(errors)
        sys.exit(1)
    print("ok", numba.threading_layer())
    """
)


@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_two_threads_calling_parallel_kernels(layer):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "15"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.startswith("ok")
    if layer == "workqueue":
        assert proc.stdout.split()[-1] == "workqueue"  # the unsafe layer really was in use
