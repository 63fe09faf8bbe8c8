"""The ``scale`` command: the scaling experiment over m (``fusedmlp.scaling``) or, with
``--width``, over the layer sizes (``fusedmlp.width``)."""

from __future__ import annotations

import argparse

from .. import scaling, width
from ..scaling import BACKENDS, DTYPES, parse_m


def add_parser(subparsers, **kwargs) -> argparse.ArgumentParser:
    """Add the ``scale`` command to an argparse subparsers object; its parser.

    ``kwargs`` go to ``subparsers.add_parser`` (e.g. ``formatter_class``). The command
    calls ``main(args)`` through ``set_defaults(func=main)``.
    """
    p = subparsers.add_parser(
        "scale",
        help="time and memory of an epoch against m: table, CSV, JSON and plots",
        description=(
            "Sweep m over powers of ten (planar data, 2-4-1 sigmoid network, mse) for each\n"
            "backend and dtype, each point in a fresh process; record seconds per epoch,\n"
            "samples per second, peak RSS, data size and the ratio of an epoch to one\n"
            "streaming read of X and Y; then 1 thread vs all at the largest m. Writes\n"
            "scaling.csv (row by row: Ctrl-C keeps finished points), scaling.json,\n"
            "scaling_time.png and scaling_memory.png into --out. Points predicted to need\n"
            "more than --memory-budget are skipped; a --max-m too large is refused."
        ),
        **kwargs,
    )
    p.add_argument("--out", default="out", help="output folder, created if missing (default out)")
    p.add_argument("--min-m", type=parse_m, default=100, help="smallest m (default 1e2)")
    p.add_argument("--max-m", type=parse_m, default=10**8, help="largest m (default 1e8)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    p.add_argument("--epochs", type=int, default=5, help="timed repeats per point (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    p.add_argument(
        "--memory-budget",
        metavar="SIZE",
        help="skip points predicted to need more: bytes, 8G, 512M or 60%% (default 60%%)",
    )
    p.add_argument(
        "--no-thread-scaling",
        dest="threads_scaling",
        action="store_false",
        help="leave out the 1-thread vs all-threads runs",
    )
    _add_cluster_arguments(p)
    _add_width_arguments(p)
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run ``fusedmlp scale`` from parsed arguments: 0 done, 1 a point failed, 130 Ctrl-C.

    Bad arguments and a too-large --max-m raise ValueError (one line for the CLI).
    With ``--width``, the width experiment (``fusedmlp.width``) instead.
    """
    if args.width:
        return _width_main(args)
    if args.workers is not None and args.cluster is not None:
        raise ValueError("give --workers (a LocalCluster here) or --cluster ADDRESS, not both")
    rows, interrupted = scaling._sweep(
        args.out,
        min_m=args.min_m,
        max_m=args.max_m,
        backends=args.backends,
        dtypes=args.dtypes,
        epochs=args.epochs,
        warmup=args.warmup,
        memory_budget=args.memory_budget,
        threads_scaling=args.threads_scaling,
        hidden=4,
        activation="sigmoid",
        loss="mse",
        progress=lambda line: print(line, flush=True),
    )
    if interrupted:
        return 130
    if args.workers is not None or args.cluster is not None:
        rows = rows + _cluster_main(args)
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def _add_cluster_arguments(p) -> None:
    g = p.add_argument_group("distributed points (fusedmlp.distributed; needs the dask extra)")
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="also time each m on a LocalCluster of N worker processes (loopback)",
    )
    g.add_argument(
        "--worker-threads",
        type=int,
        default=1,
        metavar="T",
        help="threads of each --workers worker (default 1)",
    )
    g.add_argument("--cluster", metavar="ADDRESS",
                   help="also time each m on the dask scheduler at ADDRESS (tcp://host:8786); "
                   "--out must be on storage the workers read at the same path")  # fmt: skip


def _cluster_main(args) -> list[dict]:
    """The distributed points after the sweep: cluster.csv and cluster.json in --out."""
    from distributed import Client

    from .. import _scaling_cluster
    from ..distributed import local_cluster

    grid = scaling.sizes(args.min_m, args.max_m)
    kw = dict(epochs=args.epochs, warmup=args.warmup, say=lambda line: print(line, flush=True))
    if args.cluster is not None:
        with Client(args.cluster, timeout="10s") as client:  # an unreachable one fails soon
            return _scaling_cluster.run_points(args.out, grid, args.dtypes, client, **kw)
    if args.workers < 1 or args.worker_threads < 1:
        raise ValueError(
            f"--workers and --worker-threads must be >= 1, got {args.workers} and "
            f"{args.worker_threads}"
        )
    with local_cluster(args.workers, args.worker_threads) as cluster, Client(cluster) as client:
        return _scaling_cluster.run_points(args.out, grid, args.dtypes, client, **kw)


def _sizes(text: str) -> tuple:
    import argparse

    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected sizes >= 1 separated by commas (e.g. 4,8,16), got {text!r}"
        )
    return values


def _add_width_arguments(p) -> None:
    """The width experiment's options, on the ``scale`` command's parser."""
    g = p.add_argument_group("width (--width: GFLOP/s against the layer sizes, not m)")
    g.add_argument("--width", action="store_true", help="run the width experiment instead")
    for flag, sizes, what in (("--n-h", width.N_H, "hidden"), ("--n-x", width.N_X, "input")):
        listed = ",".join(map(str, sizes))
        g.add_argument(flag, type=_sizes, default=sizes, metavar="LIST",
                       help=f"{what} sizes to sweep (default {listed})")  # fmt: skip
    g.add_argument("--width-m", type=int, default=65536, metavar="M",
                   help="samples of every width point (default 65536)")  # fmt: skip


def _width_main(args) -> int:
    """``fusedmlp scale --width``: run_width from parsed arguments; 0 when done."""
    if args.width_m < 1:
        raise ValueError(f"--width-m must be >= 1, got {args.width_m}")
    width.run_width(
        args.out,
        n_h=args.n_h,
        n_x=args.n_x,
        m=args.width_m,
        backends=tuple(args.backends),
        dtypes=tuple(args.dtypes),
        progress=lambda line: print(line, flush=True),
    )
    print(f"wrote {args.out}/width.csv, width.json and width.png")
    return 0
