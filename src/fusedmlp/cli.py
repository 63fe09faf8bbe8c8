"""Command line: ``fusedmlp train`` (also ``python -m fusedmlp``)."""

from __future__ import annotations

import argparse
import sys
import time

from . import datasets
from .api import TrainingDiverged, accuracy, train


def _train(args: argparse.Namespace) -> int:
    X, Y = datasets.load(args.dataset, m=args.m, seed=args.seed)
    print(
        f"{args.dataset}: m = {X.shape[1]}, network {X.shape[0]}-{args.hidden}-{Y.shape[0]}, "
        f"{args.activation} + {args.loss}, lr {args.lr}, {args.epochs} epochs, "
        f"backend {args.backend}"
    )
    start = time.perf_counter()
    res = train(
        X,
        Y,
        hidden=args.hidden,
        activation=args.activation,
        loss=args.loss,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.init_seed,
        backend=args.backend,
    )
    seconds = time.perf_counter() - start
    for i in range(0, res.epochs, args.log_every):
        print(f"Cost after iteration {i}: {res.losses[i]:.6f}")
    acc = accuracy(res.params, X, Y, activation=args.activation)
    print(f"Accuracy: {100 * acc:.2f}%  ({seconds:.3f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fusedmlp`` command."""
    parser = argparse.ArgumentParser(prog="fusedmlp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on a built-in data set and print the loss log")
    t.add_argument("--dataset", default="planar", choices=sorted(datasets.DATASETS))
    t.add_argument("--m", type=int, default=None, help="number of samples")
    t.add_argument("--seed", type=int, default=None, help="data seed")
    t.add_argument("--init-seed", type=int, default=2, help="weight seed")
    t.add_argument("--hidden", type=int, default=4)
    t.add_argument("--activation", default="sigmoid")
    t.add_argument("--loss", default="mse")
    t.add_argument("--epochs", type=int, default=3000)
    t.add_argument("--lr", type=float, default=0.2)
    t.add_argument("--backend", default="numba", choices=["numba", "numpy"])
    t.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args(argv)
    try:
        return _train(args)
    except (ValueError, TypeError, TrainingDiverged) as exc:
        print(f"fusedmlp: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
