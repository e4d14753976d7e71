"""Device entries for each slice mode (DESIGN.md section 3); pure functions of a device and settings.

- consumable: one entry per physical device that many claims share (``allowMultipleAllocations``),
  with request policies so that a claim asking for nothing gets the whole device;
- partitioned: fixed disjoint pieces of each device, or (menu layout) a counter set per physical device
  and every placement of every size consuming it;
- exclusive: one whole device per entry, capacities for information only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from controller.settings import PartitionLayout, SliceSettings
from controller.slices.attributes import device_attributes, qualified, unhealthy_taints
from dra_driver.core.devices import MIB, Device
from dra_driver.core.kubetypes import CounterSet, SliceDevice
from dra_driver.core.quantity import format_int

WHOLE_CORES = 100

@dataclass(frozen=True, slots=True)
class ModeOutput:
    """Device entries and the counter sets they consume (empty outside partitioned mode)."""

    devices: list[SliceDevice]
    counter_sets: list[CounterSet]


def _with_taints(entry: SliceDevice, device: Device, settings: SliceSettings) -> SliceDevice:
    taints = unhealthy_taints(device) if settings.device_taints else []
    if taints:
        entry["taints"] = taints
    return entry


def _memory_policy(memory: int, settings: SliceSettings) -> dict[str, Any] | None:
    """``validRange`` needs ``min + step <= value`` and ``default`` on the grid ``min + k*step``."""
    step, low = settings.memory_step_bytes, settings.memory_min_for(memory)
    if low + step > memory:
        return None
    wanted = memory if settings.memory_default_bytes is None else min(settings.memory_default_bytes, memory)
    default = low + max(0, (wanted - low) // step) * step
    return {
        "default": format_int(default),
        "validRange": {"min": format_int(low), "step": format_int(step)},
    }


def consumable_entry(device: Device, settings: SliceSettings) -> SliceDevice:
    """A device that claims share by capacity; a device that cannot be shared is offered whole."""
    if not device.shareable:
        return exclusive_entry(device, settings)
    memory: dict[str, Any] = {"value": format_int(device.memory_bytes)}
    policy = _memory_policy(device.memory_bytes, settings)
    if policy is not None:
        memory["requestPolicy"] = policy
    cores = {
        "value": format_int(WHOLE_CORES, binary=False),
        "requestPolicy": {
            "default": format_int(settings.cores_default, binary=False),
            "validRange": {"min": "0", "step": format_int(settings.cores_step, binary=False)},
        },
    }
    entry: SliceDevice = {
        "name": device.name,
        "attributes": device_attributes(device, "consumable"),
        "capacity": {"memory": memory, "cores": cores},
        "allowMultipleAllocations": True,
    }
    return _with_taints(entry, device, settings)


def exclusive_entry(device: Device, settings: SliceSettings) -> SliceDevice:
    entry: SliceDevice = {
        "name": device.name,
        "attributes": device_attributes(device, "exclusive"),
        "capacity": {
            "memory": {"value": format_int(device.memory_bytes)},
            "cores": {"value": format_int(WHOLE_CORES, binary=False)},
        },
    }
    return _with_taints(entry, device, settings)


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition that partitioned mode offers of a device (its name in slices and its size)."""

    name: str
    size: Fraction  # of the device
    memory_bytes: int  # whole MiB, rounded down (the whole memory for the size-1 partition)
    core_percent: int


def partitions(
    device: Device, settings: SliceSettings, layout: PartitionLayout | None = None
) -> list[Partition]:
    """The partitions partitioned mode offers of one device in ``layout`` (default: the configured one).

    Menu: every place of every size, smallest size first. Fixed: the pieces, largest first, numbered
    within their size. Either way a name's ``-NofM-`` says its size, so a name means one size in both
    layouts; the node plugin reads sizes here too.
    """
    chosen = settings.partition_layout if layout is None else layout
    sizes: tuple[Fraction, ...] = (Fraction(1),)
    if device.shareable:
        sizes = settings.profile_for(device.model, device.type.value, chosen)
    if chosen is PartitionLayout.FIXED:
        pieces = sorted(sizes, reverse=True)
        return [_partition(device, size, pieces[:at].count(size)) for at, size in enumerate(pieces)]
    return [
        _partition(device, size, number)
        for size in sorted(set(sizes))
        for number in range(size.denominator // size.numerator)
    ]


def _partition(device: Device, size: Fraction, number: int) -> Partition:
    memory = (device.memory_bytes * size.numerator // size.denominator) // MIB * MIB
    if size == 1:
        return Partition(device.name, size, device.memory_bytes, WHOLE_CORES)
    cores = WHOLE_CORES * size.numerator // size.denominator
    return Partition(f"{device.name}-{size.numerator}of{size.denominator}-{number}", size, memory, cores)


def partition_entries(device: Device, settings: SliceSettings) -> list[SliceDevice]:
    """The slice entries of ``partitions``; in the menu layout each consumes the device's counter set
    (fixed pieces never overlap, so they are plain devices that need no counters)."""
    counted = settings.partition_layout is PartitionLayout.MENU
    entries: list[SliceDevice] = []
    for partition in partitions(device, settings):
        amounts = {
            "memory": {"value": format_int(partition.memory_bytes)},
            "cores": {"value": format_int(partition.core_percent, binary=False)},
        }
        attributes = device_attributes(device, "partitioned")
        attributes[qualified("partition")] = {"string": str(partition.size)}
        attributes[qualified("parent")] = {"string": device.name}
        entry: SliceDevice = {
            "name": partition.name,
            "attributes": attributes,
            "capacity": {key: dict(value) for key, value in amounts.items()},
        }
        if counted:
            entry["consumesCounters"] = [
                {"counterSet": device.name, "counters": {key: dict(v) for key, v in amounts.items()}}
            ]
        entries.append(_with_taints(entry, device, settings))
    return entries


def counter_set(device: Device) -> CounterSet:
    return {
        "name": device.name,
        "counters": {
            "memory": {"value": format_int(device.memory_bytes)},
            "cores": {"value": format_int(WHOLE_CORES, binary=False)},
        },
    }
