"""Data files: X and Y from a .npz, a .npy (+ a labels .npy) or a .csv, and sample
weights from a .npy or a text file, shared by the command line and the Python API.

Shapes: X is (n_x, m) and Y is (n_y, m), one sample per column, as ``fusedmlp.train``
takes them. The formats:

- ``.npz``: arrays ``X`` and ``Y``, one sample per column (``np.savez(FILE, X=X, Y=Y)``);
- ``.npy``: X alone, one sample per column, with Y in a second ``.npy`` (``labels``);
- ``.csv``: one sample per row, comma-separated, numbers only, an optional header row
  (a first row without a number) and one label column (``label_column``, by header
  name or index; the last by default).

A file that cannot be read as asked raises ``DataFileError`` (a ``ValueError``) with a
message that names the file and the fix; its ``usage`` attribute is True when the
arguments, not the file, are at fault. A missing path raises ``FileNotFoundError``, a
folder ``IsADirectoryError``. The messages name the command's options (``--labels``,
``--label-column``), which are the keywords ``labels`` and ``label_column`` here.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["DataFileError", "read_data", "read_weights"]


class DataFileError(ValueError):
    """A data file that cannot be read as asked; the message names the file and the fix.

    ``usage`` is True when the arguments are at fault (a labels file or label column
    that does not go with the data file), False when the file's content is.

    Examples
    --------
    >>> err = DataFileError("--label-column applies to .csv data only", usage=True)
    >>> isinstance(err, ValueError), err.usage
    (True, True)
    """

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_index(spec: str | int, names: list | None, width: int, path: Path) -> int:
    """The 0-based column that the label column names, by header name or index."""
    if names is not None and spec in names:
        return names.index(spec)
    try:
        i = int(spec)
    except ValueError:
        known = f"its columns are {', '.join(names)}" if names else "it has no header row"
        raise DataFileError(
            f"--label-column {spec!r}: {path} has no column of that name ({known}); "
            f"give a name or an index 0..{width - 1} (-1 for the last)",
            usage=True,
        ) from None
    if not -width <= i < width:
        raise DataFileError(
            f"--label-column {i}: {path} has {width} columns, so the index must be in "
            f"{-width}..{width - 1}",
            usage=True,
        )
    return i % width


def _csv_rows(path: Path) -> tuple[list | None, list]:
    """(header names or None, [(line number, cells)]) without the blank lines."""
    # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of the header
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [(n, r) for n, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]
    if not rows:
        raise DataFileError(f"{path} is empty: expected one sample per row, comma-separated")
    names = None
    if not any(_is_number(c) for c in rows[0][1]):  # a row without a number is a header
        names = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
        if not rows:
            raise DataFileError(f"{path} has a header row but no samples")
    return names, rows


def _csv_values(path: Path, names: list | None, rows: list) -> np.ndarray:
    """The (m, width) numbers of the rows; every cell finite."""
    width = len(names) if names is not None else len(rows[0][1])

    def col(j: int) -> str:
        return f"column {names[j]!r} (index {j})" if names is not None else f"column {j}"

    values = np.empty((len(rows), width))
    for k, (line, row) in enumerate(rows):
        if len(row) != width:
            raise DataFileError(
                f"{path} line {line} has {len(row)} fields but the first row has {width}; "
                "every row must have the same columns"
            )
        for j, cell in enumerate(row):
            try:
                values[k, j] = float(cell)
            except ValueError:
                raise DataFileError(
                    f"{path}: {col(j)} is not numeric (line {line} holds {cell!r}); "
                    "fusedmlp reads numbers only: remove that column or encode it as numbers"
                ) from None
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        k, j = (int(v) for v in bad[0])
        line, row = rows[k]
        raise DataFileError(
            f"{path} line {line}: {col(j)} holds {row[j].strip()!r}, not a finite number; "
            "remove or impute that sample"
        )
    return values


def _read_csv(path: Path, label_column: str | int | None) -> tuple:
    """(X (n_x, m), Y (1, m) or None, label column name or index) from one sample per row."""
    names, rows = _csv_rows(path)
    values = _csv_values(path, names, rows)
    if label_column is None:
        return np.ascontiguousarray(values.T), None, None
    width = values.shape[1]
    li = _column_index(label_column, names, width, path)
    if width < 2:
        raise DataFileError(f"{path} has only the label column: no features to learn from")
    X = np.ascontiguousarray(np.delete(values, li, axis=1).T)
    Y = values[:, li].reshape(1, -1)
    return X, Y, names[li] if names is not None else li


def _not_a_file(path: Path, what: str = "data file") -> OSError | DataFileError:
    """The error for a path that is not a regular file: missing, a folder, a FIFO..."""
    if not path.exists():
        return FileNotFoundError(f"no {what} at {path}")
    if path.is_dir():
        return IsADirectoryError(f"{path} is a folder, not a {what}")
    return DataFileError(
        f"{path} is not a regular file (a FIFO, device or socket such as /dev/null); "
        f"give a {what} saved on disk"
    )


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise _not_a_file(path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataFileError(f"cannot read {path} as a .npy array: {exc}") from None


def _read_npz(path: Path) -> tuple:
    """(X, Y or None) from an archive of X and Y."""
    if not zipfile.is_zipfile(path):
        raise DataFileError(
            f"{path} is not a .npz archive (not a zip file); write it with np.savez"
        )
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataFileError(f"{path} is a single array, not a .npz archive of X and Y")
        with npz:
            if "X" not in npz.files:
                raise DataFileError(
                    f"{path} has no array 'X' (it holds {', '.join(npz.files) or 'nothing'});"
                    " save the data as np.savez(FILE, X=X, Y=Y), one sample per column"
                )
            X, Y = npz["X"], npz["Y"] if "Y" in npz.files else None
    except DataFileError:
        raise  # a ValueError too: it already says what is wrong
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"cannot read {path} as a .npz archive: {exc}") from None
    for name, a in (("X", X), ("Y", Y)):
        if a is not None and not isinstance(a, np.ndarray):  # NpzFile gives such as bytes
            raise DataFileError(
                f"cannot read {path} as a .npz archive: its {name}.npy is not a .npy array; "
                "write it with np.savez"
            )
    return X, Y


def _check_orientation(X: np.ndarray, Y: np.ndarray, source: str) -> None:
    """Name the array saved one sample per row; other mismatches are left to train."""
    if X.ndim != 2 or Y.ndim not in (1, 2) or X.shape[1] == Y.shape[-1]:
        return
    want = "fusedmlp files hold one sample per column, X (n_x, m) and Y (n_y, m)"
    if Y.ndim == 2 and X.shape[0] == Y.shape[0]:
        raise DataFileError(
            f"{source}: X is {X.shape} and Y is {Y.shape}, both one sample per row, but "
            f"{want}: save X.T and Y.T (or write a .csv, which is one sample per row)"
        )
    if X.shape[0] == Y.shape[-1]:
        raise DataFileError(
            f"{source}: X is {X.shape} but Y has {Y.shape[-1]} samples: X is one sample "
            f"per row, but {want}: save X.T, shape {X.shape[::-1]}"
        )
    if Y.ndim == 2 and Y.shape[0] == X.shape[1]:
        raise DataFileError(
            f"{source}: Y is {Y.shape} but X has {X.shape[1]} samples (columns): Y is one "
            f"sample per row, but {want}: save Y.T, shape {Y.shape[::-1]}"
        )


def _check_arguments(suffix: str, labels, label_column) -> None:
    """Refuse a labels file or label column that does not go with this kind of file."""
    if labels is not None and suffix != ".npy":
        raise DataFileError(
            "--labels goes with a .npy data file (--data X.npy --labels Y.npy); a .npz "
            "holds Y itself and a .csv has a label column",
            usage=True,
        )
    if label_column is not None and suffix != ".csv":
        raise DataFileError("--label-column applies to .csv data only", usage=True)


def _read_by_suffix(path: Path, suffix: str, labels, label_column, need_labels, desc) -> tuple:
    """(X, Y or None) read as the suffix says; fills in desc's labels file and column."""
    if suffix == ".npz":
        X, Y = _read_npz(path)
        if need_labels and Y is None:
            raise DataFileError(
                f"{path} has X but no array 'Y' with the labels; save both: "
                "np.savez(FILE, X=X, Y=Y)"
            )
    elif suffix == ".npy":
        X, Y = _read_npy(path), None
        if need_labels:
            if labels is None:
                raise DataFileError(
                    f"a .npy file holds one array: give the labels as a second file, "
                    f"--data {path} --labels Y.npy",
                    usage=True,
                )
            Y = _read_npy(Path(labels))
            desc["labels_file"] = str(Path(labels).resolve())
    elif suffix == ".csv":
        if need_labels and label_column is None:
            label_column = "-1"
        X, Y, desc["label_column"] = _read_csv(path, label_column)
    else:
        raise DataFileError(
            f"{path}: unknown data file type {suffix or '(no suffix)'!r}; use .npz (X and Y),"
            " .npy (X, with --labels Y.npy) or .csv (one sample per row)"
        )
    return X, Y


def read_data(
    path: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    label_column: str | int | None = None,
    need_labels: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Read X (n_x, m), Y (n_y, m) and where they came from, from one data file.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` holding arrays ``X`` and ``Y`` (one sample per column), a ``.npy``
        holding X (one sample per column, with ``labels``), or a ``.csv`` with one
        sample per row, an optional header row and a label column.
    labels : str or path-like, optional
        The ``.npy`` file of Y that goes with a ``.npy`` X; only with a ``.npy`` path.
    label_column : str or int, optional
        The ``.csv`` column that holds the labels, by header name or index (negative
        counts from the end); default the last column when labels are needed. The
        other columns are the features, in order.
    need_labels : bool, default True
        False to read X alone (for prediction): Y comes back None and a ``.npz`` or
        ``.npy`` needs no labels. A ``.csv`` then has no label column unless
        ``label_column`` names one, which is left out of X.

    Returns
    -------
    X : ndarray, shape (n_x, m)
    Y : ndarray, shape (n_y, m) or (m,), or None when ``need_labels`` is False
    description : dict
        ``data_file`` and ``labels_file`` (absolute paths, or None) and
        ``label_column`` (the ``.csv`` label column's name, or its index without a
        header; else None).

    Raises
    ------
    FileNotFoundError
        No file at ``path`` (or ``labels``).
    IsADirectoryError
        ``path`` (or ``labels``) is a folder.
    DataFileError
        Anything else, with a message that names the file and the fix: not a regular
        file (a FIFO or device), an unknown suffix, content that cannot be read, a
        non-numeric or non-finite cell, an array saved one sample per row, a labels
        file or label column that does not go with the data (``usage`` True).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "points.csv"
    ...     _ = path.write_text("x1,label,x2\\n0.5,0,1.0\\n1.5,1,-2.0\\n2.5,1,3.0\\n")
    ...     X, Y, desc = read_data(path, label_column="label")
    >>> X
    array([[ 0.5,  1.5,  2.5],
           [ 1. , -2. ,  3. ]])
    >>> Y
    array([[0., 1., 1.]])
    >>> desc["label_column"]
    'label'
    """
    path = Path(path)
    if not path.is_file():
        raise _not_a_file(path)
    suffix = path.suffix.lower()
    _check_arguments(suffix, labels, label_column)
    desc = {"data_file": str(path.resolve()), "labels_file": None, "label_column": None}
    X, Y = _read_by_suffix(path, suffix, labels, label_column, need_labels, desc)
    if X.ndim != 2:
        fix = "; for a single feature save X.reshape(1, -1)" if X.ndim == 1 else ""
        raise DataFileError(
            f"{path}: X must be 2-D, (n_x, m) with one sample per column; got shape {X.shape}{fix}"
        )
    if not need_labels:
        Y = None
    if Y is not None:
        _check_orientation(X, Y, str(path))
    return X, Y, desc


def read_weights(path: str | os.PathLike, m: int) -> np.ndarray:
    """Read the sample weights of m samples, one per sample in the data's order: a
    ``.npy`` holding m numbers (shape (m,), or one row or column of them), or a text
    file (``.csv``, ``.txt``, ...) of m numbers, one per line.

    The values are checked where they are used (``fusedmlp.train``'s ``sample_weight``:
    finite, >= 0, not all 0); here, that there are m real numbers.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        No file at ``path``, or a folder.
    DataFileError
        Anything else, naming the file and the fix: content that cannot be read, not
        numbers, or not m of them (``usage`` True: the file does not go with the data).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "w.txt"
    ...     _ = path.write_text("1\\n0.5\\n2\\n")
    ...     read_weights(path, 3)
    array([1. , 0.5, 2. ])
    """
    path = Path(path)
    if not path.is_file():
        raise _not_a_file(path, "weights file")
    if path.suffix.lower() == ".npy":
        w = _read_npy(path)
    else:
        try:
            w = np.loadtxt(path, dtype=np.float64, delimiter=",", ndmin=1)
        except ValueError as exc:
            raise DataFileError(
                f"cannot read {path} as sample weights, one number per line: {exc}"
            ) from None
    if w.dtype.kind not in "biuf" or sum(n != 1 for n in w.shape) > 1:
        raise DataFileError(
            f"{path} holds an array of shape {w.shape} and dtype {w.dtype}; sample weights "
            "are one real number per sample (np.save(FILE, w) with w of shape (m,), or one "
            "number per line)"
        )
    w = w.reshape(-1).astype(np.float64)
    if w.shape[0] != m:
        raise DataFileError(
            f"{path} holds {w.shape[0]} weights but the data has {m} samples; give one "
            "weight per sample, in the data's order",
            usage=True,
        )
    return w
