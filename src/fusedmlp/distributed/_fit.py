"""The scikit-learn estimators' fit on dask arrays: the samples stay on the workers.

``fit`` and ``partial_fit`` given a dask X (n_samples, n_features) run scikit-learn's
epoch loop (``sklearn._loop.Loop``: the random stream, the counters, the stopping rule,
the warnings, Ctrl-C and ``verbose``) on the client, as for NumPy data, and only the
epochs on the cluster: X, transposed to the kernels' layout, is cut into pieces on the
workers as ``fusedmlp.train`` cuts it (``_engine``), full-batch epochs add the pieces'
gradient rows, mini-batch epochs stream the samples in the orders the loop draws to
one worker (``_stream``). So the numbers are those of a fit of the computed arrays in
one process. What comes to the client: y (one label or row per sample, needed for the
classes, the targets and scikit-learn's stratified split) and, with early_stopping, the
held-out samples of X, which the loop scores after every epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from .. import _data
from ..sklearn._loop import Loop
from . import _sources
from ._engine import Engine
from ._train import _client


def validate_spread(est, X, y, incremental: bool, reset: bool, weights=None) -> tuple:
    """``est._validate_input`` for a dask X: X's shape checked (it stays lazy; the
    workers check its values as they load it), y computed here and checked as
    scikit-learn checks it; (X, y). Sample weights are refused (not built for a
    cluster's pieces)."""
    import dask.array as da
    from sklearn.utils.validation import validate_data

    if weights is not None:
        raise ValueError(
            "sample_weight is not supported when X is a dask array: fit on the computed "
            "arrays (X.compute()) to weigh the samples, or leave sample_weight out."
        )
    if not isinstance(X, da.Array):
        raise TypeError(
            f"X is a dask {type(X).__name__}; the estimators take a dask array (n_samples, "
            "n_features): convert it with X.to_dask_array(lengths=True)."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D dask array X (n_samples, n_features), got {X.ndim}-D {X.shape}."
        )
    y = np.asarray(y.compute() if _data.is_dask(y) else y)
    if np.isnan(X.shape[0]) or X.shape[0] != len(y):
        raise ValueError(
            f"X has {X.shape[0]} samples but y has {len(y)}; give one target per row of X "
            "(X of unknown chunk sizes: call X.compute_chunk_sizes() first)."
        )
    y = validate_data(est, "no_validation", y, **est._Y_CHECKS)
    if reset:
        est.n_features_in_ = int(X.shape[1])
        if hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return X, est._checked_y(y, incremental)


class ClusterLoop(Loop):
    """scikit-learn's loop with its epochs run on the active dask client's workers."""

    def __init__(self, est, X, T, y, params: dict, incremental: bool, weights=None):
        self.client = _client(None, how=", which becomes the active client the estimators use")
        self.engine = None
        super().__init__(est, X, T, y, params, incremental, weights)

    def _runner(self, X, T, batch: int | None):
        s = self.est._settings_
        if batch is not None:
            s = dataclasses.replace(s, batch_size=batch)
        # the kernels' layout (n_features, n_samples), chunked along the samples
        source = _sources.DaskArrays(X.T, T)
        self.engine = engine = Engine(self.client, source, self.params, s)
        try:
            engine.load()  # a piece that fails (bad values, an unreadable chunk) raises
        except BaseException:
            engine.close()
            raise
        if batch is not None:
            return engine.stream_runner(self.params, self.est._state)
        run = engine.runner(self.params, self.est._state, lambda: False, None)
        return lambda k, losses: run(k, losses)

    def _blas(self):
        return contextlib.nullcontext()  # the kernels run on the workers

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.run_k = None  # the engine's runner goes with the engine
            if self.engine is not None:
                self.engine.close()
