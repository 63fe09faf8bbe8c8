"""Writing a file safely: check the target first, then write it whole or not at all.

``check_target`` finds, before any work is done, a target that could not be written
(a missing folder, a read-only file system, a directory or special file in the way, a
read-only file); ``write_atomically`` writes a temporary file beside the target, flushes
it to disk and renames it over the target, so that an interrupted write leaves the old
file (or none), never half a file. Both follow a symbolic link to the file it names and
keep an existing file's permission bits (and, where allowed, its owner). Checkpoints
(``fusedmlp.save``) and the command line's outputs are written this way.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

_MAX_LINKS = 40  # as the kernel's limit on symbolic links followed in one lookup


def check_target(path: str | os.PathLike) -> Path:
    """Check that a file (a checkpoint, by ``save``) could be written to ``path``, leaving
    nothing behind.

    Call it before a long computation whose result is to be saved, so that a bad output
    path fails at once rather than after training. ``save`` runs the same checks.

    Checked: the folder exists and is a folder; the target, if it exists, is a regular
    file (not a directory, pipe, device or socket) with a write permission bit and
    writable by this user; and a file can actually be created in the folder (a probe
    file with a unique hidden name is created and removed again), which catches
    read-only file systems and folders without write permission. A symbolic link is
    followed: the checks apply to the file it points to and its folder.

    Parameters
    ----------
    path : str or PathLike
        The checkpoint file to be written.

    Returns
    -------
    Path
        The file ``save`` would create or replace: ``path`` itself, or the file it points
        to when ``path`` is a symbolic link.

    Raises
    ------
    FileNotFoundError
        The folder does not exist (or, as in ``/proc``, accepts no new files).
    NotADirectoryError
        Part of the folder's path is a regular file.
    IsADirectoryError
        ``path`` is a directory.
    PermissionError
        The file is read-only (no write bit: ``chmod u+w`` it or pick another name), or
        this user may not write it or create files in its folder.
    OSError
        ``path`` is a pipe, device or socket, its folder is on a read-only file system,
        or its symbolic links loop. Every message names ``path`` (and the file a link
        points to), never a temporary name, and says what to do.

    Examples
    --------
    >>> import os, tempfile
    >>> from fusedmlp.checkpoint import check_target
    >>> folder = tempfile.mkdtemp()
    >>> check_target(os.path.join(folder, "run.npz")).name
    'run.npz'
    >>> os.listdir(folder)  # the probe is gone
    []
    >>> check_target(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    IsADirectoryError: cannot save to ...: it is a directory; name a file.
    """
    return _target(path)[0]


def _target(path) -> tuple[Path, os.stat_result | None]:
    """check_target's work: the real file, and its stat when it exists."""
    path = Path(path)
    real = _follow(path)
    where = _where(path, real)
    folder = real.parent
    try:
        folder_st = os.stat(folder)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise _missing_folder(where, folder) from exc
    except OSError as exc:
        raise _like(
            exc,
            f"cannot save to {where}: cannot look into the folder {folder} "
            f"({exc.strerror}); {_fix(exc, folder)}",
        ) from exc
    if not stat.S_ISDIR(folder_st.st_mode):
        raise _error(
            NotADirectoryError,
            f"cannot save to {where}: {folder} is a file, not a folder; "
            "choose a path in an existing folder.",
        )
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _like(
            exc, f"cannot save to {where}: cannot look at it ({exc.strerror}); {_fix(exc, folder)}"
        ) from exc
    if st is not None:
        _check_existing(where, real, st)
    _probe(where, folder, real.name)
    if st is not None and not os.access(real, os.W_OK):
        # the mode bits allow writing, but not for this user (someone else's file)
        raise _error(
            PermissionError,
            f"cannot save to {where}: you may not write to it (mode "
            f"{oct(stat.S_IMODE(st.st_mode))}, owner uid {st.st_uid}); save under "
            "another name or ask its owner.",
        )
    return real, st


def _follow(path: Path) -> Path:
    """path with its symbolic links followed (only the last component: the file)."""
    real = path
    for _ in range(_MAX_LINKS):
        try:
            link = os.readlink(real)
        except OSError:  # not a link, or not there: the stat checks say which
            return real
        real = real.parent / link  # an absolute link replaces the parent
    exc = OSError(
        f"cannot save to {path}: its symbolic links loop (more than {_MAX_LINKS} in a row); "
        "fix the links or save under another name."
    )
    exc.errno = errno.ELOOP
    raise exc


_ERRNO = {
    FileNotFoundError: errno.ENOENT,
    NotADirectoryError: errno.ENOTDIR,
    IsADirectoryError: errno.EISDIR,
    PermissionError: errno.EACCES,
}


def _error(kind: type, message: str) -> OSError:
    """kind(message) with the errno the system would give it (callers may test errno)."""
    exc = kind(message)
    exc.errno = _ERRNO.get(kind)
    return exc


def _where(path: Path, real: Path) -> str:
    return str(path) if real == path else f"{path} (a link to {real})"


def _missing_folder(where: str, folder: Path) -> OSError:
    """The folder is not there: name the part that is missing, or the file in the way."""
    for part in [*reversed(folder.parents), folder]:
        if part.exists() and not part.is_dir():
            return _error(
                NotADirectoryError,
                f"cannot save to {where}: {part} is a file, not a folder; "
                "choose a path in an existing folder.",
            )
    return _error(
        FileNotFoundError,
        f"cannot save to {where}: the folder {folder} does not exist; create it first.",
    )


_SPECIAL = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link that cannot be followed",
}


def _check_existing(where: str, real: Path, st: os.stat_result) -> None:
    """Refuse a directory, a special file, or a file without any write bit."""
    if stat.S_ISDIR(st.st_mode):
        raise _error(IsADirectoryError, f"cannot save to {where}: it is a directory; name a file.")
    if not stat.S_ISREG(st.st_mode):
        kind = _SPECIAL.get(stat.S_IFMT(st.st_mode), "a special file")
        raise OSError(
            f"cannot save to {where}: it is {kind}, not a regular file; nothing is ever written "
            "over one: name a regular file."
        )
    if st.st_mode & 0o222 == 0:
        # checked by hand: os.access says yes to root, and editors refuse even for root
        raise _error(
            PermissionError,
            f"cannot save to {where}: the file is read-only (mode "
            f"{oct(stat.S_IMODE(st.st_mode))}); make it writable (chmod u+w {real}) or "
            "save under another name.",
        )


def _probe(where: str, folder: Path, name: str) -> None:
    """Create and remove a file in folder: the only honest test that a file can be made."""
    probe = folder / f".{name[:64]}.{secrets.token_hex(8)}.probe"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise _like(
            exc,
            f"cannot save to {where}: no file can be created in the folder {folder} "
            f"({_why(exc)}); {_fix(exc, folder)}",
        ) from exc
    os.close(fd)
    probe.unlink()


def _why(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):  # the folder is there: it takes no new files
        return f"{exc.strerror}: the folder accepts no new files"
    return exc.strerror or str(exc)


def _fix(exc: OSError, folder: Path) -> str:
    if exc.errno == errno.EROFS:
        return "its file system is read-only: save it somewhere else."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"make the folder writable (chmod u+w {folder}) or save it somewhere else."
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space or save it somewhere else."
    return "save it somewhere else."


def _like(exc: OSError, message: str) -> OSError:
    """An error of exc's kind (and errno) with our message, which names the real target."""
    try:
        new = type(exc)(message)
    except Exception:  # an OSError subclass with another signature
        new = OSError(message)
    new.errno = exc.errno
    return new


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when paths a and b name one file, whether or not it exists yet: the same
    spelling once resolved (symbolic links, even dangling ones, ``..``, case where the
    system ignores it), or one existing file under two names (hard links, bind mounts).

    >>> same_file("a/../x.npy", "./x.npy")
    True
    """
    ra, rb = (os.path.normcase(os.path.realpath(p)) for p in (a, b))
    if ra == rb:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not one file
        return False


def write_atomically(path: str | os.PathLike, write: Callable, *, what: str = "file") -> Path:
    """``write(f)`` into a temporary file beside ``path``, flushed and renamed over it.

    ``path`` is checked first as by ``check_target``. The temporary file is created no
    more open than the file it replaces (or with mode 0o666 less the umask), takes the
    old file's owner and mode, is flushed to disk, then renamed over the real file (the
    file a symbolic link names). Any OSError is raised again as the same kind of error
    naming ``path`` (never the temporary name), the original chained; on any error the
    temporary file is removed and the old file is left as it was.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> write_atomically(path, lambda f: f.write(b"hello")).name
    'notes.txt'
    >>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
    ('hello', ['notes.txt'])
    """
    path = Path(path)
    real, old = _target(path)
    where = _where(path, real)
    # a fresh temporary name beside the real file: created no more open than the file it
    # replaces (or with the ordinary mode, the umask applying), written, renamed over it
    tmp = real.with_name(f".{real.name[:64]}.{secrets.token_hex(4)}.tmp")
    step = "creating"
    try:
        fd = os.open(
            tmp,
            os.O_CREAT | os.O_EXCL | os.O_WRONLY,
            0o666 if old is None else old.st_mode & 0o777,
        )
    except OSError as exc:
        raise _write_error(exc, where, real, old, f"{step} the new {what}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            step = "writing"
            write(f)
            f.flush()
            if old is not None:
                _keep_owner_and_mode(f.fileno(), old)
            os.fsync(f.fileno())
        step = "renaming"
        os.replace(tmp, real)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(exc, where, real, old, f"{step} the new {what}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    """The new file takes the old one's owner and group where allowed, and its mode."""
    new = os.fstat(fd)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:  # only root may give a file away
            try:
                os.fchown(fd, -1, old.st_gid)
            except PermissionError:
                pass
    os.fchmod(fd, old.st_mode & 0o777)  # after chown, which may clear bits; umask aside


def _write_error(exc: OSError, where: str, real: Path, old, doing: str) -> OSError:
    kept = f" {real} is unchanged." if old is not None else ""
    return _like(
        exc,
        f"cannot save to {where}: {exc.strerror or type(exc).__name__} while {doing} "
        f"beside it; {_fix(exc, real.parent)}{kept}",
    )
