"""The classifier's LabelBinarizer (fusedmlp.sklearn._labels.binarizer) against
``LabelBinarizer().fit``: the same fitted state (every attribute, dtypes included) for
plain integer labels, which it sets without fit's checks, and fit itself for the rest."""

import numpy as np
import pytest
from sklearn.preprocessing import LabelBinarizer

from fusedmlp.sklearn._labels import binarizer

INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
LABELS = [[3, 1, 3, 2], [5], [0, 1, 1, 0], [7, 7], [2, 9], list(range(12)) * 2]


def _same_state(ours, theirs):
    assert vars(ours).keys() == vars(theirs).keys()
    for name, want in vars(theirs).items():
        got = getattr(ours, name)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        else:
            assert type(got) is type(want) and got == want, name


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("labels", LABELS)
def test_plain_integer_labels_give_fits_state(dtype, labels):
    y = np.array(labels, dtype)
    ours, theirs = binarizer(y), LabelBinarizer().fit(y)
    _same_state(ours, theirs)
    np.testing.assert_array_equal(ours.transform(y), theirs.transform(y))


def test_negative_labels():
    y = np.array([-4, 0, -4, 9])
    _same_state(binarizer(y), LabelBinarizer().fit(y))


@pytest.mark.parametrize(
    "y",
    [
        np.array(["b", "a", "b"]),  # fit gives classes_ the labels' own width
        np.array([1.0, 2.0, 1.0]),
        np.array([[1, 0, 1], [0, 1, 1]]),  # multilabel
        [2, 1, 2],  # a list
        np.array([True, False]),
    ],
)
def test_other_labels_go_through_fit(y):
    _same_state(binarizer(y), LabelBinarizer().fit(y))


def test_fits_errors_stay():
    with pytest.raises(ValueError, match="Unknown label type"):
        binarizer(np.array([0.5, 1.5]))
