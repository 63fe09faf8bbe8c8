"""Fixtures shared by several test files."""

import pytest

from fusedmlp import datasets


@pytest.fixture
def pair(tmp_path):
    """write(m, **kw) -> read-only (X, Y) memory maps of planar in tmp_path."""

    def write(m, **kw):
        return datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", m, **kw)

    return write
