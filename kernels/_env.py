"""Environment checks that must run before numba is imported."""

import os

# numba fails at import on NUMBA_NUM_THREADS=0 with a long traceback: say what to do
_threads = os.environ.get("NUMBA_NUM_THREADS", "").strip()
if _threads.lstrip("+-").isdigit() and int(_threads) < 1:
    raise ValueError(
        f"NUMBA_NUM_THREADS={_threads} is not a number of threads: set it to a whole number "
        ">= 1, or unset it to use all cores."
    )
