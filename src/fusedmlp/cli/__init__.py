"""The ``fusedmlp`` command (also ``python -m fusedmlp``): train, sweep, explain, predict, scale.

Every failure is reported as one line ``fusedmlp: error: ...`` on stderr, never a
traceback: exit status 2 for usage errors (as argparse), 1 for anything else, 130 when
Ctrl-C stopped the command (whatever was trained is still saved).

This module imports nothing heavy at the top: ``main`` first takes over Ctrl-C, then
imports numba, numpy and the commands, so a Ctrl-C during those imports ends in one line
and status 130. When this module is imported to run the command (the ``fusedmlp``
script or ``python -m fusedmlp``), it takes over Ctrl-C at once, before ``main`` is even
called; what remains is the interpreter's own start-up (20-40 ms here, most of it the
site packages), before any code of fusedmlp runs.

The commands live in their own modules: ``training`` (train), ``sweep``, ``predict``
(predict, explain), with the parser in ``parser``, data reading in ``data`` and what
they share (errors, Ctrl-C, stdout, output checks) in ``common``.
"""

from __future__ import annotations

import _signal  # signal's C core: loads at once, where signal.py takes milliseconds
import os
import sys


def _quit(signum, frame) -> None:  # Ctrl-C before main took over: nothing to save yet
    os.write(2, b"fusedmlp: interrupted\n")
    os._exit(130)


def _running_the_command() -> bool:
    """True for the ``fusedmlp`` script and ``python -m fusedmlp`` (whose argv[0] is
    fusedmlp/__main__.py by now), not when a program imports this module."""
    path = os.path.normcase(sys.argv[0]) if sys.argv else ""
    name, folder = os.path.basename(path), os.path.basename(os.path.dirname(path))
    return name in ("fusedmlp", "fusedmlp.exe") or (name, folder) == ("__main__.py", "fusedmlp")


_COMMAND = _running_the_command()
if _COMMAND and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _quit)

from .common import INTERRUPTED, CliError, Interrupts, quiet_stdout  # noqa: E402

__all__ = ["CliError", "main"]


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
    debug = os.environ.get("FUSEDMLP_DEBUG", "") not in ("", "0")
    presses = Interrupts().install()
    try:
        with quiet_stdout():
            from .. import kernels  # noqa: F401  first: checks the environment numba reads
            from .parser import build_parser  # numba, numpy, the commands

            args = build_parser().parse_args(argv)
            args.interrupts = presses
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
    except Exception as exc:
        if _from_interrupt(exc) and not debug:
            print("fusedmlp: interrupted", file=sys.stderr)
            return INTERRUPTED
        # the library's ValueError/TypeError already say what to fix; anything else is
        # reported the same way, with its type, and FUSEDMLP_DEBUG=1 shows the traceback
        if debug:
            raise
        known = isinstance(exc, (ValueError, TypeError, OSError, ArithmeticError))
        kind = "" if known else f"{type(exc).__name__}: "
        print(f"fusedmlp: error: {kind}{_one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        presses.restore()


def _from_interrupt(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt lies behind exc: Python turns one raised in some
    places into another error (Ctrl-C during an import, inside a class body's
    ``__set_name__``, is a RuntimeError caused by it), which is an interrupt all the same."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
