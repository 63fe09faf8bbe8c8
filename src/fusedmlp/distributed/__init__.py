"""Data-parallel training on a dask cluster, with the bits of one process.

``fusedmlp.train`` takes, besides NumPy arrays, a dask array X (n_x, m) with Y (n_y, m)
or (m,) (a dask or NumPy array), chunked along the samples in any way, or a list of
shard files that the workers open themselves: ``.npz`` archives holding X and Y
(stored uncompressed, as ``np.savez`` writes them; Y=None), or ``.npy`` files of X with
Y the list of their targets' ``.npy`` files. It then trains on the active
``distributed.Client`` (or ``client=``); ``fusedmlp.distributed.train`` is the same
function, with ``timings=`` for measuring the engine.

How it runs (``_engine``):

- The samples are cut as one process cuts them: blocks, then the chunks of blocks that
  ``kernels.config.plan`` chooses for all m samples. Each worker builds a piece of whole
  chunks from the source, once, checks it as ``train`` checks its data, and keeps it in
  memory; the data never travels to the client.
- An epoch sends each piece the parameters (kilobytes); the worker's compiled kernel
  returns one row of loss and gradient sums per chunk; the client adds the rows in chunk
  order and updates with the compiled update of the one-process kernels. The losses and
  parameters are therefore bit-identical to ``fusedmlp.train`` on the same data in one
  process running the same compiled code, for any number of workers and any chunking
  of the dask arrays. (Whether a process compiled the kernels or loaded them from
  numba's cache, as workers usually do, makes no difference: ``kernels/_linking.py``.)
- A worker that dies costs a retry: dask builds its pieces again from their source on
  another worker (the same bits), and the epoch goes on.
- The driver is ``train``'s own: every optimizer and schedule, L2, early stopping on the
  loss, callbacks, progress, Ctrl-C (between epochs), checkpoints (``fusedmlp.save``)
  and ``resume=``, which continues bit-identically.

- Validation (``validation_fraction``) with full batches keeps the training samples
  spread (``_heldout``): the split is drawn on a worker from the targets alone, as one
  process draws it; the training samples are cut into pieces as one process cuts its
  training part, each worker reading a run of the original samples and setting the
  held-out ones aside; those meet on one worker, behind an actor that scores each
  epoch's parameters with one process's code. The record of the scores and the best
  parameters stay on the client. The same split, scores and bits as one process.
- Mini-batches (``batch_size`` below m) keep the samples spread too (``_stream``). An
  epoch of batches is a chain of updates, each waiting for the last, and a batch is
  too little arithmetic to share out (a round trip per batch would cost more than the
  batch), so the batches run on one worker, behind a ``Stream`` actor, in the order one
  process runs them (shuffled from (seed, epoch)). What moves is the data: the pieces'
  holders send it each epoch's samples in that order, a window of whole batches (about
  4 MB) at a time, the next window asked for while the current one is computed; the
  actor runs each window with one process's batch code. So: the same bits, resume
  included; one worker's arithmetic, not the cluster's; no worker needs more memory
  than its piece and a few windows. Each call starts from the parameters and optimizer
  state the client sends (the client's copy stays the truth: a call repeated after a
  lost worker gives the same bits).
- The scikit-learn estimators' ``fit`` and ``partial_fit`` take a dask X (n_samples,
  n_features) on the active client (``_fit``): scikit-learn's loop runs on the client as
  for NumPy data (its random stream, counters, stopping rule, warnings, ``verbose``,
  Ctrl-C), the epochs on the cluster as above (X in pieces on the workers; full
  batches add the pieces' rows; mini-batches stream in the orders the loop draws). The
  same numbers as a fit of the computed arrays. y comes to the client (the classes, the
  targets and scikit-learn's split need it), and with early_stopping so do the
  held-out rows of X, which the loop scores every epoch.

Refused with a clear error: the NumPy backend, and ``threads=`` (a worker uses its own
threads: ``LocalCluster(threads_per_worker=...)``, ``dask worker --nthreads``).

Examples
--------
>>> import dask.array as da
>>> from distributed import Client, LocalCluster
>>> import fusedmlp
>>> from fusedmlp import datasets
>>> X, Y = datasets.planar()
>>> with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
...                   dashboard_address=None) as cluster, Client(cluster) as client:
...     res = fusedmlp.train(da.from_array(X, chunks=(2, 150)), Y, epochs=20, seed=2)
>>> one = fusedmlp.train(X, Y, epochs=20, seed=2)
>>> bool(np.array_equal(res.losses, one.losses))
True
"""

from __future__ import annotations

from ._cluster import local_cluster
from ._train import train

__all__ = ["local_cluster", "train"]
