"""Regenerate bench/RESULTS.md: run every measurement, then write the page from its outputs.

One command, from the repository root, on a quiet machine (about 15 minutes with the
10^9 out-of-core demonstration, which needs ~25 GB of free disk)::

    .venv/bin/python bench/make_results.py

Steps (each can be skipped; ``--render-only`` rebuilds the page from what is already in
bench/results/):

1. the pytest-benchmark suite -> bench/results/benchmarks.json and bench.log (its
   summary of ratios, memory and start-up);
2. ``fusedmlp scale --max-m 1e8`` -> bench/results/scaling/ (CSV, JSON, two plots);
3. ``bench/threading_layers.py``: numba's threading layers side by side (cost per epoch,
   whether a forked child works) -> bench/results/threading_layers.json;
4. ``fusedmlp scale --width``: GFLOP/s against n_h and n_x -> bench/results/width/;
5. the mini-batch / full-batch pair of bench/test_optim.py, and the 784-128-10 epochs of
   bench/test_wide.py with the matmul peak, each in 5 fresh processes ->
   bench/results/digits-shape-*.json, mnist-shape-*.json (both vary from process to
   process), with ``bench/handoff.py`` after each digits pair -> handoff-*.log;
6. ``bench/outofcore.py --m 1e9`` three times on the same files: paging left to the
   kernel, then with mapped pages trimmed every second, then also with the data dropped
   from the page cache before every epoch (read from disk, as for data beyond RAM)
   -> bench/results/ooc-*.log;
7. ``bench/cluster.py``: the dask engine's overhead, a 10^8-sample epoch on 2 workers
   against one process, a model of a real cluster, and the cost of validation on a
   cluster -> bench/results/distributed.*.

The page quotes medians; ratios are of medians measured side by side in one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results"
PY = sys.executable

sys.path.insert(0, str(HERE))  # for page_parts, beside this file (also when loaded by path)
from page_parts import OOC_RUNS, layers_table, ooc_snippets, text_lines  # noqa: E402

REPEATS = 5  # fresh processes of each repeated pair (issues 9 and 10)
# name -> (file and -k selection of the bench suite run again in each process)
REPEATED = {
    "digits-shape": ["bench/test_optim.py", "-k", "digits_shape"],
    "mnist-shape": ["bench/test_wide.py", "-k", "784 or matmul"],
}


def run(cmd: list[str], log: Path) -> int:
    print("+", " ".join(cmd), flush=True)
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    print(f"  exit {proc.returncode}, log {log.relative_to(ROOT)}", flush=True)
    return proc.returncode


def measure(args: argparse.Namespace) -> None:
    OUT.mkdir(exist_ok=True)
    if not args.skip_bench:
        cmd = [PY, "-m", "pytest", "bench", "-p", "no:cacheprovider"]
        cmd += ["--benchmark-json", str(OUT / "benchmarks.json")]
        run(cmd, OUT / "bench.log")
        slim_json(OUT / "benchmarks.json")
    if not args.skip_scale:
        scale = [PY, "-m", "fusedmlp", "scale", "--out", str(OUT / "scaling")]
        run(scale + ["--max-m", args.max_m], OUT / "scale.log")
    if not args.skip_layers:
        run([PY, "bench/threading_layers.py", "--out", str(OUT)], OUT / "threading_layers.log")
    if not args.skip_width:
        width = [PY, "-m", "fusedmlp", "scale", "--width", "--out", str(OUT / "width")]
        run(width, OUT / "width.log")
    if not args.skip_repeats:
        for i in range(REPEATS):
            for name, select in REPEATED.items():
                cmd = [PY, "-m", "pytest", *select, "-p", "no:cacheprovider"]
                cmd += ["--benchmark-json", str(OUT / f"{name}-{i}.json")]
                run(cmd, OUT / f"{name}-{i}.log")
                slim_json(OUT / f"{name}-{i}.json")
            # the cost of a 40 KB hand-off between the cores, right after the digits pair
            run([PY, "bench/handoff.py"], OUT / f"handoff-{i}.log")
    if not args.skip_cluster:
        run([PY, "bench/cluster.py"], OUT / "cluster.log")
    if not args.skip_ooc:
        with tempfile.TemporaryDirectory(dir=args.ooc_dir) as d:
            for i, (log, extra) in enumerate(OOC_RUNS.items()):
                base = [PY, "bench/outofcore.py", "--m", args.ooc_m, "--dir", d]
                run(base + (["--keep"] if i == 0 else ["--reuse"]) + extra, OUT / log)


def slim_json(path: Path) -> None:
    """Drop the per-round timings (megabytes); the statistics stay."""
    if path.exists():
        data = json.loads(path.read_text())
        for b in data.get("benchmarks", []):
            b["stats"].pop("data", None)
        path.write_text(json.dumps(data, indent=1))


# ---------------------------------------------------------------------------
# rendering


def _fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def bench_tables() -> list[str]:
    path = OUT / "benchmarks.json"
    if not path.exists():
        return ["(no benchmarks.json: run without --skip-bench)"]
    data = json.loads(path.read_text())
    groups: dict[str, list] = {}
    for b in data["benchmarks"]:
        groups.setdefault(b["group"] or "", []).append(b)
    lines = []
    for group in sorted(groups):
        rows = sorted(groups[group], key=lambda b: b["stats"]["median"])
        best = rows[0]["stats"]["median"]
        lines += [f"#### {group}", "", "| case | median | min | rounds | x fastest |"]
        lines.append("|---|---|---|---|---|")
        for b in rows:
            s = b["stats"]
            case = b["name"].split("[", 1)[-1].rstrip("]") if "[" in b["name"] else b["name"]
            lines.append(
                f"| {case} | {_fmt_s(s['median'])} | {_fmt_s(s['min'])} | {s['rounds']} "
                f"| {s['median'] / best:.2f} |"
            )
        lines.append("")
    return lines


def bench_summary() -> list[str]:
    log = OUT / "bench.log"
    if not log.exists():
        return []
    text = log.read_text().splitlines()
    start = next((i for i, t in enumerate(text) if "fusedmlp bench: ratios" in t), None)
    if start is None:
        return ["(bench.log has no summary: did the suite fail?)"]
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith("----")), len(text))
    body = [t for t in text[start + 1 : end] if t.strip()]
    return ["```", *body, "```"]


def machine() -> list[str]:
    path = OUT / "scaling" / "scaling.json"
    if not path.exists():
        return []
    info = json.loads(path.read_text()).get("machine", {})
    return ["```", json.dumps(info, indent=1), "```"]


def scaling_table() -> list[str]:
    path = OUT / "scaling" / "scaling.csv"
    if not path.exists():
        return ["(no scaling.csv: run without --skip-scale)"]
    with open(path) as f:
        rows = list(csv.DictReader(f))
    cols = ["experiment", "m", "backend", "dtype", "threads", "status", "s_per_epoch"]
    cols += ["samples_per_s", "peak_rss_bytes", "data_bytes", "epoch_over_read", "note"]
    cols = [c for c in cols if c in rows[0]] if rows else cols
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c.endswith("_bytes") and v:
                v = f"{float(v) / 2**20:.0f} MiB"
            elif c in ("s_per_epoch",) and v:
                v = _fmt_s(float(v))
            elif c in ("samples_per_s", "epoch_over_read") and v:
                v = f"{float(v):.3g}"
            cells.append(v.replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def width_table() -> list[str]:
    path = OUT / "width" / "width.json"
    if not path.exists():
        return ["(no width/width.json: run without --skip-width)"]
    data = json.loads(path.read_text())
    peaks = ", ".join(f"{d} {g:.0f}" for d, g in data["peaks"].items())
    lines = [f"matmul peak (NumPy 2048 x 2048), GFLOP/s: {peaks}; m = {data['m']}", ""]
    lines += ["| n_x-n_h-n_y | backend | dtype | ms per epoch | GFLOP/s | share of peak |"]
    lines.append("|---|---|---|---|---|---|")
    for r in data["rows"]:
        lines.append(
            f"| {r['n_x']}-{r['n_h']}-{r['n_y']} | {r['backend']} | {r['dtype']} | "
            f"{1e3 * r['s_per_epoch']:.2f} | {r['gflops']:.1f} | {100 * r['share_of_peak']:.0f}% |"
        )
    return lines


def repeats_table() -> list[str]:
    """The digits-shape pair in REPEATS fresh processes: ms per epoch and the ratio."""
    rows, ratios = [], []
    for i in range(REPEATS):
        path = OUT / f"digits-shape-{i}.json"
        if not path.exists():
            continue
        med = {}
        for b in json.loads(path.read_text())["benchmarks"]:
            med[b["name"].split("[")[1].rstrip("]")] = b["stats"]["median"] / 100  # per epoch
        if "full" in med and "200" in med:
            ratios.append(med["200"] / med["full"])
            rows.append(f"| {i} | {med['full'] * 1e3:.3f} | {med['200'] * 1e3:.3f} "
                        f"| {ratios[-1]:.2f} | {_handoff(i)} |")  # fmt: skip
    if not rows:
        return ["(no digits-shape-*.json: run without --skip-repeats)"]
    ratios.sort()
    head = ["| process | full batch, ms/epoch | batches of 200, ms/epoch | ratio | hand-off, us |"]
    tail = f"Median ratio over {len(ratios)} processes: {ratios[len(ratios) // 2]:.2f}x."
    return [*head, "|---|---|---|---|---|", *rows, "", tail]


def _handoff(i: int) -> str:
    """bench/handoff.py's figure run after the i-th digits pair ("-" when absent)."""
    path = OUT / f"handoff-{i}.log"
    text = path.read_text() if path.exists() else ""
    at = text.find("the hand-off: ")
    return text[at + len("the hand-off: ") :].split(" us")[0] if at >= 0 else "-"


def mnist_table() -> list[str]:
    """The 784-128-10 epochs in REPEATS fresh processes: each process's ratios of medians
    and the compiled epoch's share of the matmul peak, then the medians over processes."""
    cols = [(d, what) for d in ("float64", "float32") for what in ("numpy", "torch", "peak")]
    rows, per_col = [], {c: [] for c in cols}
    for i in range(REPEATS):
        path = OUT / f"mnist-shape-{i}.json"
        if not path.exists():
            continue
        med, flops = {}, 0
        for b in json.loads(path.read_text())["benchmarks"]:
            med[b["name"].split("[")[1].rstrip("]")] = b["stats"]["median"]
            flops = b["extra_info"].get("flops", flops)
        cells = []
        for d, what in cols:
            mine = med.get(f"784-128-10-60000-compiled-{d}")
            if what == "peak":  # 6 m (...) flops per epoch against 2 * 2048^3 per matmul
                other = med.get(d)
                v = None if not (mine and other) else (flops / mine) / (2 * 2048**3 / other)
            else:
                other = med.get(f"784-128-10-60000-{what}-{d}")
                v = None if not (mine and other) else other / mine
            cells.append(_cell(v, what))
            if v is not None:
                per_col[(d, what)].append(v)
        rows.append(f"| {i} | " + " | ".join(cells) + " |")
    if not rows:
        return ["(no mnist-shape-*.json: run without --skip-repeats)"]
    medians = []
    for c in cols:
        vals = sorted(per_col[c])
        v = vals[len(vals) // 2] if vals else None
        medians.append(_cell(v, c[1]))
    head = "| process | " + " | ".join(f"{d} {w}" for d, w in cols) + " |"
    tail = "| median | " + " | ".join(medians) + " |"
    return [head, "|---" * (len(cols) + 1) + "|", *rows, tail]


def _cell(v: float | None, what: str) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if what == "peak" else f"{v:.2f}x"


def estimators_table() -> list[str]:
    """bench/test_sklearn.py's fits: median fit times, their ratio, the test scores."""
    path = OUT / "benchmarks.json"
    if not path.exists():
        return ["(no benchmarks.json: run without --skip-bench)"]
    fits: dict = {}
    for b in json.loads(path.read_text())["benchmarks"]:
        group = b["group"] or ""
        if group.startswith("sk-"):
            impl = b["name"].split("[")[1].rstrip("]").rsplit("-", 1)[-1]
            fits.setdefault(group, {})[impl] = (b["stats"]["median"], b["extra_info"])
    head = "| case | fusedmlp | scikit-learn | ratio | test score (fusedmlp / scikit-learn) |"
    lines = [head, "|---|---|---|---|---|"]
    for group, pair in fits.items():
        if set(pair) != {"fused", "sklearn"}:
            continue
        (t1, e1), (t2, e2) = pair["fused"], pair["sklearn"]
        score = "-"
        if "score" in e1 and "score" in e2:
            epochs = f"{e1['epochs']} / {e2['epochs']} epochs"
            score = f"{e1['score']:.4f} / {e2['score']:.4f} ({epochs})"
        lines.append(f"| {group} | {_fmt_s(t1)} | {_fmt_s(t2)} | {t2 / t1:.2f}x | {score} |")
    return lines if len(lines) > 2 else ["(no sk-* groups: run bench/test_sklearn.py)"]


def render() -> str:
    """The whole page: the suite's summary, then the sections of the other steps."""
    return "\n".join(_summary_parts() + _section_parts()) + "\n"


def _summary_parts() -> list[str]:
    return [
        "# Benchmark results",
        "",
        "Generated by `.venv/bin/python bench/make_results.py` (see its docstring); the raw",
        "outputs are in bench/results/. Medians; ratios are of medians measured side by side",
        "in one run. The machine is shared and has 2 cores: the suite reports how much CPU",
        "other processes used while it ran (timings count only when that is near 0).",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Summary: ratios, memory, start-up (pytest-benchmark suite)",
        "",
        *bench_summary(),
        "",
        "Targets (issue 3): P1 numpy/compiled >= 8x and jax/compiled >= 2x; P2 numpy/compiled",
        ">= 15x, float64/float32 >= 1.6x, fastest peer/compiled >= 3x; an epoch's memory",
        "growth under 5% of the data; warm start of the planar run under 2 s. (Issue 9, in",
        "both dtypes: 784-128-10 numpy/compiled >= 1.5x, torch/compiled >= 1.3x, GFLOP/s >=",
        "70% of matmul's; 64-32-10 numpy/compiled >= 3x; 30-64-1 numpy/compiled >= 8x and",
        "torch/compiled >= 2x. Issue 10: momentum, Nesterov and Adam at most 1.2x gd per",
        "epoch at m = 400 and 10^6; a mini-batch epoch (200) at the digits shape at most",
        "1.5x a full-batch one; digits-97 sklearn/fusedmlp at least 10x: bench/test_optim.py",
        "with the `bench` extra; digits-97 sklearn/products floor is the most any trainer",
        "could reach here: scikit-learn's time over that of the run's matrix products alone,",
        "on two threads that never wait for each other. Issue 11: each sk-* fit and the",
        "sk-grid search at least 10x faster than scikit-learn's, with the same test score:",
        "bench/test_sklearn.py.)",
        "",
        "## All benchmark groups",
        "",
        *bench_tables(),
    ]


def _section_parts() -> list[str]:
    return [
        "## Scaling with m (`fusedmlp scale --max-m 1e8`)",
        "",
        "Each point runs in a fresh process: planar data, 2-4-1 sigmoid network, mse;",
        "s/epoch is the median of the timed repeats after warm-up, peak RSS the whole",
        "process's (data generation included), epoch/read the ratio of an epoch to one",
        "streaming read of X and Y in the same process.",
        "",
        "![seconds per epoch against m](results/scaling/scaling_time.png)",
        "",
        "![peak memory against m](results/scaling/scaling_memory.png)",
        "",
        *scaling_table(),
        "",
        "## Wide networks (issue 9)",
        "",
        "The `wide-*` groups of the suite above (bench/test_wide.py) time one epoch at the",
        "shapes of real data sets against NumPy and torch eager, and their ratios and GFLOP/s",
        "are in the summary. GFLOP/s count 6 m (n_x n_h + n_h n_y) per epoch, as the issue",
        "does; an epoch really does 4 m n_x n_h + 6 m n_h n_y (the input's gradient is never",
        "needed), so a figure above the matmul peak is no contradiction. Below, the same",
        "count against the width (`fusedmlp scale --width`, one process, both sweeps):",
        "",
        "![GFLOP/s against n_h and n_x](results/width/width.png)",
        "",
        *width_table(),
        "",
        "### 784-128-10 at m = 60000, process by process",
        "",
        "The `wide-784-128-10-60000` and `matmul` groups of bench/test_wide.py again, in",
        "fresh processes (`pytest bench/test_wide.py -k '784 or matmul'`): numpy/compiled and",
        "torch/compiled (ratios of medians in one process) and the compiled epoch's GFLOP/s",
        "(6 m count) as a share of the matmul's. The NumPy epoch varies most from process",
        "to process (and within the whole suite, run after the others, more than here):",
        "",
        *mnist_table(),
        "",
        "## The scikit-learn estimators against scikit-learn (issue 11)",
        "",
        "bench/test_sklearn.py in the suite above: one fit each (64 relu units, the solver",
        "named, scikit-learn's defaults otherwise) on standardised 70/30 splits of",
        "scikit-learn's data sets (bench/estimators.py), median fit times side by side, and",
        "the test score (accuracy, R^2 for diabetes) and epochs of each; sk-grid is",
        "GridSearchCV over 24 settings of digits (3 folds, n_jobs=1), one round each:",
        "",
        *estimators_table(),
        "",
    ] + _repeat_parts()


def _repeat_parts() -> list[str]:
    """The sections of the steps run in fresh processes and beside the suite."""
    return [
        "## Mini-batch against full-batch epochs, process by process (issue 10)",
        "",
        "The `digits-shape` pair of bench/test_optim.py (64-64-10, relu, softmax, Adam, m =",
        "1797; full batch against batches of 200, whose chunks run on threads) swings from",
        "one process to the next on this shared 2-core VM, both cases together (the",
        "full-batch epoch from 0.59 to 1.03 ms in six runs of the pair; the cause lies",
        "outside the VM's own load, which stayed near 0). So the pair also runs in fresh",
        "processes, and the median of their ratios is the figure to quote. The last column",
        "is bench/handoff.py, run right after each pair: what moving 40 KB (about the",
        "network's parameters, or one gradient row) from one core's cache to the other's",
        "costs; a batch hands over both. It varies too: by hand on 2026-12-04, right after",
        "a pair, 16 us after two of three slow pairs (2.15-2.17x) and 4 us after the third",
        "and after four fast ones (1.4x); in the table, which runs it in its own process",
        "after each pair, the two do not line up either. So the evidence does not tie the",
        "slow state to the hand-offs. It comes from outside the process: on 2026-12-05 the",
        "mini-batch epoch, timed every 20 epochs for 30 s in one process, switched",
        "abruptly from 0.80 ms to 1.37-1.41 ms (and, in another process, back), and held",
        "each state for 15 s or more, with the main thread and the worker on the same",
        "vCPUs throughout (read from /proc after every call); a perf profile of each state",
        "shows the same code, each part of it slower (about 1.3-2.2x per epoch, the BLAS",
        "calls too). So the state lies outside the process and the guest's scheduling: most",
        "likely in where the host runs the two vCPUs at the time (what they share, a",
        "neighbour's load), which no process here can choose.",
        "",
        *repeats_table(),
        "",
        "## Threading layers (`bench/threading_layers.py`)",
        "",
        "numba's threading layers side by side, one fresh process per layer and round: median",
        "milliseconds per epoch of the planar network (float64) on the parallel path at",
        "m = 10^4, 10^6 and 10^7 and on the trainer's serial path at 10^4, and whether a",
        "child forked after the parallel kernels computes `predict_proba` correctly.",
        "fusedmlp uses TBB (fork-safe and thread-safe; kernels/config.py), else workqueue.",
        "GNU OpenMP kills such children; fusedmlp makes them run the serial kernels instead.",
        "",
        *layers_table(),
        "",
        "## Out of core",
        "",
        "The same 12 GB of planar data, written once by `datasets.write_planar` and",
        "memory-mapped read-only, trained three ways. VmHWM counts the mapping's file pages",
        "(the page cache, which Linux reclaims under pressure) as well as the process's own",
        "memory; RssAnon is what the process really holds. Reading from disk (the third run)",
        "is what data beyond RAM costs: the kernels then wait for the disk.",
        "",
        *ooc_snippets(),
        "",
        "## On a dask cluster (issue 12, `bench/cluster.py`)",
        "",
        "Engine overhead (an epoch minus its slowest piece's compute) on LocalClusters of",
        "worker processes, small data (planar m = 4000), against the naive loop of one",
        "submit per piece and a gather; then m = 10^8 float32 on 2 workers x 1 thread",
        "against one process with 2 threads, the model fitted to these points, and",
        "epochs with validation (the held-out samples scored on one worker) against",
        "epochs without, on the cluster and in one process.",
        "",
        *text_lines(OUT / "distributed.md", "run without --skip-cluster"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--render-only", action="store_true", help="only rewrite RESULTS.md")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-layers", action="store_true")
    ap.add_argument("--skip-width", action="store_true")
    ap.add_argument("--skip-repeats", action="store_true")
    ap.add_argument("--skip-ooc", action="store_true")
    ap.add_argument("--skip-cluster", action="store_true")
    ap.add_argument("--max-m", default="1e8", help="largest m of the scaling sweep")
    ap.add_argument("--ooc-m", default="1e9", help="samples of the out-of-core run")
    ap.add_argument("--ooc-dir", default=None, help="where the out-of-core files go")
    args = ap.parse_args(argv)
    if not args.render_only:
        measure(args)
    slim_json(OUT / "benchmarks.json")
    (HERE / "RESULTS.md").write_text(render())
    print(f"wrote {(HERE / 'RESULTS.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
