"""What every command shares: the error type, Ctrl-C, stdout, and the output checks.

Light imports only: ``fusedmlp.cli.main`` imports this before numba and numpy, so that
a Ctrl-C during those imports is already handled.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading

INTERRUPTED = 130  # the shell's status for a program stopped by SIGINT

# the original planar-flower exercise: a 2-4-1 network, 3000 epochs (its sigmoid + mse
# and lr 0.2 are train's own defaults, left to it so that they follow --output/--optimizer)
TRAIN_HIDDEN = 4
TRAIN_EPOCHS = 3000
# its hidden-layer-size experiment (tanh + cross-entropy, lr 1.2; the exercise ran 10000
# epochs, 5000 draw the same picture in half the time)
SWEEP_DEFAULTS = {"activation": "tanh", "loss": "cross_entropy", "lr": 1.2, "epochs": 5000}
SWEEP_HIDDEN = [1, 2, 3, 4, 5, 20, 50]
INIT_SEED = 2  # the exercise's weight seed


class CliError(Exception):
    """A failure reported as one line; ``code`` is the exit status (2: usage error)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Interrupts:
    """Ctrl-C for a whole command: every press is counted, and only presses from the
    ``raise_at``-th on raise KeyboardInterrupt (1 outside protected sections).

    The command runs from its warm-up to its end in ``protect()`` (no press raises
    there: the trainer stops at its next call boundary, the checkpoint is always
    written), its pictures in ``protect(raise_at=2)`` inside that (a second press skips
    them). Installed as the SIGINT handler itself: the trainer's handler passes each
    press on, and reads ``pending`` to start stopped when one came before training did.
    """

    def __init__(self) -> None:
        self.count = 0
        self.raise_at: float = 1
        self.seen = 0  # presses a training has already taken into account
        self._old = None
        self._installed = False

    def install(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self)
                self._installed = True
            except ValueError:  # no signal support (embedded interpreters)
                pass
        return self

    def restore(self) -> None:
        if self._installed:
            old = self._old if self._old is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, old)
            self._installed = False

    def __call__(self, signum, frame) -> None:
        self.count += 1
        if self.count >= self.raise_at:
            raise KeyboardInterrupt

    @property
    def pending(self) -> bool:
        """A press that no training has seen yet (read as a training starts)."""
        new, self.seen = self.count > self.seen, self.count
        return new

    @contextlib.contextmanager
    def protect(self, raise_at: float = math.inf):
        old, self.raise_at = self.raise_at, raise_at
        try:
            yield self
        finally:
            self.raise_at = old


class QuietStdout:
    """sys.stdout that goes quiet once its reader is gone (``fusedmlp train | head``).

    The first write to a closed pipe points file descriptor 1 at /dev/null (so nothing
    fails at exit either) and every later write is dropped: the command carries on and
    saves its files. ``broken`` says whether that happened.
    """

    def __init__(self, stream) -> None:
        self.stream = stream
        self.broken = False

    def _gone(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except (BrokenPipeError, ValueError):
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                self._gone()

    def __getattr__(self, name: str):  # isatty, fileno, encoding, ...
        return getattr(self.stream, name)


@contextlib.contextmanager
def quiet_stdout():
    """Replace sys.stdout by a QuietStdout for the duration."""
    old = sys.stdout
    sys.stdout = QuietStdout(old)
    try:
        yield sys.stdout
    finally:
        if sys.stdout.broken:
            with contextlib.suppress(BrokenPipeError, ValueError, OSError):
                old.flush()  # already pointed at /dev/null
        sys.stdout = old


# ---------------------------------------------------------------------------
# files: write nothing over an input, find unwritable outputs before the work


def refuse_overwrite(outputs: dict, inputs: dict) -> None:
    """CliError when an output would replace an input: {what: path} each."""
    from .._atomic import same_file

    for out_name, out in outputs.items():
        for in_name, src in inputs.items():
            if src is not None and same_file(out, src):
                raise CliError(
                    f"{out_name} {out} is the same file as the {in_name} {src}: writing it "
                    f"would destroy the {in_name}; choose another output name",
                    code=2,
                )


def check_outputs(paths: dict) -> None:
    """CliError naming the target when one of {what: path} could not be written."""
    from ..checkpoint import check_target

    for path in paths.values():
        try:
            check_target(path)
        except OSError as exc:
            raise CliError(str(exc)) from None


def make_out(path: str) -> Path:  # noqa: F821 (imported below: pathlib is slow to load)
    """The output folder, created if missing."""
    from pathlib import Path

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file, not a folder; name a folder for the outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    return out
