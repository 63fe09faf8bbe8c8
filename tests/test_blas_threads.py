"""BLAS at one thread while the wide kernels run (fusedmlp._blas_threads), for the
whole process, whichever Python threads make the calls.

The library that matters is the one the kernels call: SciPy's (numba forwards to
scipy.linalg.cython_blas), loaded by the first wide call. A scan of the libraries made
before it missed that library, so every later call ran it at full threads; that case
runs in a fresh interpreter, where the import has not happened yet.
"""

import os
import subprocess
import sys
import textwrap
import threading

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from fusedmlp import _blas_threads
from fusedmlp._blas_threads import blas_libraries, one_blas_thread

COUNTS = textwrap.dedent(
    """
    from threadpoolctl import threadpool_info

    def counts():
        # a fresh scan of every library loaded now, not the module's list
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}
    """
)


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from threadpoolctl import threadpool_limits
    from fusedmlp import _compiled

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


def run(script: str) -> None:
    """script in a fresh interpreter, after COUNTS; it must print "ok" last."""
    proc = subprocess.run(
        [sys.executable, "-c", COUNTS + textwrap.dedent(script)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok"), proc.stdout


def test_the_first_wide_call_before_scipy_is_imported_limits_scipys_blas_too():
    run(SCRIPT)


def counts() -> list[int]:
    blas_libraries()  # numba's BLAS loaded: the same libraries counted before and after
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture
def two_threads():
    """BLAS at 2 threads around the test (its count before, after)."""
    with threadpool_limits(limits=2, user_api="blas"):
        yield [2] * len(counts())


def _inside_in_a_thread():
    """A thread inside one_blas_thread until ``leave`` is set; ``seen`` gets the counts
    it saw just before leaving."""
    inside, leave, seen = threading.Event(), threading.Event(), []

    def body():
        with one_blas_thread():
            inside.set()
            leave.wait()
            seen.append(counts())

    t = threading.Thread(target=body)
    t.start()
    inside.wait()
    return t, leave, seen


def test_overlapping_calls_keep_one_thread_until_the_last_leaves(two_threads):
    # the first call to end must not give BLAS its threads back under the other's
    # kernel, nor the last leave BLAS at one thread for good
    with one_blas_thread():
        t, leave, seen = _inside_in_a_thread()
    assert counts() == [1] * len(two_threads)  # the thread's call is still inside
    leave.set()
    t.join()
    assert seen == [[1] * len(two_threads)]
    assert counts() == two_threads
    assert _blas_threads._inside == 0


def test_a_call_from_another_thread_first_leaves_the_main_thread_in_control(two_threads):
    # threadpoolctl gives OpenBLAS's count to the first thread that sets it: a kernel
    # call made from a worker thread must not keep the main thread's calls from
    # limiting it afterwards
    t, leave, _ = _inside_in_a_thread()
    leave.set()
    t.join()
    assert counts() == two_threads
    with one_blas_thread():
        assert counts() == [1] * len(two_threads)
    assert counts() == two_threads
    with threadpool_limits(limits=1, user_api="blas"):  # the user's own limits still work
        assert counts() == [1] * len(two_threads)
    assert counts() == two_threads


def test_nested_calls_restore_once(two_threads):
    with one_blas_thread():
        with one_blas_thread():
            pass
        assert counts() == [1] * len(two_threads)
    assert counts() == two_threads


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork: POSIX only")
def test_a_fork_inside_gives_the_child_its_counts_back():
    # the call inside at the fork belongs to a thread the child does not have (here:
    # the forking thread's own call, which in the child never ends): the child must
    # get BLAS's counts back and a lock it can take. In a fresh interpreter: pytest's
    # may hold threads (JAX's) that make a fork unsafe
    run(
        """
        import os
        from threadpoolctl import threadpool_limits
        from fusedmlp._blas_threads import blas_libraries, one_blas_thread

        blas_libraries()
        with threadpool_limits(limits=2, user_api="blas"):
            outside = counts()
            with one_blas_thread():
                pid = os.fork()
                if pid == 0:
                    ok = False
                    try:
                        ok = counts() == outside
                        with one_blas_thread():
                            ok = ok and set(counts().values()) == {1}
                        ok = ok and counts() == outside
                    finally:
                        os._exit(0 if ok else 3)
                _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, status
            assert counts() == outside
        print("ok")
        """
    )


def test_a_process_without_a_known_blas_looks_once(monkeypatch):
    # where threadpoolctl finds no BLAS library, the lookup (a scan of every loaded
    # library, tens of microseconds) must not run again on every kernel call
    import threadpoolctl

    scans = []

    class NoBlas:
        def __init__(self):
            scans.append(1)

        def select(self, **kw):
            return type("Found", (), {"lib_controllers": []})()

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", NoBlas)
    monkeypatch.setattr(_blas_threads, "_libs", [])
    monkeypatch.setattr(_blas_threads, "_looked", [])
    for _ in range(3):
        with one_blas_thread():
            pass
    assert scans == [1] and _blas_threads._libs == []


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_estimators_fit_holds_blas_at_one_thread_and_gives_it_back(monkeypatch):
    # the sklearn loop holds the limit for the whole fit (its kernel calls nest in it)
    import numpy as np

    from fusedmlp.sklearn import FusedMLPClassifier, _loop

    seen = []
    calls = _loop.Loop._calls

    def spy(self, *args):
        seen.append({i["filepath"]: i["num_threads"] for i in threadpool_info()
                     if i["user_api"] == "blas"})  # fmt: skip
        return calls(self, *args)

    monkeypatch.setattr(_loop.Loop, "_calls", spy)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 16)), rng.integers(0, 3, 120)
    with threadpool_limits(limits=2, user_api="blas"):
        before = {i["filepath"]: i["num_threads"] for i in threadpool_info()
                  if i["user_api"] == "blas"}  # fmt: skip
        FusedMLPClassifier((32,), max_iter=5, early_stopping=True, random_state=0).fit(X, y)
        after = {i["filepath"]: i["num_threads"] for i in threadpool_info()
                 if i["user_api"] == "blas"}  # fmt: skip
    assert seen and set(seen[0].values()) == {1}, seen
    assert after == before and set(before.values()) == {2}
