"""The scikit-learn estimators' fit on dask arrays: on a worker, never on the client.

scikit-learn's epoch loop draws a shuffle per epoch and works through mini-batches,
each needing its samples in one place: the fit runs whole on one worker (the one with
the most memory; data too large for it is a MemoryError before anything loads), which
computes X and y from their dask graphs (so the data goes to that worker once and never
to the client) and returns the fitted estimator, whose attributes replace the client's.
The same compiled kernels, the same random stream: the same numbers as a fit on the
computed arrays in one process. The fit's warnings (ConvergenceWarning, ...) are
raised again on the client; ``verbose`` prints on the worker, and Ctrl-C on the client
does not reach the fit.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _data
from ._engine import roomiest
from ._train import _client


def fit_on_cluster(estimator, X, y, incremental: bool):
    """``estimator._fit(X, y, incremental)`` on a worker of the active client; the
    estimator, with the fitted attributes the worker's copy ended with."""
    import dask

    client = _client(None, how=", which becomes the active client the estimators use")
    nbytes = sum(a.nbytes if _data.is_dask(a) else np.asarray(a).nbytes for a in (X, y))
    worker = roomiest(
        client, 2 * nbytes,
        f"an estimator's fit runs on one worker, which holds all {X.shape[0]} samples",
        "Fit on fewer samples, or give a worker more memory (memory_limit=).",
    )  # fmt: skip
    task = dask.delayed(_fit_here, pure=False)(estimator, X, y, incremental)
    fitted, caught = client.compute(task, workers=[worker], allow_other_workers=True).result()
    estimator.__dict__.update(fitted.__dict__)
    for category, message in caught:
        warnings.warn(message, category, stacklevel=3)
    return estimator


def _fit_here(estimator, X, y, incremental: bool):
    """On the worker: X and y arrive computed (dask passes the results of collections);
    (the fitted estimator, its warnings as (category, message))."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator._fit(np.asarray(X), np.asarray(y), incremental)
    return estimator, [(w.category, str(w.message)) for w in caught]
