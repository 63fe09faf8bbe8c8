"""Training on a dask cluster (fusedmlp.distributed): the same bits as one process.

Clusters are LocalClusters of worker processes on loopback (127.0.0.1), closed by their
fixtures, which then check that no process of theirs is left. Why the one-process
reference runs on a worker: see ``_clusters``. Faults, refusals and the entry points
besides ``train`` are in test_distributed_edges.py.
"""

import os
import signal
import warnings

import dask.array as da
import numpy as np
import pytest
from _clusters import (
    PARAMS,
    actor_kinds,
    children,
    no_children_left,
    reference,
    same,
    write_shards,
)
from distributed import Client

import fusedmlp
from fusedmlp import datasets
from fusedmlp.distributed import _engine, _stream, _worker, local_cluster


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bit_identical_to_one_process(client, flower, optimizer, dtype):
    X, Y = flower
    X = X.astype(dtype)
    kw = dict(epochs=12, seed=3, optimizer=optimizer, alpha=1e-3, lr_schedule="invscaling")
    one = reference(client, X, Y, **kw)
    for chunks in (20000, 3000, 777):
        Xd = da.from_array(X, chunks=(2, chunks))
        same(one, fusedmlp.train(Xd, da.from_array(Y, chunks=(1, 5000)), client=client, **kw))


@pytest.mark.parametrize("n_workers", [1, 2])
def test_any_number_of_workers(client, flower, n_workers):
    X, Y = flower
    kw = dict(epochs=8, seed=1, optimizer="adam", lr=0.01)
    before = children()
    with local_cluster(n_workers) as cluster, Client(cluster, set_as_default=False) as c:
        small = fusedmlp.train(da.from_array(X, chunks=(2, 4096)), Y, client=c, **kw)
    no_children_left(before)
    same(fusedmlp.train(da.from_array(X, chunks=(2, 999)), Y, client=client, **kw), small)
    same(reference(client, X, Y, **kw), small)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mini_batches_as_in_one_process(client, flower, optimizer, dtype, monkeypatch):
    """The samples stay in pieces on all three workers and stream to one Stream actor, a
    window of batches at a time (small windows here: many per epoch, the last one
    short); the same bits as one process, resume included."""
    X, Y = flower
    X = X.astype(dtype)
    kw = dict(epochs=4, seed=7, optimizer=optimizer, lr=0.01, batch_size=500, alpha=1e-4)
    one = reference(client, X, Y, **kw)
    sizes = []
    real = _stream.window_size
    monkeypatch.setattr(_stream, "window_size", lambda *a: sizes.append(real(*a)) or sizes[-1])
    monkeypatch.setattr(_stream, "WINDOW_BYTES", 3 * 500 * (3 * X.itemsize + 4))
    seen = []
    kw["callback"] = lambda e, L, p: seen.append(actor_kinds(client)) and False
    Xd = da.from_array(X, chunks=(2, 3000))
    same(one, fusedmlp.train(Xd, Y, client=client, **kw))
    assert sizes == [1500] and seen[0] == ["Holder", "Holder", "Holder", "Stream"]
    part = fusedmlp.train(Xd, Y, client=client, **dict(kw, epochs=1))
    same(one, fusedmlp.train(Xd, Y, client=client, epochs=3, resume=part))


def test_mini_batches_of_class_indices_from_shards(client, tmp_path):
    X, labels = datasets.spirals(m=3000, classes=3)
    paths, ys = write_shards(tmp_path, X, labels, [0, 1000, 2500, 3000], "npy")
    kw = dict(epochs=5, seed=1, hidden=16, output="softmax", activation="tanh")
    kw.update(optimizer="adam", lr=0.01, batch_size=128)
    same(reference(client, X, labels, **kw), fusedmlp.train(paths, ys, client=client, **kw))


@pytest.mark.parametrize("batch_size", [None, 256])
def test_validation_as_in_one_process(client, batch_size):
    X, labels = datasets.spirals(m=2000, classes=3)
    kw = dict(epochs=40, seed=2, hidden=16, output="softmax", activation="tanh", lr=0.02)
    kw.update(optimizer="adam", validation_fraction=0.2, patience=3, batch_size=batch_size)
    one = reference(client, X, labels, **kw)
    Xd = da.from_array(X, chunks=(2, 700))
    got = fusedmlp.train(Xd, labels, client=client, **kw)
    same(one, got)
    assert np.array_equal(got.val_scores, one.val_scores)
    assert np.array_equal(got.val_losses, one.val_losses)
    assert got.best_epoch == one.best_epoch and got.stop_epoch == one.stop_epoch
    part = fusedmlp.train(Xd, labels, client=client, **dict(kw, epochs=5))
    rest = fusedmlp.train(Xd, labels, client=client, epochs=3, resume=part)
    again = reference(client, X, labels, **dict(kw, epochs=5))
    same(again, part)
    same(client.submit(fusedmlp.train, X, labels, epochs=3, resume=again).result(), rest)


@pytest.mark.parametrize("case", ["identity", "exp", "sigmoid-rows", "npz-labels"])
def test_validation_keeps_the_training_samples_spread(client, flower, tmp_path, case):
    """Full batches with validation: the split drawn on a worker, the training samples in
    pieces on all three workers, the held-out ones behind one actor; the same bits,
    scores and best epoch as one process, for every kind of target and source."""
    X, Y = flower
    kw = dict(epochs=15, seed=4, optimizer="adam", lr=0.05, validation_fraction=0.25)
    kw.update(patience=4, log_every=1)
    if case == "identity":  # not stratified
        Y = np.vstack([X[0] * X[1], X.sum(axis=0)])
        kw.update(output="identity", activation="tanh")
    elif case == "exp":  # counts, the Poisson loss: not stratified either
        Y = np.random.default_rng(5).poisson(np.exp(0.4 * X[:1] - 0.2 * X[1:])).astype(float)
        kw.update(output="exp", activation="tanh", lr=0.01)
    elif case == "npz-labels":  # classes from softmax labels, read from the shards
        Y = (Y[0] > 0.5).astype(np.int64) + (X[0] > 1)
        kw.update(output="softmax", hidden=8)
    one = reference(client, X, Y, **kw)
    seen = []
    kw["callback"] = lambda e, L, p: seen.append(actor_kinds(client)) and False
    if case == "npz-labels":
        paths, _ = write_shards(tmp_path, X, Y, [0, 7000, 20000], "npz")
        got = fusedmlp.train(paths, None, client=client, **kw)
    else:
        got = fusedmlp.train(da.from_array(X, chunks=(2, 3333)), Y, client=client, **kw)
    same(one, got)
    assert np.array_equal(got.val_scores, one.val_scores)
    assert np.array_equal(got.val_losses, one.val_losses)
    assert (got.best_epoch, got.stop_epoch) == (one.best_epoch, one.stop_epoch)
    assert seen[0] == ["Held", "Holder", "Holder", "Holder"]


def test_wide_softmax_and_regression(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 6000)).astype(np.float32)  # wide: BLAS blocks
    labels = rng.integers(0, 10, 6000)
    kw = dict(epochs=5, seed=1, hidden=32, output="softmax", activation="relu")
    kw.update(optimizer="adam", lr=0.01)
    Xd = da.from_array(X, chunks=(64, 1100))
    one = reference(client, X, labels, **kw)
    with warnings.catch_warnings():  # local_cluster's workers start BLAS as this process
        warnings.simplefilter("error", RuntimeWarning)
        same(one, fusedmlp.train(Xd, labels, client=client, **kw))
    T = np.vstack([X[:3].sum(axis=0), X[3:5].prod(axis=0)]).astype(np.float64)
    kw = dict(epochs=6, seed=2, hidden=8, output="identity", activation="tanh", lr=0.01)
    Xd = da.from_array(X.astype(np.float64), chunks=(64, 2500))
    one = reference(client, X.astype(np.float64), T, **kw)
    same(one, fusedmlp.train(Xd, da.from_array(T, chunks=(2, 700)), client=client, **kw))


@pytest.mark.parametrize("kind", ["npz", "npy"])
def test_shards_on_disk(client, flower, tmp_path, kind):
    X, Y = flower
    X = X.astype(np.float32)
    paths, ys = write_shards(tmp_path, X, Y, [0, 3000, 3001, 11000, 20000], kind)
    kw = dict(epochs=6, seed=4, optimizer="momentum")
    same(reference(client, X, Y, **kw), fusedmlp.train(paths, ys, client=client, **kw))


@pytest.mark.parametrize("batch_size", [None, 2500])
def test_resume_and_checkpoint_equal_one_run(client, flower, tmp_path, batch_size):
    X, Y = flower
    Xd = da.from_array(X, chunks=(2, 4000))
    kw = dict(seed=6, optimizer="adam", lr=0.01, alpha=1e-4, batch_size=batch_size)
    whole = fusedmlp.train(Xd, Y, client=client, epochs=25, **kw)
    part = fusedmlp.train(Xd, Y, client=client, epochs=10, **kw)
    fusedmlp.save(tmp_path / "ck.npz", part)
    rest = fusedmlp.train(Xd, Y, client=client, epochs=15,
                          resume=fusedmlp.load(tmp_path / "ck.npz"))  # fmt: skip
    same(whole, rest)
    same(whole, reference(client, X, Y, epochs=25, **kw))


@pytest.mark.parametrize("batch_size", [None, 2500])
def test_early_stopping_and_callback_as_in_one_process(client, flower, batch_size):
    X, Y = flower
    kw = dict(seed=2, epochs=400, lr=2.0, tol=1e-3, patience=3, batch_size=batch_size)
    one = reference(client, X, Y, **kw)
    assert one.stop_epoch is not None
    same(one, fusedmlp.train(da.from_array(X, chunks=(2, 6000)), Y, client=client, **kw))
    stop = fusedmlp.train(da.from_array(X, chunks=(2, 6000)), Y, client=client, epochs=50,
                          seed=2, log_every=4, callback=lambda e, L, p: e == 8,
                          batch_size=batch_size)  # fmt: skip
    assert stop.stop_epoch == 8 and len(stop.losses) == 9


@pytest.mark.parametrize("batch_size", [None, 2500])
def test_ctrl_c_stops_between_epochs_with_a_consistent_result(client, flower, batch_size):
    X, Y = flower
    kw = dict(seed=2, log_every=1, batch_size=batch_size)

    def press(epoch, loss, p):
        if epoch == 4:
            os.kill(os.getpid(), signal.SIGINT)

    res = fusedmlp.train(da.from_array(X, chunks=(2, 6000)), Y, client=client, epochs=1000,
                         callback=press, **kw)  # fmt: skip
    assert res.interrupted and 5 <= len(res.losses) < 1000
    same(reference(client, X, Y, epochs=len(res.losses), **kw), res)


def test_timings_measure_the_engine(client, flower):
    X, Y = flower
    timings = []
    fusedmlp.distributed.train(da.from_array(X, chunks=(2, 6000)), Y, client=client,
                               epochs=5, timings=timings)  # fmt: skip
    assert len(timings) == 5
    assert all(wall >= busy > 0 for wall, busy in timings)


def test_progress_lines_as_in_one_process(client, flower, capsys):
    X, Y = flower
    fusedmlp.train(da.from_array(X, chunks=(2, 6000)), Y, client=client, epochs=5, seed=1,
                   verbose=True, log_every=2)  # fmt: skip
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("Epoch")]
    assert [x.split(":")[0] for x in lines] == ["Epoch 0", "Epoch 2", "Epoch 4"]


def test_pieces_hold_whole_chunks():
    plan = (512, 0, 40)
    got = _engine.pieces(20000, plan, 3)
    assert [(lo, hi) for lo, hi, _ in got] == [(0, 6656), (6656, 13312), (13312, 20000)]
    assert [b.tolist() for _, _, b in got][2][-1] == 14  # the short last block counts
    assert len(_engine.pieces(400, (512, 0, 1), 3)) == 1  # one chunk: one piece


def test_parameters_travel_flat_and_come_back_in_their_shapes():
    p = fusedmlp.init_params(3, 5, 2, seed=0)
    p["b1"][:] = np.arange(5).reshape(5, 1)
    flat = _worker.flatten(p)
    assert flat.shape == (_worker.n_params((3, 5, 2)),) == (15 + 5 + 10 + 2,)
    back = _worker.unflatten(flat, (3, 5, 2), np.float32)
    for k in PARAMS:
        assert back[k].dtype == np.float32 and back[k].flags.c_contiguous
        np.testing.assert_array_equal(back[k], p[k].astype(np.float32))
    q = {k: np.zeros_like(v) for k, v in p.items()}
    _worker.put(q, flat)
    for k in PARAMS:
        assert np.array_equal(q[k], p[k])
