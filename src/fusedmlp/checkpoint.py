"""Checkpoints: a training result in one ``.npz`` file, and back.

The file holds the four parameter arrays, the losses, and the configuration as a JSON
string (no pickles, so loading a file never runs code from it). Saving writes a temporary
file beside the target and renames it, so an interrupted save never leaves half a file
where a good checkpoint was.

One set of rules (``_validate``) says what a checkpoint may hold. ``load`` applies it to
what it reads, and ``save`` applies it to what it is about to write, before it touches
the target: a result that would not load back is refused, and a good checkpoint is never
replaced by one that cannot be read.

How a save treats what is already at the target (see ``save`` for details):

- a symbolic link is written through: the link stays, the file it points to is replaced;
- a regular file without any write permission bit (``chmod 444``) is refused, for root
  too, as editors do; otherwise it is replaced and keeps its permission bits (and, where
  the system allows, its owner and group);
- a directory, named pipe, device or socket is refused: nothing is renamed over it;
- other hard links to the old file keep the old contents (the rename gives the name a new
  file).

``check_target`` runs the same checks on the target without writing anything, so a
program can find an unwritable output before it trains rather than after.
"""

from __future__ import annotations

import json
import os
import platform
import zipfile
from pathlib import Path

import numba
import numpy as np

from ._atomic import check_target, write_atomically
from ._validation import (
    PARAM_NAMES,
    check_activation,
    check_backend,
    check_count,
    check_loss,
    check_lr,
    check_params,
    check_seed,
)
from .result import TrainResult
from .settings import Settings

__all__ = ["check_target", "load", "save"]

FORMAT = "fusedmlp-checkpoint"
VERSION = 2  # 2: the settings, the optimizer's state and the validation record
_ARRAYS = (*PARAM_NAMES, "losses")
_OPTIONAL = ("moments", "clock", "val_losses", "val_scores")  # version 2, when the run had them
# what a file's contents (or a result about to be written) can raise while being checked
_CONTENT_ERRORS = (KeyError, TypeError, ValueError, OverflowError, RecursionError)


# ---------------------------------------------------------------------------
# the contents: one set of rules for what is written and what is read


class _NewerVersion(ValueError):
    """Written by a newer fusedmlp: a reason to upgrade, not a damaged file."""


def _encode(result: TrainResult) -> tuple[dict, str]:
    """The arrays and the configuration text save writes for result."""
    from . import __version__

    params = result.params
    if not isinstance(params, dict) or any(k not in params for k in PARAM_NAMES):
        raise TypeError(f"the parameters must be a dict with keys {PARAM_NAMES}")
    arrays = {k: np.asarray(params[k]) for k in PARAM_NAMES}
    losses = np.asarray(result.losses)
    arrays["losses"] = losses.astype(np.float64) if losses.dtype.kind in "biuf" else losses
    for key, value in (result.state or {}).items():
        arrays[key] = np.asarray(value)
    if result.val_scores is not None:
        arrays["val_losses"] = np.asarray(result.val_losses)
        arrays["val_scores"] = np.asarray(result.val_scores)
    W1, W2 = arrays["W1"], arrays["W2"]
    # malformed parameters leave sizes None; _validate reports the parameters first
    ok = W1.ndim == 2 and W2.ndim == 2
    config = {
        "format": FORMAT,
        "version": VERSION,
        "sizes": {"n_x": W1.shape[1], "n_h": W1.shape[0], "n_y": W2.shape[0]} if ok else None,
        "activation": result.activation,
        "loss": result.loss,
        "lr": result.lr,
        "epochs": len(losses) if losses.ndim == 1 else None,
        "dtype": str(W1.dtype),
        "seed": result.seed,
        "batch_size": result.batch_size,
        "backend": result.backend,
        "interrupted": result.interrupted,
        "stop_epoch": result.stop_epoch,
        "best_epoch": result.best_epoch,
        "settings": result.current_settings().to_dict(),
        "versions": {
            "fusedmlp": __version__,
            "numpy": np.__version__,
            "numba": numba.__version__,
            "python": platform.python_version(),
        },
        "info": result.info,
    }
    try:
        return arrays, json.dumps(config, default=_plain)
    except (TypeError, ValueError, RecursionError, OverflowError) as exc:
        for key, value in config.items():
            try:
                json.dumps(value, default=_plain)
            except (TypeError, ValueError, RecursionError, OverflowError):
                raise ValueError(
                    f"its {key} cannot be written as JSON ({type(exc).__name__}: {exc}); "
                    "keep to numbers, strings, lists and dicts with string keys"
                ) from exc
        raise


def _plain(obj):
    """JSON for numpy scalars and arrays a result's info may hold."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _validate(arrays: dict, text: str) -> TrainResult:
    """The checkpoint that arrays and configuration text make, or an error saying why not.

    Raises ValueError (_NewerVersion for a newer format), TypeError or KeyError; load and
    save turn them into their own messages.
    """
    config = _parse_config(text)
    dtype = config["dtype"]
    if not isinstance(dtype, str) or np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(
            f"the parameters' dtype {dtype} is not float32 or float64; convert them with "
            ".astype(np.float64)"
        )
    dtype = np.dtype(dtype)
    params = check_params({k: _cast(k, arrays[k], dtype) for k in PARAM_NAMES})
    sizes = config["sizes"]
    expected = tuple(check_count(k, sizes[k], minimum=1) for k in ("n_x", "n_h", "n_y"))
    losses = arrays["losses"]
    if losses.dtype.kind != "f":
        raise TypeError(f"losses have dtype {losses.dtype}, not a float")
    if losses.ndim != 1:
        raise ValueError(f"losses have shape {losses.shape}; they must be 1-D, one per epoch")
    epochs = check_count("epochs", config["epochs"], minimum=0)
    if len(losses) != epochs:
        raise ValueError(f"{losses.shape} losses for {epochs} epochs: expected ({epochs},)")
    interrupted = config.get("interrupted", False)
    if not isinstance(interrupted, bool):
        raise TypeError(f"interrupted must be true or false, got {interrupted!r}")
    info = config.get("info", {})
    if not isinstance(info, dict):
        raise TypeError(f"info must be a dict, got {type(info).__name__}")
    seed = config.get("seed")
    batch_size = config.get("batch_size")
    stop_epoch = config.get("stop_epoch")
    if stop_epoch is not None:
        stop_epoch = check_count("stop_epoch", stop_epoch, minimum=0)
        if stop_epoch >= epochs:
            raise ValueError(
                f"stop_epoch {stop_epoch} is not one of the {epochs} epochs run "
                "(it is the index of the last one)"
            )
    result = TrainResult(
        params=params,
        losses=losses.astype(np.float64),
        activation=check_activation(config["activation"]),
        loss=check_loss(config["loss"]),
        lr=_lr(config["lr"]),
        backend=check_backend(config.get("backend", "numba")),
        seed=None if seed is None else check_seed(seed),
        batch_size=None
        if batch_size is None
        else check_count("batch_size", batch_size, minimum=1),
        interrupted=interrupted,
        stop_epoch=stop_epoch,
        info=dict(info, saved_versions=config.get("versions", {})),
        settings=_settings(config),
    )
    _extras(result, arrays, config, epochs)
    if result.sizes != expected:
        raise ValueError(
            f"parameters have sizes {result.sizes} but the configuration says {expected}"
        )
    return result


def _settings(config: dict) -> Settings | None:
    """The run's settings (version 2), checked as train's arguments are."""
    values = config.get("settings")
    if values is None:  # version 1: what the flat entries say (gradient descent)
        return None
    if not isinstance(values, dict):
        raise TypeError(f"settings must be a dict, got {type(values).__name__}")
    return Settings.from_dict(values)


def _extras(result: TrainResult, arrays: dict, config: dict, epochs: int) -> None:
    """The optimizer's state and the validation record, checked, into result."""
    if "moments" in arrays or "clock" in arrays:
        state = {"moments": arrays.get("moments"), "clock": arrays.get("clock")}
        n_par = sum(result.params[k].size for k in PARAM_NAMES)
        for key, shape in (("moments", (2, n_par)), ("clock", (5,))):
            a = state[key]
            if a is None or a.dtype != np.float64 or a.shape != shape:
                got = "nothing" if a is None else f"{a.dtype} {a.shape}"
                raise ValueError(f"the optimizer's {key} must be float64 {shape}, got {got}")
        if not np.isfinite(state["moments"]).all() or np.isnan(state["clock"]).any():
            raise ValueError("the optimizer's state holds NaN or inf")
        result.state = state
    if "val_scores" in arrays or "val_losses" in arrays:
        vl, vs = arrays.get("val_losses"), arrays.get("val_scores")
        if vl is None or vs is None or vl.dtype.kind != "f" or vs.dtype.kind != "f":
            raise ValueError("val_losses and val_scores must both be float arrays")
        if vl.ndim != 1 or vs.shape != vl.shape or len(vl) > epochs:
            raise ValueError(
                f"val_losses {vl.shape} and val_scores {vs.shape} must be 1-D, of one "
                f"length, at most the {epochs} epochs"
            )
        result.val_losses, result.val_scores = vl.astype(np.float64), vs.astype(np.float64)
    best = config.get("best_epoch")
    if best is not None:
        result.best_epoch = check_count("best_epoch", best, minimum=0)


def _parse_config(text: str) -> dict:
    try:
        config = json.loads(text)
    except RecursionError as exc:  # e.g. [[[[...]]]] nested past the interpreter's limit
        raise ValueError("its configuration nests too deeply to read") from exc
    except ValueError as exc:  # not JSON, or an integer past Python's limit on digits
        raise ValueError(f"its configuration is not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError("its configuration is not a fusedmlp one")
    version = config.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"its format version is {version!r:.40}, not a whole number >= 1")
    if version > VERSION:
        raise _NewerVersion(version)
    return config


def _cast(name: str, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """a in the checkpoint's dtype, refused if it is not (or does not stay) finite."""
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {a.dtype}; parameters are real numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        p = a.astype(dtype)
    bad = ~np.isfinite(p)
    if not bad.any():
        return p
    i = tuple(int(j) for j in np.argwhere(bad)[0])
    at = f"{name}[{', '.join(map(str, i))}]"
    what = "NaN" if np.isnan(p[i]) else "inf"
    top = np.finfo(dtype).max
    if np.isfinite(a[i]):  # finite in its own dtype, too large for the checkpoint's
        raise ValueError(
            f"{name} contains inf: the parameters do not fit {dtype} ({at} = {a[i]:.6g}, "
            f"beyond {top:.3g}); keep every array in float64 (.astype(np.float64)) or "
            "rescale them"
        )
    if what == "inf" and dtype == np.float32:
        raise ValueError(
            f"{name} contains inf: the parameters do not fit float32 (first at {at}; "
            f"float32 ends at {top:.3g}); keep them in float64 if they are that large, or "
            "save finite ones"
        )
    raise ValueError(
        f"{name} contains {what} (first at {at}); a checkpoint holds finite parameters "
        "only: save the last finite ones (TrainingDiverged.result)"
    )


def _lr(value: object) -> float:
    try:
        return check_lr(value)
    except OverflowError:  # an integer too large for a float, e.g. 10**400 from JSON
        digits = int(value.bit_length() * 0.30103) + 1
        raise ValueError(
            f"lr must be a finite number > 0, got an integer of about {digits} digits"
        ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"its configuration has no {exc} entry"
    if isinstance(exc, RecursionError):
        return "its configuration nests too deeply"
    if isinstance(exc, ValueError):
        return str(exc).rstrip(".")
    return f"{type(exc).__name__}: {str(exc).rstrip('.')}"


# ---------------------------------------------------------------------------
# save and load


def save(path: str | os.PathLike, result: TrainResult) -> Path:
    """Write a training result (parameters, losses, configuration) to one ``.npz`` file.

    The result is first checked with the rules ``load`` applies (finite parameters of
    consistent shapes in float32 or float64, 1-D float losses, a known activation, loss
    and backend, lr > 0, a seed in [0, 2**32 - 1], JSON-able ``info``, ...): a result
    that would not load back raises ``ValueError`` before the target is touched. Then the
    target is checked as by ``check_target``, the checkpoint is written to a temporary
    file beside it, flushed to disk and renamed over it, so an interrupted save leaves
    the old file (or none), never half a file.

    Parameters
    ----------
    path : str or PathLike
        Target file, written exactly as named (``.npz`` is the usual suffix).
    result : TrainResult
        From ``fusedmlp.train`` (or ``load``).

    Returns
    -------
    Path
        The path written (as given, even when it is a symbolic link).

    Raises
    ------
    ValueError
        The result would not load back; the message says what is wrong.
    OSError
        The target cannot be written: the errors of ``check_target``, and any error
        while writing or renaming, raised again as the same kind of error with a
        message that names the target (not the temporary file) and the original chained.

    Notes
    -----
    What is already at ``path`` is treated as ``np.savez`` and text editors treat it:

    - a symbolic link is written through: it stays a link, and the file it points to gets
      the new contents (the temporary file is made in that file's folder);
    - an existing file keeps its permission bits (and, where the system allows, its owner
      and group); a new file gets mode 0o666 less the umask;
    - an existing file with no write bit at all (``chmod 444``) is refused with
      ``PermissionError``, also for root: ``chmod u+w`` it or save under another name;
    - a directory (``IsADirectoryError``), a pipe, device or socket (``OSError``) is
      refused; nothing is ever renamed over a special file;
    - hard links are broken: the name gets a new file, and other names of the old file
      keep the old contents.

    Saving needs permission to create files in the target's folder, even when the file
    itself is writable.

    Examples
    --------
    >>> import tempfile, os, fusedmlp
    >>> X, Y = fusedmlp.datasets.planar(m=40)
    >>> res = fusedmlp.train(X, Y, epochs=5, seed=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> back = fusedmlp.load(fusedmlp.save(path, res))
    >>> bool((back.params["W1"] == res.params["W1"]).all()), back.epochs
    (True, 5)
    """
    if not isinstance(result, TrainResult):
        raise TypeError(f"result must be a TrainResult, got {type(result).__name__}.")
    path = Path(path)
    try:
        arrays, text = _encode(result)
        _validate(arrays, text)
    except _CONTENT_ERRORS as exc:
        raise ValueError(
            f"cannot save to {path}: {_reason(exc)}; nothing was written (load would "
            "refuse such a file)."
        ) from exc
    arrays["config"] = np.array(text)
    write_atomically(path, lambda f: np.savez(f, **arrays), what="checkpoint")
    return path


def _bad(path, why: str) -> ValueError:
    return ValueError(
        f"{path} is not a readable fusedmlp checkpoint: {why.rstrip('.')}. It may be truncated, "
        "damaged or written by another program; save it again with fusedmlp.save."
    )


def load(path: str | os.PathLike) -> TrainResult:
    """Read a checkpoint written by ``save``; the result can be passed to ``train(resume=)``.

    Everything is read and checked before anything is returned: a truncated, damaged or
    foreign file raises ``ValueError`` (a missing one ``FileNotFoundError``), never a
    half-loaded model, and never an error from deep inside the reader (a configuration
    nested too deeply, a number too large for a float, an entry claiming more memory than
    there is).

    Examples
    --------
    >>> import fusedmlp
    >>> fusedmlp.load("no-such-file.npz")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no checkpoint at no-such-file.npz
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint; name the .npz file.")
    if not path.is_file():
        raise _bad(path, "it is not a regular file (a FIFO, device or socket)")
    if not zipfile.is_zipfile(path):
        raise _bad(path, "it is not an .npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if "config" not in names:
                raise _bad(path, f"it has no configuration entry (entries: {sorted(names)})")
            missing = [k for k in _ARRAYS if k not in names]
            if missing:
                raise _bad(path, f"it lacks {missing}")
            keys = (*_ARRAYS, *(k for k in _OPTIONAL if k in names), "config")
            data = {k: npz[k] for k in keys}  # reads (and CRC-checks) all
    except MemoryError as exc:  # a damaged header can claim an enormous array
        raise _bad(path, f"reading it needs more memory than is free ({exc})") from exc
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        OverflowError,
        NotImplementedError,  # a zip compression method Python lacks
        RuntimeError,  # an encrypted zip entry, or too deep a recursion
    ) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(f"{path} is not a readable"):
            raise
        raise _bad(path, f"{type(exc).__name__}: {exc}") from exc
    odd = [k for k, v in data.items() if not isinstance(v, np.ndarray)]
    if odd:  # np.load hands back the raw bytes of an entry that is not a .npy
        raise _bad(path, f"its entries {odd} are not arrays")
    config = data.pop("config")
    if config.dtype.kind != "U" or config.ndim != 0:
        raise _bad(path, f"its configuration entry is {config.dtype} {config.shape}, not text")
    try:
        return _validate(data, str(config))
    except _NewerVersion as exc:
        raise ValueError(
            f"{path} was written by a newer fusedmlp (checkpoint version "
            f"{exc.args[0]} > {VERSION}); upgrade fusedmlp to read it."
        ) from None
    except (*_CONTENT_ERRORS, MemoryError) as exc:
        raise _bad(path, _reason(exc)) from exc
