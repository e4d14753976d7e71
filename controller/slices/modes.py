"""Device entries for each slice mode (DESIGN.md section 3); pure functions of a device and settings.

- consumable: one entry per physical device that many claims share (``allowMultipleAllocations``),
  with request policies so that a claim asking for nothing gets the whole device;
- partitioned: a counter set per physical device and a menu of partitions consuming it;
- exclusive: one whole device per entry, capacities for information only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from controller.settings import SliceSettings
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


def partitions(device: Device, settings: SliceSettings) -> list[Partition]:
    """The menu of partitions of one device, smallest size first; the node plugin reads sizes here too."""
    sizes = settings.profile_for(device.model, device.type.value) if device.shareable else (Fraction(1),)
    menu: list[Partition] = []
    for size in sorted(set(sizes)):
        memory = (device.memory_bytes * size.numerator // size.denominator) // MIB * MIB
        if size == 1:
            memory = device.memory_bytes
        cores = WHOLE_CORES * size.numerator // size.denominator
        for number in range(size.denominator // size.numerator):
            suffix = "" if size == 1 else f"-{size.numerator}of{size.denominator}-{number}"
            menu.append(Partition(f"{device.name}{suffix}", size, memory, cores))
    return menu


def partition_entries(device: Device, settings: SliceSettings) -> list[SliceDevice]:
    """The slice entries of ``partitions``; each consumes the device's counter set."""
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
            "consumesCounters": [
                {"counterSet": device.name, "counters": {key: dict(v) for key, v in amounts.items()}}
            ],
        }
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
