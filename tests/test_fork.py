"""Processes forked after the parallel kernels ran must work.

GNU OpenMP kills every forked child of a process that used it ("Terminating: fork()
called from a process already using GNU OpenMP"), and a multiprocessing pool whose
workers die never returns. Each case runs in a subprocess with a timeout, so a hang or
an abort fails the test instead of stopping pytest.
"""

import os
import subprocess
import sys
import textwrap

import pytest

# m above the serial cut-off, so training runs the parallel kernels in the parent
COMMON = textwrap.dedent(
    """
    import multiprocessing, os, sys, threading
    import numba, numpy as np
    import fusedmlp
    from fusedmlp import _compiled
    from fusedmlp.kernels import SERIAL_MAX_M

    X, Y = fusedmlp.datasets.planar(m=3 * SERIAL_MAX_M)

    def job(seed):
        res = fusedmlp.train(X, Y, epochs=3, seed=seed)
        A2 = fusedmlp.predict_proba(res.params, X)
        return res.losses.tolist(), float(A2.sum()), fusedmlp.accuracy(res.params, X, Y)
    """
)

POOL_AFTER = textwrap.dedent(
    """
    if sys.argv[1] == "train":
        first = job(7)
    else:  # predict and accuracy only
        p = fusedmlp.init_params(2, 4, 1, seed=3, scale=1.0)
        fusedmlp.predict(p, X)
        fusedmlp.accuracy(p, X, Y)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(job, [1, 2, 3])
    assert got == [job(1), job(2), job(3)], "a child computed something else"
    print("ok", numba.threading_layer())
    """
)


def run(script: str, *args: str, layer: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    proc = subprocess.run(
        [sys.executable, "-c", COMMON + script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Terminating" not in proc.stderr
    return proc


@pytest.mark.parametrize("after", ["train", "predict"])
def test_fork_pool_after_the_parallel_kernels(after):
    proc = run(POOL_AFTER, after)
    # the layer fusedmlp chooses where the tbb wheel exists (a dependency there)
    expected = "tbb" if sys.platform == "linux" and os.uname().machine == "x86_64" else None
    layer = proc.stdout.split()[-1]
    assert layer == expected or (expected is None and layer in ("tbb", "workqueue"))


@pytest.mark.parametrize("layer", ["workqueue", "omp"])
def test_fork_pool_under_a_layer_the_user_forced(layer):
    # an explicit NUMBA_THREADING_LAYER is respected; under GNU OpenMP the children run
    # the serial twins of the parallel kernels (same bits, as the comparison checks)
    proc = run(POOL_AFTER, "train", layer=layer)
    assert proc.stdout.split()[-1] == layer


def test_os_fork_directly():
    script = textwrap.dedent(
        """
        expected = job(5)
        pid = os.fork()
        if pid == 0:
            try:
                os._exit(0 if job(5) == expected else 3)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        print("ok")
        """
    )
    run(script)


def test_fork_while_another_thread_holds_the_kernel_lock():
    # a thread of the parent inside a parallel kernel call holds _compiled's lock at the
    # moment of the fork; that thread does not exist in the child, which must not wait
    # for it forever
    script = textwrap.dedent(
        """
        expected = job(5)
        held, release = threading.Event(), threading.Event()

        def holder():
            with _compiled._LOCK:
                held.set()
                release.wait()

        t = threading.Thread(target=holder)
        t.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if job(5) == expected else 3)
        _, status = os.waitpid(pid, 0)
        release.set()
        t.join()
        assert os.waitstatus_to_exitcode(status) == 0, status
        print("ok")
        """
    )
    run(script)


MINIBATCH = textwrap.dedent(
    """
    rng = np.random.default_rng(0)
    Xd, yd = rng.random((64, 600)), rng.integers(0, 10, 600)

    def batches(seed):
        res = fusedmlp.train(
            Xd, yd, hidden=64, activation="relu", output="softmax", optimizer="adam",
            lr=1e-3, batch_size=200, epochs=2, seed=seed,
        )
        return res.losses.tolist()

    first = batches(1)  # this process's first kernel: batches on threads (maybe cached)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(batches, [1, 2])
    assert got == [first, batches(2)], "a child computed something else"
    print("ok", numba.threading_layer())
    """
)


@pytest.mark.parametrize("layer", [None, "omp"])
def test_mini_batches_on_threads_in_a_fresh_process_and_its_children(layer):
    # a batch of 200 at 64-64-10 costs more than a thread launch: its chunks run on
    # threads, from a kernel called by the serial mini-batch kernel; under GNU OpenMP
    # the forked children run the batches serially (the same bits)
    for _ in range(2):  # the second process loads the kernels from the cache
        proc = run(MINIBATCH, layer=layer)
        assert proc.stdout.startswith("ok")
