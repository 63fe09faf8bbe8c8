"""The examples in the public docstrings run and print what they say."""

import doctest

import pytest

import fusedmlp
import fusedmlp._compiled_train
import fusedmlp._holdout
import fusedmlp.cli
import fusedmlp.distributed
import fusedmlp.distributed._cluster
import fusedmlp.distributed._train
import fusedmlp.optimizers
import fusedmlp.result
import fusedmlp.settings
import fusedmlp.sklearn
import fusedmlp.sklearn._estimators
from fusedmlp import (
    _atomic,
    _compiled,
    _pages,
    _planar_file,
    _scaling_point,
    api,
    checkpoint,
    datasets,
    diagnostics,
    files,
    outofcore,
    plots,
    trainer,
    width,
)

MODULES = [api, trainer, checkpoint, datasets, diagnostics, plots, outofcore, _compiled]
MODULES += [width, _atomic, _pages, _planar_file, _scaling_point, fusedmlp.cli, files]
MODULES += [fusedmlp.optimizers, fusedmlp.settings, fusedmlp.result, fusedmlp._holdout]
MODULES += [fusedmlp._compiled_train, fusedmlp.sklearn, fusedmlp.sklearn._estimators]
MODULES += [fusedmlp.distributed, fusedmlp.distributed._train, fusedmlp.distributed._cluster]


@pytest.mark.parametrize(
    "module",
    MODULES,
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": __import__("numpy")})
    assert result.attempted > 0
    assert result.failed == 0


def test_public_names_documented():
    for name in fusedmlp.__all__:
        obj = getattr(fusedmlp, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
