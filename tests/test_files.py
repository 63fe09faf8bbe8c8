"""fusedmlp.files: each data file format read from Python, and each bad file's error.

Every good file is written from known arrays and must read back to exactly those arrays;
every bad one must raise its own exception type with a message that names the file.
"""

import os
import zipfile

import numpy as np
import pytest

from fusedmlp.files import DataFileError, read_data

# X (n_x = 3, m = 4), one sample per column; Y (1, 4)
X = np.array([[0.5, -1.0, 2.25, 3.0], [1.0, 0.0, -0.125, 7.5], [4.0, 5.0, 6.0, -8.0]])
Y = np.array([[0.0, 1.0, 1.0, 0.0]])


def write_csv(path, X, Y, header=None, label_at=None):
    """One sample per row, the label inserted at column label_at (default last)."""
    cols = [list(map(repr, col)) for col in X.tolist()]
    if Y is not None:
        cols.insert(len(cols) if label_at is None else label_at, list(map(repr, Y.tolist()[0])))
    rows = [",".join(r) for r in zip(*cols, strict=True)]
    path.write_text("\n".join(([header] if header else []) + rows) + "\n")
    return path


# ---------------------------------------------------------------------------
# each format


def test_npz(tmp_path):
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    X2, Y2, desc = read_data(tmp_path / "d.npz")
    assert np.array_equal(X2, X) and np.array_equal(Y2, Y)
    assert desc == {
        "data_file": str((tmp_path / "d.npz").resolve()),
        "labels_file": None,
        "label_column": None,
    }


def test_npz_without_labels_needs_no_y(tmp_path):
    np.savez(tmp_path / "x.npz", X=X)
    X2, Y2, _ = read_data(tmp_path / "x.npz", need_labels=False)
    assert np.array_equal(X2, X) and Y2 is None


def test_npy_pair(tmp_path):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y.ravel())  # (m,) is one output
    X2, Y2, desc = read_data(str(tmp_path / "X.npy"), labels=str(tmp_path / "Y.npy"))
    assert np.array_equal(X2, X) and np.array_equal(Y2, Y.ravel())
    assert desc["labels_file"] == str((tmp_path / "Y.npy").resolve())


def test_csv_label_last_by_default(tmp_path):
    X2, Y2, desc = read_data(write_csv(tmp_path / "d.csv", X, Y))
    assert np.array_equal(X2, X) and np.array_equal(Y2, Y)
    assert X2.flags.c_contiguous
    assert desc["label_column"] == 2 + 1  # no header: the index, last of 4 columns


def test_csv_label_column_by_name_or_index(tmp_path):
    path = write_csv(tmp_path / "d.csv", X, Y, header="a,label,b,c", label_at=1)
    for spec in ("label", "1", 1, -3, "-3"):
        X2, Y2, desc = read_data(path, label_column=spec)
        assert np.array_equal(X2, X) and np.array_equal(Y2, Y), spec
        assert desc["label_column"] == "label"


def test_csv_with_a_byte_order_mark_and_blank_lines(tmp_path):
    text = write_csv(tmp_path / "d.csv", X, Y, header="x1,x2,x3,y").read_text()
    (tmp_path / "d.csv").write_bytes(("\ufeff" + text.replace("\n", "\n\n", 1)).encode())
    X2, Y2, desc = read_data(tmp_path / "d.csv", label_column="x1")
    assert desc["label_column"] == "x1"  # not "\ufeffx1"
    assert np.array_equal(Y2, X[:1]) and np.array_equal(X2, np.vstack([X[1:], Y]))


def test_csv_features_only_for_prediction(tmp_path):
    X2, Y2, _ = read_data(write_csv(tmp_path / "x.csv", X, None), need_labels=False)
    assert np.array_equal(X2, X) and Y2 is None
    # a label column named for prediction is left out of X
    X2, Y2, _ = read_data(write_csv(tmp_path / "d.csv", X, Y), label_column=-1, need_labels=False)
    assert np.array_equal(X2, X) and Y2 is None


# ---------------------------------------------------------------------------
# bad files and arguments: the type, and a message that names the file


def _bad_npz(d):
    np.savez(d / "rows.npz", X=X.T, Y=Y.T)
    return d / "rows.npz", "both one sample per row"


def _no_x_npz(d):
    np.savez(d / "w.npz", W=X)
    return d / "w.npz", "no array 'X' (it holds W)"


def _no_y_npz(d):
    np.savez(d / "x.npz", X=X)
    return d / "x.npz", "no array 'Y'"


def _not_zip_npz(d):
    (d / "g.npz").write_bytes(b"\x00not a zip\xff" * 10)
    return d / "g.npz", "not a .npz archive (not a zip file)"


def _broken_zip_npz(d):
    with zipfile.ZipFile(d / "z.npz", "w") as z:
        z.writestr("X.npy", b"\x93NUMPY garbage")
        z.writestr("Y.npy", b"")
    return d / "z.npz", "cannot read"


def _raw_bytes_npz(d):  # np.load hands back a member without the .npy header as bytes
    with zipfile.ZipFile(d / "z.npz", "w") as z:
        z.writestr("X.npy", b"not an array")
        z.writestr("Y.npy", b"")
    return d / "z.npz", "its X.npy is not a .npy array"


def _rows_npy(d):
    np.save(d / "X.npy", X.T)
    np.save(d / "Y.npy", Y.ravel())
    return d / "X.npy", "save X.T, shape (3, 4)"


def _garbage_npy(d):
    (d / "X.npy").write_bytes(b"garbage" * 10)
    np.save(d / "Y.npy", Y)
    return d / "X.npy", "as a .npy array"


def _one_d_npy(d):
    np.save(d / "X.npy", X[0])
    np.save(d / "Y.npy", Y)
    return d / "X.npy", "X.reshape(1, -1)"


def _text_csv(d):
    (d / "d.csv").write_text("a,b,y\n1,2,0\n3,red,1\n")
    return d / "d.csv", "column 'b' (index 1) is not numeric (line 3 holds 'red')"


def _nan_csv(d):
    (d / "d.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,nan,1\n")
    return d / "d.csv", "line 4: column 'b' (index 1) holds 'nan'"


def _ragged_csv(d):
    (d / "d.csv").write_text("1,2,0\n3,4\n")
    return d / "d.csv", "line 2 has 2 fields but the first row has 3"


def _empty_csv(d):
    (d / "d.csv").write_text("\n  \n")
    return d / "d.csv", "is empty"


def _header_only_csv(d):
    (d / "d.csv").write_text("a,b,label\n")
    return d / "d.csv", "header row but no samples"


def _label_only_csv(d):
    (d / "d.csv").write_text("0\n1\n")
    return d / "d.csv", "only the label column"


def _unknown_suffix(d):
    (d / "d.txt").write_text("1,2,0\n")
    return d / "d.txt", "unknown data file type '.txt'"


BAD = [
    _bad_npz,
    _no_x_npz,
    _no_y_npz,
    _not_zip_npz,
    _broken_zip_npz,
    _raw_bytes_npz,
    _rows_npy,
    _garbage_npy,
    _one_d_npy,
    _text_csv,
    _nan_csv,
    _ragged_csv,
    _empty_csv,
    _header_only_csv,
    _label_only_csv,
    _unknown_suffix,
]


@pytest.mark.parametrize("make", BAD, ids=lambda f: f.__name__.strip("_"))
def test_bad_content_is_a_data_file_error(tmp_path, make):
    path, says = make(tmp_path)
    labels = tmp_path / "Y.npy" if path.suffix == ".npy" else None
    with pytest.raises(DataFileError) as info:
        read_data(path, labels=labels)
    msg = str(info.value)
    assert isinstance(info.value, ValueError) and not info.value.usage
    assert str(path) in msg and says in msg, msg


@pytest.mark.parametrize(
    ("name", "kwargs", "says"),
    [
        ("d.npz", {"labels": "Y.npy"}, "--labels goes with a .npy data file"),
        ("d.npz", {"label_column": "y"}, "--label-column applies to .csv data only"),
        ("X.npy", {}, "give the labels as a second file, --data {path} --labels Y.npy"),
        ("d.csv", {"label_column": "z"}, "{path} has no column of that name (its columns"),
        ("d.csv", {"label_column": 5}, "{path} has 4 columns, so the index must be in -4..3"),
    ],
)
def test_arguments_that_do_not_fit_are_usage_errors(tmp_path, name, kwargs, says):
    path = tmp_path / name
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    np.save(tmp_path / "X.npy", X)
    write_csv(tmp_path / "d.csv", X, Y, header="a,b,c,y")
    with pytest.raises(DataFileError) as info:
        read_data(path, **kwargs)
    assert info.value.usage and says.format(path=path) in str(info.value), info.value


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data file at") as info:
        read_data(tmp_path / "missing.csv")
    assert str(info.value) == f"no data file at {tmp_path / 'missing.csv'}"
    with pytest.raises(IsADirectoryError) as info:
        read_data(tmp_path)
    assert str(info.value) == f"{tmp_path} is a folder, not a data file"
    # the labels file too
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(FileNotFoundError) as info:
        read_data(tmp_path / "X.npy", labels=tmp_path / "nope.npy")
    assert str(tmp_path / "nope.npy") in str(info.value)


@pytest.mark.parametrize("kind", ["fifo", "devnull"])
def test_not_a_regular_file(tmp_path, kind):
    path = tmp_path / "pipe.csv" if kind == "fifo" else os.devnull
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block until a writer came
    with pytest.raises(DataFileError, match="not a regular file") as info:
        read_data(path)
    assert str(path) in str(info.value) and not info.value.usage
