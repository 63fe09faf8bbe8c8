"""The argument parser of the ``fusedmlp`` command: options, their checks, the help."""

from __future__ import annotations

import argparse
import inspect
import math

from .. import __version__, datasets
from ..optimizers import OPTIMIZERS, SCHEDULES
from ..reference import ACTIVATIONS, LOSSES, OUTPUTS
from ..settings import DEFAULT_LR, Settings
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


def _number(text: str) -> float:
    """Any number: the ranges are checked by ``fusedmlp.settings.Settings``."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _default_sizes() -> str:
    """'400 for planar, 300 for spirals, 200 for the others': from the generators."""
    sizes: dict[int, list[str]] = {}
    for name, make in datasets.DATASETS.items():
        sizes.setdefault(inspect.signature(make).parameters["m"].default, []).append(name)
    common = max(sizes, key=lambda m: len(sizes[m]))
    parts = [f"{m} for {', '.join(names)}" for m, names in sizes.items() if m != common]
    return ", ".join([*parts, f"{common} for the others"])


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
        help=f"samples of a built-in data set (default: {_default_sizes()})",
    )
    g.add_argument("--seed", type=_seed, help="data seed of a built-in set (default 1)")
    g.add_argument(
        "--sample-weight",
        metavar="FILE",
        help="a weight for each sample, in the data's order: a .npy of m numbers or a text "
        "file of one number per line (finite, >= 0, not all 0). A batch's loss and "
        "gradient are then sum w loss / sum w (the Python API's sample_weight); --resume "
        "reads the run's file again unless --data or --dataset is given",
    )
    g.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        help="cast X to this dtype before training, which then runs in it (default: as "
        "read, float64 for built-in sets; with --resume, the checkpoint's)",
    )


def _add_trainer_options(p: argparse.ArgumentParser, defaults: dict, hidden: bool) -> None:
    """The options of ``train`` and ``sweep``; ``defaults`` only words the help (every
    setting parses to None when not given: the command fills in its defaults, and a
    resumed run keeps its own)."""
    g = p.add_argument_group("network and training")
    if hidden:
        g.add_argument("--hidden", type=_int_at_least(1), help="hidden units (default 4)")
    g.add_argument(
        "--activation",
        choices=list(ACTIVATIONS),
        help=f"hidden activation (default {defaults.get('activation', 'sigmoid')})",
    )
    g.add_argument(
        "--loss",
        choices=list(LOSSES),
        help=f"loss (default {defaults.get('loss', 'mse')}; a softmax output takes only "
        "cross_entropy, an identity output only mse, an exp output only poisson, and those "
        "are then the default)",
    )
    g.add_argument(
        "--epochs",
        type=_int_at_least(0),
        default=defaults["epochs"],
        help=f"epochs to run (default {defaults['epochs']})"
        + ("; with --resume, epochs more" if hidden else ""),
    )
    rates = {**DEFAULT_LR, "gd": defaults.get("lr", DEFAULT_LR["gd"])}
    rates = ", ".join(f"{v} for {k}" for k, v in rates.items())
    g.add_argument("--lr", type=_real(positive=True), help=f"learning rate (default {rates})")
    g.add_argument(
        "--batch-size",
        type=_int_at_least(1),
        help="mini-batch size, reshuffled each epoch (default: full batch)",
    )
    g.add_argument(
        "--tol",
        type=_real(positive=False),
        help="early stopping: stop once the loss (with --validation-fraction, the held-out "
        "score) has not improved by more than TOL for --patience epochs (default: never stop "
        "early on the loss; 1e-4 for validation and --lr-schedule adaptive)",
    )
    g.add_argument(
        "--patience",
        type=_int_at_least(1),
        help=f"see --tol, --lr-schedule and --validation-fraction (default {Settings.patience})",
    )
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
    _add_optimizer_options(p)


def _add_optimizer_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "output, optimizer and validation",
        "Settings left out take their defaults, or with --resume the resumed run's values\n"
        "(whose output, loss, activation and optimizer cannot change).",
    )
    g.add_argument(
        "--output",
        choices=list(OUTPUTS),
        help="output layer: sigmoid (a 0/1 label per output), softmax (one class per "
        "sample), identity (regression on the values) or exp (Poisson regression on counts "
        "or rates >= 0). Default: softmax when the labels "
        "are integer class indices (m,) with more than 2 classes, as --dataset spirals's, "
        "otherwise sigmoid",
    )
    g.add_argument(
        "--optimizer",
        choices=list(OPTIMIZERS),
        help="gd (plain gradient descent, the default), momentum, nesterov or adam",
    )
    g.add_argument(
        "--momentum",
        type=_number,
        metavar="MU",
        help=f"momentum and nesterov's mu, in [0, 1) (default {Settings.momentum})",
    )
    for name, what in (("beta1", "first"), ("beta2", "second")):
        g.add_argument(
            f"--{name}",
            type=_number,
            metavar="B",
            help=f"adam's decay of the {what} moment, in [0, 1) "
            f"(default {getattr(Settings, name)})",
        )
    g.add_argument(
        "--epsilon", type=_number, help=f"adam's epsilon, > 0 (default {Settings.epsilon})"
    )
    g.add_argument(
        "--alpha",
        type=_number,
        help=f"L2 penalty on the weights (not the biases), >= 0 (default {Settings.alpha})",
    )
    g.add_argument(
        "--lr-schedule",
        choices=list(SCHEDULES),
        help="constant (the default); invscaling: lr / (samples seen + 1)^power_t, set each "
        "epoch; adaptive: lr / 5 after "
        "--patience epochs without improving by --tol, stopping below 1e-6",
    )
    g.add_argument(
        "--power-t",
        type=_number,
        metavar="P",
        help=f"the exponent of --lr-schedule invscaling (default {Settings.power_t})",
    )
    g.add_argument(
        "--validation-fraction",
        type=_number,
        metavar="F",
        help="hold out this share of the samples, in (0, 1), stratified by class; score "
        "them after every epoch, stop after --patience epochs without improvement by "
        "--tol, and keep the best epoch's parameters (default: no validation)",
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
    _add_train(sub)
    _add_sweep(sub)
    _add_explain_and_predict(sub)
    scale.add_parser(sub, formatter_class=_Formatter)
    return parser


def _add_train(sub) -> None:
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
            "decision_boundary.png (2 inputs; one sigmoid output or softmax classes),\n"
            "loss.png and summary.json. If training diverges, the last finite parameters\n"
            "are saved to model.npz and the exit status is 1. Integer class labels (m,)\n"
            "with more than 2 classes (--dataset spirals) train a softmax output.\n"
            "The score printed is the accuracy, or R^2 for --output identity and exp."
        ),
        epilog=DATA_FORMATS + "\n" + EXIT_STATUS,
    )
    _add_data_options(t)
    _add_trainer_options(t, {"epochs": TRAIN_EPOCHS}, hidden=True)
    g = t.add_argument_group("output")
    g.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue a saved run for --epochs more; its settings (activation, output, loss, "
        "optimizer and its options, lr, seed, batch size, ...), backend, dtype and data (when "
        "trained by this command) are kept unless given; activation, output, loss and "
        "optimizer cannot change",
    )
    g.add_argument("--out", default="out", help="output folder, created if missing (default out)")
    g.add_argument("--quiet", action="store_true", help="no progress, only the result line")
    t.set_defaults(func=training.train_command)


def _add_sweep(sub) -> None:
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


def _add_explain_and_predict(sub) -> None:
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
    e.add_argument(
        "--output",
        choices=list(OUTPUTS),
        default="sigmoid",
        help="output layer (default sigmoid)",
    )
    e.add_argument(
        "--loss",
        choices=list(LOSSES),
        help="default: the output's own (mse; cross_entropy for softmax, poisson for exp)",
    )
    e.add_argument(
        "--alpha", type=_real(positive=False), default=0.0, help="L2 penalty (default 0)"
    )
    e.set_defaults(func=predict.explain_command)

    p = sub.add_parser(
        "predict",
        help="labels, classes, values or probabilities of a saved model for new data",
        formatter_class=_Formatter,
        description=(
            "Load CHECKPOINT (a model.npz written by train) and write, for each sample of\n"
            "DATA, what the model's output predicts: its n_y labels 0/1 (sigmoid), its class\n"
            "index (softmax) or its n_y values (identity, exp); with --proba, the outputs A2\n"
            "(probabilities). The saved activation and output are used: no flag to repeat.\n"
            "One line per sample: space-separated on stdout or a text FILE, comma-separated\n"
            "for FILE.csv; FILE.npy gets one array, (n_y, m) with one sample per column, or\n"
            "(m,) for class indices, like --labels files."
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
