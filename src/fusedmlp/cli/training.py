"""The ``train`` command: one network, its checkpoint, pictures and summary.

What was trained is never lost: the outputs are checked before training starts, Ctrl-C
stops training at the next call boundary and the checkpoint is written however many
times it is pressed (a second press skips the pictures), and a closed stdout only
silences the progress lines.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numba
import numpy as np

from .. import __version__
from .._atomic import write_atomically
from .._validation import check_network_size, params_in, work_dtype
from ..api import accuracy
from ..checkpoint import load, save
from ..trainer import TrainingDiverged, TrainResult, train
from .common import (
    INIT_SEED,
    INTERRUPTED,
    TRAIN_DEFAULTS,
    CliError,
    check_outputs,
    make_out,
    refuse_overwrite,
)
from .data import describe, n_y, training_data

PICTURES = ("decision_boundary.png", "loss.png")


def trainer_kwargs(args: argparse.Namespace) -> dict:
    return {
        "batch_size": args.batch_size,
        "tol": args.tol,
        "patience": args.patience,
        "log_every": args.log_every,
        "threads": args.threads,
    }


def warm_up(X, Y, **kwargs) -> None:
    """One epoch on one sample, so the timed run does not include loading the kernels."""
    kwargs = dict(kwargs, epochs=1, verbose=False, resume=None, tol=None)
    kwargs["batch_size"] = kwargs["batch_size"] and 1
    try:
        with warnings.catch_warnings():  # the real run gives them
            warnings.simplefilter("ignore")
            train(X[:, :1], np.asarray(Y).reshape(n_y(Y), -1)[:, :1], **kwargs)
    except (ValueError, TypeError, IndexError, ArithmeticError):
        pass  # bad data or options: the real run reports them


def check_before_training(out: Path, names: tuple, data: dict, resume: str | None) -> None:
    """Refuse outputs that would replace an input or could not be written, up front."""
    outputs = {name: out / name for name in names}
    inputs = {"data file": data.get("data_file"), "labels file": data.get("labels_file")}
    refuse_overwrite(outputs, inputs)
    if resume is not None:  # the checkpoint may be replaced by its continuation, no more
        others = {k: v for k, v in outputs.items() if k != "model.npz"}
        refuse_overwrite(others, {"checkpoint to resume": resume})
    check_outputs(outputs)


def check_network(X, Y, hidden: int, resumed: TrainResult | None) -> None:
    try:
        check_network_size(X.shape[0], hidden, n_y(Y), name="--hidden")
        if resumed is not None:
            params_in(resumed.params, work_dtype(X))
    except ValueError as exc:
        fix = " (--dtype float64 keeps the checkpoint's range)" if resumed is not None else ""
        raise CliError(f"{exc}{fix}", code=2) from None


def _settings(args: argparse.Namespace, resumed: TrainResult | None) -> tuple:
    """(conf, backend, seed) from the options, defaults and the resumed run."""
    base = TRAIN_DEFAULTS
    if resumed is not None:
        base = {
            "hidden": resumed.sizes[1],
            "activation": resumed.activation,
            "loss": resumed.loss,
            "lr": resumed.lr,
        }
    conf = {k: getattr(args, k) if getattr(args, k) is not None else base[k] for k in base}
    backend = args.backend or (resumed.backend if resumed is not None else "numba")
    seed = args.init_seed
    if seed is None and resumed is None:
        seed = INIT_SEED
    return conf, backend, seed


def train_command(args: argparse.Namespace) -> int:
    resumed = None if args.resume is None else load(args.resume)
    X, Y, data = training_data(args, resumed)
    dtype = args.dtype or (str(resumed.dtype) if resumed is not None else None)
    if dtype is not None:
        X = X.astype(dtype)
    out = make_out(args.out)
    check_before_training(out, ("model.npz", "summary.json", *PICTURES), data, args.resume)
    conf, backend, seed = _settings(args, resumed)
    check_network(X, Y, conf["hidden"], resumed)
    first = 0 if resumed is None else resumed.epochs

    def say(*a, **k):
        if not args.quiet:
            print(*a, **k)

    more = f" more from epoch {first}" if resumed is not None else ""
    say(
        f"{describe(data, X)}, network {X.shape[0]}-{conf['hidden']}-{n_y(Y)}, "
        f"{conf['activation']} + {conf['loss']}, lr {conf['lr']}, {args.epochs} epochs{more}, "
        f"backend {backend}",
        flush=True,
    )
    kwargs = dict(conf, seed=seed, backend=backend, **trainer_kwargs(args))
    presses = args.interrupts
    with presses.protect():  # from here on no Ctrl-C raises, but during the pictures
        warm_up(X, Y, **kwargs)
        if presses.count:
            print("Interrupted by Ctrl-C before training started: nothing was trained.")
            return INTERRUPTED
        res, seconds = _run(X, Y, out, data, args, kwargs, resumed)
        acc = accuracy(res.params, X, Y, activation=res.activation, backend=backend)
        _report(res, acc, seconds, first, say)
        files = {"checkpoint": str(save(out / "model.npz", res))}
        with presses.protect(raise_at=2):  # a second Ctrl-C skips the pictures
            files.update(_train_plots(res, X, Y, out, say, presses))
        summary = _summary(args, data, res, acc, seconds, first, files)
        files["summary"] = str(out / "summary.json")
        text = json.dumps(dict(summary, files=files), indent=2) + "\n"
        write_atomically(files["summary"], lambda f: f.write(text.encode()), what="summary")
        say(f"Wrote {', '.join(files.values())}")
        if res.interrupted or presses.count:
            if not res.interrupted:
                print("Ctrl-C after training ended: everything trained was saved.")
            print(f"Continue with: fusedmlp train --resume {files['checkpoint']}")
            return INTERRUPTED
    return 0


def _run(X, Y, out: Path, data: dict, args, kwargs: dict, resumed) -> tuple:
    """(result, seconds) of the training; a diverged run is saved, then reported as an
    error. (The data are read into memory, never mapped, so they cannot change.)"""
    start = time.perf_counter()
    try:
        res = train(X, Y, epochs=args.epochs, verbose=not args.quiet, resume=resumed, **kwargs)
    except TrainingDiverged as exc:
        exc.result.info = {"data": data}
        path = save(out / "model.npz", exc.result)
        raise CliError(
            f"training diverged at epoch {exc.epoch}: the loss or a parameter overflowed "
            f"(--lr {kwargs['lr']} is probably too large; try a smaller one); the last finite "
            f"parameters are saved in {path}"
        ) from None
    res.info = {"data": data}  # lets --resume find the same data again
    return res, time.perf_counter() - start


def _report(res: TrainResult, acc: float, seconds: float, first: int, say) -> None:
    if res.interrupted:
        print(f"Training interrupted by Ctrl-C after epoch {res.epochs - 1}; saving it.")
    if res.stop_epoch is not None:
        say(f"Early stop at epoch {res.stop_epoch}: no improvement by more than tol.")
    final = float(res.losses[-1]) if res.epochs else None
    loss_text = f"final loss {final:.6g}, " if final is not None else ""
    print(
        f"Accuracy: {100 * acc:.2f}%  ({loss_text}{res.epochs - first} epochs in {seconds:.3f} s)",
        flush=True,
    )


def _summary(args, data: dict, res: TrainResult, acc, seconds, first, files) -> dict:
    n_x, n_h, n_y_ = res.sizes
    return {
        **data,
        "sizes": {"n_x": n_x, "n_h": n_h, "n_y": n_y_},
        "activation": res.activation,
        "loss": res.loss,
        "lr": res.lr,
        "epochs": res.epochs,
        "epochs_this_run": res.epochs - first,
        "resumed_from": None if args.resume is None else str(Path(args.resume).resolve()),
        "final_loss": float(res.losses[-1]) if res.epochs else None,
        "accuracy": acc,
        "seconds": seconds,
        "backend": res.backend,
        "dtype": str(res.dtype),
        "threads": args.threads or numba.get_num_threads(),
        "init_seed": res.seed,
        "batch_size": res.batch_size,
        "tol": args.tol,
        "patience": args.patience,
        "stop_epoch": res.stop_epoch,
        "interrupted": res.interrupted,
        "fusedmlp_version": __version__,
    }


def _train_plots(res: TrainResult, X, Y, out: Path, say, presses) -> dict:
    """The pictures that apply. A second Ctrl-C (KeyboardInterrupt here) skips the rest;
    a picture that cannot be drawn or written is one line, and the next is still drawn:
    neither costs the summary or anything saved before."""
    n_x, n_h, n_y_ = res.sizes
    wanted = []
    if n_x == 2 and n_y_ == 1:
        wanted.append(("decision_boundary", "decision_boundary.png"))
    else:
        say(
            f"decision_boundary.png skipped: it needs 2 inputs and 1 output (points in the "
            f"plane, one label), this network is {n_x}-{n_h}-{n_y_}"
        )
    if res.epochs:
        wanted.append(("loss_curve", "loss.png"))
    else:
        say("loss.png skipped: no epochs were run")
    files = {}
    for key, name in wanted:
        if presses.count >= 2:
            print(f"{name} skipped: Ctrl-C pressed again.")
            continue
        try:
            files[key] = str(_draw(key, res, X, Y, out / name))
        except KeyboardInterrupt:  # written whole or not at all: nothing to clean up
            print(f"{name} skipped: Ctrl-C pressed again.")
        except (OSError, ValueError, RuntimeError, MemoryError) as exc:
            print(f"{name} skipped: {' '.join(str(exc).split())}")
    return files


def _draw(key: str, res: TrainResult, X, Y, path: Path) -> Path:
    from .. import plots  # matplotlib only when there is something to draw

    with np.errstate(all="ignore"):  # huge losses make matplotlib's log scale warn
        if key == "decision_boundary":
            plots.decision_boundary(res.params, X, Y, activation=res.activation, path=path)
        else:
            plots.loss_curve(res.losses, path=path, stop_epoch=res.stop_epoch)
    return path
