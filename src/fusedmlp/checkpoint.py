"""Checkpoints: a training result in one ``.npz`` file, and back.

The file holds the four parameter arrays, the losses, and the configuration as a JSON
string (no pickles, so loading a file never runs code from it). Saving writes a temporary
file beside the target and renames it, so an interrupted save never leaves half a file
where a good checkpoint was.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import zipfile
from pathlib import Path

import numba
import numpy as np

from ._validation import (
    PARAM_NAMES,
    check_activation,
    check_backend,
    check_count,
    check_loss,
    check_lr,
    check_params,
)
from .trainer import TrainResult

FORMAT = "fusedmlp-checkpoint"
VERSION = 1
_ARRAYS = (*PARAM_NAMES, "losses")


def save(path: str | os.PathLike, result: TrainResult) -> Path:
    """Write a training result (parameters, losses, configuration) to one ``.npz`` file.

    Parameters
    ----------
    path : str or PathLike
        Target file, written exactly as named (``.npz`` is the usual suffix).
    result : TrainResult
        From ``fusedmlp.train`` (or ``load``).

    Returns
    -------
    Path
        The path written.

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
    from . import __version__

    path = Path(path)
    n_x, n_h, n_y = result.sizes
    config = {
        "format": FORMAT,
        "version": VERSION,
        "sizes": {"n_x": n_x, "n_h": n_h, "n_y": n_y},
        "activation": result.activation,
        "loss": result.loss,
        "lr": result.lr,
        "epochs": result.epochs,
        "dtype": str(result.dtype),
        "seed": result.seed,
        "batch_size": result.batch_size,
        "backend": result.backend,
        "interrupted": result.interrupted,
        "stop_epoch": result.stop_epoch,
        "versions": {
            "fusedmlp": __version__,
            "numpy": np.__version__,
            "numba": numba.__version__,
            "python": platform.python_version(),
        },
        "info": result.info,
    }
    arrays = {k: np.asarray(result.params[k]) for k in PARAM_NAMES}
    arrays["losses"] = np.asarray(result.losses, dtype=np.float64)
    arrays["config"] = np.array(json.dumps(config, default=_plain))
    if path.is_dir():
        raise IsADirectoryError(f"cannot save to {path}: it is a directory; name a file.")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot save to {path}: the folder {path.parent} does not exist; create it first."
        )
    # a fresh temporary name beside the target, created with the ordinary mode (the umask
    # applies), written, then renamed over the target
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _plain(obj):
    """JSON for numpy scalars and arrays a result's info may hold."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint's info")


def _bad(path, why: str) -> ValueError:
    return ValueError(
        f"{path} is not a readable fusedmlp checkpoint: {why.rstrip('.')}. It may be truncated, "
        "damaged or written by another program; save it again with fusedmlp.save."
    )


def load(path: str | os.PathLike) -> TrainResult:
    """Read a checkpoint written by ``save``; the result can be passed to ``train(resume=)``.

    Everything is read and checked before anything is returned: a truncated or foreign
    file raises ``ValueError`` (a missing one ``FileNotFoundError``), never a
    half-loaded model.

    Examples
    --------
    >>> import fusedmlp
    >>> fusedmlp.load("no-such-file.npz")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no checkpoint at no-such-file.npz
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
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
            data = {k: npz[k] for k in (*_ARRAYS, "config")}  # reads (and CRC-checks) all
        config = json.loads(str(data["config"]))
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise _bad(path, str(exc)) from exc
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _bad(path, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _bad(path, "its configuration is not a fusedmlp one")
    version = config.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _bad(path, f"its format version is {version!r}, not a whole number >= 1")
    if version > VERSION:
        raise ValueError(
            f"{path} was written by a newer fusedmlp (checkpoint version "
            f"{version} > {VERSION}); upgrade fusedmlp to read it."
        )

    def optional_count(key: str, minimum: int):
        value = config.get(key)
        return None if value is None else check_count(key, value, minimum=minimum)

    try:
        dtype = np.dtype(config["dtype"])
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype {dtype} is not float32 or float64")
        params = check_params({k: data[k] for k in PARAM_NAMES})
        sizes = config["sizes"]
        expected = tuple(check_count(k, sizes[k], minimum=1) for k in ("n_x", "n_h", "n_y"))
        epochs = check_count("epochs", config["epochs"], minimum=0)
        losses = data["losses"]
        if losses.dtype.kind != "f":
            raise TypeError(f"losses have dtype {losses.dtype}, not a float")
        result = TrainResult(
            params={k: v.astype(dtype) for k, v in params.items()},
            losses=losses.astype(np.float64),
            activation=check_activation(config["activation"]),
            loss=check_loss(config["loss"]),
            lr=check_lr(config["lr"]),
            backend=check_backend(config.get("backend", "numba")),
            seed=optional_count("seed", 0),
            batch_size=optional_count("batch_size", 1),
            interrupted=bool(config.get("interrupted", False)),
            stop_epoch=optional_count("stop_epoch", 0),
            info=dict(config.get("info", {}), saved_versions=config.get("versions", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, f"inconsistent contents ({type(exc).__name__}: {exc})") from exc
    if result.sizes != expected:
        raise _bad(path, f"parameters have sizes {result.sizes} but it says {expected}")
    if losses.ndim != 1 or len(losses) != epochs:
        raise _bad(path, f"{losses.shape} losses for {epochs} epochs")
    return result
