"""The ``sweep`` command: one network per hidden size, a picture and a table."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numba
import numpy as np

from .. import __version__
from .._atomic import write_atomically
from ..reference import REGRESSION
from ..trainer import TrainingDiverged, train
from . import training
from .common import INTERRUPTED, SWEEP_DEFAULTS, CliError, make_out
from .data import choose_output, describe, labels_for, n_y, training_data, training_weights


def _settings(args: argparse.Namespace, output: str) -> dict:
    """The options given, over the experiment's defaults where they apply: tanh, and
    cross-entropy and lr 1.2 unless another output or optimizer calls for its own."""
    given = training.given_settings(args, output, None)
    given.setdefault("activation", SWEEP_DEFAULTS["activation"])
    if output == "sigmoid":
        given.setdefault("loss", SWEEP_DEFAULTS["loss"])
    if given.get("optimizer", "gd") == "gd":
        given.setdefault("lr", SWEEP_DEFAULTS["lr"])
    return given


def sweep_command(args: argparse.Namespace) -> int:
    X, Y, data = training_data(args, None)
    w = training_weights(args, data, None)
    if args.dtype is not None:
        X = X.astype(args.dtype)
    out = make_out(args.out)
    training.check_before_training(out, ("sweep.json", "sweep.png"), data, None)
    output = choose_output(args.output, Y, None)
    given = _settings(args, output)
    settings = training.check_settings(given, None)
    Y = labels_for(output, Y, args.output, False)
    for h in args.hidden:  # every size before the first is trained
        training.check_network(X, Y, h, None, output)
    backend = args.backend or "numba"
    print(
        f"{describe(data, X)}, hidden sizes {' '.join(map(str, args.hidden))}, "
        f"{training.describe_settings(settings)}, {args.epochs} epochs, backend {backend}"
    )
    name = "R^2" if output in REGRESSION else "accuracy"
    print(f"{'hidden':>6}  {name:>8}  {'final loss':>10}  {'seconds':>8}", flush=True)
    kwargs = dict(backend=backend, **training.trainer_kwargs(args))
    presses = args.interrupts
    with presses.protect():
        training.warm_up(X, Y, settings, hidden=args.hidden[0], **kwargs)
        if presses.count:
            print("Interrupted by Ctrl-C before training started: nothing was trained.")
            return INTERRUPTED
        kw = dict(kwargs, **given, sample_weight=w)
        rows, results, diverged = _train_each(args, X, Y, kw, presses)
        files = {}
        with presses.protect(raise_at=2):  # a second Ctrl-C skips the picture
            files.update(_picture(results, X, Y, out, presses))
        files["table"] = str(out / "sweep.json")
        sweep = {
            **data,
            "n_x": X.shape[0],
            "n_y": n_y(Y, output),
            **{k: v for k, v in settings.to_dict().items() if k != "seed"},
            "epochs": args.epochs,
            "init_seed": settings.seed,
            "backend": backend,
            "dtype": str(results[0].dtype) if results else None,
            "threads": args.threads or numba.get_num_threads(),
            "interrupted": bool(presses.count),
            "runs": rows,
            "files": files,
            "fusedmlp_version": __version__,
        }
        text = json.dumps(sweep, indent=2) + "\n"
        write_atomically(files["table"], lambda f: f.write(text.encode()), what="table")
        print(f"Wrote {', '.join(files.values())}")
    if diverged:
        raise CliError(
            f"training diverged for hidden size(s) {', '.join(map(str, diverged))} (--lr "
            f"{settings.lr} is probably too large; try a smaller one); the other sizes are "
            f"in {files['table']}"
        )
    return INTERRUPTED if presses.count else 0


def _train_each(args, X, Y, kwargs: dict, presses) -> tuple:
    """(table rows, results, diverged sizes), stopping at the first Ctrl-C."""
    rows, results, diverged = [], [], []
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
        scored = training.score_of(res, X, Y, kwargs["backend"])
        final = float(res.losses[-1]) if res.epochs else math.nan
        best = res.best_epoch
        rows.append(
            {
                "hidden": h,
                "accuracy": scored[1] if scored[0] == "accuracy" else None,
                "r2": scored[1] if scored[0] == "R^2" else None,
                "final_loss": final if res.epochs else None,
                "seconds": seconds,
                "epochs": res.epochs,
                "stop_epoch": res.stop_epoch,
                "best_epoch": best,
                "val_score": None if best is None else float(res.val_scores[best]),
                "interrupted": res.interrupted,
            }
        )
        results.append(res)
        show = training.show_score(scored)
        print(f"{h:>6}  {show:>8}  {final:>10.6f}  {seconds:>8.3f}", flush=True)
        if res.interrupted or presses.count:
            print(f"Sweep interrupted by Ctrl-C during hidden size {h}; saving what is done.")
            break
    return rows, results, diverged


def _picture(results: list, X, Y, out: Path, presses) -> dict:
    """sweep.png when it applies; a second Ctrl-C or a failure to draw it is one line."""
    if not results:
        return {}
    n_x, n_y_, output = X.shape[0], results[0].sizes[2], results[0].output
    if output != "sigmoid":
        print(
            f"sweep.png skipped: it draws networks with one sigmoid output, not output "
            f"{output} (train --hidden N draws one network's decision boundary)"
        )
        return {}
    if n_x != 2 or n_y_ != 1:
        print(f"sweep.png skipped: it needs 2 inputs and 1 output, the data have {n_x} and {n_y_}")
        return {}
    if presses.count >= 2:
        print("sweep.png skipped: Ctrl-C pressed again.")
        return {}
    path = out / "sweep.png"
    try:
        from .. import plots

        with np.errstate(all="ignore"):
            plots.sweep_grid(results, X, Y, path=path)
        return {"plot": str(path)}
    except KeyboardInterrupt:  # written whole or not at all: nothing to clean up
        print("sweep.png skipped: Ctrl-C pressed again.")
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        print(f"sweep.png skipped: {' '.join(str(exc).split())}")
    return {}
