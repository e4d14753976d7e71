"""The physical devices of our driver's published slices, as ``Device`` values the slice builder takes.

The mode comparison publishes the same hardware in every slice mode with ``controller.slices``'s own
builder, so what the slices say of a device must be read back: type, index, model and the other
attributes, memory and compute units, health (the unhealthy taint). Memory comes from the consumable or
whole device's capacity, from a partitioned device's counter set, or from its fixed pieces (a piece's
memory divided by its size: exact for the pieces it came from, within a MiB of the device's). What a
slice cannot say is assumed: a device published whole (exclusive) is taken as shareable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from controller.settings import ATTRIBUTE_DOMAIN, UNHEALTHY_TAINT_KEY, SliceMode
from controller.slices.attributes import PCI_BUS_ID_ATTRIBUTE
from dra_driver.core.devices import Device, DeviceType, Health
from dra_driver.core.kubetypes import ObjView
from dra_driver.core.quantity import parse_quantity
from dra_driver.core.vendors import profile_for
from dra_driver.planning.devices import PhysicalDevice

__all__ = ["Rebuilt", "published_mode", "rebuild_device"]


@dataclass(frozen=True, slots=True)
class Rebuilt:
    device: Device
    mode: SliceMode  # the mode it was published in


def _attribute(entry: ObjView, name: str) -> Any:
    attributes = entry.get("attributes") or {}
    raw = attributes.get(f"{ATTRIBUTE_DOMAIN}/{name}") or attributes.get(name) or {}
    return next((raw[k] for k in ("string", "int", "bool", "version") if raw.get(k) is not None), None)


def published_mode(entries: Sequence[ObjView]) -> SliceMode:
    """The mode these entries of one physical device were published in."""
    if len(entries) > 1 or entries[0].get("consumesCounters") or _attribute(entries[0], "partition"):
        return SliceMode.PARTITIONED
    if entries[0].get("allowMultipleAllocations"):
        return SliceMode.CONSUMABLE
    sharing = _attribute(entries[0], "sharing")
    return SliceMode(sharing) if sharing in {m.value for m in SliceMode} else SliceMode.EXCLUSIVE


def _memory(device: PhysicalDevice, mode: SliceMode) -> int:
    if device.counter_set is not None:
        return int(device.total.get("memory", Fraction(0)))
    best = Fraction(0)
    for entry in device.entries:
        memory = parse_quantity(((entry.get("capacity") or {}).get("memory") or {}).get("value", 0)).value
        size = (
            Fraction(str(_attribute(entry, "partition") or 1))
            if mode is SliceMode.PARTITIONED
            else Fraction(1)
        )
        best = max(best, memory / size)
    return int(best)


def _health(entry: ObjView) -> tuple[Health, str]:
    for taint in entry.get("taints") or ():
        if taint.get("key") == UNHEALTHY_TAINT_KEY:
            return Health.UNHEALTHY, str(taint.get("value") or "")
    return Health.HEALTHY, ""


def _shareable(entries: Sequence[ObjView], mode: SliceMode, label: str) -> bool:
    if mode is SliceMode.CONSUMABLE or label == SliceMode.CONSUMABLE.value:
        # Consumable mode publishes a device that cannot be shared whole, without sharing fields.
        return bool(entries[0].get("allowMultipleAllocations"))
    if mode is SliceMode.PARTITIONED:
        return any(str(_attribute(e, "partition") or "1") != "1" for e in entries)
    return True  # a whole device says nothing about sharing: assume it could be shared


def rebuild_device(device: PhysicalDevice) -> Rebuilt | None:
    """The ``Device`` behind one physical device of our driver, or None when its slices lack the type."""
    first = device.entries[0]
    try:
        kind = DeviceType(str(_attribute(first, "type")))
    except ValueError:
        return None
    mode = published_mode(device.entries)
    health, message = _health(first)
    numa = _attribute(first, "numaNode")
    index = int(_attribute(first, "index") or 0)
    pci = ((first.get("attributes") or {}).get(PCI_BUS_ID_ATTRIBUTE) or {}).get("string", "")
    return Rebuilt(
        Device(
            type=kind,
            vendor=str(_attribute(first, "vendor") or ""),
            model=str(_attribute(first, "model") or ""),
            uuid=str(_attribute(first, "uuid") or ""),
            index=index,
            memory_bytes=_memory(device, mode),
            cores=int(_attribute(first, profile_for(kind).cores_attribute) or 0),
            device_node="",
            minor=index,
            pci_bus_id=str(pci),
            numa_node=None if numa is None else int(numa),
            driver_version=str(_attribute(first, "driverVersion") or ""),
            runtime_version=str(_attribute(first, "runtimeVersion") or ""),
            health=health,
            health_message=message,
            shareable=_shareable(device.entries, mode, device.label),
        ),
        mode,
    )
