"""FusedMLPClassifier and FusedMLPRegressor: scikit-learn's MLPClassifier and
MLPRegressor (one hidden layer, solvers "sgd" and "adam") on fusedmlp's kernels."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import _labels, _scores
from ._base import BaseFusedMLP
from ._checks import checked_X, checked_X_y

_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or (int,), default=(100,)
        The hidden layer's width; one hidden layer only (more are refused).
    activation : {"logistic", "tanh", "relu"}, default="relu"
        The hidden layer's activation ("identity" is refused).
    solver : {"adam", "sgd"}, default="adam"
        "sgd" is momentum, Nesterov's when ``nesterovs_momentum``; "lbfgs" is refused.
    alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter, shuffle,
    random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
    early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change
        As scikit-learn's, with its defaults (``learning_rate`` and ``power_t`` for
        "sgd" only, as there).
    max_fun : int, default=15000
        Checked and kept, as scikit-learn does; only "lbfgs" would use it.
    dtype : {None, "float32", "float64"}, default=None
        The training dtype: None keeps float32 input in float32, anything else float64.
    n_threads : int, optional
        The kernels' threads during fit and predict (numba's count is restored after).
"""


class FusedMLPClassifier(ClassifierMixin, BaseFusedMLP):
    __doc__ = (
        """Multi-layer perceptron classifier on fusedmlp's compiled kernels: scikit-learn's
    MLPClassifier for one hidden layer, the same parameters, the same numbers, faster.

    Binary and multilabel targets train independent logistic outputs with the binary
    log-loss, several classes a softmax with the log-loss, as MLPClassifier does.
"""
        + _PARAMS_DOC
        + """
    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_, n_layers_,
    n_outputs_, out_activation_
        As MLPClassifier's.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fusedmlp.sklearn import FusedMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = FusedMLPClassifier((16,), learning_rate_init=0.01, max_iter=1000, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """
    )

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> FusedMLPClassifier:
        """Fit the model to X (n_samples, n_features) and the labels y; returns self.
        ``sample_weight`` (n_samples,), optional, weighs each sample's loss, as in
        MLPClassifier."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        classes: ArrayLike | None = None,
    ) -> FusedMLPClassifier:
        """One epoch over (X, y); ``classes`` (every label) is needed on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    _Y_CHECKS = {"multi_output": True}  # validate_data's checks of y
    _Y_KINDS = "iu"  # the dtype kinds of a y that passes them unchanged (_checks)

    def _validate_input(self, X, y, incremental, reset):
        X, y = checked_X_y(self, X, y, reset, self._Y_KINDS, **self._Y_CHECKS)
        return X, self._checked_y(y, incremental)

    def _checked_y(self, y, incremental: bool):
        """y after validate_data: one column as 1-D, and the classes learnt or checked."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = _labels.binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` "
                        f"has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        return y

    def _targets(self, y, dtype) -> np.ndarray:
        """Class indices (n_samples,) for several classes, else (n_outputs, n_samples)."""
        if self._label_binarizer.y_type_ == "multiclass":
            return np.searchsorted(self.classes_, y).astype(np.int64)
        return np.ascontiguousarray(self._label_binarizer.transform(y).T, dtype=dtype)

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _stratify(self, y):
        if self.n_outputs_ != 1:  # as scikit-learn: only single-output targets
            return None
        return self._label_binarizer.transform(y).astype(bool)

    def _val_scorer(self, Xk: np.ndarray, y, weights, params: dict):
        """``score() -> float``: accuracy_score(y, the labels predicted for the held-out
        Xk (kernels' layout) by the live params, sample_weight=weights), its arithmetic
        without its input checks (the targets' kind is known: _scores)."""
        outputs = self._outputs_of(Xk, params)
        kind, classes = self._label_binarizer.y_type_, self.classes_
        return lambda: _scores.accuracy(
            _scores.class_verdicts(kind, classes, y, outputs()), weights
        )

    def _label(self, A: np.ndarray) -> np.ndarray:
        """LabelBinarizer.inverse_transform(A), its arithmetic for one label a sample
        (the argmax, or A > 0.5 for two classes) without its checks."""
        kind, classes = self._label_binarizer.y_type_, self.classes_
        if kind == "multiclass":
            return classes[A.argmax(axis=1)]
        if kind == "binary" and classes.shape[0] == 2:
            return classes[(A.ravel() > 0.5).astype(np.intp)]
        return self._label_binarizer.inverse_transform(A.ravel() if self.n_outputs_ == 1 else A)

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self)
        return checked_X(self, X)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The predicted classes (n_samples,), or (n_samples, n_labels) for multilabel."""
        return self._label(self._forward(self._checked(X)))

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """The mean accuracy of ``predict(X)`` against y, as ClassifierMixin's (the same
        number: accuracy_score's arithmetic, without its checks where y is a plain
        array of labels, ``_scores.plain_labels``)."""
        pred = self.predict(X)
        if _scores.plain_labels(y, pred, sample_weight):
            return _scores.accuracy(y == pred, sample_weight)
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), classes as in ``classes_``."""
        A = self._forward(self._checked(X))
        if self.n_outputs_ == 1:
            p = A.ravel()
            return np.vstack([1 - p, p]).T
        return A

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """log(predict_proba(X))."""
        p = self.predict_proba(X)
        return np.log(p, out=p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class FusedMLPRegressor(RegressorMixin, BaseFusedMLP):
    __doc__ = (
        """Multi-layer perceptron regressor on fusedmlp's compiled kernels: scikit-learn's
    MLPRegressor for one hidden layer (identity output with its squared error, half the
    mean square; or exp output with its Poisson loss, half the Poisson deviance), the
    same parameters, the same numbers, faster.
"""
        + _PARAMS_DOC
        + """    loss : {"squared_error", "poisson"}, default="squared_error"
        MLPRegressor's: "poisson" (scikit-learn 1.7) trains an exp output on half the
        Poisson deviance, for targets >= 0 (counts, rates; a negative one is refused).

    Attributes
    ----------
    coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_, n_layers_,
    n_outputs_, out_activation_
        As MLPRegressor's.

    Examples
    --------
    >>> import numpy as np
    >>> from fusedmlp.sklearn import FusedMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(300, 2))
    >>> y = X[:, 0] - 2 * X[:, 1]
    >>> reg = FusedMLPRegressor(hidden_layer_sizes=(20,), learning_rate_init=0.01, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.99
    True
    """
    )

    @property
    def _loss(self) -> str:
        """The kernels' loss: fusedmlp's mse is twice scikit-learn's squared_error (see
        _scale); its poisson is scikit-learn's."""
        return "poisson" if self.loss == "poisson" else "mse"

    def __init__(
        self,
        loss="squared_error",
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
        # MLPRegressor's parameters in its order, ``loss`` (scikit-learn 1.7) first as
        # there: listed here, since scikit-learn reads the parameters off __init__
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            dtype=dtype, n_threads=n_threads,
        )  # fmt: skip
        self.loss = loss

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> FusedMLPRegressor:
        """Fit the model to X (n_samples, n_features) and y (n_samples[, n_outputs]).
        ``sample_weight`` (n_samples,), optional, weighs each sample's loss, as in
        MLPRegressor."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> FusedMLPRegressor:
        """One epoch over (X, y)."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    _Y_CHECKS = {"multi_output": True, "y_numeric": True}  # validate_data's checks of y
    _Y_KINDS = "iuf"

    def _validate_input(self, X, y, incremental, reset):
        X, y = checked_X_y(self, X, y, reset, self._Y_KINDS, **self._Y_CHECKS)
        return X, self._checked_y(y, incremental)

    def _checked_y(self, y, incremental: bool):
        """y after validate_data: one column as 1-D; >= 0 for the Poisson loss."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (np.asarray(y) < 0).any():
            # scikit-learn's wording (its PoissonRegressor's); its MLPRegressor takes
            # them and its loss becomes NaN (the log of a negative number)
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson regression."
            )
        return y

    def _targets(self, y, dtype) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(y, dtype).reshape(len(y), -1).T)

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _stratify(self, y):
        return None

    def _val_scorer(self, Xk: np.ndarray, y, weights, params: dict):
        """``score() -> float``: r2_score of the held-out Xk's predictions by the live
        params against y (its arithmetic without its checks, y's terms computed once);
        NaN where a prediction is not finite."""
        outputs = self._outputs_of(Xk, params)
        r2 = _scores.r2_scorer(y, weights, Xk.dtype)

        def score() -> float:
            pred = self._values(outputs())
            return r2(pred) if np.isfinite(pred).all() else np.nan

        return score

    def _values(self, A: np.ndarray) -> np.ndarray:
        return A.ravel() if A.shape[1] == 1 else A

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The predicted values (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = checked_X(self, X)
        return self._values(self._forward(X))

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """R^2 of ``predict(X)`` against y, as RegressorMixin's (the same number:
        r2_score's arithmetic, without its checks where y is a plain array of values,
        ``_scores.plain_values``)."""
        pred = self.predict(X)
        if _scores.plain_values(y, pred, sample_weight):
            return _scores.r2(y, pred, sample_weight)
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the Poisson loss takes targets >= 0 (as scikit-learn's PoissonRegressor says).
        # poor_score: on the estimator checks' data (make_regression, shifted to > 0)
        # a default Poisson fit reaches R^2 0.385, MLPRegressor(loss="poisson")'s very
        # number, under the 0.5 the checks ask of a squared-error regressor
        poisson = self.loss == "poisson"
        tags.target_tags.positive_only = poisson
        tags.regressor_tags.poor_score = poisson
        return tags
