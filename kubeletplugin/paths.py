"""Where the node plugin keeps its files on the node: one layout for the plugin, the claim preparer and
``xpushare quota``.

Three flags place everything (``--cdi-dir``, ``--state-dir``, ``--run-dir``); every file name below them
is derived here, so the writers, the recovery sweep and the node-side CLI can never disagree::

    <cdi-dir>/<kind>_<uid>.json            CDI spec per claim (named by ``kubeletplugin.cdi``)
    <state-dir>/checkpoint/<uid>.json      checkpoint record per claim
    <state-dir>/quota/<uid>.json           live quota per claim
    <run-dir>/limits/<uid>.limits          read-only limits file per claim
    <run-dir>/devices/<uuid>/board         each physical device's board (the plugin writes it alone)
    <run-dir>/devices/<uuid>/claims/<uid>  each claim's own ledger of the device (its processes write it)
    <run-dir>/usage.json                   the claims' device time over the last minute (``usage_file``)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.errors import XPUShareError
from shim import board_path, claim_ledger_path

DEFAULT_CDI_DIR = Path("/var/run/cdi")
DEFAULT_STATE_DIR = Path("/var/lib/xpushare")
DEFAULT_RUN_DIR = Path("/var/run/xpushare")
RECORD_SUFFIX = ".json"
LIMITS_SUFFIX = ".limits"
USAGE_HISTORY_NAME = "usage.json"


class UnsafeFileNameError(XPUShareError, ValueError):
    """A name that would leave its directory (a path separator, ``..``) was about to become a file name."""


def file_name_part(value: str, what: str = "claim uid") -> str:
    """``value`` if it is safe inside a file name, else ``UnsafeFileNameError``.

    The last line of defence behind the checks on the wire (``kubeletplugin.names``): whatever path a
    UID came by, it can never name a file outside the plugin's directories.
    """
    if "/" in value or "\0" in value or ".." in value:
        raise UnsafeFileNameError(
            f"{what} {value!r} cannot be part of a file name; allowed: no '/', NUL or '..'"
        )
    return value


def record_path(checkpoint_dir: Path, uid: str) -> Path:
    """The file holding one claim's checkpoint record."""
    return checkpoint_dir / f"{file_name_part(uid)}{RECORD_SUFFIX}"


def quota_record_path(quota_dir: Path, uid: str) -> Path:
    """The file holding one claim's live quota."""
    return quota_dir / f"{file_name_part(uid)}{RECORD_SUFFIX}"


def limits_path(limits_dir: Path, uid: str) -> Path:
    """The claim's read-only limits file."""
    return limits_dir / f"{file_name_part(uid)}{LIMITS_SUFFIX}"


def device_dir_path(devices_dir: Path, uuid: str) -> Path:
    """The directory of one physical device: its board and its claims' ledgers (``shim.ledger``)."""
    return devices_dir / file_name_part(uuid, "device uuid")


@dataclass(frozen=True, slots=True)
class NodePaths:
    """The node's directories (the ``kubelet-plugin`` flags; defaults are a real node's)."""

    state_dir: Path = DEFAULT_STATE_DIR
    run_dir: Path = DEFAULT_RUN_DIR
    checkpoint: Path | None = None  # default <state_dir>/checkpoint
    cdi_dir: Path = DEFAULT_CDI_DIR

    @property
    def checkpoint_dir(self) -> Path:
        return self.checkpoint or self.state_dir / "checkpoint"

    @property
    def quota_dir(self) -> Path:
        return self.state_dir / "quota"

    @property
    def limits_dir(self) -> Path:
        return self.run_dir / "limits"

    @property
    def devices_dir(self) -> Path:
        return self.run_dir / "devices"

    @property
    def usage_history(self) -> Path:
        return self.run_dir / USAGE_HISTORY_NAME

    def checkpoint_record(self, uid: str) -> Path:
        return record_path(self.checkpoint_dir, uid)

    def quota_record(self, uid: str) -> Path:
        return quota_record_path(self.quota_dir, uid)

    def limits_file(self, uid: str) -> Path:
        return limits_path(self.limits_dir, uid)

    def device_dir(self, uuid: str) -> Path:
        return device_dir_path(self.devices_dir, uuid)

    def board(self, uuid: str) -> Path:
        return board_path(self.device_dir(uuid))

    def claim_ledger(self, uuid: str, uid: str) -> Path:
        return claim_ledger_path(self.device_dir(uuid), file_name_part(uid))
