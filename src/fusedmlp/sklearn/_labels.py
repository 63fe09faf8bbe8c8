"""The classifier's LabelBinarizer, fitted without its checks where the labels are plain.

``LabelBinarizer().fit(y)`` classifies y twice (``type_of_target``, once itself and once
in ``unique_labels``) before it sorts the labels: about 230 us on the 2-core VM for
wine's 124 labels, more than a tenth of a small fit's fixed cost. For a 1-D NumPy array
of integers (the usual y) the outcome is known without those checks: the sorted
distinct values, "binary" for at most two and "multiclass" above. ``binarizer`` sets
exactly the attributes ``fit`` would (tests/test_sklearn_labels.py holds it to fit's
for every integer dtype) and leaves any other y to ``fit`` itself, with its errors.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import LabelBinarizer


def binarizer(y) -> LabelBinarizer:
    """``LabelBinarizer().fit(y)``, its result directly for a plain integer y.

    >>> binarizer(np.array([3, 1, 3, 2])).classes_
    array([1, 2, 3])
    """
    lb = LabelBinarizer()
    if not (type(y) is np.ndarray and y.ndim == 1 and y.size and y.dtype.kind in "iu"):
        return lb.fit(y)
    classes = np.unique(y)
    lb.y_type_ = "multiclass" if classes.shape[0] > 2 else "binary"
    lb.sparse_input_ = False
    lb.classes_ = classes
    return lb
