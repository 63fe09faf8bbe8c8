"""The scaling experiment (fusedmlp.scaling): files, numbers, skips, refusal, Ctrl-C, plots.

One real sweep, shared by the tests that read its outputs: m = 100 and 1000, both
backends and dtypes, 2 timed repeats, every point in its own process, with a memory
budget that holds the numba points at m = 1000 but not the NumPy ones (8 subprocesses,
thread scaling included). The other tests replace the point launcher with a fake, so
they run no subprocess.
"""

import argparse
import csv
import doctest
import json
import struct
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from fusedmlp import datasets, reference, scaling
from fusedmlp.api import init_params
from fusedmlp.cli import scale

ITEMSIZE = {"float64": 8, "float32": 4}
THREADS = numba.config.NUMBA_NUM_THREADS


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("scaling")
    # holds the numba points at m = 1000 (both dtypes), not the numpy ones there
    budget = max(scaling.predict_bytes("numba", 1000, d) for d in scaling.DTYPES)
    lines = []
    rows = scaling.run_scaling(
        out,
        min_m=100,
        max_m=1000,
        epochs=2,
        warmup=1,
        memory_budget=budget,
        progress=lines.append,
    )
    return out, rows, lines


def size_rows(rows):
    return [r for r in rows if r["experiment"] == "size"]


def test_budget_of_the_fixture_separates_the_backends():
    budget = max(scaling.predict_bytes("numba", 1000, d) for d in scaling.DTYPES)
    for d in scaling.DTYPES:
        assert scaling.predict_bytes("numpy", 100, d) <= budget
        assert scaling.predict_bytes("numpy", 1000, d) > budget


def test_one_row_per_point_in_csv_json_and_return(sweep):
    out, rows, _ = sweep
    thread_rows = 2 if THREADS > 1 else 0
    assert len(size_rows(rows)) == 2 * 2 * 2  # m x backend x dtype
    assert len(rows) == 8 + thread_rows
    idents = [(r["m"], r["backend"], r["dtype"]) for r in size_rows(rows)]
    assert len(set(idents)) == 8
    assert {m for m, _, _ in idents} == {100, 1000}

    fields, table = read_csv(out / "scaling.csv")
    assert tuple(fields) == scaling.CSV_FIELDS
    assert len(table) == len(rows)
    for got, want in zip(table, rows, strict=True):
        assert (got["experiment"], int(got["m"]), got["backend"], got["dtype"]) == (
            want["experiment"],
            want["m"],
            want["backend"],
            want["dtype"],
        )
        assert got["status"] == want["status"]
        if want["status"] == "ok":  # floats round-trip exactly through the CSV
            assert float(got["s_per_epoch"]) == want["s_per_epoch"]
            assert int(got["peak_rss_bytes"]) == want["peak_rss_bytes"]

    payload = json.loads((out / "scaling.json").read_text())
    assert payload["interrupted"] is False
    assert len(payload["points"]) == len(rows)
    machine = payload["machine"]
    for key in ("cpu_model", "logical_cpus", "ram_bytes", "python", "numpy", "numba"):
        assert machine[key], key
    assert machine["fusedmlp"] == scaling.machine_info()["fusedmlp"]
    assert machine["ram_bytes"] == scaling.total_ram()
    assert payload["settings"]["epochs"] == 2


def test_numbers_are_consistent(sweep):
    _, rows, _ = sweep
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == len(rows) - 2  # only the two numpy points at m = 1000 are skipped
    for r in ok:
        m, size = r["m"], ITEMSIZE[r["dtype"]]
        assert r["data_bytes"] == 3 * m * size  # X (2, m) and Y (1, m)
        assert 0 < r["s_per_epoch"] < 1
        assert r["samples_per_s"] == pytest.approx(m / r["s_per_epoch"], rel=1e-12)
        assert 0 < r["read_s"] < 1
        assert r["epoch_over_read"] == pytest.approx(r["s_per_epoch"] / r["read_s"], rel=1e-12)
        assert r["read_method"].startswith("ndarray.sum")
        assert r["epochs_timed"] == 2 and r["warmup"] == 1 and r["epochs_per_repeat"] >= 1
        # the process holds at least numpy and the data, and far less than its prediction
        assert 20 * 2**20 < r["baseline_rss_bytes"] <= r["peak_rss_bytes"]
        assert r["peak_rss_bytes"] <= r["predicted_bytes"]
        if r["train_peak_rss_bytes"] is not None:
            assert r["train_peak_rss_bytes"] <= r["peak_rss_bytes"]


def test_timed_work_is_the_network_of_the_reference(sweep):
    """The first epoch's loss is the reference's loss of the initial parameters on the
    point's data, and the timed epochs trained (the loss went down)."""
    _, rows, _ = sweep
    for r in rows:
        if r["status"] != "ok":
            continue
        dt = np.dtype(r["dtype"]).type
        X, Y = (a.astype(dt) for a in datasets.planar(r["m"]))
        p = init_params(2, 4, 1, seed=2, dtype=dt)
        want = reference.cost(reference.forward(p, X, "sigmoid"), Y, "mse")
        rtol = 1e-12 if dt is np.float64 else 1e-5
        assert r["first_loss"] == pytest.approx(want, rel=rtol), r
        assert r["last_loss"] < r["first_loss"]


def test_numpy_skipped_with_reason_over_budget(sweep):
    out, rows, lines = sweep
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert {(r["m"], r["backend"]) for r in skipped} == {(1000, "numpy")}
    assert {r["dtype"] for r in skipped} == {"float64", "float32"}
    for r in skipped:
        assert "memory budget" in r["note"] and "GiB" in r["note"]
        assert r["s_per_epoch"] is None
        assert r["predicted_bytes"] == scaling.predict_bytes("numpy", 1000, r["dtype"])
    assert sum("skipped: predicted" in line for line in lines) == 2
    payload = json.loads((out / "scaling.json").read_text())
    assert [(p["m"], p["backend"], p["dtype"]) for p in payload["skipped"]] == [
        (r["m"], r["backend"], r["dtype"]) for r in skipped
    ]
    _, table = read_csv(out / "scaling.csv")
    assert [t["note"] for t in table if t["status"] == "skipped"] == [r["note"] for r in skipped]


@pytest.mark.skipif(THREADS < 2, reason="numba has a single thread here")
def test_thread_scaling_at_the_largest_numba_m(sweep):
    out, rows, _ = sweep
    runs = [r for r in rows if r["experiment"] == "threads"]
    assert [(r["m"], r["backend"], r["dtype"]) for r in runs] == [(1000, "numba", "float64")] * 2
    assert [r["threads"] for r in runs] == [1, THREADS]
    summary = json.loads((out / "scaling.json").read_text())["thread_scaling"]
    assert summary["m"] == 1000 and summary["threads"] == THREADS
    assert summary["speedup"] == pytest.approx(runs[0]["s_per_epoch"] / runs[1]["s_per_epoch"])


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plots_are_pngs(sweep):
    out, _, _ = sweep
    for name in ("scaling_time.png", "scaling_memory.png"):
        assert png_size(out / name) == (900, 500), name


def test_plot_contents(sweep):
    out, rows, _ = sweep
    fig = scaling.plot_time(rows, out / "again.png")
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    labels = [line.get_label() for line in ax.get_lines()]
    for combo in ("numba float64", "numba float32", "numpy float64", "numpy float32"):
        assert combo in labels
    assert "one read of X, Y (float64)" in labels
    numpy64 = next(line for line in ax.get_lines() if line.get_label() == "numpy float64")
    assert list(numpy64.get_xdata()) == [100]  # its m = 1000 point was skipped
    fig = scaling.plot_memory(rows, out / "again.png")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "data X, Y (float32)" in labels and "numba float64" in labels


def test_max_m_beyond_the_budget_is_refused_with_numbers(tmp_path):
    out = tmp_path / "never"
    need = scaling.predict_bytes("numba", 10**9, "float64")
    with pytest.raises(ValueError) as err:
        scaling.run_scaling(out, max_m=10**9, memory_budget="3G", progress=None)
    msg = str(err.value)
    assert "max_m = 1e+09" in msg
    assert f"{need / 2**30:.2f} GiB" in msg  # what it would need
    assert "3.00 GiB" in msg  # the budget
    # 10^7 needs 2.62 GiB, 10^8 5.98 GiB: the message names the largest that fits
    assert "--max-m 1e+07" in msg
    assert not out.exists()  # refused before anything was made


def fake_result(spec, threads=None):
    m, size = spec["m"], ITEMSIZE[spec["dtype"]]
    s = 1e-8 * m
    return {
        "m": m,
        "backend": spec["backend"],
        "dtype": spec["dtype"],
        "threads": threads or 2,
        "s_per_epoch": s,
        "samples_per_s": m / s,
        "peak_rss_bytes": 200 * 2**20,
        "train_peak_rss_bytes": 190 * 2**20,
        "baseline_rss_bytes": 150 * 2**20,
        "data_bytes": 3 * m * size,
        "read_s": s / 4,
        "epoch_over_read": 4.0,
        "read_method": "ndarray.sum, 1 thread",
        "epochs_timed": spec["epochs"],
        "epochs_per_repeat": 1,
        "warmup": spec["warmup"],
        "first_loss": 0.25,
        "last_loss": 0.24,
        "status": "ok",
        "note": "",
        "wall_s": 0.1,
    }


def scale_args(out, *extra):
    parser = argparse.ArgumentParser()
    scale.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["scale", "--out", str(out), *extra])


def test_interrupted_sweep_keeps_finished_rows(tmp_path, monkeypatch):
    calls = []

    def launch(spec, threads=None):
        calls.append(spec)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_result(spec, threads)

    monkeypatch.setattr(scaling, "_launch_point", launch)
    lines = []
    rows = scaling.run_scaling(
        tmp_path, max_m=1000, backends=["numba"], epochs=2, progress=lines.append
    )
    assert [(r["m"], r["dtype"]) for r in rows] == [(100, "float64"), (100, "float32")]
    _, table = read_csv(tmp_path / "scaling.csv")
    assert [(int(t["m"]), t["dtype"], t["status"]) for t in table] == [
        (100, "float64", "ok"),
        (100, "float32", "ok"),
    ]
    payload = json.loads((tmp_path / "scaling.json").read_text())
    assert payload["interrupted"] is True and len(payload["points"]) == 2
    assert png_size(tmp_path / "scaling_time.png") == (900, 500)
    assert any(line.startswith("interrupted: 2 finished points") for line in lines)

    # the command reports Ctrl-C with the shell's status 130
    calls.clear()
    args = scale_args(tmp_path / "cli", "--max-m", "1e3", "--backends", "numba")
    assert args.func(args) == 130
    _, table = read_csv(tmp_path / "cli" / "scaling.csv")
    assert len(table) == 2


def test_command_options_and_failed_point(tmp_path, monkeypatch, capsys):
    seen = []

    def launch(spec, threads=None):
        seen.append((spec["m"], spec["backend"], spec["dtype"], threads))
        if spec["m"] == 10**4:
            return {"status": "failed", "note": "killed by signal 9 (out of memory?)"}
        return fake_result(spec, threads)

    monkeypatch.setattr(scaling, "_launch_point", launch)
    args = scale_args(
        tmp_path, "--min-m", "1e3", "--max-m", "10**4", "--dtypes", "float32",
        "--backends", "numba", "--epochs", "3", "--memory-budget", "60%",
        "--no-thread-scaling",
    )  # fmt: skip
    assert args.func(args) == 1  # a point failed
    assert seen == [(1000, "numba", "float32", None), (10**4, "numba", "float32", None)]
    out = capsys.readouterr().out
    assert "failed: killed by signal 9" in out
    assert "thread scaling" not in out
    payload = json.loads((tmp_path / "scaling.json").read_text())
    assert payload["settings"]["epochs"] == 3
    assert payload["settings"]["memory_budget_bytes"] == int(0.6 * scaling.total_ram())
    assert payload["thread_scaling"] is None
    assert [(f["m"], f["status"]) for f in payload["failed"]] == [(10**4, "failed")]
    assert payload["skipped"] == []


def test_parsers():
    assert scaling.parse_bytes("8G") == 8 * 2**30
    assert scaling.parse_bytes("8GiB") == scaling.parse_bytes("8gb") == 8 * 2**30
    assert scaling.parse_bytes("512M") == 512 * 2**20
    assert scaling.parse_bytes("123") == 123
    assert scaling.parse_bytes("25%", ram=4000) == 1000
    assert scaling.parse_bytes(2**20) == 2**20
    for bad in ("lots", "-1G", "0", "5 parsecs"):
        with pytest.raises(ValueError, match="memory size"):
            scaling.parse_bytes(bad)
    assert scaling.parse_m("1e8") == scaling.parse_m("10**8") == scaling.parse_m("100_000_000")
    with pytest.raises(ValueError, match="whole number"):
        scaling.parse_m("1.5")
    assert scaling.sizes(100, 10**8) == [10**k for k in range(2, 9)]
    assert scaling.sizes(300, 3000) == [300, 1000, 3000]
    assert scaling.data_bytes(10, "float32") == 120


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="backends"):
        scaling.run_scaling(tmp_path, backends=["torch"], progress=None)
    with pytest.raises(ValueError, match="below min_m"):
        scaling.run_scaling(tmp_path, min_m=1000, max_m=100, progress=None)
    with pytest.raises(ValueError, match="epochs"):
        scaling.run_scaling(tmp_path, epochs=0, progress=None)


def test_docstring_examples():
    result = doctest.testmod(scaling)
    assert result.attempted > 0 and result.failed == 0


def test_a_points_peak_is_its_own_not_its_launchers():
    # a process started by vfork and exec inherits its parent's peak in getrusage's
    # ru_maxrss: a point launched from a process that once held 1 GB must still report
    # its own peak (the fixture's sweep ran inside pytest, whose peak grows with the run)
    script = textwrap.dedent(
        """
        import json, numpy as np
        from fusedmlp import _scaling_point as sp
        big = np.ones(2**27)  # 1 GiB, touched
        del big
        row = sp._launch_point({"m": 100, "backend": "numba", "dtype": "float64",
                                "epochs": 1, "warmup": 1})
        print(json.dumps(row))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["status"] == "ok", row
    assert row["baseline_rss_bytes"] <= row["peak_rss_bytes"] < 2**29, row
