"""Data for the commands: data files (read by ``fusedmlp.files``), built-in sets, resumed runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from .. import datasets, files
from ..trainer import TrainResult
from .common import CliError


def read_data(
    path: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    label_column: str | None = None,
    need_labels: bool = True,
) -> tuple:
    """``fusedmlp.files.read_data``, its errors as one-line CliErrors (2: usage errors)."""
    try:
        return files.read_data(
            path, labels=labels, label_column=label_column, need_labels=need_labels
        )
    except files.DataFileError as exc:
        raise CliError(str(exc), code=2 if exc.usage else 1) from None
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise CliError(str(exc)) from None


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


def training_weights(args: argparse.Namespace, data: dict, resumed: TrainResult | None):
    """The sample weights of --sample-weight (or, resuming on the run's own data, of the
    run's weights file), or None; records the file in ``data`` (the summary's, and what
    a later --resume reads again)."""
    path = args.sample_weight
    if path is None and resumed is not None and args.data is None and args.dataset is None:
        saved = resumed.info.get("data")
        path = saved.get("weights_file") if isinstance(saved, dict) else None
        if path is not None and not Path(path).is_file():
            raise CliError(
                f"the checkpoint was trained with the sample weights of {path}, which is "
                "gone; pass them with --sample-weight FILE",
                code=2,
            )
    data["weights_file"] = None if path is None else str(Path(path).resolve())
    if path is None:
        return None
    try:
        return files.read_weights(path, data["m"])
    except files.DataFileError as exc:
        raise CliError(str(exc), code=2 if exc.usage else 1) from None
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise CliError(str(exc)) from None


def describe(desc: dict, X: np.ndarray) -> str:
    weighted = f", weighted by {desc['weights_file']}" if desc.get("weights_file") else ""
    if desc["dataset"] is not None:
        return f"{desc['dataset']} (seed {desc['data_seed']}): m = {X.shape[1]}{weighted}"
    return f"{desc['data_file']}: m = {X.shape[1]}{weighted}"


def n_y(Y: np.ndarray, output: str = "sigmoid") -> int:
    """The outputs a network needs for Y (for softmax class indices (m,): the classes)."""
    if np.ndim(Y) == 1:
        return max(2, int(np.max(Y)) + 1) if output == "softmax" and np.size(Y) else 1
    return np.shape(Y)[0]


def class_count(Y: np.ndarray) -> int | None:
    """K when Y is one row, (m,) or (1, m), of whole numbers >= 0 that reaches 2 or more,
    i.e. looks like the class indices of K >= 3 classes; None otherwise."""
    y = np.asarray(Y)
    y = y[0] if y.ndim == 2 and y.shape[0] == 1 else y
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iuf":
        return None
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        return None
    return int(y.max()) + 1 if y.min() >= 0 and y.max() >= 2 else None


def choose_output(given: str | None, Y: np.ndarray, resumed: TrainResult | None) -> str:
    """--output, else the resumed run's, else softmax for integer class indices (m,) of
    more than 2 classes (``--dataset spirals``), sigmoid for any other labels."""
    if given is not None:
        return given
    if resumed is not None:
        return resumed.output
    Y = np.asarray(Y)
    return "softmax" if Y.ndim == 1 and Y.dtype.kind in "iu" and class_count(Y) else "sigmoid"


def labels_for(output: str, Y: np.ndarray, given: str | None, resumed: bool) -> np.ndarray:
    """Y as ``output`` takes it: a softmax output reads a single label row (a .csv's label
    column) as class indices (m,). A sigmoid output is refused for labels that are class
    indices of more than 2 classes: it would learn nothing useful from them."""
    Y = np.asarray(Y)
    if output == "softmax" and Y.ndim == 2 and Y.shape[0] == 1:
        return Y[0]
    K = class_count(Y)
    if output == "sigmoid" and K:
        which = "--output sigmoid" if given else "the checkpoint's sigmoid output"
        if given is None and not resumed:
            which = "the default sigmoid output (softmax is the default for integer labels (m,))"
        raise CliError(
            f"the labels are whole numbers 0..{K - 1}, the class indices of {K} classes, but "
            f"{which} learns 0/1 labels: use --output softmax for classes (or --output "
            "identity to fit the numbers as values, exp as counts)"
            + (" in a new run" if resumed else ""),
            code=2,
        )
    return Y
