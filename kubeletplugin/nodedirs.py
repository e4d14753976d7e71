"""The plugin's directories at start: explicit modes, least privilege, and no half-written leftovers.

Modes never depend on the process umask (under umask 000 the directories were 0777): state, checkpoint
and quota are the plugin's own (0700); the run and limits directories are read by containers through
bind mounts (0755), as are the device directories (0755; the boards (0644) and claim ledgers (0666) get
their modes from the shim's code that creates them); the CDI directory is shared with other drivers
(0755). Looser existing directories are tightened.

A writer killed inside ``write_atomically`` leaves its temporary file behind; at start, before anything
writes, those of our naming are removed (in the shared CDI directory only those of our specs). A plugin
pod that overlaps a rolling update loses at most one write in flight, which the kubelet retries.
"""

from __future__ import annotations

import logging
from pathlib import Path

from api.errors import XPUShareError
from dra_driver.core.fileio import ensure_directory, remove_stale_temps
from kubeletplugin import cdi
from kubeletplugin.paths import NodePaths

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700  # state, checkpoint, quota
SHARED_DIR_MODE = 0o755  # run, limits, devices, CDI: read by containers or the runtime


class NodeDirectoryError(XPUShareError):
    """A directory of the plugin could not be created or given its mode."""


def directory_modes(paths: NodePaths) -> dict[str, tuple[Path, int]]:
    """Every directory the plugin writes, with its mode (ordered: parents first)."""
    return {
        "state": (paths.state_dir, PRIVATE_DIR_MODE),
        "checkpoint": (paths.checkpoint_dir, PRIVATE_DIR_MODE),
        "quota": (paths.quota_dir, PRIVATE_DIR_MODE),
        "run": (paths.run_dir, SHARED_DIR_MODE),
        "limits": (paths.limits_dir, SHARED_DIR_MODE),
        "devices": (paths.devices_dir, SHARED_DIR_MODE),
        "cdi": (paths.cdi_dir, SHARED_DIR_MODE),
    }


def prepare_directories(paths: NodePaths, cdi_kind: str) -> list[str]:
    """Create or tighten every directory, then remove stale temporary files; returns their paths."""
    for name, (directory, mode) in directory_modes(paths).items():
        try:
            ensure_directory(directory, mode)
        except OSError as err:
            raise NodeDirectoryError(f"{name} directory {directory}: {err}") from err
    removed = []
    for directory, prefix in (
        (paths.checkpoint_dir, ""),
        (paths.quota_dir, ""),
        (paths.limits_dir, ""),
        (paths.devices_dir, ""),  # claim ledgers are written here, then renamed into a device's claims/
        (paths.run_dir, paths.usage_history.name),  # the usage history (``usage_sampler``)
        (paths.cdi_dir, cdi.spec_path(paths.cdi_dir, "", cdi_kind).name[: -len(".json")]),
    ):
        removed += [str(directory / name) for name in remove_stale_temps(directory, prefix)]
    if removed:
        log.info("stale temporary files removed", extra={"files": removed})
    return removed
