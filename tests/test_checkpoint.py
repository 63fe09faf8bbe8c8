"""Checkpoint files: what a save does to the target, check_target, and the shared rules.

The tests run as root, where permission checks pass that fail for everyone else: the
unwritable targets here are unwritable for root too (mode bits checked by hand, /proc,
a folder that is really a file, special files).
"""

import errno
import os
import socket
import stat
import sys

import numpy as np
import pytest

import fusedmlp
from fusedmlp.checkpoint import check_target

NAMES = ("W1", "b1", "W2", "b2")
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _arrays(path) -> dict:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _write(path, arrays: dict, config_text: str) -> None:
    """A checkpoint written by hand, as save lays it out (config as a numpy string)."""
    np.savez(path, **{**arrays, "config": np.array(config_text)})


def _listing(*folders) -> dict:
    return {str(f): sorted(os.listdir(f)) for f in folders}


def _no_temporary_named(message: str) -> bool:
    return ".tmp" not in message and ".probe" not in message


# ---------------------------------------------------------------------------
# what a save does to what is already there


def test_symlink_is_written_through(runs, tmp_path, monkeypatch):
    old, new = runs
    data, links = tmp_path / "data", tmp_path / "links"
    data.mkdir()
    links.mkdir()
    real = data / "m.npz"
    fusedmlp.save(real, old)
    link = links / "m.npz"
    link.symlink_to(os.path.join("..", "data", "m.npz"))  # relative, as ln -s makes them
    renames = []
    replace = os.replace

    def spy(src, dst):
        renames.append((os.path.realpath(os.path.dirname(src)), os.path.realpath(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    assert fusedmlp.save(link, new) == link
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "data", "m.npz")
    assert fusedmlp.load(real).epochs == 7 and fusedmlp.load(link).epochs == 7
    # the temporary file was made in the real file's folder and renamed onto the real file
    assert renames == [(os.path.realpath(data), os.path.realpath(real))]
    assert _listing(data, links) == {str(data): ["m.npz"], str(links): ["m.npz"]}


def test_links_chained_and_dangling_are_followed(runs, tmp_path):
    old, new = runs
    real = tmp_path / "real.npz"
    fusedmlp.save(real, old)
    (tmp_path / "one.npz").symlink_to("real.npz")
    (tmp_path / "two.npz").symlink_to(tmp_path / "one.npz")  # absolute, to a link
    fusedmlp.save(tmp_path / "two.npz", new)
    assert (tmp_path / "two.npz").is_symlink() and (tmp_path / "one.npz").is_symlink()
    assert fusedmlp.load(real).epochs == 7
    # a link to a file not there yet: the file is created where the link points
    (tmp_path / "later.npz").symlink_to("made.npz")
    assert check_target(tmp_path / "later.npz") == tmp_path / "made.npz"
    fusedmlp.save(tmp_path / "later.npz", old)
    assert (tmp_path / "later.npz").is_symlink()
    assert fusedmlp.load(tmp_path / "made.npz").epochs == 3


def test_symlink_loop_is_refused(runs, tmp_path):
    (tmp_path / "a.npz").symlink_to("b.npz")
    (tmp_path / "b.npz").symlink_to("a.npz")
    with pytest.raises(OSError, match="symbolic links loop") as err:
        fusedmlp.save(tmp_path / "a.npz", runs[0])
    assert err.value.errno == errno.ELOOP
    assert (tmp_path / "a.npz").is_symlink() and (tmp_path / "b.npz").is_symlink()


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o555, 0o000])
def test_file_without_write_bits_is_refused_even_for_root(runs, tmp_path, mode):
    old, new = runs
    path = tmp_path / "m.npz"
    fusedmlp.save(path, old)
    before = path.read_bytes()
    path.chmod(mode)
    for attempt in (lambda: fusedmlp.save(path, new), lambda: check_target(path)):
        with pytest.raises(PermissionError, match="read-only") as err:
            attempt()
        assert str(path) in str(err.value) and f"chmod u+w {path}" in str(err.value)
        assert "another name" in str(err.value) and err.value.errno == errno.EACCES
    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["m.npz"]


def test_read_only_file_behind_a_link_is_named(runs, tmp_path):
    real = tmp_path / "real.npz"
    fusedmlp.save(real, runs[0])
    real.chmod(0o444)
    (tmp_path / "link.npz").symlink_to("real.npz")
    with pytest.raises(PermissionError) as err:
        fusedmlp.save(tmp_path / "link.npz", runs[1])
    message = str(err.value)
    assert f"{tmp_path / 'link.npz'} (a link to {real})" in message
    assert f"chmod u+w {real}" in message
    assert fusedmlp.load(real).epochs == 3


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604, 0o620, 0o660, 0o777])
def test_replaced_file_keeps_its_mode(runs, tmp_path, mode):
    path = tmp_path / "m.npz"
    fusedmlp.save(path, runs[0])
    path.chmod(mode)
    fusedmlp.save(path, runs[1])
    assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(mode)
    assert fusedmlp.load(path).epochs == 7


def test_new_file_gets_the_umask(runs, tmp_path):
    before = os.umask(0o077)
    try:
        fusedmlp.save(tmp_path / "private.npz", runs[0])
    finally:
        os.umask(before)
    assert oct(stat.S_IMODE((tmp_path / "private.npz").stat().st_mode)) == oct(0o600)
    fusedmlp.save(tmp_path / "default.npz", runs[0])
    assert stat.S_IMODE((tmp_path / "default.npz").stat().st_mode) == 0o666 & ~_umask()


@pytest.mark.skipif(not ROOT, reason="only root may give a file to another owner")
def test_replaced_file_keeps_its_owner(runs, tmp_path):
    path = tmp_path / "m.npz"
    fusedmlp.save(path, runs[0])
    os.chown(path, 4321, 4322)
    path.chmod(0o640)
    fusedmlp.save(path, runs[1])
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o640)


def test_hard_links_are_broken(runs, tmp_path):
    # documented: the rename gives the name a new file; other names keep the old one
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    fusedmlp.save(a, runs[0])
    os.link(a, b)
    fusedmlp.save(a, runs[1])
    assert fusedmlp.load(a).epochs == 7 and fusedmlp.load(b).epochs == 3
    assert a.stat().st_nlink == 1 and b.stat().st_nlink == 1


def _save(res):
    return lambda path: fusedmlp.save(path, res)


def _make_fifo(path):
    os.mkfifo(path)
    return stat.S_ISFIFO


def _make_socket(path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path.name)  # relative (the test runs in tmp_path): AF_UNIX paths are short
    s.close()
    return stat.S_ISSOCK


def _make_device(path):
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD)")
    return stat.S_ISCHR


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
@pytest.mark.parametrize(
    "make, kind",
    [(_make_fifo, "named pipe"), (_make_socket, "socket"), (_make_device, "character device")],
)
@pytest.mark.parametrize("how", ["save", "check_target"])
def test_special_files_are_refused(runs, tmp_path, monkeypatch, make, kind, how):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "m.npz"
    still = make(path)
    attempt = _save(runs[0]) if how == "save" else check_target
    with pytest.raises(OSError, match=f"it is a {kind}.*not a regular file") as err:
        attempt(path)
    assert str(path) in str(err.value)
    assert still(os.lstat(path).st_mode)  # not renamed over
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_dev_null_is_refused_and_never_touched(runs, monkeypatch):
    # guards first: were the check ever lost, this test must not replace /dev/null
    def forbidden(*a, **k):
        raise AssertionError("save tried to write beside or over /dev/null")

    monkeypatch.setattr(os, "replace", forbidden)
    monkeypatch.setattr(os, "open", forbidden)
    for attempt in (_save(runs[0]), check_target):
        with pytest.raises(OSError, match="/dev/null: it is a character device"):
            attempt("/dev/null")


def test_directory_targets_are_refused(runs, tmp_path):
    (tmp_path / "d.npz").mkdir()
    (tmp_path / "to_dir.npz").symlink_to("d.npz")
    for target in (tmp_path / "d.npz", tmp_path / "to_dir.npz"):
        for attempt in (_save(runs[0]), check_target):
            with pytest.raises(IsADirectoryError, match="it is a directory; name a file"):
                attempt(target)
    assert (tmp_path / "d.npz").is_dir() and os.listdir(tmp_path / "d.npz") == []


# ---------------------------------------------------------------------------
# check_target, and errors that name the target


def test_check_target_leaves_nothing_behind(tmp_path):
    assert check_target(tmp_path / "new.npz") == tmp_path / "new.npz"
    assert check_target(str(tmp_path / "new.npz")) == tmp_path / "new.npz"
    (tmp_path / "old.npz").write_bytes(b"anything")
    assert check_target(tmp_path / "old.npz") == tmp_path / "old.npz"
    assert sorted(os.listdir(tmp_path)) == ["old.npz"]
    assert (tmp_path / "old.npz").read_bytes() == b"anything"


def test_check_target_probes_the_folder(tmp_path, monkeypatch):
    # the probe really creates a file in the target's folder, and removes it
    made = []
    real_open = os.open

    def spy(name, flags, *args):
        fd = real_open(name, flags, *args)
        made.append((os.path.dirname(name), os.path.basename(name), os.path.exists(name)))
        return fd

    monkeypatch.setattr(os, "open", spy)
    check_target(tmp_path / "m.npz")
    assert len(made) == 1 and made[0][0] == str(tmp_path) and made[0][2]
    assert made[0][1].startswith(".m.npz.")  # hidden, and unique
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
@pytest.mark.parametrize("how", ["save", "check_target"])
def test_a_folder_that_takes_no_files_is_found_and_named(runs, how):
    # /proc is a folder, and os.access says root may write there, but nothing can be
    # created in it: only creating a file finds that out
    target = "/proc/fusedmlp-checkpoint-test.npz"
    assert os.access("/proc", os.W_OK) or not ROOT
    attempt = _save(runs[0]) if how == "save" else check_target
    with pytest.raises(FileNotFoundError) as err:
        attempt(target)
    message = str(err.value)
    assert message.startswith(f"cannot save to {target}: no file can be created in")
    assert "accepts no new files" in message and "somewhere else" in message
    assert _no_temporary_named(message)
    assert err.value.errno == errno.ENOENT
    assert isinstance(err.value.__cause__, FileNotFoundError)


@pytest.mark.parametrize("how", ["save", "check_target"])
def test_a_folder_that_is_a_file(runs, tmp_path, how):
    attempt = _save(runs[0]) if how == "save" else check_target
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    for target in (blocker / "m.npz", blocker / "deeper" / "m.npz"):
        with pytest.raises(NotADirectoryError) as err:
            attempt(target)
        message = str(err.value)
        assert message.startswith(f"cannot save to {target}: {blocker} is a file, not a folder")
        assert _no_temporary_named(message)
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("how", ["save", "check_target"])
def test_a_missing_folder(runs, tmp_path, how):
    attempt = _save(runs[0]) if how == "save" else check_target
    with pytest.raises(FileNotFoundError, match="the folder .*nowhere does not exist; create"):
        attempt(tmp_path / "nowhere" / "m.npz")
    # a link into a missing folder names both the link and where it points
    (tmp_path / "link.npz").symlink_to(tmp_path / "gone" / "m.npz")
    with pytest.raises(FileNotFoundError) as err:
        attempt(tmp_path / "link.npz")
    assert f"{tmp_path / 'link.npz'} (a link to {tmp_path / 'gone' / 'm.npz'})" in str(err.value)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device", "/x/.m.npz.0123abcd.tmp"),
        PermissionError(errno.EACCES, "Permission denied", "/x/.m.npz.0123abcd.tmp"),
        OSError(errno.EIO, "Input/output error", "/x/.m.npz.0123abcd.tmp"),
    ],
)
def test_write_errors_name_the_target(runs, tmp_path, monkeypatch, exc):
    path = tmp_path / "m.npz"
    fusedmlp.save(path, runs[0])

    def fail(*a, **k):
        raise exc

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError) as err:
        fusedmlp.save(path, runs[1])
    assert type(err.value) is type(exc) and err.value.errno == exc.errno
    assert err.value.__cause__ is exc
    message = str(err.value)
    assert message.startswith(f"cannot save to {path}: {exc.strerror} while writing")
    assert _no_temporary_named(message) and f"{path} is unchanged" in message
    if exc.errno == errno.ENOSPC:
        assert "free some space" in message
    assert fusedmlp.load(path).epochs == 3
    assert os.listdir(tmp_path) == ["m.npz"]


def test_rename_and_create_errors_name_the_target(runs, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    real_open = os.open

    def no_temporary(name, flags, *args):
        if str(name).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, *args)

    monkeypatch.setattr(os, "open", no_temporary)
    with pytest.raises(PermissionError) as err:
        fusedmlp.save(path, runs[0])
    assert str(err.value).startswith(f"cannot save to {path}: Permission denied while creating")
    assert _no_temporary_named(str(err.value)) and "chmod u+w" in str(err.value)
    monkeypatch.setattr(os, "open", real_open)

    def busy(src, dst):
        raise OSError(errno.EBUSY, "Device or resource busy", src, dst)

    monkeypatch.setattr(os, "replace", busy)
    with pytest.raises(OSError) as err:
        fusedmlp.save(path, runs[0])
    assert err.value.errno == errno.EBUSY
    assert str(err.value).startswith(f"cannot save to {path}: Device or resource busy while ")
    assert _no_temporary_named(str(err.value))
    assert os.listdir(tmp_path) == []
