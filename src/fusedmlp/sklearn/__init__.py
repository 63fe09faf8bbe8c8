"""scikit-learn estimators on fusedmlp's kernels: change one import.

``FusedMLPClassifier`` and ``FusedMLPRegressor`` take MLPClassifier's and MLPRegressor's
parameters (one hidden layer; solvers "adam" and "sgd") and follow their arithmetic, so
that the fitted numbers agree; each epoch runs in fusedmlp's compiled kernels. Needs
scikit-learn: ``pip install "fusedmlp[sklearn]"``.

>>> from fusedmlp.sklearn import FusedMLPClassifier  # was: sklearn.neural_network.MLPClassifier
"""

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        'fusedmlp.sklearn needs scikit-learn: pip install "fusedmlp[sklearn]"'
    ) from exc

from ._estimators import FusedMLPClassifier, FusedMLPRegressor

__all__ = ["FusedMLPClassifier", "FusedMLPRegressor"]
