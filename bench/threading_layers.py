"""Cost per epoch of numba's threading layers, and whether a forked child survives.

numba picks its threading layer once per process, so each (layer, round) runs in a fresh
process; the layers take turns round by round, so that a change in the machine's load
touches all of them alike. Per process: the median seconds per epoch of the planar
network (2-4-1 sigmoid + mse, float64, full batch) through ``_compiled.epoch_runner`` on
the parallel path at m = 10^4, 10^6 and 10^7, and on the trainer's own path at 10^4
(the serial whole-training kernel, no threads); then a fork after those parallel calls,
whose child must compute the same ``predict_proba`` (fusedmlp makes a child of a GNU
OpenMP parent run the serial twins of the kernels; the table says when it did). Run from
the repository root::

    .venv/bin/python bench/threading_layers.py [--rounds 5] [--out bench/results]

writes ``threading_layers.json`` (every round) and prints a table of medians over the
rounds; ``bench/make_results.py`` renders it into RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

LAYERS = ("omp", "tbb", "workqueue")
SIZES = (10**4, 10**6, 10**7)

ONE_PROCESS = textwrap.dedent(
    """
    import json, os, statistics, sys, time
    import numba, numpy as np
    import fusedmlp
    from fusedmlp import _compiled

    def per_epoch(run, n, repeats=7):
        losses = np.empty(n)
        run(n, losses)  # compile / load, first touch
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            run(n, losses)
            times.append((time.perf_counter() - t) / n)
        return statistics.median(times)

    out = {}
    p = fusedmlp.init_params(2, 4, 1, seed=2)
    for m in (10**4, 10**6, 10**7):
        X, Y = fusedmlp.datasets.planar(m)
        n = max(1, 2 * 10**6 // m)
        paths = ("parallel", "serial") if m == 10**4 else ("parallel",)
        for path in paths:
            run = _compiled.epoch_runner(dict(p), X, Y, "sigmoid", "mse", 0.2, path=path)
            out[f"{path} {m:.0e}"] = per_epoch(run, n)
    X, _ = fusedmlp.datasets.planar(10**5)
    want = fusedmlp.predict_proba(p, X)
    pid = os.fork()
    if pid == 0:
        try:
            same = np.array_equal(fusedmlp.predict_proba(p, X), want)
            os._exit(3 if not same else 10 if _compiled._SERIAL_ONLY else 0)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    out["fork child exit"] = os.waitstatus_to_exitcode(status)
    out["layer"] = numba.threading_layer()
    out["threads"] = numba.get_num_threads()
    print(json.dumps(out))
    """
)


def one(layer: str) -> dict:
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    proc = subprocess.run(
        [sys.executable, "-c", ONE_PROCESS], env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        return {"layer": layer, "error": proc.stderr.strip().splitlines()[-1:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr.strip()[-300:]
    return result


def table(rounds: list[dict]) -> list[str]:
    keys = [f"parallel {m:.0e}" for m in SIZES] + [f"serial {SIZES[0]:.0e}"]
    head = "| layer | " + " | ".join(f"{k} (ms)" for k in keys) + " | fork child |"
    lines = [head, "|" + "---|" * (len(keys) + 2)]
    for layer in LAYERS:
        runs = [r for r in rounds if r.get("layer") == layer and "error" not in r]
        if not runs:
            bad = [r for r in rounds if r.get("layer") == layer]
            lines.append(f"| {layer} | failed: {bad[0].get('error') if bad else '?'} |")
            continue
        cells = [f"{statistics.median(r[k] for r in runs) * 1e3:.3f}" for k in keys]
        codes = sorted({r["fork child exit"] for r in runs})
        fork = {(0,): "works", (10,): "works on the serial kernels"}.get(tuple(codes))
        fork = fork or f"fails (exit {', '.join(map(str, codes))})"
        lines.append(f"| {layer} | " + " | ".join(cells) + f" | {fork} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=5, help="processes per layer (default 5)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    rounds = []
    for i in range(args.rounds):
        for layer in LAYERS:
            r = one(layer)
            r["round"] = i
            rounds.append(r)
            print(f"round {i} {layer}: {r}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "threading_layers.json").write_text(json.dumps({"rounds": rounds}, indent=1) + "\n")
    print("\n".join(table(rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
