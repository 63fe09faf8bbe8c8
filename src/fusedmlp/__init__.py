"""fusedmlp: fast, verified training of one-hidden-layer neural networks.

The public surface: ``init_params``, ``train``, ``predict_proba``, ``predict``,
``accuracy``, checkpoints (``save``, ``load``), the diagnostics ``gradcheck`` and
``explain``, the data sets in ``fusedmlp.datasets``, the pictures in ``fusedmlp.plots``
and the NumPy reference network in ``fusedmlp.reference``.
"""

from . import datasets, outofcore, reference
from .api import accuracy, init_params, predict, predict_proba
from .checkpoint import load, save
from .diagnostics import GradcheckReport, explain, gradcheck
from .trainer import TrainingDiverged, TrainResult, train

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
    "load",
    "outofcore",
    "predict",
    "predict_proba",
    "reference",
    "save",
    "train",
]
