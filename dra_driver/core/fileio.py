"""Atomic file replacement: a reader sees the old file or the new one, never a torn one.

Every file the components hand to another reader (checkpoint records, quota records, limits files, CDI
specs, kubeconfigs) is written the same way: a temporary file with a unique name in the target's own
directory (a rename is atomic only within one file system), its mode set explicitly (the process umask
plays no part), optionally flushed to disk, then renamed over the target. A failed write removes the
temporary file and raises the ``OSError``; each caller wraps it in its own error naming what it wrote.
Removing a per-claim file (unprepare, which may run twice) is here too, with the caller's error.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "ensure_directory",
    "fsync_directory",
    "read_regular_file",
    "remove_entry",
    "remove_file",
    "remove_stale_temps",
    "write_atomically",
]


def write_atomically(
    path: Path,
    data: bytes,
    *,
    mode: int,
    durable: bool = True,
    sync_directory: Callable[[], None] | None = None,
) -> None:
    """Replace ``path`` with ``data``, file mode ``mode``; raises ``OSError``.

    ``durable`` also waits until the content and the new name are on disk (fsync of the file, then of
    the directory). ``sync_directory`` replaces that directory fsync (a caller that shares one fsync
    among concurrent writers); leave ``durable`` off for files whose loss a restart repairs (tmpfs).
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    if durable:
        if sync_directory is not None:
            sync_directory()
        else:
            fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` durable (after a rename or an unlink); raises ``OSError``."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_file(path: Path, error: Callable[[str], Exception], action: str) -> None:
    """Remove ``path``; a missing file is fine. A failure raises ``error("<action> <path>: <reason>")``."""
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        raise error(f"{action} {path}: {err}") from err


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The content of ``path`` if it is a regular file of at most ``max_bytes``; else ``OSError``.

    For state files that a damaged node or another process may have replaced: the file is opened
    without following a symlink and without blocking (a FIFO would hang the reader), then checked on the
    open descriptor, so a directory, a device or an oversized file is refused before anything is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path}: not a regular file")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(65536, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise OSError(f"{path}: larger than the limit of {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove_entry(path: Path) -> None:
    """Remove whatever ``path`` is (a file, a symlink, a directory tree); a missing one is fine.

    For damaged state: a directory named like a record would block the rename of the rebuilt record.
    Raises ``OSError``.
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# ``write_atomically``'s temporary names: ``.<target name>.<8 random characters of mkstemp>.tmp``.
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


def ensure_directory(path: Path, mode: int, *, tighten: bool = True) -> None:
    """Create ``path`` (and missing parents) with ``mode`` whatever the umask; raises ``OSError``.

    ``tighten`` also removes from an existing ``path`` every permission bit that ``mode`` lacks, so a
    directory created looser by an older version (or under umask 000) is fixed at start.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, mode)
            os.chmod(directory, mode)  # mkdir's mode is filtered by the umask
    if tighten:
        bits = stat.S_IMODE(os.stat(path).st_mode)
        if bits & ~mode:
            os.chmod(path, bits & mode)


def remove_stale_temps(directory: Path, target_prefix: str = "") -> list[str]:
    """Remove the temporary files that writers killed inside ``write_atomically`` left in ``directory``.

    Only names of that pattern whose target starts with ``target_prefix`` (a shared directory holds
    other programs' files). Call it before this process writes there; returns the names removed.
    Failures to remove one are skipped (the next start tries again).
    """
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            match = _TEMP_NAME.fullmatch(entry.name)
            if match is None or not match["target"].startswith(target_prefix):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed
