"""Per-device ledger entries: the record of each claim that every shim on a device shares.

The shim in each container admits allocations against its claim's record in the device's ledger (a file
per physical device under the ledger directory, mounted into every container that uses the device). The
plugin creates the ledger (with the device's total memory) and the claim's record at prepare time, and
removes the record at unprepare. Records are keyed by claim UID, the ``claim`` line of the limits file.

The ledger layout and its locking live in the shim's C code; ``shim.ledger`` calls it, so the plugin and
the shims always agree. When the shim library cannot be loaded (a build without it), ledgers are skipped
with one warning: the shim then still enforces each process's limit from the limits file alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from api.errors import XPUShareError
from dra_driver.core.fileio import ensure_directory
from kubeletplugin.checkpoint import PreparedDevice
from kubeletplugin.paths import ledger_path
from kubeletplugin.physical import ClaimLimit
from shim import MAX_CLAIMS_PER_DEVICE, library_path
from shim.ledger import Ledger, LedgerSnapshot

log = logging.getLogger(__name__)


class LedgerWriteError(XPUShareError):
    """A claim's record could not be written to or removed from a device ledger."""


class LedgerFullError(LedgerWriteError):
    """A device's ledger already tracks as many claims as it can hold."""


def _refusal(
    claim_uid: str, limit: ClaimLimit, path: Path, ledger: Ledger, err: XPUShareError
) -> LedgerWriteError:
    """The error for a failed record write: a full ledger gets its own, actionable message."""
    snapshot = ledger.snapshot()
    if snapshot.container(claim_uid) is None and len(snapshot.containers) >= MAX_CLAIMS_PER_DEVICE:
        return LedgerFullError(
            f"claim {claim_uid}: device {limit.device} ({limit.uuid}) already holds "
            f"{len(snapshot.containers)} claims, the most its ledger can track ({MAX_CLAIMS_PER_DEVICE}); "
            "free a claim on it or request larger shares so fewer claims fit on one device"
        )
    return LedgerWriteError(f"record claim {claim_uid} in ledger {path}: {err}")


class Ledgers:
    """Writes claims' records into the device ledgers under ``ledger_dir``. Thread-safe."""

    def __init__(self, ledger_dir: Path, total_bytes: Mapping[str, int], enabled: bool = True) -> None:
        self.ledger_dir = ledger_dir
        self._total = dict(total_bytes)
        self._enabled = enabled
        self._lock = threading.Lock()
        self._library: Path | None = None

    def path(self, uuid: str) -> Path:
        return ledger_path(self.ledger_dir, uuid)

    def _ledger_class(self) -> type[Ledger] | None:
        if not self._enabled:
            return None
        if self._library is None:
            self._library = library_path()
        if not self._library.is_file():
            with self._lock:
                if self._enabled:
                    log.warning(
                        "device ledgers disabled: shim library not found", extra={"path": str(self._library)}
                    )
                    self._enabled = False
            return None
        return Ledger

    def ensure(self) -> None:
        """Create every device's ledger now (also loads the shim library before the first prepare)."""
        ledger_class = self._ledger_class()
        if ledger_class is None:
            return
        try:
            ensure_directory(self.ledger_dir, 0o755, tighten=False)
            for uuid, total in self._total.items():
                with ledger_class.create(self.path(uuid), uuid, total):
                    pass
        except (OSError, XPUShareError) as err:
            raise LedgerWriteError(f"create device ledgers in {self.ledger_dir}: {err}") from err

    def register(self, claim_uid: str, limits: Iterable[ClaimLimit]) -> None:
        """Create or update the claim's record in each device's ledger (idempotent).

        One record per physical device (``physical.claim_limits``: the sum of the claim's parts on it,
        bounded by its live quota), the same values the claim's limits file gets.
        """
        ledger_class = self._ledger_class()
        if ledger_class is None:
            return
        try:
            ensure_directory(self.ledger_dir, 0o755, tighten=False)
        except OSError as err:
            raise LedgerWriteError(f"create ledger directory {self.ledger_dir}: {err}") from err
        for limit in limits:
            path = self.path(limit.uuid)
            try:
                with ledger_class.create(path, limit.uuid, self._total.get(limit.uuid, 0)) as ledger:
                    try:
                        ledger.set_container(
                            claim_uid, limit.memory_bytes, limit.core_percent, limit.priority, limit.policy
                        )
                    except XPUShareError as err:
                        raise _refusal(claim_uid, limit, path, ledger, err) from err
            except LedgerWriteError:
                raise
            except XPUShareError as err:
                raise LedgerWriteError(f"record claim {claim_uid} in ledger {path}: {err}") from err

    def unregister(self, claim_uid: str, devices: Iterable[PreparedDevice]) -> None:
        """Remove the claim's record from each device's ledger; a missing ledger or record is fine."""
        ledger_class = self._ledger_class()
        if ledger_class is None:
            return
        for device in devices:
            path = self.path(device.uuid)
            if not path.is_file():
                continue
            try:
                with ledger_class.attach(path) as ledger:
                    ledger.reclaim_dead()  # processes killed with the container still count as attached
                    ledger.remove_container(claim_uid)
            except XPUShareError as err:
                raise LedgerWriteError(f"remove claim {claim_uid} from ledger {path}: {err}") from err

    def snapshots(self) -> dict[str, LedgerSnapshot]:
        """Every device ledger's counters as they are now (for metrics); an unreadable one is left out."""
        ledger_class = self._ledger_class()
        if ledger_class is None:
            return {}
        found: dict[str, LedgerSnapshot] = {}
        for uuid in self._total:
            path = self.path(uuid)
            if not path.is_file():
                continue
            try:
                with ledger_class.attach(path) as ledger:
                    found[uuid] = ledger.snapshot()
            except XPUShareError as err:
                log.warning("ledger unreadable", extra={"ledger": str(path), "error": str(err)})
        return found

    def sweep(self, known: set[str]) -> None:
        """Remove records of claims that are not prepared (left by a crash between write and record)."""
        ledger_class = self._ledger_class()
        if ledger_class is None or not self.ledger_dir.is_dir():
            return
        for path in sorted(
            p for p in self.ledger_dir.iterdir() if p.is_file() and not p.name.startswith(".")
        ):
            try:
                with ledger_class.attach(path) as ledger:
                    ledger.reclaim_dead()
                    for record in ledger.snapshot().containers:
                        if record.key not in known:
                            ledger.remove_container(record.key)
                            log.info(
                                "stale ledger record removed",
                                extra={"claim_uid": record.key, "ledger": path.name},
                            )
            except XPUShareError as err:
                log.warning("ledger sweep failed", extra={"ledger": str(path), "error": str(err)})
