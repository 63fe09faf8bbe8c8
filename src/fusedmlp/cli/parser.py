"""The argument parser of the ``fusedmlp`` command: options, their checks, the help."""

from __future__ import annotations

import argparse
import math

from .. import __version__, datasets
from ..reference import ACTIVATIONS, LOSSES
from . import predict, scale, sweep, training
from .common import INIT_SEED, SWEEP_DEFAULTS, SWEEP_HIDDEN, TRAIN_EPOCHS, CliError

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


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (the usage is one --help away)."""

    def error(self, message: str):
        raise CliError(f"{message} (see '{self.prog} --help')", code=2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


# ---------------------------------------------------------------------------
# option values, checked while parsing so that a bad one is a usage error


def _int_at_least(minimum: int, maximum: int | None = None):
    what = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {what}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected an integer {what}, got {value}")
        return value

    return parse


_seed = _int_at_least(0, 2**32 - 1)  # what numpy's RandomState accepts


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
    g.add_argument("--seed", type=_seed, help="data seed of a built-in set (default 1)")
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
        type=_seed,
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
    t.set_defaults(func=training.train_command)

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
    s.set_defaults(func=sweep.sweep_command)

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
    e.set_defaults(func=predict.explain_command)

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
    p.set_defaults(func=predict.predict_command)

    scale.add_parser(sub, formatter_class=_Formatter)
    return parser
