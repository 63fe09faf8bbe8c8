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
import tempfile
import zipfile
from pathlib import Path

import numba
import numpy as np

from ._validation import PARAM_NAMES, check_activation, check_loss, check_params
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
    arrays["config"] = np.array(json.dumps(config))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved model is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    if config.get("version", 0) > VERSION:
        raise ValueError(
            f"{path} was written by a newer fusedmlp (checkpoint version "
            f"{config['version']} > {VERSION}); upgrade fusedmlp to read it."
        )
    try:
        params = check_params({k: data[k] for k in PARAM_NAMES})
        sizes = config["sizes"]
        expected = (sizes["n_x"], sizes["n_h"], sizes["n_y"])
        losses = data["losses"]
        result = TrainResult(
            params={k: v.astype(config["dtype"]) for k, v in params.items()},
            losses=losses.astype(np.float64),
            activation=check_activation(config["activation"]),
            loss=check_loss(config["loss"]),
            lr=float(config["lr"]),
            backend=config.get("backend", "numba"),
            seed=config.get("seed"),
            batch_size=config.get("batch_size"),
            interrupted=bool(config.get("interrupted", False)),
            stop_epoch=config.get("stop_epoch"),
            info=dict(config.get("info", {}), saved_versions=config.get("versions", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, f"inconsistent contents ({type(exc).__name__}: {exc})") from exc
    if result.sizes != expected:
        raise _bad(path, f"parameters have sizes {result.sizes} but it says {expected}")
    if losses.ndim != 1 or len(losses) != config["epochs"]:
        raise _bad(path, f"{losses.shape} losses for {config['epochs']} epochs")
    return result
