"""Node facts that live outside the vendor libraries: NUMA nodes from sysfs and the CANN version.

Both backends need the NUMA node of a PCI device when the vendor library does not report it, and the
Ascend backend publishes the CANN toolkit version (the runtime version that claims select on). The
roots are parameters so tests point them at temporary trees.
"""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

_BUS_ID = re.compile(r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")

DEFAULT_CANN_INFO = (
    "/usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info",
    "/usr/local/Ascend/ascend-toolkit/latest/version.cfg",
)


def normalize_bus_id(raw: str) -> str:
    """Any PCI address form (``00000000:18:00.0``, ``0000:C1:00.0``, ``18:00.0``) -> ``0000:18:00.0``.

    This is the form of the standard ``resource.kubernetes.io/pciBusID`` attribute and of sysfs paths.
    Returns "" for text that is not a PCI address.
    """
    match = _BUS_ID.match(raw.strip())
    if match is None:
        return ""
    domain, bus, device, function = match.groups()
    return f"{int(domain or '0', 16):04x}:{int(bus, 16):02x}:{int(device, 16):02x}.{function}"


def numa_node(bus_id: str, sysfs_root: str | Path = "/sys") -> int | None:
    """NUMA node of a PCI device from sysfs; None when unknown (no file, -1, or no NUMA)."""
    if not bus_id:
        return None
    path = Path(sysfs_root) / "bus" / "pci" / "devices" / bus_id / "numa_node"
    try:
        value = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return value if value >= 0 else None


def cann_version(patterns: str | tuple[str, ...] = DEFAULT_CANN_INFO) -> str:
    """The CANN toolkit version from its install info file (``version=8.0.RC2``), "" when not found."""
    for pattern in (patterns,) if isinstance(patterns, str) else patterns:
        for candidate in sorted(glob.glob(pattern)):
            version = _read_version(Path(candidate))
            if version:
                return version
    return ""


def _read_version(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as err:
        log.debug("cannot read CANN info", extra={"path": str(path), "error": str(err)})
        return ""
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip().lower() in {"version", "runtime_running_version"} and value.strip():
            return value.strip().strip('"').strip("[]").split(":")[0]
    return ""
