"""``train`` on a dask cluster: the settings, parameters, optimizer state, driver and
result of ``fusedmlp.train``, with the epochs' sums computed by the workers."""

from __future__ import annotations

import math

import numpy as np

from .. import _driver, trainer
from .._optstate import OptState
from .._validation import check_network_size, params_in
from ..result import TrainResult
from . import _sources
from ._engine import Engine


def train(
    X,
    Y=None,
    *,
    client=None,
    hidden: int | None = None,
    epochs: int = 1000,
    init: dict | None = None,
    resume: TrainResult | None = None,
    verbose: bool = False,
    log_every: int = 100,
    callback=None,
    backend: str = "numba",
    threads: int | None = None,
    timings: list | None = None,
    **given,
) -> TrainResult:
    """``fusedmlp.train`` on a dask cluster (how it runs: ``fusedmlp.distributed``).

    ``fusedmlp.train`` comes here by itself when X is a dask array or a list of shard
    paths; calling this directly adds ``timings``.

    Parameters
    ----------
    X : dask array (n_x, m), or list of paths
        The inputs chunked along the samples; or shard files: ``.npz`` archives holding
        X and Y (then Y is None), or ``.npy`` files of X (then Y lists their targets).
    Y : dask or NumPy array (n_y, m) or (m,), list of paths, or None
        The targets, as ``fusedmlp.train`` takes them.
    client : distributed.Client, optional
        The cluster; default the active client.
    timings : list, optional
        Full-batch epochs append (wall seconds, slowest piece's compute seconds): the
        engine's overhead is their difference.
    hidden, epochs, init, resume, verbose, log_every, callback, **given
        As for ``fusedmlp.train`` (``backend`` must stay "numba" and ``threads`` None).

    Returns
    -------
    TrainResult
        As ``fusedmlp.train``'s; bit-identical to it on the same data in one process.

    Examples
    --------
    >>> import dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from fusedmlp import datasets
    >>> X, Y = datasets.planar(m=2000)
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as c, Client(c):
    ...     t = []
    ...     res = train(da.from_array(X, chunks=(2, 1000)), Y, epochs=3, seed=1, timings=t)
    >>> len(res.losses), len(t)
    (3, 3)
    """
    _refuse_run(backend, threads, timings)
    epochs, log_every, _ = trainer._check_run(epochs, log_every, callback, None)
    given = {k: v for k, v in given.items() if v is not None}
    client = _client(client)
    with _driver.CtrlC() as ctrl_c:
        settings = trainer._settings(given, resume, init)
        source = _sources.make(X, Y, client)
        if source.m < 1:
            raise ValueError("the training data has no samples (m = 0); give at least one.")
        start = resume.params if resume is not None else init
        p = _params(source, hidden, settings, start, client)
        engine = Engine(client, source, p, settings)
        holdout = None
        try:
            state = OptState(settings, p, None if resume is None else resume.state)
            history = np.zeros(0) if resume is None else trainer._history(resume)
            first = len(history)
            if settings.validation_fraction is None:
                engine.load()
            else:
                engine.load_split()
            m = engine.m
            if settings.batch_size is not None and settings.batch_size < m:
                run = engine.stream_runner(p, state)  # a window of samples at a time
            else:
                run = engine.runner(p, state, lambda: ctrl_c.hit, timings)
            if settings.validation_fraction is not None:
                holdout = engine.holdout(trainer.val_history(resume))
            if resume is not None and "lr" in given:
                state.new_rate(settings.lr, first, m)
            buf = _driver.Losses(history, first + epochs)
            result = TrainResult(params=p, losses=history, settings=settings, backend="numba")
            # the driver reads only the data's shape (progress) from these
            shape = np.broadcast_to(np.zeros((), p["W1"].dtype), (source.n_x, m))
            done, status = _driver.drive(
                run, result, buf, shape, shape, first, first + epochs,
                (settings.tol, settings.patience, verbose, log_every, callback),
                ctrl_c, state, holdout,
            )  # fmt: skip
        finally:
            engine.close()
        return trainer._finish(result, buf, done, status, state, holdout)


def _client(client, how: str = " or pass client="):
    """The client to use: the one given, else the active one."""
    if client is not None:
        return client
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "training on dask arrays or shard files needs a dask cluster: start one "
            "(client = distributed.Client() for a LocalCluster, or "
            f"Client('tcp://host:8786') for a running scheduler){how}."
        ) from None


def _refuse_run(backend: str, threads, timings) -> None:
    if backend != "numba":
        raise ValueError(
            f"backend={backend!r}: a cluster runs the compiled kernels only; leave backend "
            "out, or train the reference on NumPy arrays in one process."
        )
    if threads is not None:
        raise ValueError(
            f"threads={threads!r}: on a cluster each worker uses its own threads "
            "(LocalCluster(threads_per_worker=...), dask worker --nthreads); leave "
            "threads out."
        )
    if timings is not None and not isinstance(timings, list):
        raise TypeError(f"timings must be a list to append to, got {type(timings).__name__}.")


def _params(source, hidden, s, start, client) -> dict:
    """Our own C-contiguous copy of the starting parameters in the working dtype."""
    from ..api import init_params

    p, n_h = trainer.start_params(start, hidden)
    if p is None:
        n_y = _n_outputs(source, s, client)
        check_network_size(source.n_x, n_h, n_y, name="hidden")
        p = init_params(source.n_x, n_h, n_y, seed=s.seed)
    return {k: np.array(v, order="C") for k, v in params_in(p, source.x_dtype).items()}


def _n_outputs(source, s, client) -> int:
    """Outputs of a new network: Y's rows, or for class indices the largest plus one
    (the workers check them: a label that is not a whole number >= 0 is refused there)."""
    if source.y_rows is not None:
        return source.y_rows
    if s.output != "softmax":
        return 1
    top = source.top_label(client)
    return int(top) + 1 if math.isfinite(top) and 0 <= top < 2**31 else 2
