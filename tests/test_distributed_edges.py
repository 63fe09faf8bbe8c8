"""A dask cluster's faults and refusals (fusedmlp.distributed), and the entry points
besides ``train``: the estimators' fits on dask arrays and ``fusedmlp scale``'s cluster
points. A killed worker costs a retry and gives the same bits; a bad shard, chunk or
value is an error naming it; what a cluster cannot do is refused.
"""

import csv
import os
import signal
import time
import warnings

import dask.array as da
import numpy as np
import pytest
from _clusters import (
    actor_kinds,
    children,
    no_children_left,
    reference,
    same,
    write_shards,
)
from distributed import Client

import fusedmlp
from fusedmlp.distributed import _engine, local_cluster


def test_validation_split_errors_as_in_one_process(client, flower):
    X, Y = flower
    labels = np.zeros(20000, np.int64)
    labels[:3] = 1  # a class of 3 samples cannot give one of its 3 to validation at 0.1
    kw = dict(epochs=2, output="softmax", validation_fraction=0.1)
    with pytest.raises(ValueError, match="leaves class 1 \\(3 samples\\) with 0"):
        fusedmlp.train(X, labels, **kw)
    with pytest.raises(ValueError, match="leaves class 1 \\(3 samples\\) with 0"):
        fusedmlp.train(da.from_array(X, chunks=(2, 5000)), labels, client=client, **kw)
    labels[7] = -1
    with pytest.raises(ValueError, match=r"targets of the training data: .*Y\[7\] = -1"):
        fusedmlp.train(da.from_array(X, chunks=(2, 5000)), labels, client=client, **kw)


def test_bad_shard_is_named(client, flower, tmp_path):
    X, Y = flower
    paths, _ = write_shards(tmp_path, X, Y, [0, 10000, 20000], "npz")
    paths[1].write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match=r"shard 1 \(.*s1\.npz'\) could not be opened"):
        fusedmlp.train(paths, None, client=client, epochs=2)
    np.savez(paths[1], X=X[:, :5], Y=Y[:, :4])  # 5 samples of X, 4 of Y
    with pytest.raises(ValueError, match=r"shard 1 .* holds Y of shape \(1, 4\) for X \(2, 5\)"):
        fusedmlp.train(paths, None, client=client, epochs=2)


def _unreadable(n):
    raise OSError(f"disk gone while reading {n} samples")


def test_a_chunk_that_cannot_be_loaded_is_named(client, flower):
    import dask

    X, Y = flower
    good = da.from_array(X[:, :12000], chunks=(2, 6000))
    bad = da.from_delayed(dask.delayed(_unreadable)(8000), shape=(2, 8000), dtype=X.dtype)
    named = r"samples \[\d+, \d+\) of the training data could not be loaded .* OSError: disk"
    with pytest.raises(RuntimeError, match=named):
        fusedmlp.train(da.concatenate([good, bad], axis=1), Y, client=client, epochs=2)


def test_bad_values_are_refused_with_their_samples(client, flower):
    X, Y = flower
    X = X.copy()
    X[1, 15000] = np.nan
    with pytest.raises(ValueError, match=r"samples \[\d+, \d+\) of the training data: .*X"):
        fusedmlp.train(da.from_array(X, chunks=(2, 5000)), Y, client=client, epochs=2)
    labels = np.zeros(20000)
    labels[:10] = 1
    labels[12345] = 0.5
    with pytest.raises(ValueError, match=r"samples \[\d+, \d+\) .*integer"):
        fusedmlp.train(da.from_array(X * 0, chunks=(2, 5000)), labels, client=client,
                       output="softmax", epochs=2)  # fmt: skip
    counts = np.ones((1, 20000))
    counts[0, 17001] = -3.0  # the Poisson loss's targets are checked on the workers too
    with pytest.raises(ValueError, match=r"samples \[\d+, \d+\) .*needs targets >= 0"):
        fusedmlp.train(da.from_array(np.zeros_like(X), chunks=(2, 5000)), counts,
                       client=client, output="exp", epochs=2)  # fmt: skip


@pytest.mark.parametrize(
    "extra", [{}, dict(batch_size=2000), dict(validation_fraction=0.2, patience=100)]
)
def test_killed_worker_costs_a_retry_not_the_run(flower, extra, monkeypatch):
    X, Y = flower
    builds = []  # the engine's (re)building of its actors, counted

    def counted(real):
        return lambda self, *a: builds.append(1) or real(self, *a)

    for name in ("_hold", "_make_stream", "_rebuild_held"):
        monkeypatch.setattr(_engine.Engine, name, counted(getattr(_engine.Engine, name)))
    kw = dict(epochs=30, seed=3, optimizer="adam", lr=0.01, log_every=5, **extra)
    before = children()
    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as c:
        one = reference(c, X, Y, **kw)
        pids, seen = c.run(os.getpid), []

        def kill(epoch, loss, p):
            if epoch == 10:  # the worker of an actor (with validation, the held-out one's)
                actors = sorted(k for k in c.who_has() if str(k).startswith("H"))
                os.kill(pids[sorted(c.who_has()[actors[0]])[0]], signal.SIGKILL)
            seen.append(epoch)

        got = fusedmlp.train(da.from_array(X, chunks=(2, 3000)), Y, client=c, callback=kill,
                             **kw)  # fmt: skip
        same(one, got)
        assert np.array_equal(got.val_scores, one.val_scores)  # None, or the same
        assert seen == [0, 5, 10, 15, 20, 25]
    # built once, and again after the kill (with validation: the pieces' actors and the
    # held-out one, each once more: every piece left on the killed worker was lost; with
    # mini-batches: the pieces' actors and the Stream over them)
    assert len(builds) == (2 if not extra else 4)
    no_children_left(before)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(backend="numpy"), "compiled kernels only"),
        (dict(threads=2), "its own threads"),
    ],
)
def test_what_a_cluster_does_not_do_yet_is_refused(client, flower, kw, match):
    X, Y = flower
    with pytest.raises(ValueError, match=match):
        fusedmlp.train(da.from_array(X, chunks=(2, 6000)), Y, client=client, epochs=2, **kw)


def test_unknown_chunk_sizes_are_refused(client, flower):
    X, Y = flower
    Xd = da.from_array(X, chunks=(2, 5000))
    keep = da.from_array(np.arange(20000) % 2 == 0, chunks=5000)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fusedmlp.train(Xd[:, keep], Y[:, ::2], client=client, epochs=1)


def test_empty_or_missing_data_is_refused(client, flower):
    X, Y = flower
    with pytest.raises(ValueError, match="no samples"):
        fusedmlp.train(da.zeros((2, 0), chunks=(2, 1)), np.zeros((1, 0)), client=client)
    with pytest.raises(ValueError, match="Y is missing"):
        fusedmlp.train(da.from_array(X, chunks=(2, 6000)), None, client=client)


def test_client_with_numpy_data_is_refused(client, flower):
    X, Y = flower
    with pytest.raises(ValueError, match="client= trains on a dask cluster, but X is a ndarray"):
        fusedmlp.train(X, Y, client=client, epochs=1)


def test_no_cluster_is_a_clear_error(flower):
    from fusedmlp.sklearn import FusedMLPClassifier

    X, Y = flower
    with pytest.raises(ValueError, match="needs a dask cluster.* or pass client="):
        fusedmlp.train(da.from_array(X, chunks=(2, 6000)), Y, epochs=2)
    with pytest.raises(ValueError, match="needs a dask cluster.* active client the estimators"):
        FusedMLPClassifier().fit(da.from_array(X.T, chunks=(6000, 2)), Y.ravel())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_workers_whose_blas_starts_with_one_thread_give_this_processs_bits(monkeypatch, dtype):
    # dask's own LocalCluster starts its workers with OPENBLAS_NUM_THREADS=1; this
    # process's OpenBLAS may run more. The kernels hold BLAS at one thread in both while
    # they run, so a wide network trains to the same bits, and nothing is warned of.
    # (Before 2026-12-05 the limit could miss SciPy's OpenBLAS, and a process started
    # with one BLAS thread could train this network to other float32 bits than one
    # started with more; training warned.) The variable is set here as a fresh process
    # has it: a nanny that restarted a worker in an earlier test leaves its start
    # variables in this process, which a new nanny would take.
    from distributed import LocalCluster
    from threadpoolctl import threadpool_info

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 5000)).astype(dtype), rng.normal(size=(1, 5000)).astype(dtype)
    kw = dict(hidden=64, activation="tanh", output="identity", loss="mse", epochs=3,
              optimizer="adam", lr=1e-3, seed=0)  # fmt: skip
    here = fusedmlp.train(X, Y, **kw)
    before = children()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                     dashboard_address="127.0.0.1:0", silence_logs=40) as cluster,
        Client(cluster, set_as_default=False) as c,
        warnings.catch_warnings(),
    ):  # fmt: skip
        warnings.simplefilter("error", RuntimeWarning)  # what training warned with
        started = c.run(lambda: max(i["num_threads"] for i in threadpool_info()))
        assert set(started.values()) == {1}, started  # the nanny's start, as in dask
        there = fusedmlp.train(da.from_array(X, chunks=(30, 1700)), Y, client=c, **kw)
    no_children_left(before)
    assert np.array_equal(there.losses, here.losses)
    for k in ("W1", "b1", "W2", "b2"):
        assert np.array_equal(there.params[k], here.params[k]), k


def test_scale_adds_cluster_points(tmp_path, monkeypatch, capsys):
    from fusedmlp import cli, scaling

    monkeypatch.setattr(scaling, "_sweep", lambda out, **kw: ([], False))  # cluster part only
    before = children()
    args = ["scale", "--out", str(tmp_path), "--max-m", "1e4", "--dtypes", "float32"]
    assert cli.main([*args, "--epochs", "2", "--workers", "2"]) == 0
    no_children_left(before)
    rows = list(csv.DictReader(open(tmp_path / "cluster.csv")))
    assert [(r["m"], r["status"], r["workers"]) for r in rows] == [
        ("100", "ok", "2"), ("1000", "ok", "2"), ("10000", "ok", "2"),
    ]  # fmt: skip
    for r in rows:
        wall, busy, over = (float(r[k]) for k in ("s_per_epoch", "compute_s", "overhead_s"))
        assert wall > busy > 0 and over > 0 and int(r["epochs_timed"]) == 2
    assert not (tmp_path / "cluster-data").exists()  # the shard files are removed
    assert cli.main([*args, "--workers", "2", "--cluster", "tcp://127.0.0.1:1"]) != 0
    assert "--cluster ADDRESS, not both" in capsys.readouterr().err


def _fit_remotely(client, make, X, y):
    """make().fit(X, y) in a worker process (cached kernels, as a cluster fit uses)."""
    return client.submit(lambda: make().fit(X, y), pure=False).result()


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_estimators_fit_on_dask_arrays(client, kind):
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.exceptions import ConvergenceWarning

    from fusedmlp.sklearn import FusedMLPClassifier, FusedMLPRegressor

    if kind == "classifier":
        X, y = load_iris(return_X_y=True)
        make = lambda: FusedMLPClassifier((16,), max_iter=30, batch_size=32, random_state=0)  # noqa: E731
    else:
        X, y = load_diabetes(return_X_y=True)
        params = dict(hidden_layer_sizes=(8,), max_iter=20, solver="sgd", random_state=1)
        make = lambda: FusedMLPRegressor(**params)  # noqa: E731
    want = _fit_remotely(client, make, X, y)
    with client.as_current(), pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        # the estimators use the active client; the loop (and its warning) runs here
        got = make().fit(da.from_array(X, chunks=(100, X.shape[1])), da.from_array(y, chunks=70))
    assert got.loss_curve_ == want.loss_curve_ and got.n_iter_ == want.n_iter_
    for a, b in zip(got.coefs_ + got.intercepts_, want.coefs_ + want.intercepts_, strict=True):
        assert np.array_equal(a, b)
    with pytest.warns(ConvergenceWarning):
        here = make().fit(X, y)  # this process: the same bits (tests/_clusters.py)
    assert got.loss_curve_ == here.loss_curve_
    assert got.score(X, y) == want.score(X, y)


@pytest.mark.parametrize(
    "kw",
    [
        dict(early_stopping=True, max_iter=40, batch_size=64),  # held-out part scored here
        dict(batch_size=1797, max_iter=15),  # full batches: the pieces' gradient rows
        dict(solver="sgd", learning_rate="adaptive", max_iter=25, tol=0.05),  # plateaus
    ],
)
def test_estimator_fits_keep_the_samples_spread(client, kw):
    """The loop runs here, the epochs on the cluster (the samples in pieces on every
    worker, mini-batches streamed to one Stream): the numbers of a fit in one process."""
    import warnings

    from sklearn.datasets import load_digits

    from fusedmlp.sklearn import FusedMLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    seen = []
    real = _engine.Engine.load

    def load(self):
        real(self)
        seen.append(actor_kinds(client))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning, both
        here = FusedMLPClassifier((32,), random_state=3, **kw).fit(X, y)
        with client.as_current(), pytest.MonkeyPatch.context() as mp:
            mp.setattr(_engine.Engine, "load", load)
            Xd, yd = da.from_array(X, chunks=(400, 64)), da.from_array(y, chunks=400)
            got = FusedMLPClassifier((32,), random_state=3, **kw).fit(Xd, yd)
    assert seen and seen[0] == ["Holder", "Holder", "Holder"]
    assert got.loss_curve_ == here.loss_curve_ and got.n_iter_ == here.n_iter_
    assert got.validation_scores_ == here.validation_scores_
    for a, b in zip(got.coefs_ + got.intercepts_, here.coefs_ + here.intercepts_, strict=True):
        assert np.array_equal(a, b)
    # nothing left on the workers (a future's release reaches the client's loop later)
    deadline = time.monotonic() + 10
    while actor_kinds(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert actor_kinds(client) == []


def _pieces_held(client) -> list:
    return [k for k in list(client.futures) if "build_piece" in str(k)]


def test_estimators_refuse_bad_dask_input(client):
    from fusedmlp.sklearn import FusedMLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 3, 300)
    est = FusedMLPClassifier((8,), max_iter=3)
    with client.as_current():
        with pytest.raises(ValueError, match="X has 300 samples but y has 299"):
            est.fit(da.from_array(X, chunks=(100, 4)), y[:-1])
        with pytest.raises(ValueError, match="2-D dask array"):
            est.fit(da.from_array(X[:, 0], chunks=100), y)
        bad = X.copy()
        bad[123, 2] = np.inf
        with pytest.raises(ValueError, match=r"samples \[\d+, \d+\) of the training data"):
            est.fit(da.from_array(bad, chunks=(100, 4)), y)
        deadline = time.monotonic() + 10  # the failed fit's pieces are let go
        while _pieces_held(client) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pieces_held(client) == []
        est.partial_fit(da.from_array(X, chunks=(100, 4)), y, classes=[0, 1, 2])
        with pytest.raises(ValueError, match="X has 3 features, but FusedMLPClassifier is "):
            est.partial_fit(da.from_array(X[:, :3], chunks=(100, 3)), y)


def test_partial_fit_on_dask_arrays(client):
    from sklearn.datasets import load_iris

    from fusedmlp.sklearn import FusedMLPClassifier

    X, y = load_iris(return_X_y=True)
    Xd, yd = da.from_array(X, chunks=(50, 4)), da.from_array(y, chunks=50)
    got, here = (FusedMLPClassifier((8,), random_state=0) for _ in range(2))
    with client.as_current():
        for _ in range(3):
            got.partial_fit(Xd, yd, classes=[0, 1, 2])
            here.partial_fit(X, y, classes=[0, 1, 2])
    assert got.loss_curve_ == here.loss_curve_
    assert got.t_ == here.t_ == 450
