"""The width experiment (fusedmlp.width, `fusedmlp scale --width`)."""

import csv
import json

import pytest

from fusedmlp import width
from fusedmlp.cli import main


def test_flops_count_the_issues_way():
    # 6 m (n_x n_h + n_h n_y): the count the GFLOP/s of bench/RESULTS.md use
    assert width.flops(784, 128, 10, 60000) == 6 * 60000 * (784 * 128 + 128 * 10)


def test_scale_width_writes_its_table_and_picture(capsys, tmp_path):
    rc = main(["scale", "--width", "--n-h", "8,32", "--n-x", "2,16", "--width-m", "1024",
               "--dtypes", "float64", "--out", str(tmp_path)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    with open(tmp_path / "width.csv") as f:
        rows = list(csv.DictReader(f))
    got = [(r["sweep"], int(r["n_x"]), int(r["n_h"]), r["backend"]) for r in rows]
    assert got == [
        (sweep, x, h, b)
        for sweep, x, h in [("n_h", 64, 8), ("n_h", 64, 32), ("n_x", 2, 128), ("n_x", 16, 128)]
        for b in ("numba", "numpy")
    ]
    for r in rows:
        flops = width.flops(int(r["n_x"]), int(r["n_h"]), 1, 1024)
        assert float(r["gflops"]) == pytest.approx(flops / float(r["s_per_epoch"]) / 1e9)
    data = json.loads((tmp_path / "width.json").read_text())
    assert set(data["peaks"]) == {"float64"} and data["peaks"]["float64"] > 0
    assert (tmp_path / "width.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the plan recorded for the compiled points: loops for 2 inputs, BLAS for 16
    compiled = [r for r in rows if r["sweep"] == "n_x" and r["backend"] == "numba"]
    plans = {int(r["n_x"]): r["plan"] for r in compiled}
    assert plans[2].split(",")[1].strip() == "0" and plans[16].split(",")[1].strip() == "1"


@pytest.mark.parametrize("bad", ["0,4", "a,b", ""])
def test_scale_width_refuses_bad_sizes(capsys, tmp_path, bad):
    rc = main(["scale", "--width", "--n-h", bad, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "--n-h" in err and "separated by commas" in err
