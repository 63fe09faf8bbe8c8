"""The examples in the public docstrings run and print what they say."""

import doctest

import pytest

import fusedmlp
from fusedmlp import _compiled, api, checkpoint, datasets, diagnostics, outofcore, plots, trainer


@pytest.mark.parametrize(
    "module",
    [api, trainer, checkpoint, datasets, diagnostics, plots, outofcore, _compiled],
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
