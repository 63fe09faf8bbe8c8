"""What the tests of fusedmlp.distributed share: a cluster (conftest.py's ``client``
fixture), the one-process reference, and a check that no process is left behind.

Clusters are LocalClusters of worker processes on loopback (127.0.0.1), closed by their
fixtures, which then check that no process of theirs is left.

The one-process reference is computed twice: in this process, which compiled the kernels
(or loaded them, or called an inner function of theirs on its own first, as other tests
do), and in a worker process, which loads them from numba's cache. Both must give the
same bits (kernels/_linking.py: before it, the two rounded apart, 1.3e-18 after 12
epochs), and the cluster's result must equal them bit for bit.
"""

import time

import numpy as np
import psutil
from distributed import Client

import fusedmlp
from fusedmlp.distributed import _worker, local_cluster

PARAMS = ("W1", "b1", "W2", "b2")


def warm_cache():
    """Compile the workers' kernel here first, so that worker processes load it from
    numba's cache instead of compiling it side by side."""
    for dtype in (np.float64, np.float32):
        for Y in (np.zeros((1, 8), dtype), np.zeros(8, np.int64)):
            n_y = 2 if Y.ndim == 1 else 1
            piece = _worker.Piece(
                np.zeros((2, 8), dtype), Y, np.array([0, 1]), (0, 0, 0), (512, 0, 1),
                dtype(1.0), (2, 3, n_y),
            )  # fmt: skip
            _worker.piece_rows(piece, np.zeros(3 * 2 + 3 + n_y * 3 + n_y, dtype))


def children():
    """Our child processes but multiprocessing's resource tracker, which the first
    spawned worker starts and which ends with this process (it is no worker)."""
    return [
        p for p in psutil.Process().children(recursive=True)
        if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())
    ]  # fmt: skip


def no_children_left(before=()):
    """Wait (at most 20 s) for the processes started since ``before`` to end."""
    deadline = time.monotonic() + 20
    while set(children()) - set(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = set(children()) - set(before)
    assert not left, f"processes left behind: {[p.cmdline() for p in left]}"


def three_workers():
    """A client of a 3-worker LocalCluster (not the default client: tests pass it), for
    the ``client`` fixture of conftest.py; at the end, no process of it may be left
    (processes from before it, such as joblib's workers that an earlier test's
    GridSearchCV(n_jobs=2) keeps for reuse, are not its own)."""
    warm_cache()
    before = children()
    with local_cluster(3) as cluster, Client(cluster, set_as_default=False) as c:
        yield c
    no_children_left(before)


def reference(client, X, Y, **kw):
    """fusedmlp.train(X, Y, **kw) in this process and in a worker process (cached
    kernels): the same bits (see the module docstring)."""
    here = fusedmlp.train(X, Y, **kw)
    there = client.submit(fusedmlp.train, X, Y, pure=False, **kw).result()
    same(here, there)
    return there


def same(a, b):
    assert np.array_equal(a.losses, b.losses)
    for k in PARAMS:
        assert a.params[k].dtype == b.params[k].dtype
        assert np.array_equal(a.params[k], b.params[k]), k


def actor_kinds(c) -> list[str]:
    """The kinds of the actors this client holds now (Holder, Held, Stream)."""
    kinds = (str(k).split("-")[0] for k in list(c.futures))
    return sorted(k for k in kinds if k in ("Holder", "Held", "Stream"))


def write_shards(tmp_path, X, Y, cuts, kind):
    paths, ys = [], []
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        if kind == "npz":
            paths.append(tmp_path / f"s{i}.npz")
            np.savez(paths[-1], X=X[:, a:b], Y=Y[..., a:b])
        else:
            paths.append(tmp_path / f"X{i}.npy")
            ys.append(tmp_path / f"Y{i}.npy")
            np.save(paths[-1], X[:, a:b])
            np.save(ys[-1], Y[..., a:b])
    return paths, (ys or None)
