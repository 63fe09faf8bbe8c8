"""The ``predict`` and ``explain`` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .._atomic import write_atomically
from ..api import predict, predict_proba
from ..checkpoint import load
from ..diagnostics import explain
from ..reference import REGRESSION
from .common import CliError, check_outputs, refuse_overwrite
from .data import read_data


def explain_command(args: argparse.Namespace) -> int:
    try:
        text = explain(
            args.n_x, args.n_h, args.n_y, args.m, args.activation, args.loss,
            output=args.output, alpha=args.alpha,
        )  # fmt: skip
    except ValueError as exc:  # a pair that does not fit, softmax with one output
        raise CliError(str(exc)) from None
    print(text)
    return 0


def _check_features(args: argparse.Namespace, X: np.ndarray, n_x: int) -> None:
    if Path(args.data).suffix.lower() == ".csv" and X.shape[0] != n_x:
        leave_out = " (leave out the label column with --label-column NAME|INDEX)"
        raise CliError(
            f"{args.data} has {X.shape[0]} feature columns but the model takes n_x = {n_x}"
            + (leave_out if X.shape[0] > n_x and args.label_column is None else "")
        )
    if X.ndim == 2 and X.shape[0] != n_x and X.shape[1] == n_x:
        raise CliError(
            f"{args.data}: X is {X.shape}, one sample per row, but the model takes "
            f"n_x = {n_x} features per column (X is (n_x, m) in .npz/.npy files): save X.T"
        )


def predict_command(args: argparse.Namespace) -> int:
    out = None if args.output is None else Path(args.output)
    if out is not None:
        inputs = {"checkpoint": args.checkpoint, "data file": args.data}
        refuse_overwrite({"--output": out}, inputs)
        check_outputs({"--output file": out})
    res = load(args.checkpoint)
    X, _, _ = read_data(args.data, label_column=args.label_column, need_labels=False)
    _check_features(args, X, res.sizes[0])
    f = predict_proba if args.proba else predict
    # the model's own activation and output: class indices (m,) for softmax, values for
    # identity, 0/1 labels for sigmoid; --proba gives the outputs A2 of any of them
    A = f(res.params, X, activation=res.activation, output=res.output, backend=args.backend)
    rows = A.reshape(1, -1) if A.ndim == 1 else A  # one line per sample either way
    sep = "," if out is not None and out.suffix.lower() == ".csv" else " "
    exact = args.proba or A.dtype.kind == "f"
    fmt = repr if exact else str  # repr of a float reads back to the same bits
    if out is None:
        sys.stdout.write("".join(sep.join(map(fmt, row)) + "\n" for row in rows.T.tolist()))
        sys.stdout.flush()
        # the predictions are the result: a reader that left early did not get them all
        return 1 if getattr(sys.stdout, "broken", False) else 0
    if out.suffix.lower() == ".npy":
        # through a file object: np.save(name) would append ".npy" to "p.NPY"
        write = lambda f: np.save(f, A)  # noqa: E731  (n_y, m) or (m,): usable as --labels
    else:
        text = "".join(sep.join(map(fmt, row)) + "\n" for row in rows.T.tolist())
        write = lambda f: f.write(text.encode())  # noqa: E731
    try:
        write_atomically(out, write, what="predictions")
    except OSError as exc:
        raise CliError(str(exc)) from None
    print(
        f"Wrote {rows.shape[1]} samples x {_what(args.proba, res.output, rows.shape[0])} to {out}"
    )
    return 0


def _what(proba: bool, output: str, n: int) -> str:
    if proba:
        return f"{n} probabilities" if output not in REGRESSION else f"{n} values"
    if output in REGRESSION:
        return f"{n} values"
    return "1 class index" if output == "softmax" else f"{n} labels"
