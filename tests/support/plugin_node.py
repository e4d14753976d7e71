"""A node plugin's directories on this machine for a test: the host root it sees and its settings.

Shared by the tests against the embedded API server and those against the real control plane, so both
run the plugin with the same layout.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from kubeletplugin.settings import PluginSettings

INVENTORY = Path(__file__).resolve().parents[2] / "dra_driver/core/discovery/inventory/default.yaml"


def prepare_node_root(root: Path) -> Path:
    """Fill ``root`` as a node's host (boot id, driver root, an empty shim); return a socket directory
    (unix socket paths are limited to 107 bytes, and pytest's tmp_path can be longer)."""
    (root / "boot_id").write_text(f"{uuid.uuid4()}\n")
    (root / "host").mkdir()
    (root / "host/libxpushare.so").write_bytes(b"")
    return Path(tempfile.mkdtemp(prefix="xps-"))


def node_settings(
    root: Path, sockets: Path, node_name: str, inventory: Path, **overrides: Any
) -> PluginSettings:
    """The plugin's settings for a node made by ``prepare_node_root``, mock devices from ``inventory``."""
    values: dict[str, Any] = {
        "node_name": node_name,
        "registry_dir": sockets / "registry",
        "plugin_dir": sockets / "plugin",
        "cdi_dir": root / "cdi",
        "state_dir": root / "state",
        "run_dir": root / "run",
        "boot_id_path": root / "boot_id",
        "device_root": root / "host",
        "driver_root": root / "host",
        "shim_path": root / "host/libxpushare.so",
        "discovery_backend": "mock",
        "discovery_options": {"inventory": str(inventory)},
    }
    values.update(overrides)
    return PluginSettings(**values)
