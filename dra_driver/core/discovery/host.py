"""Node facts that live outside the vendor libraries: PCI addresses and NUMA nodes from sysfs.

Both vendor backends need the NUMA node of a PCI device when the vendor library does not report it.
The sysfs root is a parameter so tests point it at a temporary tree.
"""

from __future__ import annotations

import re
from pathlib import Path

_BUS_ID = re.compile(r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")


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
