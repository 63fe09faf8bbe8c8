"""Data for the commands: .npz, .npy and .csv files, built-in sets, checkpoints."""

from __future__ import annotations

import argparse
import csv
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import datasets
from ..trainer import TrainResult
from .common import CliError


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_index(spec: str, names: list | None, width: int, path: Path) -> int:
    """The 0-based column that --label-column names, by header name or index."""
    if names is not None and spec in names:
        return names.index(spec)
    try:
        i = int(spec)
    except ValueError:
        known = f"its columns are {', '.join(names)}" if names else "it has no header row"
        raise CliError(
            f"--label-column {spec!r}: {path} has no column of that name ({known}); "
            f"give a name or an index 0..{width - 1} (-1 for the last)",
            code=2,
        ) from None
    if not -width <= i < width:
        raise CliError(
            f"--label-column {i}: {path} has {width} columns, so the index must be in "
            f"{-width}..{width - 1}",
            code=2,
        )
    return i % width


def _read_csv(path: Path, label_column: str | None) -> tuple:
    """(X (n_x, m), Y (1, m) or None, label column name) from one sample per row."""
    # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of the header
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [(n, r) for n, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]
    if not rows:
        raise CliError(f"{path} is empty: expected one sample per row, comma-separated")
    names = None
    if not any(_is_number(c) for c in rows[0][1]):  # a row without a number is a header
        names = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
        if not rows:
            raise CliError(f"{path} has a header row but no samples")
    width = len(names) if names is not None else len(rows[0][1])

    def col(j: int) -> str:
        return f"column {names[j]!r} (index {j})" if names is not None else f"column {j}"

    values = np.empty((len(rows), width))
    for k, (line, row) in enumerate(rows):
        if len(row) != width:
            raise CliError(
                f"{path} line {line} has {len(row)} fields but the first row has {width}; "
                "every row must have the same columns"
            )
        for j, cell in enumerate(row):
            try:
                values[k, j] = float(cell)
            except ValueError:
                raise CliError(
                    f"{path}: {col(j)} is not numeric (line {line} holds {cell!r}); "
                    "fusedmlp reads numbers only: remove that column or encode it as numbers"
                ) from None
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        k, j = (int(v) for v in bad[0])
        line, row = rows[k]
        raise CliError(
            f"{path} line {line}: {col(j)} holds {row[j].strip()!r}, not a finite number; "
            "remove or impute that sample"
        )
    if label_column is None:
        return np.ascontiguousarray(values.T), None, None
    li = _column_index(label_column, names, width, path)
    if width < 2:
        raise CliError(f"{path} has only the label column: no features to learn from")
    X = np.ascontiguousarray(np.delete(values, li, axis=1).T)
    Y = values[:, li].reshape(1, -1)
    return X, Y, names[li] if names is not None else li


def _not_a_file(path: Path, what: str = "data file") -> CliError:
    """The error for a path that is not a regular file: missing, a folder, a FIFO..."""
    if not path.exists():
        return CliError(f"no {what} at {path}")
    if path.is_dir():
        return CliError(f"{path} is a folder, not a {what}")
    return CliError(
        f"{path} is not a regular file (a FIFO, device or socket such as /dev/null); "
        f"give a {what} saved on disk"
    )


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise _not_a_file(path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CliError(f"cannot read {path} as a .npy array: {exc}") from None


def _read_npz(path: Path) -> tuple:
    if not zipfile.is_zipfile(path):
        raise CliError(f"{path} is not a .npz archive (not a zip file); write it with np.savez")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CliError(f"{path} is a single array, not a .npz archive of X and Y")
        with npz:
            if "X" not in npz.files:
                raise CliError(
                    f"{path} has no array 'X' (it holds {', '.join(npz.files) or 'nothing'});"
                    " save the data as np.savez(FILE, X=X, Y=Y), one sample per column"
                )
            return npz["X"], npz["Y"] if "Y" in npz.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CliError(f"cannot read {path} as a .npz archive: {exc}") from None


def _check_orientation(X: np.ndarray, Y: np.ndarray, source: str) -> None:
    """Name the array saved one sample per row; other mismatches are left to train."""
    if X.ndim != 2 or Y.ndim not in (1, 2) or X.shape[1] == Y.shape[-1]:
        return
    want = "fusedmlp files hold one sample per column, X (n_x, m) and Y (n_y, m)"
    if Y.ndim == 2 and X.shape[0] == Y.shape[0]:
        raise CliError(
            f"{source}: X is {X.shape} and Y is {Y.shape}, both one sample per row, but "
            f"{want}: save X.T and Y.T (or write a .csv, which is one sample per row)"
        )
    if X.shape[0] == Y.shape[-1]:
        raise CliError(
            f"{source}: X is {X.shape} but Y has {Y.shape[-1]} samples: X is one sample "
            f"per row, but {want}: save X.T, shape {X.shape[::-1]}"
        )
    if Y.ndim == 2 and Y.shape[0] == X.shape[1]:
        raise CliError(
            f"{source}: Y is {Y.shape} but X has {X.shape[1]} samples (columns): Y is one "
            f"sample per row, but {want}: save Y.T, shape {Y.shape[::-1]}"
        )


def read_data(
    path: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    label_column: str | None = None,
    need_labels: bool = True,
) -> tuple:
    """(X, Y or None, description) from a .npz, .npy (+ labels .npy) or .csv file.

    X comes back one sample per column; Y is None when ``need_labels`` is False.
    """
    path = Path(path)
    if not path.is_file():
        raise _not_a_file(path)
    suffix = path.suffix.lower()
    if labels is not None and suffix != ".npy":
        raise CliError(
            "--labels goes with a .npy data file (--data X.npy --labels Y.npy); a .npz "
            "holds Y itself and a .csv has a label column",
            code=2,
        )
    if label_column is not None and suffix != ".csv":
        raise CliError("--label-column applies to .csv data only", code=2)
    desc = {"data_file": str(path.resolve()), "labels_file": None, "label_column": None}
    if suffix == ".npz":
        X, Y = _read_npz(path)
        if need_labels and Y is None:
            raise CliError(
                f"{path} has X but no array 'Y' with the labels; save both: "
                "np.savez(FILE, X=X, Y=Y)"
            )
    elif suffix == ".npy":
        X, Y = _read_npy(path), None
        if need_labels:
            if labels is None:
                raise CliError(
                    f"a .npy file holds one array: give the labels as a second file, "
                    f"--data {path} --labels Y.npy",
                    code=2,
                )
            Y = _read_npy(Path(labels))
            desc["labels_file"] = str(Path(labels).resolve())
    elif suffix == ".csv":
        if need_labels and label_column is None:
            label_column = "-1"
        X, Y, desc["label_column"] = _read_csv(path, label_column)
    else:
        raise CliError(
            f"{path}: unknown data file type {suffix or '(no suffix)'!r}; use .npz (X and Y),"
            " .npy (X, with --labels Y.npy) or .csv (one sample per row)"
        )
    if X.ndim != 2:
        fix = "; for a single feature save X.reshape(1, -1)" if X.ndim == 1 else ""
        raise CliError(
            f"{path}: X must be 2-D, (n_x, m) with one sample per column; got shape {X.shape}{fix}"
        )
    if not need_labels:
        Y = None
    if Y is not None:
        _check_orientation(X, Y, str(path))
    return X, Y, desc


def training_data(args: argparse.Namespace, resumed: TrainResult | None) -> tuple:
    """(X, Y, description) for train and sweep; a resumed run defaults to its own data."""
    saved = {}
    if resumed is not None and args.data is None and args.dataset is None:
        saved = resumed.info.get("data")
        saved = saved if isinstance(saved, dict) else {}
    data_file = args.data or saved.get("data_file")
    if data_file is not None:
        if args.m is not None or args.seed is not None:
            raise CliError(
                "--m and --seed set the size and seed of a built-in data set; they do not "
                "apply to data read from a file",
                code=2,
            )
        labels = args.labels if args.data else saved.get("labels_file")
        column = args.label_column
        if column is None and not args.data and saved.get("label_column") is not None:
            column = str(saved["label_column"])
        if not args.data and not Path(data_file).is_file():
            raise CliError(
                f"the checkpoint was trained on {data_file}, which is gone; pass the data "
                "with --data FILE or --dataset NAME",
                code=2,
            )
        X, Y, desc = read_data(data_file, labels=labels, label_column=column)
        return X, Y, dict(dataset=None, **desc, data_seed=None, m=int(X.shape[1]))
    if args.labels is not None or args.label_column is not None:
        raise CliError("--labels and --label-column go with --data FILE", code=2)
    name = args.dataset or saved.get("dataset") or "planar"
    m = args.m if args.m is not None else saved.get("m")
    seed = args.seed if args.seed is not None else saved.get("data_seed")
    X, Y = datasets.load(name, m=m, seed=seed)
    seed = datasets.DEFAULT_SEED if seed is None else seed
    desc = {"dataset": name, "data_file": None, "labels_file": None, "label_column": None}
    return X, Y, dict(desc, data_seed=seed, m=X.shape[1])


def describe(desc: dict, X: np.ndarray) -> str:
    if desc["dataset"] is not None:
        return f"{desc['dataset']} (seed {desc['data_seed']}): m = {X.shape[1]}"
    return f"{desc['data_file']}: m = {X.shape[1]}"


def n_y(Y: np.ndarray) -> int:
    return 1 if np.ndim(Y) == 1 else np.shape(Y)[0]


# ---------------------------------------------------------------------------
# commands
