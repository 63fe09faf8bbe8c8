"""fusedmlp: fast, verified training of one-hidden-layer neural networks.

The public surface: ``init_params``, ``train``, ``predict_proba``, ``predict``,
``accuracy``, ``score``, checkpoints (``save``, ``load``), the diagnostics ``gradcheck`` and
``explain``, the data sets in ``fusedmlp.datasets``, the pictures in ``fusedmlp.plots``
and the NumPy reference network in ``fusedmlp.reference``.

Names are imported on first use (PEP 562), so ``import fusedmlp`` is quick and loads
neither numba nor the kernels; this also lets the ``fusedmlp`` command set up its Ctrl-C
handling before the heavy imports start.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a few ms)

__version__ = "0.1.0"

# public name -> the submodule that defines it (None: the name is a submodule)
_WHERE = {
    "GradcheckReport": "diagnostics",
    "explain": "diagnostics",
    "gradcheck": "diagnostics",
    "accuracy": "api",
    "init_params": "api",
    "predict": "api",
    "predict_proba": "api",
    "score": "api",
    "load": "checkpoint",
    "save": "checkpoint",
    "DataChanged": "trainer",
    "TrainResult": "trainer",
    "TrainingDiverged": "trainer",
    "train": "trainer",
    "datasets": None,
    "outofcore": None,
    "reference": None,
}

__all__ = [
    "DataChanged",
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
    "score",
    "train",
]
assert sorted(__all__) == sorted(_WHERE)  # one list of public names


# submodules that ``fusedmlp.<name>`` also reaches (imported on first use)
_SUBMODULES = {"api", "checkpoint", "cli", "diagnostics", "kernels", "plots", "scaling"}
_SUBMODULES |= {"optimizers", "result", "settings", "trainer"}


def __getattr__(name: str):
    if name not in _WHERE and name not in _SUBMODULES:
        raise AttributeError(f"module 'fusedmlp' has no attribute {name!r}")
    # the kernels first: they check the environment and choose numba's threading layer
    # before anything imports numba
    importlib.import_module(".kernels", __name__)
    module = _WHERE.get(name)
    if module is None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE) | _SUBMODULES)


if TYPE_CHECKING:  # what static tools see
    from . import datasets, outofcore, reference
    from .api import accuracy, init_params, predict, predict_proba, score
    from .checkpoint import load, save
    from .diagnostics import GradcheckReport, explain, gradcheck
    from .trainer import DataChanged, TrainingDiverged, TrainResult, train
