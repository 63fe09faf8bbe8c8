"""fusedmlp: fast, verified training of one-hidden-layer neural networks.

The public surface: ``init_params``, ``train``, ``predict_proba``, ``predict``,
``accuracy``, the diagnostics ``gradcheck`` and ``explain``, the data sets in
``fusedmlp.datasets`` and the NumPy reference network in ``fusedmlp.reference``.
"""

from . import datasets, reference
from .api import (
    TrainingDiverged,
    TrainResult,
    accuracy,
    init_params,
    predict,
    predict_proba,
    train,
)
from .diagnostics import GradcheckReport, explain, gradcheck

__version__ = "0.1.0"

__all__ = [
    "GradcheckReport",
    "TrainResult",
    "TrainingDiverged",
    "accuracy",
    "datasets",
    "explain",
    "gradcheck",
    "init_params",
    "predict",
    "predict_proba",
    "reference",
    "train",
]
