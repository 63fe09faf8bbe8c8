"""The ``fusedmlp`` command (also ``python -m fusedmlp``): train, sweep, explain, predict.

Every failure is reported as one line ``fusedmlp: error: ...`` on stderr, never a
traceback: exit status 2 for usage errors (as argparse), 1 for anything else, 130 when
Ctrl-C stopped training (whatever was trained is still saved).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
import zipfile
from pathlib import Path

import numba
import numpy as np

from . import __version__, datasets, scaling
from .api import accuracy, predict, predict_proba
from .checkpoint import load, save
from .diagnostics import explain
from .reference import ACTIVATIONS, LOSSES
from .trainer import TrainingDiverged, TrainResult, train

INTERRUPTED = 130  # the shell's status for a program stopped by SIGINT

# the original planar-flower exercise
TRAIN_DEFAULTS = {"hidden": 4, "activation": "sigmoid", "loss": "mse", "lr": 0.2}
TRAIN_EPOCHS = 3000
# its hidden-layer-size experiment (tanh + cross-entropy, lr 1.2; the exercise ran 10000
# epochs, 5000 draw the same picture in half the time)
SWEEP_DEFAULTS = {"activation": "tanh", "loss": "cross_entropy", "lr": 1.2, "epochs": 5000}
SWEEP_HIDDEN = [1, 2, 3, 4, 5, 20, 50]
INIT_SEED = 2  # the exercise's weight seed

DATA_FORMATS = """\
data files (--data FILE, and predict's DATA):
  .npz  arrays X, shape (n_x, m), and Y, shape (n_y, m) or (m,): one sample per
        COLUMN, as in the Python API (np.savez(FILE, X=X, Y=Y)). predict reads X only.
  .npy  X alone, shape (n_x, m), one sample per column; train and sweep take the
        labels from a second file: --data X.npy --labels Y.npy.
  .csv  one sample per ROW (the usual spreadsheet layout), comma-separated, with an
        optional header row of column names; every cell must be a number. The label
        column is --label-column NAME|INDEX (index 0-based, -1 = last; default: the
        last column for train and sweep, none for predict); all other columns are
        the features. The table is transposed on reading, so the network still sees
        X (n_x, m) and Y (1, m) with one sample per column.
"""

EXIT_STATUS = """\
exit status: 0 done, 1 error, 2 usage error, 130 interrupted by Ctrl-C (results
so far saved). Errors are one line "fusedmlp: error: ..."; set FUSEDMLP_DEBUG=1 to
get the Python traceback instead.
"""


class CliError(Exception):
    """A failure reported as one line; ``code`` is the exit status (2: usage error)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (the usage is one --help away)."""

    def error(self, message: str):
        raise CliError(f"{message} (see '{self.prog} --help')", code=2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


# ---------------------------------------------------------------------------
# option values, checked while parsing so that a bad one is a usage error


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _real(*, positive: bool):
    what = "> 0" if positive else ">= 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {what}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"expected a finite number {what}, got {text!r}")
        return value

    return parse


# ---------------------------------------------------------------------------
# data


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
    with open(path, newline="") as f:
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
    if label_column is None:
        return np.ascontiguousarray(values.T), None, None
    li = _column_index(label_column, names, width, path)
    if width < 2:
        raise CliError(f"{path} has only the label column: no features to learn from")
    X = np.ascontiguousarray(np.delete(values, li, axis=1).T)
    Y = values[:, li].reshape(1, -1)
    return X, Y, names[li] if names is not None else li


def _read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CliError(f"no data file at {path}")
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
        raise CliError(f"no data file at {path}" if not path.exists() else f"{path} is a folder")
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


def _training_data(args: argparse.Namespace, resumed: TrainResult | None) -> tuple:
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


def _describe(desc: dict, X: np.ndarray) -> str:
    if desc["dataset"] is not None:
        return f"{desc['dataset']} (seed {desc['data_seed']}): m = {X.shape[1]}"
    return f"{desc['data_file']}: m = {X.shape[1]}"


def _n_y(Y: np.ndarray) -> int:
    return 1 if np.ndim(Y) == 1 else np.shape(Y)[0]


def _make_out(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    return out


def _load_checkpoint(path: str) -> TrainResult:
    """fusedmlp.load, with a plain message for files that are not even a zip archive."""
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        raise CliError(
            f"{path} is not a fusedmlp checkpoint (not a .npz archive); use a model.npz "
            "written by fusedmlp train or fusedmlp.save"
        )
    return load(path)


# ---------------------------------------------------------------------------
# commands


def _trainer_kwargs(args: argparse.Namespace) -> dict:
    return {
        "batch_size": args.batch_size,
        "tol": args.tol,
        "patience": args.patience,
        "log_every": args.log_every,
        "threads": args.threads,
    }


def _warm_up(X, Y, **kwargs) -> None:
    """One epoch on one sample, so the timed run does not include loading the kernels."""
    kwargs = dict(kwargs, epochs=1, verbose=False, resume=None, tol=None)
    kwargs["batch_size"] = kwargs["batch_size"] and 1
    try:
        train(X[:, :1], np.asarray(Y).reshape(_n_y(Y), -1)[:, :1], **kwargs)
    except (ValueError, TypeError, IndexError, ArithmeticError):
        pass  # bad data or options: the real run reports them


def _cmd_train(args: argparse.Namespace) -> int:
    resumed = None if args.resume is None else _load_checkpoint(args.resume)
    X, Y, data = _training_data(args, resumed)
    dtype = args.dtype or (str(resumed.dtype) if resumed is not None else None)
    if dtype is not None:
        X = X.astype(dtype)
    out = _make_out(args.out)

    base = (
        TRAIN_DEFAULTS
        if resumed is None
        else {
            "hidden": resumed.sizes[1],
            "activation": resumed.activation,
            "loss": resumed.loss,
            "lr": resumed.lr,
        }
    )
    conf = {k: getattr(args, k) if getattr(args, k) is not None else base[k] for k in base}
    backend = args.backend or (resumed.backend if resumed is not None else "numba")
    seed = args.init_seed
    if seed is None and resumed is None:
        seed = INIT_SEED
    first = 0 if resumed is None else resumed.epochs

    def say(*a, **k):
        if not args.quiet:
            print(*a, **k)

    more = f" more from epoch {first}" if resumed is not None else ""
    say(
        f"{_describe(data, X)}, network {X.shape[0]}-{conf['hidden']}-{_n_y(Y)}, "
        f"{conf['activation']} + {conf['loss']}, lr {conf['lr']}, {args.epochs} epochs{more}, "
        f"backend {backend}",
        flush=True,
    )
    kwargs = dict(conf, seed=seed, backend=backend, **_trainer_kwargs(args))
    _warm_up(X, Y, **kwargs)
    start = time.perf_counter()
    try:
        res = train(X, Y, epochs=args.epochs, verbose=not args.quiet, resume=resumed, **kwargs)
    except TrainingDiverged as exc:
        exc.result.info = {"data": data}
        path = save(out / "model.npz", exc.result)
        raise CliError(
            f"training diverged at epoch {exc.epoch}: the loss or a parameter overflowed "
            f"(--lr {conf['lr']} is probably too large; try a smaller one); the last finite "
            f"parameters are saved in {path}"
        ) from None
    seconds = time.perf_counter() - start
    res.info = {"data": data}  # lets --resume find the same data again
    acc = accuracy(res.params, X, Y, activation=res.activation, backend=backend)
    final = float(res.losses[-1]) if res.epochs else None

    if res.interrupted:
        print(f"Training interrupted by Ctrl-C after epoch {res.epochs - 1}; saving it.")
    if res.stop_epoch is not None:
        say(f"Early stop at epoch {res.stop_epoch}: no improvement by more than tol.")
    loss_text = f"final loss {final:.6g}, " if final is not None else ""
    print(
        f"Accuracy: {100 * acc:.2f}%  ({loss_text}{res.epochs - first} epochs in {seconds:.3f} s)"
    )

    files = {"checkpoint": str(save(out / "model.npz", res))}
    with np.errstate(all="ignore"):  # huge losses make matplotlib's log scale warn
        files.update(_train_plots(res, X, Y, out, say))
    files["summary"] = str(out / "summary.json")
    n_x, n_h, n_y = res.sizes
    summary = {
        **data,
        "sizes": {"n_x": n_x, "n_h": n_h, "n_y": n_y},
        "activation": res.activation,
        "loss": res.loss,
        "lr": res.lr,
        "epochs": res.epochs,
        "epochs_this_run": res.epochs - first,
        "resumed_from": None if args.resume is None else str(Path(args.resume).resolve()),
        "final_loss": final,
        "accuracy": acc,
        "seconds": seconds,
        "backend": backend,
        "dtype": str(res.dtype),
        "threads": args.threads or numba.get_num_threads(),
        "init_seed": res.seed,
        "batch_size": res.batch_size,
        "tol": args.tol,
        "patience": args.patience,
        "stop_epoch": res.stop_epoch,
        "interrupted": res.interrupted,
        "files": files,
        "fusedmlp_version": __version__,
    }
    Path(files["summary"]).write_text(json.dumps(summary, indent=2) + "\n")
    say(f"Wrote {', '.join(files.values())}")
    if res.interrupted:
        print(f"Continue with: fusedmlp train --resume {files['checkpoint']}")
        return INTERRUPTED
    return 0


def _train_plots(res: TrainResult, X, Y, out: Path, say) -> dict:
    from . import plots  # matplotlib only when there is something to draw

    files = {}
    n_x, n_h, n_y = res.sizes
    if n_x == 2 and n_y == 1:
        path = out / "decision_boundary.png"
        plots.decision_boundary(res.params, X, Y, activation=res.activation, path=path)
        files["decision_boundary"] = str(path)
    else:
        say(
            f"decision_boundary.png skipped: it needs 2 inputs and 1 output (points in the "
            f"plane, one label), this network is {n_x}-{n_h}-{n_y}"
        )
    if res.epochs:
        path = out / "loss.png"
        plots.loss_curve(res.losses, path=path, stop_epoch=res.stop_epoch)
        files["loss_curve"] = str(path)
    else:
        say("loss.png skipped: no epochs were run")
    return files


def _cmd_sweep(args: argparse.Namespace) -> int:
    X, Y, data = _training_data(args, None)
    if args.dtype is not None:
        X = X.astype(args.dtype)
    out = _make_out(args.out)
    conf = {k: getattr(args, k) for k in ("activation", "loss", "lr")}
    backend = args.backend or "numba"
    seed = INIT_SEED if args.init_seed is None else args.init_seed
    print(
        f"{_describe(data, X)}, hidden sizes {' '.join(map(str, args.hidden))}, "
        f"{conf['activation']} + {conf['loss']}, lr {conf['lr']}, {args.epochs} epochs, "
        f"backend {backend}"
    )
    print(f"{'hidden':>6}  {'accuracy':>8}  {'final loss':>10}  {'seconds':>8}", flush=True)
    kwargs = dict(conf, seed=seed, backend=backend, **_trainer_kwargs(args))
    _warm_up(X, Y, hidden=args.hidden[0], **kwargs)
    rows, results, diverged, interrupted = [], [], [], False
    for h in args.hidden:
        start = time.perf_counter()
        try:
            res = train(X, Y, hidden=h, epochs=args.epochs, verbose=args.verbose, **kwargs)
        except TrainingDiverged as exc:
            diverged.append(h)
            rows.append({"hidden": h, "diverged_at_epoch": exc.epoch})
            print(f"{h:>6}  diverged at epoch {exc.epoch}", flush=True)
            continue
        seconds = time.perf_counter() - start
        acc = accuracy(res.params, X, Y, activation=res.activation, backend=backend)
        final = float(res.losses[-1]) if res.epochs else math.nan
        rows.append(
            {
                "hidden": h,
                "accuracy": acc,
                "final_loss": final if res.epochs else None,
                "seconds": seconds,
                "epochs": res.epochs,
                "stop_epoch": res.stop_epoch,
            }
        )
        results.append(res)
        print(f"{h:>6}  {100 * acc:>7.2f}%  {final:>10.6f}  {seconds:>8.3f}", flush=True)
        if res.interrupted:
            print(f"Sweep interrupted by Ctrl-C during hidden size {h}; saving what is done.")
            interrupted = True
            break

    files = {}
    n_x, n_y = X.shape[0], _n_y(Y)
    if results and n_x == 2 and n_y == 1:
        from . import plots

        path = out / "sweep.png"
        with np.errstate(all="ignore"):
            plots.sweep_grid(results, X, Y, path=path)
        files["plot"] = str(path)
    elif results:
        print(f"sweep.png skipped: it needs 2 inputs and 1 output, the data have {n_x} and {n_y}")
    files["table"] = str(out / "sweep.json")
    sweep = {
        **data,
        "n_x": n_x,
        "n_y": n_y,
        **conf,
        "epochs": args.epochs,
        "init_seed": seed,
        "backend": backend,
        "dtype": str(results[0].dtype) if results else None,
        "batch_size": args.batch_size,
        "tol": args.tol,
        "patience": args.patience,
        "threads": args.threads or numba.get_num_threads(),
        "interrupted": interrupted,
        "runs": rows,
        "files": files,
        "fusedmlp_version": __version__,
    }
    Path(files["table"]).write_text(json.dumps(sweep, indent=2) + "\n")
    print(f"Wrote {', '.join(files.values())}")
    if diverged:
        raise CliError(
            f"training diverged for hidden size(s) {', '.join(map(str, diverged))} (--lr "
            f"{conf['lr']} is probably too large; try a smaller one); the other sizes are "
            f"in {files['table']}"
        )
    return INTERRUPTED if interrupted else 0


def _cmd_explain(args: argparse.Namespace) -> int:
    print(explain(args.n_x, args.n_h, args.n_y, args.m, args.activation, args.loss))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    res = _load_checkpoint(args.checkpoint)
    X, _, _ = read_data(args.data, label_column=args.label_column, need_labels=False)
    n_x = res.sizes[0]
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
    f = predict_proba if args.proba else predict
    A = f(res.params, X, activation=res.activation, backend=args.backend)
    out = None if args.output is None else Path(args.output)
    sep = "," if out is not None and out.suffix.lower() == ".csv" else " "
    fmt = repr if args.proba else str  # repr of a float reads back to the same bits
    if out is None:
        sys.stdout.write("".join(sep.join(map(fmt, row)) + "\n" for row in A.T.tolist()))
        return 0
    try:
        if out.suffix.lower() == ".npy":
            np.save(out, A)  # (n_y, m), the package's layout: usable as --labels
        else:
            out.write_text("".join(sep.join(map(fmt, row)) + "\n" for row in A.T.tolist()))
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    what = "probabilities" if args.proba else "labels"
    print(f"Wrote {A.shape[1]} samples x {A.shape[0]} {what} to {out}")
    return 0


# ---------------------------------------------------------------------------
# the parser


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    which = g.add_mutually_exclusive_group()
    which.add_argument(
        "--dataset",
        choices=list(datasets.DATASETS),
        help="built-in data set (default: planar, the flower of the original exercise)",
    )
    which.add_argument("--data", metavar="FILE", help="data file: .npz, .npy or .csv (below)")
    g.add_argument("--labels", metavar="FILE", help="labels Y (n_y, m) for --data X.npy")
    g.add_argument(
        "--label-column",
        metavar="NAME|INDEX",
        help="the label column of a .csv (default: the last)",
    )
    g.add_argument(
        "--m",
        type=_int_at_least(1),
        help="samples of a built-in data set (default: 400 for planar, 200 for the others)",
    )
    g.add_argument("--seed", type=_int_at_least(0), help="data seed of a built-in set (default 1)")
    g.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        help="cast X to this dtype before training, which then runs in it (default: as "
        "read, float64 for built-in sets; with --resume, the checkpoint's)",
    )


def _add_trainer_options(p: argparse.ArgumentParser, defaults: dict, hidden: bool) -> None:
    g = p.add_argument_group("network and training")
    if hidden:
        g.add_argument("--hidden", type=_int_at_least(1), help="hidden units (default 4)")
    g.add_argument(
        "--activation",
        choices=list(ACTIVATIONS),
        default=defaults.get("activation"),
        help=f"hidden activation (default {defaults.get('activation', 'sigmoid')})",
    )
    g.add_argument(
        "--loss",
        choices=list(LOSSES),
        default=defaults.get("loss"),
        help=f"loss (default {defaults.get('loss', 'mse')})",
    )
    g.add_argument(
        "--epochs",
        type=_int_at_least(0),
        default=defaults["epochs"],
        help=f"epochs to run (default {defaults['epochs']})"
        + ("; with --resume, epochs more" if hidden else ""),
    )
    g.add_argument(
        "--lr",
        type=_real(positive=True),
        default=defaults.get("lr"),
        help=f"learning rate (default {defaults.get('lr', 0.2)})",
    )
    g.add_argument(
        "--batch-size",
        type=_int_at_least(1),
        help="mini-batch size, reshuffled each epoch (default: full batch)",
    )
    g.add_argument(
        "--tol",
        type=_real(positive=False),
        help="early stopping: stop once the loss has not improved by more than TOL for "
        "--patience epochs (default: never stop early)",
    )
    g.add_argument("--patience", type=_int_at_least(1), default=10, help="see --tol (default 10)")
    g.add_argument(
        "--init-seed",
        type=_int_at_least(0),
        help=f"seed of the initial weights and the mini-batch shuffles (default {INIT_SEED})",
    )
    g.add_argument(
        "--log-every",
        type=_int_at_least(1),
        default=100,
        help="epochs between progress lines (default 100)",
    )
    g.add_argument(
        "--threads",
        type=_int_at_least(1),
        help="kernel threads (default: numba's, i.e. all cores)",
    )
    g.add_argument(
        "--backend",
        choices=["numba", "numpy"],
        help="numba: the fused compiled kernels (default); numpy: the plain reference",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fusedmlp`` command."""
    parser = _Parser(
        prog="fusedmlp",
        description="Train, inspect and use one-hidden-layer neural networks.",
        epilog=EXIT_STATUS,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"fusedmlp {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{train,sweep,explain,predict,scale}"
    )

    t = sub.add_parser(
        "train",
        help="train one network and save model, pictures and summary",
        formatter_class=_Formatter,
        description=(
            "Train one network. The defaults reproduce the original planar-flower exercise:\n"
            "400 points (data seed 1), a 2-4-1 network, sigmoid + mse, lr 0.2, 3000 epochs,\n"
            "weights from seed 2. Progress goes to stderr as a bar on a terminal, otherwise\n"
            'as "Epoch 100: loss 0.2432" lines on stdout; then the accuracy and the time.\n'
            "Written into --out: model.npz (the checkpoint, fusedmlp.load reads it),\n"
            "decision_boundary.png (networks with 2 inputs and 1 output), loss.png and\n"
            "summary.json. If training diverges, the last finite parameters are saved to\n"
            "model.npz and the exit status is 1."
        ),
        epilog=DATA_FORMATS + "\n" + EXIT_STATUS,
    )
    _add_data_options(t)
    _add_trainer_options(t, {"epochs": TRAIN_EPOCHS}, hidden=True)
    g = t.add_argument_group("output")
    g.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue a saved run for --epochs more; its activation, loss, lr, seed, batch "
        "size, backend, dtype and data (when trained by this command) are kept unless given",
    )
    g.add_argument("--out", default="out", help="output folder, created if missing (default out)")
    g.add_argument("--quiet", action="store_true", help="no progress, only the result line")
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser(
        "sweep",
        help="train one network per hidden size and compare their decision boundaries",
        formatter_class=_Formatter,
        description=(
            "Train one network per hidden size on the same data and the same initial seed,\n"
            "print a table (hidden size, accuracy, final loss, seconds), and write\n"
            "sweep.png (one decision-boundary panel per size) and sweep.json into --out.\n"
            "The defaults are those of the original exercise's hidden-layer experiment,\n"
            "not train's: tanh + cross_entropy with lr 1.2 (that experiment ran 10000\n"
            "epochs; 5000 give the same picture in half the time)."
        ),
        epilog=DATA_FORMATS + "\n" + EXIT_STATUS,
    )
    s.add_argument(
        "--hidden",
        type=_int_at_least(1),
        nargs="+",
        default=SWEEP_HIDDEN,
        metavar="N",
        help=f"hidden sizes (default {' '.join(map(str, SWEEP_HIDDEN))})",
    )
    _add_data_options(s)
    _add_trainer_options(s, SWEEP_DEFAULTS, hidden=False)
    g = s.add_argument_group("output")
    g.add_argument("--out", default="out", help="output folder, created if missing (default out)")
    g.add_argument("--verbose", action="store_true", help="show each run's progress")
    s.set_defaults(func=_cmd_sweep)

    e = sub.add_parser(
        "explain",
        help="print every term of the forward and backward pass with its shape",
        formatter_class=_Formatter,
        description="Print the equations of the network with the shape of every term.",
    )
    e.add_argument("--n-x", type=_int_at_least(1), default=2, help="inputs (default 2)")
    e.add_argument("--n-h", type=_int_at_least(1), default=4, help="hidden units (default 4)")
    e.add_argument("--n-y", type=_int_at_least(1), default=1, help="outputs (default 1)")
    e.add_argument("--m", type=_int_at_least(1), default=400, help="samples (default 400)")
    e.add_argument("--activation", choices=list(ACTIVATIONS), default="sigmoid")
    e.add_argument("--loss", choices=list(LOSSES), default="mse")
    e.set_defaults(func=_cmd_explain)

    p = sub.add_parser(
        "predict",
        help="labels or probabilities of a saved model for new data",
        formatter_class=_Formatter,
        description=(
            "Load CHECKPOINT (a model.npz written by train) and write, for each sample of\n"
            "DATA, its n_y labels 0/1 (or, with --proba, probabilities), one line per sample:\n"
            "space-separated on stdout or a text FILE, comma-separated for FILE.csv; FILE.npy\n"
            "gets one array of shape (n_y, m), one sample per column like --labels files."
        ),
        epilog=DATA_FORMATS,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="model file written by train")
    p.add_argument("data", metavar="DATA", help="samples: .npz (X), .npy (X) or .csv")
    p.add_argument("--proba", action="store_true", help="probabilities instead of labels")
    p.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument(
        "--label-column",
        metavar="NAME|INDEX",
        help="a .csv column to leave out of the features (default: none)",
    )
    p.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    p.set_defaults(func=_cmd_predict)

    scaling.add_parser(sub, formatter_class=_Formatter)
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the ``fusedmlp`` command with ``argv`` (default ``sys.argv[1:]``); the exit status.

    Examples
    --------
    >>> main(["explain", "--n-h", "3"]) == 0  # doctest: +ELLIPSIS
    2-3-1 network, m = 400, sigmoid hidden, sigmoid output, mse
    ...
    True
    """
    parser = build_parser()
    debug = os.environ.get("FUSEDMLP_DEBUG", "") not in ("", "0")
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except CliError as exc:
        if debug:
            raise
        print(f"fusedmlp: error: {_one_line(exc)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        if debug:
            raise
        print("fusedmlp: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # e.g. `fusedmlp predict ... | head`: not an error
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as exc:
        # the library's ValueError/TypeError already say what to fix; anything else is
        # reported the same way, with its type, and FUSEDMLP_DEBUG=1 shows the traceback
        if debug:
            raise
        known = isinstance(exc, (ValueError, TypeError, OSError, ArithmeticError))
        kind = "" if known else f"{type(exc).__name__}: "
        print(f"fusedmlp: error: {kind}{_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
