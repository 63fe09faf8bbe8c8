"""What the two estimators share: parameters, the epoch loop, the fitted attributes.

The loop is scikit-learn's ``_fit_stochastic`` step for step, so that the numbers agree:
the same random stream (initialisation, then the early-stopping split, then one
shuffle per epoch), the same batches, the same stopping rules and learning-rate
schedules, applied in Python between epochs. Each epoch itself is one call of the
compiled mini-batch kernel (``_compiled_train.epoch_runner``) with the epoch's sample
order given, the optimizer's state kept between calls.

The kernels take samples in columns; the estimators take them in rows, as scikit-learn
does. Mini-batches are gathered from X itself (X.T, a view) where a batch is gathered
sample-major (a wide network of at least 24 features in float64, 48 in float32:
kernels.config.BY_SAMPLE_MIN_BYTES); otherwise ``fit`` converts once, a transposed
C-contiguous copy of X (its size again in memory). Either way X is first in the
training dtype (a copy if it is not), and the targets as the kernels read them (class
indices for several classes, a (n_outputs, n_samples) array otherwise).

scikit-learn's squared error is half the mean square, and its gradient half of
fusedmlp's ``mse``. The regressor trains fusedmlp's mse with alpha doubled and, for
"sgd", the rate halved, or for "adam" epsilon doubled: every step is then exactly
scikit-learn's (scaling by 2 is exact in binary floating point), and the loss it
reports is half of fusedmlp's.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight

from .. import _compiled, _data
from .._optstate import LR, OptState
from ..settings import Settings
from ..trainer import _threads
from ._loop import Loop
from ._params import ACTIVATIONS, OUTPUTS, check_params, hidden_units


class BaseFusedMLP(BaseEstimator):
    """The shared part of FusedMLPClassifier and FusedMLPRegressor (not used alone)."""

    _loss = "cross_entropy"  # the kernels' loss (the regressor's: "mse" or "poisson")

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        n_threads=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun  # L-BFGS's only (refused): accepted, as get_params gives it
        self.dtype = dtype
        self.n_threads = n_threads

    # -----------------------------------------------------------------------
    # fitting

    def _fit(self, X, y, incremental: bool, sample_weight=None):
        check_params(self)
        n_h = hidden_units(self.hidden_layer_sizes)
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        loop = Loop
        if _data.is_dask(X):  # X stays spread over a dask cluster's workers
            from ..distributed._fit import ClusterLoop, validate_spread

            X, y = validate_spread(self, X, y, incremental, reset=first, weights=sample_weight)
            loop = ClusterLoop
        else:
            X, y = self._validate_input(X, y, incremental, reset=first)
        X = X.astype(self._train_dtype(X), copy=False)
        if sample_weight is not None:  # as MLPClassifier checks it: (n_samples,), finite
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        T = self._targets(y, X.dtype)
        n_out = T.shape[0] if T.ndim == 2 else len(self.classes_)
        self._random_state = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], n_h, n_out, X.dtype)
        elif (self.coefs_[0].shape, self.coefs_[1].shape[1]) != ((X.shape[1], n_h), n_out):
            (n_x0, n_h0), n_out0 = self.coefs_[0].shape, self.coefs_[1].shape[1]
            raise ValueError(
                f"warm_start and partial_fit continue the network fitted before, with "
                f"{n_x0} features, {n_h0} hidden units and {n_out0} outputs; got "
                f"{X.shape[1]} features, hidden_layer_sizes={n_h} and {n_out} outputs "
                f"(targets of another shape?). Fit a new model, or without warm_start."
            )
        params = self._params(X.dtype)
        self._settings_ = self._settings()
        if not incremental or getattr(self, "_state", None) is None:
            self._state = OptState(self._settings_, params)
        with _threads(self.n_threads):
            loop(self, X, T, y, params, incremental, sample_weight).run()
        return self

    def _train_dtype(self, X) -> type:
        if self.dtype is not None:
            return np.dtype(self.dtype).type
        return np.float32 if X.dtype == np.float32 else np.float64

    def _initialize(self, n_features: int, n_h: int, n_out: int, dtype) -> None:
        """scikit-learn's Glorot initialisation, drawn in its order from its stream."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_out
        self.n_layers_ = 3
        self.out_activation_ = self._out_activation()
        self.coefs_, self.intercepts_ = [], []
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in ((n_features, n_h), (n_h, n_out)):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(dtype, copy=False))
            self.intercepts_.append(intercept.astype(dtype, copy=False))
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._best = ([c.copy() for c in self.coefs_], [c.copy() for c in self.intercepts_])
        self._state = None

    def _params(self, dtype) -> dict:
        """The kernels' parameters (W1 (n_h, n_x), b1 (n_h, 1), ...) from coefs_."""
        (C1, C2), (c1, c2) = self.coefs_, self.intercepts_
        return {
            "W1": np.ascontiguousarray(C1.T, dtype),
            "b1": np.array(c1, dtype).reshape(-1, 1),
            "W2": np.ascontiguousarray(C2.T, dtype),
            "b2": np.array(c2, dtype).reshape(-1, 1),
        }

    def _keep(self, params: dict) -> None:
        self.coefs_ = [params["W1"].T.copy(), params["W2"].T.copy()]
        self.intercepts_ = [params["b1"].ravel().copy(), params["b2"].ravel().copy()]

    def _optimizer_rate(self) -> float:
        """The learning rate of the next step, in scikit-learn's terms."""
        return float(self._state.clock[LR]) * self._scale()

    def _scale(self) -> float:
        """2 for squared_error (fusedmlp's mse is twice scikit-learn's loss), else 1."""
        return 2.0 if self._loss == "mse" else 1.0

    def _settings(self) -> Settings:
        s = self._scale()
        given = {
            "activation": ACTIVATIONS[self.activation],
            "output": OUTPUTS[self.out_activation_],
            "loss": self._loss,
            "alpha": float(self.alpha) * s,
        }
        if self.solver == "adam":
            given.update(
                optimizer="adam", lr=float(self.learning_rate_init), beta1=float(self.beta_1),
                beta2=float(self.beta_2), epsilon=float(self.epsilon) * s,
            )  # fmt: skip
        else:
            given.update(
                optimizer="nesterov" if self.nesterovs_momentum else "momentum",
                lr=float(self.learning_rate_init) / s, momentum=float(self.momentum),
            )  # fmt: skip
        return Settings.make(given)

    # -----------------------------------------------------------------------
    # the forward pass

    def _forward(self, X) -> np.ndarray:
        """The network's outputs (n_samples, n_outputs) for checked X (n_samples, n_x)."""
        dtype = self.coefs_[0].dtype
        Xk = np.ascontiguousarray(np.asarray(X, dtype).T)  # the kernels' layout
        with _threads(self.n_threads):
            return self._outputs_of(Xk, self._params(dtype))()

    def _outputs_of(self, Xk: np.ndarray, params: dict):
        """``run() -> outputs (n_samples, n_outputs)`` for Xk in the kernels' layout from
        the live ``params`` as they are at each call (``_compiled.predictor``: prepared
        once; each call's result is overwritten by the next): for ``_forward``, and for
        early stopping's held-out samples, scored every epoch during the fit (whose
        thread count is already set)."""
        run = _compiled.predictor(
            params, Xk, ACTIVATIONS[self.activation], OUTPUTS[self.out_activation_]
        )
        return lambda: run().T

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # the kernels read dense arrays only
        return tags
