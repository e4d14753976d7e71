"""The read-only limits file of a claim: what the shim inside the container enforces.

The plugin writes one file per claim on the host and the CDI spec mounts it read-only in the directory
built into the shim (``shim.LIMITS_DIR``, ``/etc/xpushare/limits.d/<claim-uid>``), so a tenant cannot raise
its own limits and a container with several claims has each one's file (an environment variable could
be overwritten by the workload, so none names the file to the shim). Per device it holds the identity
(UUID and physical number), the device's position in the claim, the memory limit in bytes, the compute
share in percent, the priority, the compute policy, and where the claim's own ledger of the device and
the device's board appear inside the container.

The layout belongs to the shim, so the shim's own writer (``shim.limits``) writes it: the plugin and the
C parser can never disagree on the format. This module adds the per-claim file (named by
``kubeletplugin.paths``) and its cleanup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dra_driver.core.devices import Scheduling
from dra_driver.core.fileio import ensure_directory, remove_file
from kubeletplugin.paths import LIMITS_SUFFIX, limits_path
from kubeletplugin.physical import ClaimLimit
from shim.limits import DeviceLimits, LimitsFileError, write_limits_file

__all__ = ["LimitsFileError", "listed_claims", "remove_limits", "write_limits"]


def write_limits(
    limits_dir: Path,
    claim_uid: str,
    limits: Sequence[ClaimLimit],
    container_files: Callable[[str, str], tuple[str, str]] | None = None,
    scheduling: Mapping[str, Scheduling] | None = None,
) -> Path:
    """Write the claim's limits file atomically with mode 0444 (root-owned, readable in the container).

    ``container_files(claim_uid, uuid)`` is where the claim's ledger of a device and the device's board
    appear inside the container (``cdi.container_files``); ``None``: no ledgers (each process limits
    itself alone).
    ``scheduling`` (per UUID, serial where absent) tells the shim how the device shares its time.
    """
    devices = [
        DeviceLimits(
            uuid=limit.uuid,
            index=limit.position,
            memory_limit_bytes=limit.memory_bytes,
            core_percent=limit.core_percent,
            priority=limit.priority,
            policy=limit.policy,
            ledger_path=container_files(claim_uid, limit.uuid)[0] if container_files is not None else "",
            board_path=container_files(claim_uid, limit.uuid)[1] if container_files is not None else "",
            memory_max_bytes=limit.memory_max_bytes,
            core_max_percent=limit.core_max_percent,
            scheduling=(scheduling or {}).get(limit.uuid, Scheduling.SERIAL),
            physical=limit.physical,
        )
        for limit in limits
    ]
    try:
        ensure_directory(limits_dir, 0o755, tighten=False)
    except OSError as err:
        raise LimitsFileError(f"create limits directory {limits_dir}: {err}") from err
    return write_limits_file(limits_path(limits_dir, claim_uid), claim_uid, devices)


def remove_limits(limits_dir: Path, claim_uid: str) -> None:
    remove_file(limits_path(limits_dir, claim_uid), LimitsFileError, "remove limits file")


def listed_claims(limits_dir: Path) -> set[str]:
    """Claim UIDs with a limits file (to find leftovers after a crash)."""
    if not limits_dir.is_dir():
        return set()
    return {p.name[: -len(LIMITS_SUFFIX)] for p in limits_dir.iterdir() if p.name.endswith(LIMITS_SUFFIX)}
