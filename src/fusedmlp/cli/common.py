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

# the original planar-flower exercise
TRAIN_DEFAULTS = {"hidden": 4, "activation": "sigmoid", "loss": "mse", "lr": 0.2}
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

    Training and saving run in ``protect()`` (no press raises there: the trainer stops
    at its next call boundary, the checkpoint is always written), pictures in
    ``protect(raise_at=2)`` (a second press skips them). The trainer's own handler
    passes each press on to this one, so the count covers the whole command.
    """

    def __init__(self) -> None:
        self.count = 0
        self.raise_at: float = 1
        self._old = None
        self._installed = False

    def install(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # no signal support (embedded interpreters)
                pass
        return self

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._old)
            self._installed = False

    def _handler(self, signum, frame) -> None:
        self.count += 1
        if self.count >= self.raise_at:
            raise KeyboardInterrupt

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


def check_env() -> None:
    """Environment settings numba would otherwise fail on with a long traceback."""
    value = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if value and value.lstrip("+-").isdigit() and int(value) < 1:
        raise CliError(
            f"NUMBA_NUM_THREADS={value} is not a number of threads: set it to a whole "
            f"number >= 1 (this machine has {os.cpu_count()} cores), or unset it to use all"
        )


# ---------------------------------------------------------------------------
# files: write nothing over an input, find unwritable outputs before the work


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when a and b name one file (symlinks, '..', hard links and case included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet: compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwrite(outputs: dict, inputs: dict) -> None:
    """CliError when an output would replace an input: {what: path} each."""
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
