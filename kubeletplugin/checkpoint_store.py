"""The checkpoint directory: one record per claim, written atomically, locked across processes.

The record format, its versioning and its checksum live in ``kubeletplugin.checkpoint``; this module is
the I/O around it. One file per claim keeps every write small and independent of how many claims the node
holds; the directory fsync after a rename is shared by concurrent writers (group commit), so under load one
disk flush makes many records durable.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dra_driver.core.fileio import (
    ensure_directory,
    fsync_directory,
    read_regular_file,
    remove_entry,
    write_atomically,
)
from kubeletplugin.checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointLockTimeoutError,
    PreparedClaim,
    decode,
    encode,
)
from kubeletplugin.names import valid_uid
from kubeletplugin.paths import RECORD_SUFFIX, record_path

log = logging.getLogger(__name__)

RECORD_MODE = 0o600
# A record is a few KiB even for a claim of many devices; anything far larger is not one of ours, and
# decoding it could take the process down (deeply nested JSON raises RecursionError).
MAX_RECORD_BYTES = 1 << 20


class _GroupSync:
    """fsync of one directory shared by concurrent writers (group commit).

    One directory fsync makes every rename done before it durable, so a writer whose rename happened
    before a sync started waits for that sync instead of issuing its own: under load, many records are
    made durable by one disk flush.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._cond = threading.Condition()
        self._requested = 0
        self._done = 0
        self._syncing = False

    def sync(self) -> None:
        with self._cond:
            self._requested += 1
            ticket = self._requested
            while self._done < ticket:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing, target = True, self._requested
                try:
                    self._cond.release()
                    try:
                        fsync_directory(self._directory)
                    finally:
                        self._cond.acquire()
                finally:
                    self._syncing = False
                    self._cond.notify_all()
                self._done = max(self._done, target)


class CheckpointStore:
    """The checkpoint directory (one record file per claim) plus its in-memory copy. Thread-safe.

    ``put`` and ``delete`` return once the change is on disk. Across processes (plugin pods overlap
    during rolling updates) an ``flock`` with a timeout orders them: record writes hold it shared, so
    claims are written in parallel, and whole-directory reads and clean-ups hold it exclusively.
    """

    def __init__(self, directory: Path, boot_id: str, lock_timeout_s: float = 10.0) -> None:
        self.path = directory
        self.boot_id = boot_id
        self._lock_path = directory / ".lock"
        self._lock_timeout_s = lock_timeout_s
        self._mutex = threading.Lock()
        self._lock_state = threading.Lock()  # guards the lock descriptor and its count of shared users
        self._lock_fd: int | None = None
        self._shared_users = 0
        self._dir_sync = _GroupSync(directory)
        self._claims: dict[str, PreparedClaim] = {}
        self.previous_boot_id: str | None = None
        self.corrupt: dict[str, str] = {}

    def record_path(self, uid: str) -> Path:
        return record_path(self.path, uid)

    def load(self) -> dict[str, PreparedClaim]:
        """Read every record; damaged ones are left out and listed in ``corrupt`` (file name -> reason)."""
        try:
            ensure_directory(self.path, 0o700, tighten=False)
        except OSError as err:
            raise CheckpointError(f"create checkpoint directory {self.path}: {err}") from err
        with self._exclusive_lock(), self._mutex:
            self._claims, self.corrupt = {}, {}
            for path in sorted(self.path.glob(f"*{RECORD_SUFFIX}")):
                self._read_record(path)
            return dict(self._claims)

    def _read_record(self, path: Path) -> None:
        """Load one record; whatever cannot be read or trusted is listed in ``corrupt``, never raised,
        so that no file in the directory can make the plugin crash-loop at start."""
        try:
            claim, boot_id = decode(read_regular_file(path, MAX_RECORD_BYTES))
        except CheckpointCorruptError as err:
            self.corrupt[path.name] = str(err)
            return
        except Exception as err:  # any failure to read a record makes it corrupt
            self.corrupt[path.name] = f"unreadable: {err!r}"[:300]
            return
        if claim.uid != path.name[: -len(RECORD_SUFFIX)]:
            self.corrupt[path.name] = f"holds claim {claim.uid}, not the one its name says"
            return
        if not valid_uid(claim.uid):
            self.corrupt[path.name] = f"claim uid {claim.uid!r} is not a Kubernetes UID"
            return
        self._claims[claim.uid] = claim
        self.previous_boot_id = boot_id

    def discard_corrupt(self) -> None:
        """Delete the damaged records (after they were reported), whatever they are (a directory named
        like a record too: it would block the rebuilt record's rename). A failure is logged: the record
        is then reported again at the next start."""
        with self._exclusive_lock():
            for name in self.corrupt:
                try:
                    remove_entry(self.path / name)
                except OSError as err:
                    log.error(
                        "corrupt checkpoint record not removed", extra={"record": name, "error": str(err)}
                    )

    def claims(self) -> dict[str, PreparedClaim]:
        with self._mutex:
            return dict(self._claims)

    def get(self, uid: str) -> PreparedClaim | None:
        with self._mutex:
            return self._claims.get(uid)

    def put(self, claim: PreparedClaim, durable: bool = True) -> None:
        """Record the claim; memory changes only after the file is in place.

        ``durable=False`` skips the fsyncs, for records whose loss a restart repairs anyway (a lost
        ``PrepareStarted`` record leaves files that the start-up sweep removes).
        """
        content = encode(claim, self.boot_id)
        path = self.record_path(claim.uid)
        with self._shared_lock():
            try:
                write_atomically(
                    path, content, mode=RECORD_MODE, durable=durable, sync_directory=self._dir_sync.sync
                )
            except OSError as err:
                raise CheckpointError(f"write {path}: {err}") from err
        with self._mutex:
            self._claims[claim.uid] = claim

    def delete(self, uid: str) -> None:
        """Forget the claim durably; an unknown claim is fine."""
        path = self.record_path(uid)
        with self._shared_lock():
            try:
                path.unlink(missing_ok=True)
                self._dir_sync.sync()
            except OSError as err:
                raise CheckpointError(f"remove {path}: {err}") from err
        with self._mutex:
            self._claims.pop(uid, None)

    def close(self) -> None:
        with self._lock_state:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _lock_descriptor(self) -> int:
        if self._lock_fd is None:
            try:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as err:
                raise CheckpointError(f"open lock {self._lock_path}: {err}") from err
        return self._lock_fd

    def _flock(self, fd: int, operation: int) -> None:
        deadline = time.monotonic() + self._lock_timeout_s
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise CheckpointError(f"lock {self._lock_path}: {err}") from err
                if time.monotonic() >= deadline:
                    raise CheckpointLockTimeoutError(
                        f"lock {self._lock_path}: still held by another process after "
                        f"{self._lock_timeout_s:.0f}s"
                    ) from err
                time.sleep(0.01)

    @contextlib.contextmanager
    def _shared_lock(self) -> Iterator[None]:
        """Held while writing one claim's record: writers of different records run together, never
        while another process reads or sweeps the whole directory.

        ``flock`` belongs to the open file, not to a thread, so this process's threads share one shared
        lock and count its users.
        """
        with self._lock_state:
            if self._shared_users == 0:
                self._flock(self._lock_descriptor(), fcntl.LOCK_SH)
            self._shared_users += 1
        try:
            yield
        finally:
            with self._lock_state:
                self._shared_users -= 1
                if self._shared_users == 0 and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _exclusive_lock(self) -> Iterator[None]:
        """Held while reading or cleaning the whole directory; excludes every other writer."""
        with self._lock_state:
            if self._shared_users:
                raise CheckpointError("checkpoint: whole-directory access while records are being written")
            fd = self._lock_descriptor()
            self._flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
