"""Write outputs atomically, and leave nothing behind when the writer is killed.

A file is written through an unnamed inode (`O_TMPFILE`) in the destination's folder where the
platform and the filesystem allow it: killed at any point, even by SIGKILL, the process takes the
inode with it and no name is left to clean. When the file is complete it is flushed and fsynced,
linked to a part name (`linkat` of /proc/self/fd/N: it cannot replace a file), renamed onto the
destination and the folder fsynced.

Elsewhere (no `O_TMPFILE` on this filesystem or platform, no /proc, `TENSORFILE_NO_O_TMPFILE=1`),
and for folders, which no unnamed inode can hold, the output is built under a part name beside the
destination, `.NAME.tf-PID-HEX.part`, and its writer holds an flock on it for as long as it runs.
The lock, not the pid, tells a dead writer from a live one: the kernel drops it with the process,
and a reused pid does not hold it. Every write here first removes the parts of the same destination
whose lock nobody holds (`clear_stale_parts`, which `convert` runs on the whole destination folder
before checking free space), so repeated kills do not fill the disk, and a concurrent run's part is
never touched.

On an error (or Ctrl-C) the part is removed at once and nothing appears under the final name.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import InputError, UsageError

try:
    import fcntl
except ImportError:  # not on a POSIX system: parts cannot be told apart, so none is removed
    fcntl = None  # type: ignore[assignment]

NO_TMPFILE_ENV = "TENSORFILE_NO_O_TMPFILE"
NO_EXCHANGE_ENV = "TENSORFILE_NO_RENAME_EXCHANGE"  # replace a folder by the two renames (for tests)
_PART = re.compile(r"\.(?P<name>.+)\.tf-(?P<pid>\d+)-[0-9a-f]+\.part")
# What tensorfile wrote before parts had owners (tempfile's mkstemp / mkdtemp names); removed only
# beside an output of the same name, and only once nothing has written to them for an hour.
_LEGACY_PART = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part")
LEGACY_PART_AGE = 3600.0
# errno values with which open(O_TMPFILE) says the filesystem (or kernel) does not do it.
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS}


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write; it replaces `path` only when the block ends without error."""
    target = Path(path)
    folder = _folder_of(target)
    clear_stale_parts(folder, target.name)
    dir_fd = _open_dir(folder)
    part: Path | None = None
    try:
        fd = _open_unnamed(folder)
        if fd is None:
            part, fd = _new_part(folder, target.name, directory=False)
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            _place(fd, dir_fd, part, target)
        finally:
            os.close(fd)
    except BaseException:
        if part is not None:
            with contextlib.suppress(OSError):
                os.unlink(part)
        raise
    finally:
        os.close(dir_fd)


def _place(fd: int, dir_fd: int, part: Path | None, target: Path) -> None:
    """The written file under `target`, durably: an unnamed inode gets its (locked) part name only
    now, and the part is renamed over whatever `target` was."""
    try:
        if part is None:
            name = _part_path(target.parent, target.name).name
            os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
            part = target.parent / name
        os.replace(part, target)
    except OSError as exc:
        if part is not None:
            with contextlib.suppress(OSError):
                os.unlink(part)
        raise InputError(f"cannot put the output in place: {exc.strerror or exc}", target) from None
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a folder
        os.fsync(dir_fd)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], replace: bool = False) -> Iterator[Path]:
    """A new folder to fill; it becomes `path` when the block ends without error.

    With `replace`, an existing `path` is swapped with the new folder in one step (renameat2's
    RENAME_EXCHANGE, Linux 3.15+): `path` is never absent, and the old tree, now under the part
    name, is removed after (killed before that, the next run removes it). Where the swap is not
    available (another platform, an old kernel or libc, a filesystem without it), the old `path` is
    moved aside first and the new folder renamed in: a moment without `path` in between.
    """
    target = Path(path)
    folder = _folder_of(target)
    clear_stale_parts(folder, target.name)
    temp, fd = _new_part(folder, target.name, directory=True)
    try:
        yield temp
        _fsync_tree(temp)
        old = None
        if target.exists() or target.is_symlink():
            if not replace and not is_empty_folder(target):
                raise UsageError(f"{target} appeared while converting; nothing was replaced")
            if exchange(temp, target):
                old = temp  # the part name now holds the old tree (unlocked: a stale part if killed)
            else:
                old = _part_path(folder, target.name)
                os.replace(target, old)
        if old is not temp:
            try:
                os.replace(temp, target)
            except BaseException:
                if old is not None:
                    os.replace(old, target)
                raise
        _fsync_path(folder)
        if old is not None:
            _remove(old)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
# errno values with which renameat2 says it cannot swap here (no such call, flag or support in this
# kernel or filesystem; EPERM from a seccomp filter that does not know the call): the two renames do it.
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (glibc 2.28+, musl 1.2.3+), or None where there is none."""
    if sys.platform != "linux":
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    func.restype = ctypes.c_int
    return func  # type: ignore[no-any-return]


def exchange(first: Path, second: Path) -> bool:
    """Swap the two names in one atomic step (both must exist): True when done, False where this
    platform or filesystem cannot (nothing changed then); other failures raise OSError."""
    func = _renameat2()
    if func is None or os.environ.get(NO_EXCHANGE_ENV):
        return False
    if func(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(second))


def clear_stale_parts(folder: str | os.PathLike[str], name: str | None = None) -> int:
    """Remove the part files and folders in `folder` (of the output `name`, or of any) whose writer
    is gone; the bytes they held. Parts a live process holds locked stay."""
    if fcntl is None:
        return 0
    freed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _PART.fullmatch(entry.name)
        if match is not None:
            if name in (None, match["name"]):
                freed += remove_if_unlocked(Path(entry.path))
            continue
        legacy = _LEGACY_PART.fullmatch(entry.name)
        if legacy is not None and legacy["name"] == name and _idle_for(Path(entry.path), LEGACY_PART_AGE):
            freed += remove_if_unlocked(Path(entry.path))
    return freed


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on `fd` if no other open file holds it (True); False if one does."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_output(path) as out:
        out.write(text.encode("utf-8"))


def _folder_of(target: Path) -> Path:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError("destination folder does not exist", folder)
    return folder


def _open_dir(folder: Path) -> int:
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"cannot write here: {exc.strerror or exc}", folder) from None


def _open_unnamed(folder: Path) -> int | None:
    """An unnamed, locked inode in `folder` to write; None where that is not possible here."""
    if not hasattr(os, "O_TMPFILE") or os.environ.get(NO_TMPFILE_ENV) or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return None
        raise InputError(f"cannot write here: {exc.strerror or exc}", folder) from None
    try_lock(fd)  # a fresh inode: the lock is free, and its link name shows it taken
    return fd


def _part_path(folder: Path, name: str) -> Path:
    return folder / f".{name}.tf-{os.getpid()}-{secrets.token_hex(4)}.part"


def _new_part(folder: Path, name: str, directory: bool) -> tuple[Path, int]:
    """A new part file (or folder) of ours, created and locked; (path, open fd holding the lock)."""
    while True:
        path = _part_path(folder, name)
        try:
            if directory:
                os.mkdir(path, 0o777)  # the umask applies, as to any mkdir
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            else:
                flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                fd = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise InputError(f"cannot write here: {exc.strerror or exc}", folder) from None
        if fcntl is None:
            return path, fd
        # Blocks only while another run's cleanup holds it, and that run then removes the name:
        # make sure the name is still ours, else take another.
        fcntl.flock(fd, fcntl.LOCK_EX)
        if same_file(fd, path):
            return path, fd
        os.close(fd)


def same_file(fd: int, path: Path) -> bool:
    """`path` is (still) a name of the inode open as `fd`."""
    try:
        here, there = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def remove_if_unlocked(path: Path) -> int:
    """Remove the file or folder `path` if no process holds its lock; the bytes it held on disk
    (0 if it stays: locked, gone already, or a symlink)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # gone already, a symlink (never ours), or not readable
        return 0
    try:
        if not try_lock(fd) or not same_file(fd, path):
            return 0
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            size = _tree_bytes(path)
            shutil.rmtree(path, ignore_errors=True)
            return size
        size = os.fstat(fd).st_blocks * 512
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return size
    finally:
        os.close(fd)


def _tree_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


def _idle_for(path: Path, seconds: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False


def is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _fsync_path(path: Path | str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Every file and folder under `folder` on disk (what was synced already costs nothing)."""
    for root, _dirs, files in os.walk(folder, topdown=False):
        for f in files:
            if not os.path.islink(path := os.path.join(root, f)):
                _fsync_path(path)
        _fsync_path(root)


def _remove(path: Path) -> None:
    """An old destination moved aside, once the new one is in place."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
