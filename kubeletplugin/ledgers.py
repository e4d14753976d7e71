"""The node side of the shim's per-device files: each device's board and each claim's ledger.

Per physical device (``<run-dir>/devices/<uuid>/``, named by ``kubeletplugin.paths``):

- the board, which this plugin alone writes: every prepared claim's live limits on the device. It is
  created (or rebuilt in place when it is not of this build's layout) at start, refilled from the
  checkpointed claims by the recovery sweep, given a claim's entry at prepare and losing it at unprepare.
- ``claims/<uid>``, the claim's own ledger, which only the claim's processes write: created here at
  prepare with the claim's limits (before any of its containers can run), afterwards only read here, with
  one bounded pread of its head (``shim.ledger.read_claim_usage``: never mapped, never locked), and
  unlinked at unprepare.

So nothing a tenant writes is ever mapped, locked or trusted by the plugin: a damaged ledger is one claim's
missing metrics line. The layout and its locking live in the shim's C code; ``shim.ledger`` calls it, so
the plugin and the shims always agree. When the shim library cannot be loaded (a build without it), the
files are skipped with one warning: the shim then still enforces each process's limit from the limits file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from api.errors import XPUShareError
from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.fileio import ensure_directory, remove_file
from kubeletplugin.checkpoint import PreparedDevice
from kubeletplugin.paths import NodePaths
from kubeletplugin.physical import ClaimLimit
from shim import CLAIMS_DIR, MAX_CLAIMS_PER_DEVICE, library_path
from shim.ledger import Board, BoardEntry, ClaimLedger, ClaimUsage, LedgerError, read_claim_usage

log = logging.getLogger(__name__)

DEVICE_DIR_MODE = 0o755  # mounted read-only into the device's containers
WRITER_WAIT_SECONDS = 5.0  # for another writer of a board (the plugin or ``xpushare quota``) to finish


class LedgerWriteError(XPUShareError):
    """A claim's board entry or ledger could not be written or removed."""


class LedgerFullError(LedgerWriteError):
    """A device's board already holds as many claims as it can."""


@dataclass(frozen=True, slots=True)
class DeviceUsage:
    """What the node side can tell of one device: its claims' usage, each read from its own ledger."""

    uuid: str
    total_bytes: int
    claims: Mapping[str, ClaimUsage]

    @property
    def used_bytes(self) -> int:
        return sum(usage.used_bytes for usage in self.claims.values())


class Ledgers:
    """Boards and claim ledgers of this node's devices. Thread-safe (one lock serialises board writes)."""

    def __init__(self, paths: NodePaths, total_bytes: Mapping[str, int], enabled: bool = True) -> None:
        self.paths = paths
        self._total = dict(total_bytes)
        self._enabled = enabled
        self._lock = threading.Lock()
        self._library: Path | None = None
        self._unreadable: set[tuple[str, str]] = set()  # (uuid, claim uid) of ledgers warned about

    def _create_ledger(self, path: Path, claim_uid: str, limit: ClaimLimit) -> None:
        """Written in the devices directory, which no container sees (no tenant can open the file, or lock
        it, before it is in place), then renamed into the device's ``claims/``."""
        ClaimLedger.create(path, claim_uid, limit.uuid, limit.memory_bytes, limit.core_percent,
                           priority=limit.priority, policy=limit.policy, scratch=self.paths.devices_dir)

    def enabled(self) -> bool:
        """Whether boards and ledgers are kept (the shim library is there to keep them)."""
        return self._usable()

    def _usable(self) -> bool:
        if not self._enabled:
            return False
        if self._library is None:
            self._library = library_path()
        if not self._library.is_file():
            with self._lock:
                if self._enabled:
                    log.warning(
                        "device ledgers disabled: shim library not found", extra={"path": str(self._library)}
                    )
                    self._enabled = False
            return False
        return True

    def _device_dir(self, uuid: str) -> Path:
        directory = self.paths.device_dir(uuid)
        ensure_directory(directory, DEVICE_DIR_MODE)
        ensure_directory(directory / CLAIMS_DIR, DEVICE_DIR_MODE)
        return directory

    @contextlib.contextmanager
    def _board(self, uuid: str) -> Iterator[Board]:
        """The device's board for writing, with the device's writer lock held: the plugin's threads and an
        ``xpushare quota`` beside it are the only writers. The lock file sits beside the device
        directories, which containers never see, so no tenant can hold it."""
        self._device_dir(uuid)
        lock_path = self.paths.devices_dir / f".{uuid}.lock"
        with self._lock:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                deadline = time.monotonic() + WRITER_WAIT_SECONDS
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError as err:
                        if time.monotonic() > deadline:
                            message = f"board of device {uuid}: {lock_path} held too long"
                            raise LedgerWriteError(message) from err
                        time.sleep(0.01)
                with Board.open(self.paths.board(uuid), uuid, self._total.get(uuid, 0)) as board:
                    yield board
            finally:
                os.close(fd)  # drops the lock

    def ensure(self) -> None:
        """Create every device's directory and board now (a board of another layout is rebuilt in place);
        also loads the shim library before the first prepare. A device whose files cannot be made is
        reported and left out: its claims' prepares will say why, the other devices are unaffected."""
        if not self._usable():
            return
        for uuid in self._total:
            try:
                with self._board(uuid):
                    pass
            except (OSError, XPUShareError) as err:
                log.error("device board unusable", extra={"device_uuid": uuid, "error": str(err)})

    def register(self, claim_uid: str, limits: Iterable[ClaimLimit]) -> None:
        """Put the claim on each device's board and create its ledger there (idempotent).

        One entry per physical device (``physical.claim_limits``: the sum of the claim's parts on it,
        bounded by its live quota), the same values the claim's limits file gets.
        """
        if not self._usable():
            return
        for limit in limits:
            self._register_one(claim_uid, limit)

    def _register_one(self, claim_uid: str, limit: ClaimLimit) -> None:
        try:
            with self._board(limit.uuid) as board:
                if board.entry(claim_uid) is None and len(board.entries()) >= MAX_CLAIMS_PER_DEVICE:
                    raise LedgerFullError(
                        f"claim {claim_uid}: device {limit.device} ({limit.uuid}) already holds "
                        f"{len(board.entries())} claims, the most its board can hold "
                        f"({MAX_CLAIMS_PER_DEVICE}); free a claim on it or request larger shares so fewer "
                        "claims fit on one device"
                    )
                board.set(claim_uid, limit.memory_bytes, limit.core_percent, limit.priority, limit.policy)
            self._create_ledger(self.paths.claim_ledger(limit.uuid, claim_uid), claim_uid, limit)
        except LedgerWriteError:
            raise
        except LedgerError as err:
            if "EBADSLT" in str(err) or "Protocol error" in str(err):
                # A file of the claim's name that is not its ledger (damaged by its own tenant, or left by
                # another layout): replace it; its containers, if any, keep the file they mounted.
                self._replace_ledger(claim_uid, limit)
                return
            raise LedgerWriteError(f"claim {claim_uid}: device {limit.device} files: {err}") from err
        except (OSError, XPUShareError) as err:
            raise LedgerWriteError(f"claim {claim_uid}: device {limit.device} files: {err}") from err

    def _replace_ledger(self, claim_uid: str, limit: ClaimLimit) -> None:
        path = self.paths.claim_ledger(limit.uuid, claim_uid)
        remove_file(path, LedgerWriteError, "remove unusable claim ledger")
        try:
            self._create_ledger(path, claim_uid, limit)
        except (OSError, XPUShareError) as err:
            raise LedgerWriteError(f"claim {claim_uid}: device {limit.device} ledger: {err}") from err
        log.warning(
            "unusable claim ledger replaced", extra={"claim_uid": claim_uid, "device_uuid": limit.uuid}
        )

    def set_entry(
        self,
        uuid: str,
        claim_uid: str,
        *,
        memory_bytes: int,
        core_percent: int,
        priority: Priority,
        policy: ComputePolicy,
    ) -> None:
        """A live quota change: the claim's board entry (running shims copy it into their ledger)."""
        if not self._usable():
            return
        try:
            with self._board(uuid) as board:
                board.set(claim_uid, memory_bytes, core_percent, priority, policy)
        except LedgerWriteError:
            raise
        except (OSError, XPUShareError) as err:
            raise LedgerWriteError(f"claim {claim_uid}: board of device {uuid}: {err}") from err

    def entry(self, uuid: str, claim_uid: str) -> BoardEntry | None:
        """The claim's entry on the device's board as the shims read it; None without one (or without
        the shim library). A board that cannot be read raises ``LedgerWriteError``: only the plugin's
        start rebuilds one."""
        if not self._usable():
            return None
        try:
            with Board.read_only(self.paths.board(uuid)) as board:
                return board.entry(claim_uid)
        except (OSError, XPUShareError) as err:
            raise LedgerWriteError(
                f"board of device {uuid} unusable ({err}); the plugin rebuilds it at its next start"
            ) from err

    def claim_usage(self, uuid: str, claim_uid: str) -> ClaimUsage | None:
        """The claim's ledger head, or None when it cannot be read (logged)."""
        return self.usage({uuid: [claim_uid]}).get(uuid, DeviceUsage(uuid, 0, {})).claims.get(claim_uid)

    def unregister(self, claim_uid: str, devices: Iterable[PreparedDevice]) -> None:
        """Take the claim off each device's board and remove its ledger; what is missing is fine.

        Every device is done even when one fails (a board that cannot be opened must not leave the claim's
        entry on its other devices' boards, where it would hold a slot and a share); the first error is
        raised at the end."""
        if not self._usable():
            return
        errors: list[LedgerWriteError] = []
        for uuid in sorted({d.uuid for d in devices}):
            errors += self._forget(uuid, claim_uid)
        if errors:
            raise errors[0]

    def _forget(self, uuid: str, claim_uid: str) -> list[LedgerWriteError]:
        """Remove the claim's board entry, then unlink its ledger (also when the board failed); the
        errors."""
        errors: list[LedgerWriteError] = []
        try:
            with self._board(uuid) as board:
                board.remove(claim_uid)
        except LedgerWriteError as err:
            errors.append(err)
        except (OSError, XPUShareError) as err:
            errors.append(LedgerWriteError(f"claim {claim_uid}: board of device {uuid}: {err}"))
        self._unreadable.discard((uuid, claim_uid))
        path = self.paths.claim_ledger(uuid, claim_uid)
        if path.is_dir() and not path.is_symlink():
            log.warning("a directory in place of a claim ledger left alone", extra={"path": str(path)})
            return errors
        try:
            remove_file(path, LedgerWriteError, "remove claim ledger")
        except LedgerWriteError as err:
            errors.append(err)
        return errors

    def usage(self, claims_by_device: Mapping[str, Iterable[str]]) -> dict[str, DeviceUsage]:
        """Each device's prepared claims' usage, read from their ledgers (for metrics); a ledger that
        cannot be read, or is another claim's, is left out (one warning), never raised."""
        if not self._usable():
            return {}
        found: dict[str, DeviceUsage] = {}
        for uuid, uids in claims_by_device.items():
            claims: dict[str, ClaimUsage] = {}
            for uid in uids:
                usage = self._read_usage(uuid, uid)
                if usage is not None:
                    claims[uid] = usage
            found[uuid] = DeviceUsage(uuid, self._total.get(uuid, 0), claims)
        return found

    def _read_usage(self, uuid: str, uid: str) -> ClaimUsage | None:
        """The claim's ledger head if it is the claim's own, else None. Its tenant can damage it at will, so
        the first failure is one warning and the next ones are debug lines until it reads well again (a
        scrape every few seconds must not turn one tenant's file into a stream of warnings)."""
        try:
            path = self.paths.claim_ledger(uuid, uid)
            usage = read_claim_usage(path)
            if (usage.key, usage.uuid) != (uid, uuid):
                raise LedgerError(f"claim ledger {path}: of claim {usage.key!r} on {usage.uuid!r}")
        except (LedgerError, ValueError) as err:
            if not os.path.lexists(path):  # unprepared between the caller's list and this read
                log.debug("claim ledger gone", extra={"device_uuid": uuid, "claim_uid": uid})
                return None
            first = (uuid, uid) not in self._unreadable
            self._unreadable.add((uuid, uid))
            log.log(logging.WARNING if first else logging.DEBUG, "claim ledger unreadable",
                    extra={"device_uuid": uuid, "claim_uid": uid, "error": str(err)})
            return None
        self._unreadable.discard((uuid, uid))
        return usage

    def sweep(self, prepared: Mapping[str, Iterable[ClaimLimit]]) -> None:
        """Make each board hold exactly the prepared claims (their recorded limits: this is how a board
        rebuilt at start is refilled) and remove the ledgers and temp files of claims that are not."""
        if not self._usable():
            return
        wanted: dict[str, dict[str, ClaimLimit]] = {uuid: {} for uuid in self._total}
        for uid, limits in prepared.items():
            for limit in limits:
                wanted.setdefault(limit.uuid, {})[uid] = limit
        for uuid, claims in wanted.items():
            try:
                self._sweep_device(uuid, claims)
            except (OSError, XPUShareError) as err:
                log.error("device sweep failed", extra={"device_uuid": uuid, "error": str(err)})

    def _sweep_device(self, uuid: str, claims: Mapping[str, ClaimLimit]) -> None:
        with self._board(uuid) as board:
            for entry in board.entries():
                if entry.key not in claims:
                    board.remove(entry.key)
                    log.info("stale board entry removed", extra={"claim_uid": entry.key, "device_uuid": uuid})
            for uid, limit in claims.items():
                board.set(uid, limit.memory_bytes, limit.core_percent, limit.priority, limit.policy)
        claims_dir = self.paths.device_dir(uuid) / CLAIMS_DIR
        for path in sorted(claims_dir.iterdir()):
            if path.name in claims and not path.name.startswith("."):
                continue
            if path.is_dir() and not path.is_symlink():
                log.warning("unexpected directory among claim ledgers left alone", extra={"path": str(path)})
                continue
            remove_file(path, LedgerWriteError, "remove stale claim ledger")
            log.info("stale claim ledger removed", extra={"ledger": path.name, "device_uuid": uuid})
        for uid, limit in claims.items():
            path = self.paths.claim_ledger(uuid, uid)
            if not path.exists():
                self._create_ledger(path, uid, limit)
