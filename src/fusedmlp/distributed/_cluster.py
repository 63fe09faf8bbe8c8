"""A LocalCluster whose workers compute as this process does."""

from __future__ import annotations


def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, **kwargs):
    """A ``distributed.LocalCluster`` of worker processes on loopback (127.0.0.1), with
    its HTTP endpoints on a free loopback port.

    Workers started by dask's nanny run OpenBLAS with one thread
    (OPENBLAS_NUM_THREADS=1); this process may run more. That changes nothing in the
    results: the kernels hold BLAS at one thread in every process while they run
    (``fusedmlp._blas_threads``). (Until 2026-12-05 it did: the limit could miss the
    library the kernels call, and this function started the workers with this
    process's count to make up for it.)

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
    return LocalCluster(
        n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True, **kwargs
    )
