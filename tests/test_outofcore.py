"""Out of core: planar written chunk by chunk, memory-mapped pairs and npz, train on them."""

import os
import re
import shutil
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

import fusedmlp
from fusedmlp import _compiled, _planar_file, datasets, kernels, outofcore

NAMES = ("W1", "b1", "W2", "b2")
LINUX = os.path.exists("/proc/self/status")


def bits(a):
    return np.ascontiguousarray(a).tobytes()


def same_result(a, b):
    return bits(a.losses) == bits(b.losses) and all(
        bits(a.params[k]) == bits(b.params[k]) for k in NAMES
    )


# ---------------------------------------------------------------------------
# what write_planar relies on


def test_randn_in_pieces_continues_one_stream():
    # odd piece sizes leave the polar method's second Gaussian cached between calls
    whole = np.random.RandomState(7).randn(2001)
    rng = np.random.RandomState(7)
    pieces = [rng.randn(k) for k in (1, 3, 2, 5, 990, 1000)]
    assert bits(np.concatenate(pieces)) == bits(whole)
    # and a state copied mid-stream (cached Gaussian included) goes on identically
    rng = np.random.RandomState(7)
    rng.randn(3)
    other = np.random.RandomState(0)
    other.set_state(rng.get_state())
    assert bits(other.randn(1998)) == bits(whole[3:])


@pytest.mark.parametrize("start,stop", [(0.0, 3.12), (3.12, 6.24), (-1.5, 2.0)])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 4097])
def test_linspace_part_is_numpys_slice(start, stop, n):
    full = np.linspace(start, stop, n)
    for lo, hi in {(0, n), (0, 1), (n - 1, n), (n // 3, n), (n // 3, max(n // 3, 2 * n // 3))}:
        assert bits(_planar_file._linspace_part(start, stop, n, lo, hi)) == bits(full[lo:hi])


# ---------------------------------------------------------------------------
# write_planar


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,chunk", [(1, 4), (2, 1), (3, 1), (7, 2), (400, 64), (1001, 7),
                                     (5000, 1024), (5001, 2**22)])  # fmt: skip
def test_write_planar_equals_planar(pair, m, chunk, dtype):
    X, Y = pair(m, seed=3, dtype=dtype, chunk=chunk)
    X0, Y0 = datasets.planar(m, seed=3)
    assert isinstance(X, np.memmap) and not X.flags.writeable
    assert X.dtype == dtype and Y.dtype == dtype and X.shape == (2, m) and Y.shape == (1, m)
    assert bits(X) == bits(X0.astype(dtype))
    assert bits(Y) == bits(Y0.astype(dtype))


def test_write_planar_default_seed_is_the_classic(pair):
    X, Y = pair(400, dtype="float64", chunk=33)
    assert float(X[0, 0]) == 1.204442292254319  # planar's documented first value


def test_write_planar_memory_is_o_chunk(pair):
    m, chunk = 10**6, 2**14  # 24 MB of float64 data, 128 KB chunk arrays
    tracemalloc.start()
    try:
        pair(m, dtype="float64", chunk=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * chunk * 8  # a few chunk-sized temporaries, nothing of size m


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_write_planar_keeps_pages_unmapped(pair, monkeypatch):
    # every chunk's pages are released once written: the map of the file never holds
    # more than a chunk, whatever m is
    seen = []
    release = outofcore.release

    def watching(*arrays, **kw):
        seen.append(outofcore.resident_bytes(arrays[0]))
        out = release(*arrays, **kw)
        seen.append(outofcore.resident_bytes(arrays[0]))
        return out

    monkeypatch.setattr(outofcore, "release", watching)
    pair(10**5, dtype="float64", chunk=2**11)
    chunk_pages = 2 * (2**11 * 8 + 4096)  # X's two rows of one chunk, page-rounded
    assert len(seen) == 2 * 50 and min(seen[::2]) > 0 and max(seen) <= chunk_pages
    assert max(seen[1::2]) == 0


def test_write_planar_refuses_without_disk_space(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=10**6))  # 1 MB free
    with pytest.raises(OSError, match=r"needs 0\.12 GB .* only 0\.00 GB are free"):
        datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", 10**7)
    assert os.listdir(tmp_path) == []


def test_write_planar_checks_arguments(tmp_path):
    with pytest.raises(ValueError, match="float32 or float64"):
        datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", 10, dtype="int32")
    with pytest.raises(ValueError, match="chunk must be an integer >= 1"):
        datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", 10, chunk=0)
    assert os.listdir(tmp_path) == []


def test_write_planar_replaces_a_file_still_mapped(pair):
    old_X, _ = pair(1000, seed=1)
    before = np.array(old_X)
    new_X, _ = pair(1000, seed=2)
    # the old map still reads the old data (a new file was renamed over it)
    assert bits(old_X) == bits(before) and bits(new_X) != bits(before)


def _listing(folder):
    """{path relative to folder: contents} of everything in folder, links as their target."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                out[os.path.relpath(path, folder)] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    out[os.path.relpath(path, folder)] = f.read()
            else:
                out[os.path.relpath(path, folder)] = "directory"
    return out


_WRITE_IN_CHILD = """
import sys
from fusedmlp import datasets
try:
    datasets.write_planar(sys.argv[1], sys.argv[2], m=100_000)
except ValueError as e:
    print(e)
    sys.exit(3)
"""

_ONE_FILE = {  # (x_path, y_path) relative to the folder, and whether same.npy exists
    "same": ("same.npy", "same.npy", False),
    "absolute": ("same.npy", "{folder}/same.npy", False),
    "dotdot": ("./a/../same.npy", "same.npy", False),
    "dotdot-existing": ("same.npy", "a/../same.npy", True),
    "symlink": ("link.npy", "same.npy", True),
    "dangling-symlink": ("same.npy", "link.npy", False),
    "hardlink": ("same.npy", "hard.npy", True),
}


@pytest.mark.parametrize("case", list(_ONE_FILE))
def test_write_planar_refuses_one_file_for_x_and_y(tmp_path, case):
    # run in a child process: two maps of one file used to kill the writer with SIGBUS
    # (leaving its .partial file behind), and pytest must survive a regression
    x, y, exists = _ONE_FILE[case]
    y = y.format(folder=tmp_path)
    (tmp_path / "a").mkdir()
    if exists:
        np.save(tmp_path / "same.npy", np.arange(5.0))
    if "symlink" in case:
        os.symlink("same.npy", tmp_path / "link.npy")
    if case == "hardlink":
        os.link(tmp_path / "same.npy", tmp_path / "hard.npy")
    before = _listing(tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", _WRITE_IN_CHILD, x, y],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 3, (
        f"write_planar({x!r}, {y!r}) ended with {child.returncode} (-7: SIGBUS, 0: no error)"
        f"\n{child.stderr[-3000:]}"
    )
    assert f"x_path {x!r} and y_path {y!r} are the same file" in child.stdout
    assert _listing(tmp_path) == before  # raised before anything was created


@pytest.mark.parametrize("failure", ["fill", "mid-fill", "interrupt", "preallocate"])
def test_write_planar_failure_leaves_no_partial_file(tmp_path, monkeypatch, failure):
    X, Y = datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", 3000, seed=1)
    old = np.array(X), np.array(Y)
    before = _listing(tmp_path)
    calls = []

    def fail(*args, **kw):
        calls.append(1)
        if failure != "mid-fill" or len(calls) == 3:  # mid-fill: after two chunks
            raise (KeyboardInterrupt if failure == "interrupt" else OSError)("injected")
        return release(*args, **kw)

    release = outofcore.release
    if failure == "mid-fill":
        monkeypatch.setattr(outofcore, "release", fail)
    elif failure == "preallocate":
        monkeypatch.setattr(outofcore, "preallocate", fail)
    else:
        monkeypatch.setattr(_planar_file, "_fill_planar", fail)
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError, match="injected"):
        datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", 3000, seed=2, chunk=500)
    assert calls and _listing(tmp_path) == before  # no .partial file, old X and Y kept
    assert bits(X) == bits(old[0]) and bits(Y) == bits(old[1])  # and their maps intact


def test_write_planar_refuses_a_directory_before_writing(tmp_path):
    datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", 1000, seed=1)
    (tmp_path / "d").mkdir()
    before = _listing(tmp_path)
    # the rename over a directory used to fail after X had already been replaced
    message = f"y_path {str(tmp_path / 'd')!r} is a directory; give a file in it, e.g. "
    with pytest.raises(ValueError, match=re.escape(message + repr(str(tmp_path / "d" / "Y.npy")))):
        datasets.write_planar(tmp_path / "X.npy", tmp_path / "d", 1000, seed=2)
    assert _listing(tmp_path) == before


# ---------------------------------------------------------------------------
# FileWatch


TAIL = " Do not change a data file while arrays mapped from it are in use."


def test_filewatch_sees_a_file_modified_in_place(pair, tmp_path):
    X, Y = pair(1000, dtype="float64")
    watch = outofcore.FileWatch(X=X, Y=Y)
    assert watch and watch.changed() is None
    assert watch.files == {"X": str(tmp_path / "X.npy"), "Y": str(tmp_path / "Y.npy")}
    assert (
        repr(watch) == f"FileWatch(X={str(tmp_path / 'X.npy')!r}, Y={str(tmp_path / 'Y.npy')!r})"
    )
    size = os.path.getsize(tmp_path / "X.npy")
    time.sleep(0.05)  # past the file system's timestamp granularity (a clock tick)
    with open(tmp_path / "X.npy", "r+b") as f:  # X[1, 7] = 42, same size
        f.seek(X.offset + (1000 + 7) * 8)
        f.write(np.float64(42.0).tobytes())
    assert os.path.getsize(tmp_path / "X.npy") == size
    assert float(X[1, 7]) == 42.0  # the map silently reads the new data
    assert watch.changed() == (
        f"X: file {str(tmp_path / 'X.npy')!r} was modified: the data read from it has "
        "changed." + TAIL
    )


def test_filewatch_sees_a_truncated_or_grown_file(pair, tmp_path):
    X, Y = pair(1000, dtype="float64")
    watch = outofcore.FileWatch(X=X, Y=Y[:, 10:])  # a view of a map is watched too
    assert watch.files == {"X": str(tmp_path / "X.npy"), "Y": str(tmp_path / "Y.npy")}
    # reading Y from here on would kill the process: it is never touched again
    os.truncate(tmp_path / "Y.npy", 100)
    assert watch.changed() == (
        f"Y: file {str(tmp_path / 'Y.npy')!r} changed size: 8128 -> 100 bytes (truncated; "
        "reading the lost pages kills the process: SIGBUS)." + TAIL
    )  # 128 bytes of header + 1000 float64
    # a watch begun after the truncation sees that the file is shorter than its map
    assert outofcore.FileWatch(Y=Y).changed() == (
        f"Y: file {str(tmp_path / 'Y.npy')!r} is 100 bytes, shorter than its map (8128 "
        "bytes): it was truncated; reading the lost pages kills the process: SIGBUS." + TAIL
    )
    watch = outofcore.FileWatch(X=X)
    os.truncate(tmp_path / "X.npy", 16128 + 4096)
    assert watch.changed() == (
        f"X: file {str(tmp_path / 'X.npy')!r} changed size: 16128 -> 20224 bytes (its "
        "contents may have changed too)." + TAIL
    )


def test_filewatch_sees_a_file_replaced_or_deleted(pair, tmp_path):
    X, Y = pair(1000, seed=1)
    old = np.array(X)
    watch_x, watch_y = outofcore.FileWatch(X=X), outofcore.FileWatch(Y=Y)
    pair(1000, seed=2)  # renames new files over X.npy and Y.npy
    assert watch_x.changed() == (
        f"X: file {str(tmp_path / 'X.npy')!r} was replaced by another file; the map still "
        "reads the old data." + TAIL
    )
    assert bits(X) == bits(old)
    X, Y = outofcore.open_pair(tmp_path / "X.npy", tmp_path / "Y.npy")
    watch_x, watch_y = outofcore.FileWatch(X=X), outofcore.FileWatch(Y=Y)
    np.save(tmp_path / "new.npy", np.zeros((2, 1000), np.float32))  # same size
    os.replace(tmp_path / "new.npy", tmp_path / "X.npy")
    os.remove(tmp_path / "Y.npy")
    assert "X: file" in watch_x.changed() and "was replaced by another file" in watch_x.changed()
    assert watch_y.changed() == (
        f"Y: file {str(tmp_path / 'Y.npy')!r} was deleted or renamed; the map still reads "
        "the old data." + TAIL
    )


def test_filewatch_ignores_arrays_in_memory(pair):
    X, Y = pair(100)
    watch = outofcore.FileWatch(X=np.array(X), Y=[1.0], Z=X + 1)
    assert not watch and watch.files == {} and repr(watch) == "FileWatch()"
    assert watch.changed() is None
    assert list(outofcore.FileWatch(X=X, Y=np.array(Y)).files) == ["X"]


def test_filewatch_stats_each_file_once(pair, tmp_path, monkeypatch):
    X, Y = pair(100, dtype="float64")
    npz = str(tmp_path / "d.npz")
    np.savez(npz, X=X, Y=Y)
    Xz, Yz = outofcore.open_npz(npz)
    watch = outofcore.FileWatch(X=Xz, Y=Yz, Z=X)
    assert watch.files == {"X": npz, "Y": npz, "Z": str(tmp_path / "X.npy")}
    stat, seen = os.stat, []
    monkeypatch.setattr(os, "stat", lambda path, *a, **kw: seen.append(path) or stat(path))
    assert watch.changed() is None
    monkeypatch.undo()
    assert sorted(seen) == sorted([npz, str(tmp_path / "X.npy")])
    os.truncate(npz, 200)  # both members lost: the line names both arrays
    assert watch.changed().startswith(f"X and Y: file {npz!r} changed size: ")


# ---------------------------------------------------------------------------
# train on memory maps


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "m,backend",
    [(5000, "numba"), (100_000, "numba"), (3000, "numpy")],
    ids=["serial", "parallel", "numpy"],
)
def test_train_on_memmap_is_bit_identical(pair, m, backend, dtype):
    if backend == "numba":
        path = "serial" if m <= kernels.SERIAL_MAX_M else "parallel"
        assert path == ("serial" if m == 5000 else "parallel")
    X, Y = pair(m, dtype=dtype, chunk=4096)
    kw = dict(epochs=5, seed=2, lr=0.2, backend=backend)
    on_disk = fusedmlp.train(X, Y, **kw)
    in_memory = fusedmlp.train(np.array(X), np.array(Y), **kw)
    assert on_disk.dtype == dtype
    assert same_result(on_disk, in_memory)


def test_train_minibatch_on_memmap_is_bit_identical(pair):
    X, Y = pair(3000)
    kw = dict(epochs=3, seed=2, batch_size=256)
    assert same_result(fusedmlp.train(X, Y, **kw), fusedmlp.train(np.array(X), np.array(Y), **kw))


def test_train_does_not_copy_the_data(pair):
    X, Y = pair(10**6)  # 12 MB of float32
    fusedmlp.train(X[:, :1000], Y[:, :1000], epochs=1, seed=2)  # compile outside the trace
    tracemalloc.start()
    try:
        fusedmlp.train(X, Y, epochs=2, seed=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes // 8  # the validation scan's slices, never a copy of X or Y


def test_read_only_arrays_reach_the_kernels_in_place(pair):
    X, Y = pair(20_000)
    p = {k: v.astype(np.float32) for k, v in fusedmlp.init_params(2, 4, 1, seed=0).items()}
    *_, Xk, Yk = _compiled._prepare(p, X, Y)
    assert np.shares_memory(Xk, X) and np.shares_memory(Yk, Y) and not Xk.flags.writeable


def test_predict_proba_on_memmap(pair):
    X, Y = pair(30_000)
    res = fusedmlp.train(np.array(X[:, ::10]), np.array(Y[:, ::10]), epochs=20, seed=2)
    assert bits(res.predict_proba(X)) == bits(res.predict_proba(np.array(X)))


def test_nan_in_the_file_is_found_with_its_position(tmp_path):
    X, Y = datasets.write_planar(tmp_path / "X.npy", tmp_path / "Y.npy", 600_000)
    del X
    W = np.load(tmp_path / "X.npy", mmap_mode="r+")
    W[1, 543_210] = np.nan
    W.flush()
    del W
    X, Y = outofcore.open_pair(tmp_path / "X.npy", tmp_path / "Y.npy")
    with pytest.raises(ValueError, match=r"X\[1, 543210\] = nan"):
        fusedmlp.train(X, Y, epochs=1, seed=2)
