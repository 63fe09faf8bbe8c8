"""The same bits in a process that compiles the kernels and in one that loads them.

Before kernels/_linking.py, numba let every kernel run whichever definition of a called
function a process loaded first, and a process that compiled the kernels trained to other
last bits than one that loaded them from the cache (for this very run: the serial
planar network with Adam differed). Checked in two subprocesses sharing an empty
NUMBA_CACHE_DIR: the first compiles, the second loads; both must equal this process,
whichever of the two it was.
"""

import os
import re
import subprocess
import sys
import textwrap

import numba
import numpy as np

import fusedmlp
from fusedmlp import datasets
from fusedmlp.kernels import _linking, train

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import fusedmlp
    X, Y = fusedmlp.datasets.planar()
    res = fusedmlp.train(X, Y, epochs=60, seed=4, optimizer="adam", lr=0.02, alpha=1e-3)
    print(np.concatenate([res.losses] + [res.params[k].ravel() for k in
                                         ("W1", "b1", "W2", "b2")]).tobytes().hex())
    """
)


def _bits(res) -> str:
    parts = [res.losses] + [res.params[k].ravel() for k in ("W1", "b1", "W2", "b2")]
    return np.concatenate(parts).tobytes().hex()


def test_compiling_and_loading_processes_train_the_same_bits(tmp_path):
    assert _linking.installed()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.strip())
        if len(runs) == 1:  # the first one compiled: it filled the empty cache
            assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))
    X, Y = datasets.planar()
    here = fusedmlp.train(X, Y, epochs=60, seed=4, optimizer="adam", lr=0.02, alpha=1e-3)
    assert runs[0] == runs[1] == _bits(here)


def test_only_this_packages_kernels_get_private_copies():
    X, Y = datasets.planar(m=50)
    fusedmlp.train(X, Y, epochs=2, seed=1)
    library = next(iter(train.train_epochs.overloads.values())).library
    # (compiled or loaded from the cache, the module for linking keeps the names)
    names = [f.name for f in library._get_module_for_linking().functions]
    copies = [n for n in names if "_chunk_grads" in n]  # a function the kernel calls
    assert copies and all(re.search(r"\.[0-9a-f]{16}$", n) for n in copies), copies

    @numba.njit
    def inner(x):
        return x * 2.0

    @numba.njit
    def outer(x):
        return inner(x) + 1.0

    assert outer(1.0) == 3.0
    module = next(iter(outer.overloads.values())).library._final_module
    assert _linking._own_name(module) is None  # a user's function: left as numba makes it
