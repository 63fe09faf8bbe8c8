"""Options and reporting for the benchmark suite (``python -m pytest bench ...``).

The normal test run never collects bench/: pyproject's ``testpaths = ["tests"]``.
``tests/test_bench_smoke.py`` runs every workload once, untimed, instead.
"""

from __future__ import annotations

import os
import sys

import pytest

# the bench modules import each other by plain name (bench/ is not a package)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_LINES: list[str] = []  # printed at the end of the session
_MEDIANS: dict[str, float] = {}  # "group/name" -> median seconds
_MINS: dict[str, float] = {}  # "group/name" -> fastest round, seconds
_START: list[tuple] = []  # (wall, machine busy CPU s, this process's CPU s) at the start


def pytest_addoption(parser):
    parser.addoption(
        "--quick",
        action="store_true",
        default=False,
        help="bench: skip the m=10^7 cases (memory, P2, yardstick): a run of a minute or two",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: an m=10^7 case; skipped with --quick")
    # torch.compile's own internals call this deprecated API; not ours to fix
    config.addinivalue_line(
        "filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
    )


def _cpu_seconds():
    """(wall, CPU seconds all processes have been busy, CPU seconds of this process)."""
    import time

    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system


def pytest_sessionstart(session):
    try:
        _START.append(_cpu_seconds())
    except OSError:  # no /proc/stat
        pass


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--quick"):
        return
    skip = pytest.mark.skip(reason="--quick: m=10^7 cases skipped")
    for item in items:
        if item.get_closest_marker("heavy"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def report():
    """report(line): print the line in the session's terminal summary."""
    return _LINES.append


@pytest.fixture(scope="session")
def medians():
    """record(key, stats): keep a finished benchmark's median and min for the ratios."""

    def record(key, stats, per_call=1):
        _MEDIANS[key], _MINS[key] = stats.median / per_call, stats.min / per_call

    return record


# ratio name -> (numerator key, denominator key); a ratio > 1 means the denominator is faster
_RATIOS = {
    "P1 numpy / compiled": ("P1/numpy", "P1/compiled"),
    "P1 jax / compiled": ("P1/jax", "P1/compiled"),
    "P1 train(backend=numba) / compiled": ("P1/train_numba", "P1/compiled"),
    "P1 train, callback every 100 epochs / compiled": ("P1/train_logged", "P1/compiled"),
}
for _m in ("1e6", "1e7"):
    _g = f"P2-{_m}"
    _RATIOS[f"{_g} numpy / compiled float64"] = (f"{_g}/numpy-float64", f"{_g}/compiled-float64")
    _RATIOS[f"{_g} compiled float64 / float32"] = (
        f"{_g}/compiled-float64",
        f"{_g}/compiled-float32",
    )
    _RATIOS[f"{_g} compiled float64 / yardstick float64"] = (
        f"{_g}/compiled-float64",
        f"yardstick-{_m}/float64",
    )


for _c in ("400", "1e6"):
    for _opt in ("momentum", "nesterov", "adam"):
        _RATIOS[f"optim-{_c} {_opt} / gd"] = (f"optim-{_c}/{_opt}", f"optim-{_c}/gd")
_RATIOS["digits-shape mini-batch 200 / full batch"] = ("digits-shape/200", "digits-shape/full")
for _d in ("float64", "float32"):
    _RATIOS[f"digits-97-{_d} sklearn / fusedmlp"] = (
        f"digits-97-{_d}/sklearn",
        f"digits-97-{_d}/fusedmlp",
    )
    _RATIOS[f"digits-97-{_d} sklearn / products floor"] = (
        f"digits-97-{_d}/sklearn",
        f"digits-97-{_d}/products-floor",
    )

for _n in ("digits", "wine", "iris", "diabetes"):
    for _s in ("adam", "sgd"):
        for _d in ("float64", "float32"):
            _k = f"sk-{_n}-{_s}-{_d}"
            _RATIOS[f"{_k} sklearn / fusedmlp"] = (f"{_k}/sklearn", f"{_k}/fused")
_RATIOS["sk-grid sklearn / fusedmlp"] = ("sk-grid/sklearn", "sk-grid/fused")
for _n in ("digits", "wine", "iris", "diabetes"):
    _RATIOS[f"sk-es-{_n} sklearn / fusedmlp"] = (f"sk-es-{_n}/sklearn", f"sk-es-{_n}/fused")
for _s in ("adam", "sgd"):
    _RATIOS[f"sk-poisson-{_s} sklearn / fusedmlp"] = (
        f"sk-poisson-{_s}/sklearn",
        f"sk-poisson-{_s}/fused",
    )
for _n in ("digits", "wine", "iris", "diabetes"):
    _RATIOS[f"sk-w-{_n} sklearn / fusedmlp"] = (f"sk-w-{_n}/sklearn", f"sk-w-{_n}/fused")
    _RATIOS[f"sk-w-{_n} fusedmlp weighted / unweighted"] = (
        f"sk-w-{_n}/fused",
        f"sk-{_n}-adam-float64/fused",
    )

for _w in ("predict", "score"):
    for _n in ("digits", "wine", "iris", "diabetes"):
        _RATIOS[f"sk-{_w}-{_n} sklearn / fusedmlp"] = (
            f"sk-{_w}-{_n}/sklearn",
            f"sk-{_w}-{_n}/fused",
        )

for _impl in ("public", "kernel", "forward-then-numpy"):
    _RATIOS[f"accuracy-1e7 {_impl} / P2-1e7 compiled float64 epoch"] = (
        f"accuracy-1e7/{_impl}",
        "P2-1e7/compiled-float64",
    )


def _fastest_peer(group: str, dtype: str):
    peers = {
        k: v
        for k, v in _MEDIANS.items()
        if k.startswith(group + "/")
        and k.endswith("-" + dtype)
        and k.split("/")[1].split("-")[0] in ("torch", "torch_compile", "jax")
    }
    return min(peers.items(), key=lambda kv: kv[1]) if peers else None


def _wide_summary(tr, line):
    """The wide groups: ratios, and GFLOP/s against the matmul peak of the same run."""
    for key in sorted(k for k in _MEDIANS if k.startswith("wide-") and "/compiled-" in k):
        group, case = key.split("/")
        dtype = case.split("-")[-1]
        for peer in ("numpy", "torch"):
            other = f"{group}/{peer}-{dtype}"
            if other in _MEDIANS:
                line(f"{group} {dtype} {peer} / compiled", other, key)
        n_x, n_h, n_y, m = map(int, group.split("-")[1:])
        gflops = 6 * m * (n_x * n_h + n_h * n_y) / _MEDIANS[key] / 1e9
        peak = _MEDIANS.get(f"matmul/{dtype}")
        share = ""
        if peak:
            peak_gflops = 2 * 2048**3 / peak / 1e9
            share = f" = {100 * gflops / peak_gflops:.0f}% of matmul's {peak_gflops:.0f}"
        tr.write_line(f"{group} {dtype} compiled GFLOP/s (6 m (n_x n_h + n_h n_y)): "
                      f"{gflops:.0f}{share}")  # fmt: skip


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not (_LINES or _MEDIANS):
        return
    tr = terminalreporter
    tr.section("fusedmlp bench: ratios, memory, start-up")
    tr.write_line(f"{'ratio (> 1: the second is faster)':56s} {'medians':>8s} {'mins':>8s}")

    def line(label, num, den):
        ratio_min = _MINS[num] / _MINS[den]
        tr.write_line(f"{label:56s} {_MEDIANS[num] / _MEDIANS[den]:7.2f}x {ratio_min:7.2f}x")

    for name, (num, den) in _RATIOS.items():
        if num in _MEDIANS and den in _MEDIANS:
            line(name, num, den)
    for m in ("1e6", "1e7"):
        for dtype in ("float64", "float32"):
            best = _fastest_peer(f"P2-{m}", dtype)
            mine = f"P2-{m}/compiled-{dtype}"
            if best and mine in _MEDIANS:
                line(f"P2-{m} fastest peer ({best[0].split('/')[1]}) / compiled", best[0], mine)
    _wide_summary(tr, line)
    for line in _LINES:
        tr.write_line(line)
    if _START:
        # CPU time the machine spent on anything but this run: timings are only
        # comparable when it is close to 0
        (w0, b0, s0), (w1, b1, s1) = _START[0], _cpu_seconds()
        others = max(0.0, (b1 - b0) - (s1 - s0)) / (w1 - w0)
        tr.write_line(
            f"other processes used {others:.2f} of {os.cpu_count()} CPUs on average during the run"
            + ("  <- busy machine: rerun when quiet" if others > 0.1 else "")
        )
