"""Fixtures shared by several test files."""

import pytest

import fusedmlp
from fusedmlp import datasets, init_params


@pytest.fixture
def pair(tmp_path):
    """write(m, **kw) -> read-only (X, Y) memory maps of planar in tmp_path."""

    def write(m, **kw):
        return datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", m, **kw)

    return write


@pytest.fixture
def problem():
    """(params, X, Y): the planar data (m = 40) and a 2-4-1 network, for gradcheck."""
    X, Y = datasets.planar(m=40, seed=3)
    p = init_params(2, 4, 1, seed=0, scale=1.0)
    return p, X, Y


@pytest.fixture(scope="module")
def planar():
    """The classic planar flower data set (X (2, 400), Y (1, 400))."""
    return datasets.planar()


@pytest.fixture(scope="module")
def spirals():
    """Three-arm spirals, 150 samples, integer labels (m,)."""
    return datasets.spirals(m=150, classes=3)


@pytest.fixture(scope="module")
def runs():
    """Two small results told apart by their number of epochs (3 and 7)."""
    X, Y = datasets.planar(m=40)
    return fusedmlp.train(X, Y, epochs=3, seed=2), fusedmlp.train(X, Y, epochs=7, seed=2)


@pytest.fixture(scope="module")
def client():
    """A client of a 3-worker dask LocalCluster on loopback (tests/_clusters.py)."""
    from _clusters import three_workers

    yield from three_workers()


@pytest.fixture(scope="module")
def flower():
    """Planar data for the cluster tests: 20000 samples, 40 blocks of 512, 40 chunks."""
    return datasets.planar(m=20000, seed=5)
