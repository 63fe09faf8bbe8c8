"""A LocalCluster whose workers compute as this process does."""

from __future__ import annotations

import os

from . import _worker


def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, **kwargs):
    """A ``distributed.LocalCluster`` of worker processes on loopback (127.0.0.1), with
    its HTTP endpoints on a free loopback port, whose BLAS starts with this process's thread count.

    dask's nanny starts every worker with OPENBLAS_NUM_THREADS=1, and an OpenBLAS
    started with one thread rounds some float32 matrix products (those of wide networks)
    differently from one started with several and limited to one, as fusedmlp's
    kernels limit it: results would then agree with one process only to rounding. For a
    cluster of your own, start the workers with ``OPENBLAS_NUM_THREADS`` set as in the
    process you compare with, through dask's config (e.g. the environment variable
    ``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__OPENBLAS_NUM_THREADS=2``); training
    warns when they differ.

    Parameters
    ----------
    n_workers, threads_per_worker : int
        Worker processes, and the threads of each (numba's threads in its kernels).
    **kwargs
        Passed to ``LocalCluster`` (e.g. ``dashboard_address=":8787"``).

    Examples
    --------
    >>> from distributed import Client
    >>> with local_cluster(1) as cluster, Client(cluster) as client:
    ...     len(client.scheduler_info()["workers"])
    1
    """
    from distributed import LocalCluster

    kwargs.setdefault("host", "127.0.0.1")
    kwargs.setdefault("dashboard_address", "127.0.0.1:0")  # any free port, loopback only
    kwargs.setdefault("silence_logs", 40)  # errors only: training's output stays readable
    # OpenBLAS reads its thread count once, when numpy loads it in the worker process:
    # a nanny's env= comes too late (after the worker's imports). The nannies build the
    # workers' start environment from dask's pre-spawn-environ (OPENBLAS_NUM_THREADS 1),
    # overridden by this process's own variables, when they are created; they keep it for
    # restarts. So the variable is set here while they are created, then put back.
    name, before = "OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ[name] = str(max(1, _worker.blas_threads()))
    try:
        return LocalCluster(
            n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True, **kwargs
        )
    finally:  # (the nannies set the variable here again as they spawn: undo that too)
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
