"""Out of core, continued: npz members mapped in place, and the pages of mapped data
(release, residency, advice, trimming, memory and disk checks). The helpers are
test_outofcore.py's; the ``pair`` fixture is in conftest.py."""

import doctest
import re
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from test_outofcore import LINUX, bits, same_result

import fusedmlp
from fusedmlp import datasets, outofcore

# ---------------------------------------------------------------------------
# npz


def test_npz_members_are_mapped(pair, tmp_path):
    X, Y = pair(5000, dtype="float64")
    np.savez(tmp_path / "d.npz", X=X, Y=Y, F=np.asfortranarray(np.arange(6.0).reshape(2, 3)))
    Xz, Yz, F = outofcore.open_npz(tmp_path / "d.npz", keys=("X", "Y", "F"))
    assert all(isinstance(a, np.memmap) and not a.flags.writeable for a in (Xz, Yz, F))
    assert bits(Xz) == bits(X) and bits(Yz) == bits(Y)
    assert F.flags.f_contiguous and F.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    kw = dict(epochs=3, seed=2)
    in_memory = fusedmlp.train(np.array(X), np.array(Y), **kw)
    assert same_result(fusedmlp.train(Xz, Yz, **kw), in_memory)


def test_compressed_npz_is_refused(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", X=np.ones((2, 10)), Y=np.ones((1, 10)))
    with pytest.raises(ValueError, match=r"'X' is compressed \(deflate\).*np\.savez \(not"):
        outofcore.open_npz(tmp_path / "c.npz")


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((2, 10)))
    with pytest.raises(ValueError, match=r"no member 'Y'; it holds \['X'\]"):
        outofcore.open_npz(tmp_path / "d.npz")
    with pytest.raises(ValueError, match="open_npz"):
        outofcore.open_pair(tmp_path / "d.npz", tmp_path / "d.npz")
    # a member whose recorded size disagrees with its header
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as zf:
        zf.writestr("X.npy", _npy_bytes(np.ones((2, 10)))[:-8])
        zf.writestr("Y.npy", _npy_bytes(np.ones((1, 10))))
    with pytest.raises(ValueError, match="looks damaged"):
        outofcore.open_npz(tmp_path / "bad.npz")


@pytest.mark.parametrize("chunk", [None, 4097])  # 4097: sums across chunk boundaries
def test_open_npz_verify_finds_a_flipped_byte(pair, tmp_path, monkeypatch, chunk):
    if chunk is not None:
        monkeypatch.setattr(outofcore, "_CRC_CHUNK", chunk)
    X, Y = pair(5000, dtype="float64")
    path = tmp_path / "d.npz"
    np.savez(path, X=X, Y=Y, E=np.empty((0, 3)))
    Xz, Yz, E = outofcore.open_npz(path, keys=("X", "Y", "E"), verify=True)  # intact
    assert bits(Xz) == bits(X) and bits(Yz) == bits(Y) and E.shape == (0, 3)
    where = Xz.offset + 12345  # a byte inside X's data
    del Xz, Yz
    with open(path, "r+b") as f:
        f.seek(where)
        byte = f.read(1)[0]
        f.seek(where)
        f.write(bytes([byte ^ 0x10]))
    # a memory map skips the zip's CRC check: the damage comes through silently
    Xz, Yz = outofcore.open_npz(path)
    diff = np.frombuffer(bits(Xz), np.uint8) != np.frombuffer(bits(X), np.uint8)
    assert np.flatnonzero(diff).tolist() == [12345] and bits(Yz) == bits(Y)
    with np.load(path) as z, pytest.raises(zipfile.BadZipFile, match="CRC"):
        z["X"]  # np.load reads through zipfile, which checks it
    with pytest.raises(
        ValueError, match=re.escape(f"{str(path)!r} member 'X' is damaged: the CRC")
    ):
        outofcore.open_npz(path, verify=True)
    (Yv,) = outofcore.open_npz(path, keys=("Y",), verify=True)  # Y itself is intact
    assert bits(Yv) == bits(Y)


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_open_npz_verify_memory_stays_bounded(pair, tmp_path):
    X, Y = pair(10**6, dtype="float64")  # X is 16 MB
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    tracemalloc.start()
    try:
        Xz, Yz = outofcore.open_npz(tmp_path / "d.npz", verify=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # nothing of the data's size is copied
    assert outofcore.resident_bytes(Xz) == 0  # and the summed pages were unmapped


def _npy_bytes(a):
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# pages and memory


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_release_and_resident_bytes(pair):
    X, Y = pair(10**6)  # X is 8 MB
    assert outofcore.resident_bytes(X) == 0
    assert float(X.sum(dtype=np.float64)) == float(np.array(X).sum(dtype=np.float64))
    assert outofcore.resident_bytes(X) >= X.nbytes
    assert outofcore.release(X, np.ones(3), X[1, 10:20]) == 2  # plain arrays are skipped
    assert outofcore.resident_bytes(X) == 0
    assert outofcore.release(Y, evict=True) == 1


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_copy_on_write_maps_are_not_released(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(4096))
    a = np.load(tmp_path / "a.npy", mmap_mode="c")
    a[:] = 1.0  # private changes: released they would be lost
    assert outofcore.release(a) == 0
    assert float(a.sum()) == 4096.0


def test_is_mapped(pair, tmp_path):
    X, Y = pair(1000)
    assert outofcore.is_mapped(X) and outofcore.is_mapped(X[1, 5:]) and outofcore.is_mapped(Y.T)
    assert not outofcore.is_mapped(np.array(X)) and not outofcore.is_mapped([1.0])
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    assert all(outofcore.is_mapped(a) for a in outofcore.open_npz(tmp_path / "d.npz"))


def test_advise(pair):
    X, Y = pair(1000)
    assert outofcore.advise(X, Y, np.ones(3), how="sequential") == 2
    assert outofcore.advise(X, how="normal") == 1
    with pytest.raises(ValueError, match="unknown advice 'fast'"):
        outofcore.advise(X, how="fast")


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_trimming_bounds_resident_pages(pair):
    X, Y = pair(10**6)
    with outofcore.trimming(X, Y, interval=0.02) as trim:
        total = float(X.sum(dtype=np.float64))
        after = trim.count
        deadline = time.monotonic() + 10
        while trim.count < after + 2 and time.monotonic() < deadline:
            time.sleep(0.005)  # two more releases: one surely started after the sum
        assert outofcore.resident_bytes(X) == 0
        assert float(X.sum(dtype=np.float64)) == total  # still readable
    assert outofcore.resident_bytes(X) == 0
    with pytest.raises(ValueError, match="interval"):
        with outofcore.trimming(X, interval=0):
            pass


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_memory_status():
    s = outofcore.memory_status()
    assert {"VmRSS", "VmHWM", "RssAnon", "RssFile"} <= set(s)
    assert s["VmHWM"] >= s["VmRSS"] > 0
    assert s["RssAnon"] + s["RssFile"] <= s["VmRSS"] + 1024 * 1024
    big = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    assert outofcore.memory_status()["RssAnon"] >= s["RssAnon"] + big.nbytes // 2
    del big
    if outofcore.reset_peak():
        assert outofcore.memory_status()["VmHWM"] < s["VmHWM"] + 32 * 2**20


def test_check_disk(tmp_path):
    free = outofcore.check_disk(tmp_path, 10)
    assert free > 0
    with pytest.raises(OSError, match="not enough disk space"):
        outofcore.check_disk(tmp_path, 10**20)


def test_docstring_examples():
    result = doctest.testmod(outofcore, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0


def test_copies_of_mapped_data_are_announced(tmp_path):
    # the three places where training would copy a whole memory-mapped array say so
    X, Y = datasets.planar(m=1000)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "Y64.npy", Y)  # float64 labels for float32 data
    np.save(tmp_path / "XT.npy", np.ascontiguousarray(X.T))  # (m, 2) file
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    Ym = np.load(tmp_path / "Y64.npy", mmap_mode="r")
    with pytest.warns(ResourceWarning, match="Y is memory-mapped but of dtype float64"):
        fusedmlp.train(Xm, Ym, epochs=1, seed=2)
    XT = np.load(tmp_path / "XT.npy", mmap_mode="r").T
    with pytest.warns(ResourceWarning, match="X is memory-mapped but not C-contiguous"):
        fusedmlp.train(XT, Y, epochs=1, seed=2)
    np.save(tmp_path / "Xi.npy", np.round(X * 10).astype(np.int32))
    with pytest.warns(ResourceWarning, match="X is memory-mapped but of dtype int32"):
        fusedmlp.train(np.load(tmp_path / "Xi.npy", mmap_mode="r"), Y, epochs=1, seed=2)


def test_open_npz_refuses_a_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"plain text, not a zip archive")
    with pytest.raises(ValueError, match=r"data\.npz is not an \.npz \(zip\) file"):
        outofcore.open_npz(path)
