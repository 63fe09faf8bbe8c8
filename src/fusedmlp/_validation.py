"""Input checks, done once at the public boundary.

Numba checks no array bounds, so nothing reaches a kernel until these have passed. Every
message names what was expected, what was given, and how to fix it.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import sys
import warnings

import numpy as np

from .outofcore import is_mapped
from .reference import ACTIVATIONS, LOSSES, OUTPUTS

PARAM_NAMES = ("W1", "b1", "W2", "b2")
BACKENDS = ("numba", "numpy")

# columns per slice when scanning data for NaN/inf: bounds the temporary to a few MB
# however large m is, so a memory-mapped X is read once, in order.
_SCAN_COLUMNS = 1 << 18


def _choice(kind: str, value: object, valid: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in valid:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, valid, n=1)
        if close:
            hint = f" Did you mean {close[0]!r}?"
    options = ", ".join(repr(v) for v in valid)
    raise ValueError(f"unknown {kind} {value!r}: expected one of {options}.{hint}")


def check_activation(activation: object) -> str:
    return _choice("activation", activation, tuple(ACTIVATIONS))


def check_loss(loss: object) -> str:
    return _choice("loss", loss, LOSSES)


def check_output(output: object) -> str:
    return _choice("output", output, OUTPUTS)


def check_backend(backend: object) -> str:
    return _choice("backend", backend, BACKENDS)


def check_count(name: str, value: object, *, minimum: int) -> int:
    """A whole number >= minimum (numpy integers accepted, bools and floats not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}, got {value!r} "
            f"of type {type(value).__name__}; pass int({name}) if you meant a whole number."
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None


# what the compiled kernels hold per network besides the data (kernels/config.py): one
# float64 row of partial sums per chunk (at most this many chunks), and per thread a few
# arrays of (n_h + n_y) x block values (blocks of at most this many samples)
_KERNEL_CHUNKS, _KERNEL_BLOCK = 64, 1024


def check_network_size(n_x: int, n_h: int, n_y: int, *, name: str = "hidden") -> None:
    """ValueError when training the network could not fit in this machine's memory.

    Counted: the parameters a few times over (the parameters, their gradient, the
    update's scratch, a snapshot), the kernels' partial sums (one float64 row of all the
    parameters per chunk of samples) and their per-thread block scratch.
    """
    n = n_h * (n_x + 1) + n_y * (n_h + 1)
    threads = os.cpu_count() or 1
    need = 8 * n * (4 + _KERNEL_CHUNKS) + 8 * 3 * (n_h + n_y) * _KERNEL_BLOCK * threads
    memory = _physical_memory()
    if memory is not None and need > memory:
        raise ValueError(
            f"{name}={n_h} makes a {n_x}-{n_h}-{n_y} network with {n:.3g} parameters, "
            f"which need about {need / 1e9:.3g} GB to train, more than this machine's "
            f"{memory / 1e9:.1f} GB of memory; choose a smaller {name}."
        )


def check_real(name: str, value: object, *, positive: bool = False) -> float:
    """A finite real number, > 0 when ``positive`` else >= 0."""
    expected = "a finite number > 0" if positive else "a finite number >= 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be {expected}, got {value!r} of type {type(value).__name__}."
        )
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    return value


def check_seed(seed: object) -> int:
    """A seed numpy's RandomState accepts: a whole number in [0, 2**32 - 1]."""
    seed = check_count("seed", seed, minimum=0)
    if seed > 2**32 - 1:
        raise ValueError(f"seed must be an integer >= 0 and <= 2**32 - 1, got {seed}.")
    return seed


def check_lr(lr: object) -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a positive real number, got {lr!r}.")
    lr = float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr}; try lr=0.2.")
    return lr


def _real_array(name: str, a: object) -> np.ndarray:
    """np.asarray with a clear message for dtypes we cannot train on."""
    if isinstance(a, np.ma.MaskedArray):
        # np.asarray would drop the mask and train on the hidden values
        raise TypeError(
            f"{name} is a masked array, and fusedmlp cannot honour its mask; drop the "
            f"masked samples (columns) first, or fill them: {name}.filled(value)."
        )
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be read as a numeric array: {exc}") from exc
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(
            f"{name} has complex dtype {arr.dtype}; fusedmlp works on real numbers. "
            f"If the imaginary part is zero pass {name}.real."
        )
    if kind not in "biuf":
        raise TypeError(
            f"{name} must hold numbers, got dtype {arr.dtype}; "
            f"convert it with {name}.astype(np.float64)."
        )
    return arr


def user_stacklevel() -> int:
    """The stacklevel that makes a warning issued by the caller point at the first frame
    outside fusedmlp: the user's line, however deep inside fusedmlp it was raised."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("fusedmlp"):
        frame, level = frame.f_back, level + 1
    return level


def warn_copy(name: str, a: np.ndarray, why: str) -> None:
    """A memory-mapped array is about to be copied whole into memory: say so."""
    if is_mapped(a):
        warnings.warn(
            f"{name} is memory-mapped but {why}: it is copied whole into memory "
            f"({a.nbytes / 2**30:.2f} GiB). Write it as a C-ordered float32 or float64 "
            f"array, in X's dtype, to train on it in place.",
            ResourceWarning,
            stacklevel=user_stacklevel(),
        )


def work_dtype(X: np.ndarray) -> np.dtype:
    """float32 data is computed in float32; everything else in float64."""
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def _scan(name: str, A: np.ndarray, *, unit_interval: str | None, warn_unit: str = "") -> None:
    """One pass over A in column slices: finiteness and, if asked, range [0, 1].

    ``unit_interval`` (a reason) makes values outside [0, 1] an error, ``warn_unit`` a
    warning.
    """
    m = A.shape[1]
    lo, hi = math.inf, -math.inf
    for start in range(0, m, _SCAN_COLUMNS):
        part = A[:, start : start + _SCAN_COLUMNS]
        if not np.isfinite(part).all():
            bad = np.argwhere(~np.isfinite(part))[0]
            row, col = int(bad[0]), int(bad[1]) + start
            raise ValueError(
                f"{name} contains NaN or inf (first at {name}[{row}, {col}] = "
                f"{A[row, col]}); remove or impute those samples before training."
            )
        if unit_interval or warn_unit:
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    if unit_interval and (lo < 0 or hi > 1):
        raise ValueError(
            f"{name} must hold labels in [0, 1] for {unit_interval}, got values from "
            f"{lo} to {hi}; encode classes as 0 and 1 (or use loss='mse')."
        )
    if warn_unit and (lo < 0 or hi > 1):
        warnings.warn(
            f"{name} holds values from {lo:g} to {hi:g}, but {warn_unit} only reaches "
            "(0, 1), so the loss cannot go to 0 and accuracy thresholds both at 0.5; "
            "encode classes as 0 and 1 (or rescale the targets into [0, 1]).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def check_X(X: object, n_x: int | None = None) -> np.ndarray:
    """X as a 2-D real array (n_x, m) with m >= 1, finite; rows checked against n_x."""
    X = _real_array("X", X)
    if X.ndim != 2:
        fix = " For a single feature pass X.reshape(1, -1)." if X.ndim == 1 else ""
        raise ValueError(
            f"X must be 2-D with shape (n_x, m), one sample per column; got {X.ndim}-D "
            f"shape {X.shape}.{fix}"
        )
    if n_x is not None and X.shape[0] != n_x:
        fix = "pass X.T (one sample per column)" if X.shape[1] == n_x else "check the data"
        raise ValueError(
            f"X has shape {X.shape} but the parameters expect n_x = {n_x} rows "
            f"(W1 is (n_h, {n_x})): {fix}."
        )
    if X.shape[1] == 0:
        raise ValueError(f"X has no samples (shape {X.shape}): m must be at least 1.")
    if X.dtype not in (np.float32, np.float64):
        warn_copy("X", X, f"of dtype {X.dtype}")
        X = X.astype(np.float64)  # integers, bools, float16, longdouble
    _scan("X", X, unit_interval=None)
    return X


def check_XY(
    X: object, Y: object, loss: str, n_x: int | None = None, *, training: bool = False
) -> tuple:
    """Validated (X, Y): same m, both finite, Y in [0, 1] for cross-entropy.

    With ``training``, targets outside [0, 1] under mse give a warning: the sigmoid
    output cannot reach them.

    A 1-D Y of length m is taken as one output, shape (1, m). Y is returned in X's
    working dtype; X keeps float32/float64 (integers become float64).
    """
    Xa = _real_array("X", X)
    Ya = _real_array("Y", Y)
    if Ya.ndim == 1:
        Ya = Ya.reshape(1, -1)
    if Ya.ndim != 2:
        raise ValueError(
            f"Y must be 2-D with shape (n_y, m), one sample per column; got shape {Ya.shape}."
        )
    if Xa.ndim == 2 and Xa.shape[1] != Ya.shape[1]:
        m_x, m_y = Xa.shape[1], Ya.shape[1]
        if Xa.shape[0] == Ya.shape[0]:
            raise ValueError(
                f"X has shape {Xa.shape} and Y has shape {Ya.shape}: both look like one "
                f"sample per row; pass X.T and Y.T, shapes {Xa.shape[::-1]} and "
                f"{Ya.shape[::-1]}."
            )
        # transposing X, or Y, would make the sample counts agree; when both would, the
        # culprit is the one with more rows than columns (m is usually the larger size)
        fix_x = Xa.shape[0] == m_y
        fix_y = Ya.shape[0] == m_x
        if fix_x and fix_y:
            fix_x = Xa.shape[0] > Xa.shape[1]
            fix_y = not fix_x
        if fix_y:
            raise ValueError(
                f"Y has shape {Ya.shape} but X has {m_x} samples (columns): Y looks "
                f"like one sample per row; pass Y.T, shape {Ya.shape[::-1]}."
            )
        if fix_x:
            raise ValueError(
                f"X has shape {Xa.shape} but Y has {m_y} samples (columns): X looks like "
                f"one sample per row; pass X.T, shape {Xa.shape[::-1]}."
            )
        raise ValueError(
            f"X and Y must have the same number of samples (columns): X is {Xa.shape}, "
            f"Y is {Ya.shape}."
        )
    Xa = check_X(Xa, n_x)
    _scan(
        "Y",
        Ya,
        unit_interval="loss='cross_entropy'" if loss == "cross_entropy" else None,
        warn_unit="the sigmoid output" if training and loss == "mse" else "",
    )
    if Ya.dtype != work_dtype(Xa):
        warn_copy("Y", Ya, f"of dtype {Ya.dtype}, not X's {work_dtype(Xa)}")
    return Xa, Ya.astype(work_dtype(Xa), copy=False)


def params_in(p: dict, dtype: np.dtype) -> dict:
    """Checked parameters cast to the working dtype; ValueError if they overflow it."""
    with np.errstate(over="ignore"):  # the overflow is reported below, with the fix
        out = {k: np.asarray(p[k]).astype(dtype, copy=False) for k in PARAM_NAMES}
    for k in PARAM_NAMES:
        if not np.isfinite(out[k]).all():
            big = float(np.abs(np.asarray(p[k], dtype=np.float64)).max())
            raise ValueError(
                f"{k} holds values up to {big:.3g}, beyond the range of {np.dtype(dtype)} "
                f"(the data's dtype, which training and prediction run in): pass "
                "float64 data (X.astype(np.float64)) or smaller parameters."
            )
    return out


def check_params(params: object) -> dict:
    """A dict {"W1", "b1", "W2", "b2"} of finite real 2-D arrays with consistent shapes.

    Returns a new dict; n_x, n_h and n_y are read from W1 (n_h, n_x) and W2 (n_y, n_h).
    """
    if not isinstance(params, dict):
        raise TypeError(
            f"parameters must be a dict with keys {PARAM_NAMES}, got {type(params).__name__}; "
            "use fusedmlp.init_params(...) or a previous result's .params."
        )
    missing = [k for k in PARAM_NAMES if k not in params]
    extra = [k for k in params if k not in PARAM_NAMES]
    if missing or extra:
        raise ValueError(
            f"parameters must have exactly the keys {PARAM_NAMES}; missing {missing}, "
            f"unexpected {extra}."
        )
    p = {k: _real_array(k, params[k]) for k in PARAM_NAMES}
    for k in PARAM_NAMES:
        if p[k].ndim != 2:
            fix = f" Pass {k}.reshape(-1, 1)." if p[k].ndim == 1 and k[0] == "b" else ""
            raise ValueError(f"{k} must be 2-D, got shape {p[k].shape}.{fix}")
    n_h, n_x = p["W1"].shape
    n_y = p["W2"].shape[0]
    expected = {"W1": (n_h, n_x), "b1": (n_h, 1), "W2": (n_y, n_h), "b2": (n_y, 1)}
    for k in PARAM_NAMES:
        if p[k].shape != expected[k]:
            raise ValueError(
                f"{k} has shape {p[k].shape} but must be {expected[k]}: W1 is {p['W1'].shape} "
                f"so n_h={n_h}, n_x={n_x}, and W2 gives n_y={n_y} "
                "(W1 (n_h, n_x), b1 (n_h, 1), W2 (n_y, n_h), b2 (n_y, 1))."
            )
        if not np.isfinite(p[k]).all():
            raise ValueError(f"{k} contains NaN or inf; start from finite parameters.")
    return p
