"""Each kernel runs its own copies of the functions it calls: the same bits in every process.

numba compiles a called function (an inner function, a parfor body, another kernel)
once on its own and links a copy of it into each caller's LLVM module, marked
``linkonce_odr`` ("any definition will do"). LLVM optimises each copy again inside its
caller, and under the kernels' fast-math flags the copies can round differently from
the function compiled on its own. Whichever definition of the name a process loaded first
is the one every caller then runs: in a process that compiles the kernels, the functions
compiled on their own; in one that loads them from numba's cache, the copies inside
whichever cached kernel came first. The two kinds of process trained to different last
bits: each of five runs (the serial planar network, a parallel one, mini-batches,
validation, a wide float32 softmax network) differed between a process that compiled
and one that loaded; in the cluster tests, 1.3e-18 after 12 epochs.

So, for a module of this package's kernels, the copies linked into it are renamed, just
before LLVM optimises it, with a suffix drawn from the kernel's own (mangled, so
per-signature) name: no other module defines them, so the kernel always runs its own
copies, and the same machine code whether it was just compiled or loaded from the
cache. Renaming keeps their ``linkonce_odr`` linkage, so LLVM inlines exactly as
before (making them ``internal`` instead did the same for the bits, but LLVM then
inlined more: 28% longer cold compiles; renaming costs about 10%, measured on the
five runs above, 73 s against 66 s). In those five runs the results are, to the bit,
those a process loading the cached kernels gave before. Modules of other code (a
user's own numba functions) are left as numba makes them.

This patches one private method of numba's CPU code library, ``_optimize_final_module``
(checked on numba 0.68.1; where it is missing nothing is patched, and ``installed()``,
which the tests check, says so).
"""

from __future__ import annotations

import hashlib

import llvmlite.binding as ll
from numba.core import codegen

# how numba's name mangling spells this package's kernels in a symbol
_MARK = "8fusedmlp7kernels"
_LIBRARY = getattr(codegen, "CPUCodeLibrary", None)
_ORIGINAL = getattr(_LIBRARY, "_optimize_final_module", None)


def _own_name(module) -> str | None:
    """The first exported function of this package's kernels that the module defines
    (its kernel, mangled with its argument types), or None for other code."""
    for f in module.functions:
        if not f.is_declaration and f.linkage == ll.Linkage.external and _MARK in f.name:
            return f.name
    return None


def _private_copies(self) -> None:
    module = self._final_module
    own = _own_name(module)
    if own is not None:
        tag = "." + hashlib.sha1(own.encode()).hexdigest()[:16]
        for f in module.functions:
            if not f.is_declaration and f.linkage == ll.Linkage.linkonce_odr:
                f.name = f.name + tag
    _ORIGINAL(self)


def installed() -> bool:
    """Whether numba's code library runs ``_private_copies`` (False on a numba without
    the method: then the kernels are numba's own, and may differ in the last bits
    between a process that compiled them and one that loaded them)."""
    return _LIBRARY is not None and _LIBRARY._optimize_final_module is _private_copies


if _ORIGINAL is not None and not getattr(_ORIGINAL, "__name__", "") == "_private_copies":
    _LIBRARY._optimize_final_module = _private_copies
