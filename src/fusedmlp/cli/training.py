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
from ..api import accuracy, score
from ..checkpoint import load, save
from ..reference import REGRESSION
from ..settings import Settings
from ..trainer import TrainingDiverged, TrainResult, train
from .common import (
    INIT_SEED,
    INTERRUPTED,
    TRAIN_HIDDEN,
    CliError,
    check_outputs,
    make_out,
    refuse_overwrite,
)
from .data import choose_output, describe, labels_for, n_y, training_data, training_weights

PICTURES = ("decision_boundary.png", "loss.png")


# train's settings that are options of the same name (the seed is --init-seed)
SETTING_OPTIONS = (
    "activation", "output", "loss", "lr", "optimizer", "momentum", "beta1", "beta2",
    "epsilon", "alpha", "lr_schedule", "power_t", "batch_size", "tol", "patience",
    "validation_fraction",
)  # fmt: skip
# what the warm-up copies from the run's settings: enough to load the same kernels
WARM_UP = ("activation", "output", "loss", "lr", "optimizer", "alpha", "lr_schedule", "seed")


def trainer_kwargs(args: argparse.Namespace) -> dict:
    return {"log_every": args.log_every, "threads": args.threads}


def given_settings(args: argparse.Namespace, output: str, resumed: TrainResult | None) -> dict:
    """The settings given as options (None: not given), the output chosen for the labels
    and, for a new run, the exercise's weight seed: what is passed on to ``train``."""
    given = {k: getattr(args, k) for k in SETTING_OPTIONS if getattr(args, k) is not None}
    if resumed is None:
        given["output"] = output
    seed = INIT_SEED if args.init_seed is None and resumed is None else args.init_seed
    if seed is not None:
        given["seed"] = seed
    return given


def check_settings(given: dict, resumed: TrainResult | None) -> Settings:
    """The settings ``train`` will make of ``given``, checked before anything runs; a
    bad value or combination is a usage error, in ``Settings``'s words."""
    try:
        return Settings.make(given, None if resumed is None else resumed.current_settings())
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc), code=2) from None


def warm_up(X, Y, settings: Settings, **kwargs) -> None:
    """One epoch on one sample, so the timed run does not include loading the kernels."""
    kwargs = dict(kwargs, epochs=1, verbose=False)
    kwargs.update({k: getattr(settings, k) for k in WARM_UP})
    kwargs["batch_size"] = settings.batch_size and 1
    try:
        with warnings.catch_warnings():  # the real run gives them
            warnings.simplefilter("ignore")
            train(X[:, :1], np.asarray(Y)[..., :1], **kwargs)
    except (ValueError, TypeError, IndexError, ArithmeticError):
        pass  # bad data or options: the real run reports them


def check_before_training(out: Path, names: tuple, data: dict, resume: str | None) -> None:
    """Refuse outputs that would replace an input or could not be written, up front."""
    outputs = {name: out / name for name in names}
    inputs = {"data file": data.get("data_file"), "labels file": data.get("labels_file")}
    inputs["weights file"] = data.get("weights_file")
    refuse_overwrite(outputs, inputs)
    if resume is not None:  # the checkpoint may be replaced by its continuation, no more
        others = {k: v for k, v in outputs.items() if k != "model.npz"}
        refuse_overwrite(others, {"checkpoint to resume": resume})
    check_outputs(outputs)


def check_network(X, Y, hidden: int, resumed: TrainResult | None, output="sigmoid") -> None:
    try:
        check_network_size(X.shape[0], hidden, n_y(Y, output), name="--hidden")
        if resumed is not None:
            params_in(resumed.params, work_dtype(X))
    except ValueError as exc:
        fix = " (--dtype float64 keeps the checkpoint's range)" if resumed is not None else ""
        raise CliError(f"{exc}{fix}", code=2) from None


def _prepare(args: argparse.Namespace) -> tuple:
    """(resumed, X, Y, w, data, out, given, settings, hidden): everything checked that
    can be before the warm-up, data, weights (or None), options and outputs."""
    resumed = None if args.resume is None else load(args.resume)
    X, Y, data = training_data(args, resumed)
    w = training_weights(args, data, resumed)
    dtype = args.dtype or (str(resumed.dtype) if resumed is not None else None)
    if dtype is not None:
        X = X.astype(dtype)
    out = make_out(args.out)
    check_before_training(out, ("model.npz", "summary.json", *PICTURES), data, args.resume)
    given = given_settings(args, choose_output(args.output, Y, resumed), resumed)
    settings = check_settings(given, resumed)
    Y = labels_for(settings.output, Y, args.output, resumed is not None)
    hidden = args.hidden or (resumed.sizes[1] if resumed is not None else TRAIN_HIDDEN)
    check_network(X, Y, hidden, resumed, settings.output)
    return resumed, X, Y, w, data, out, given, settings, hidden


def describe_settings(s: Settings) -> str:
    """'tanh hidden, softmax output, cross_entropy, adam lr 0.001' and what is not default."""
    text = f"{s.activation} hidden, {s.output} output, {s.loss}, {s.optimizer} lr {s.lr}"
    if s.alpha:
        text += f", alpha {s.alpha}"
    if s.lr_schedule != "constant":
        text += f", {s.lr_schedule} schedule"
    if s.validation_fraction is not None:
        text += f", {s.validation_fraction:g} held out for validation"
    return text


def train_command(args: argparse.Namespace) -> int:
    resumed, X, Y, w, data, out, given, settings, hidden = _prepare(args)
    backend = args.backend or (resumed.backend if resumed is not None else "numba")
    first = 0 if resumed is None else resumed.epochs

    def say(*a, **k):
        if not args.quiet:
            print(*a, **k)

    more = f" more from epoch {first}" if resumed is not None else ""
    say(
        f"{describe(data, X)}, network {X.shape[0]}-{hidden}-{n_y(Y, settings.output)}, "
        f"{describe_settings(settings)}, {args.epochs} epochs{more}, backend {backend}",
        flush=True,
    )
    kwargs = dict(hidden=hidden, backend=backend, **trainer_kwargs(args))
    presses = args.interrupts
    with presses.protect():  # from here on no Ctrl-C raises, but during the pictures
        warm_up(X, Y, settings, **kwargs)
        if presses.count:
            print("Interrupted by Ctrl-C before training started: nothing was trained.")
            return INTERRUPTED
        res, seconds = _run(X, Y, out, data, args, dict(kwargs, **given, sample_weight=w), resumed)
        scored = score_of(res, X, Y, backend)
        _report(res, scored, seconds, first, say)
        files = {"checkpoint": str(save(out / "model.npz", res))}
        with presses.protect(raise_at=2):  # a second Ctrl-C skips the pictures
            files.update(_train_plots(res, X, Y, out, say, presses))
        summary = _summary(args, data, res, scored, seconds, first)
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


def score_of(res: TrainResult, X, Y, backend: str) -> tuple:
    """("accuracy", value) for sigmoid and softmax outputs, ("R^2", value) for the
    regression outputs, identity and exp."""
    if res.output in REGRESSION:
        r2 = score(res.params, X, Y, activation=res.activation, output=res.output, backend=backend)
        return "R^2", r2
    kw = dict(activation=res.activation, output=res.output, backend=backend)
    return "accuracy", accuracy(res.params, X, Y, **kw)


def show_score(scored: tuple) -> str:
    name, value = scored
    return f"{100 * value:.2f}%" if name == "accuracy" else f"{value:.6f}"


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
            f"(--lr {exc.result.lr} is probably too large; try a smaller one); the last finite "
            f"parameters are saved in {path}"
        ) from None
    res.info = {"data": data}  # lets --resume find the same data again
    return res, time.perf_counter() - start


def _report(res: TrainResult, scored: tuple, seconds: float, first: int, say) -> None:
    if res.interrupted:
        print(f"Training interrupted by Ctrl-C after epoch {res.epochs - 1}; saving it.")
    if res.stop_epoch is not None:
        say(f"Early stop at epoch {res.stop_epoch}: no improvement by more than tol.")
    if res.best_epoch is not None:
        best = ("R^2" if res.output in REGRESSION else "accuracy", res.val_scores[res.best_epoch])
        say(
            f"Validation: best {best[0]} {show_score(best)} on the held-out samples at epoch "
            f"{res.best_epoch}; the model keeps that epoch's parameters."
        )
    final = float(res.losses[-1]) if res.epochs else None
    loss_text = f"final loss {final:.6g}, " if final is not None else ""
    print(
        f"{scored[0].capitalize()}: {show_score(scored)}  ({loss_text}{res.epochs - first} "
        f"epochs in {seconds:.3f} s)",
        flush=True,
    )


def _summary(args, data: dict, res: TrainResult, scored: tuple, seconds, first) -> dict:
    n_x, n_h, n_y_ = res.sizes
    settings = res.settings.to_dict()
    best = res.best_epoch
    return {
        **data,
        "sizes": {"n_x": n_x, "n_h": n_h, "n_y": n_y_},
        **{k: v for k, v in settings.items() if k != "seed"},  # the seed is init_seed
        "epochs": res.epochs,
        "epochs_this_run": res.epochs - first,
        "resumed_from": None if args.resume is None else str(Path(args.resume).resolve()),
        "final_loss": float(res.losses[-1]) if res.epochs else None,
        "accuracy": scored[1] if scored[0] == "accuracy" else None,
        "r2": scored[1] if scored[0] == "R^2" else None,
        "best_epoch": best,
        "val_score": None if best is None else float(res.val_scores[best]),
        "val_loss": None if best is None else float(res.val_losses[best]),
        "final_val_score": float(res.val_scores[-1]) if best is not None else None,
        "seconds": seconds,
        "backend": res.backend,
        "dtype": str(res.dtype),
        "threads": args.threads or numba.get_num_threads(),
        "init_seed": res.seed,
        "stop_epoch": res.stop_epoch,
        "interrupted": res.interrupted,
        "fusedmlp_version": __version__,
    }


def _train_plots(res: TrainResult, X, Y, out: Path, say, presses) -> dict:
    """The pictures that apply. A second Ctrl-C (KeyboardInterrupt here) skips the rest;
    a picture that cannot be drawn or written is one line, and the next is still drawn:
    neither costs the summary or anything saved before."""
    wanted = []
    why_not = _no_boundary(res)
    if why_not is None:
        wanted.append(("decision_boundary", "decision_boundary.png"))
    else:
        say(f"decision_boundary.png skipped: {why_not}")
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


def _no_boundary(res: TrainResult) -> str | None:
    """Why no decision boundary can be drawn for this network, or None."""
    n_x, n_h, n_y_ = res.sizes
    net = f"this network is {n_x}-{n_h}-{n_y_}"
    if res.output in REGRESSION:
        return f"an {res.output} output predicts values, not classes ({net})"
    if res.output == "softmax" and n_x != 2:
        return f"it needs 2 inputs (points in the plane), {net}"
    if res.output == "sigmoid" and (n_x != 2 or n_y_ != 1):
        return f"it needs 2 inputs and 1 output (points in the plane, one label), {net}"
    return None


def _draw(key: str, res: TrainResult, X, Y, path: Path) -> Path:
    from .. import plots  # matplotlib only when there is something to draw

    with np.errstate(all="ignore"):  # huge losses make matplotlib's log scale warn
        if key == "decision_boundary":
            kw = dict(activation=res.activation, output=res.output, path=path)
            plots.decision_boundary(res.params, X, Y, **kw)
        else:
            plots.loss_curve(res.losses, path=path, stop_epoch=res.stop_epoch)
    return path
