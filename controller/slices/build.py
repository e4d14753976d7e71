"""The desired ResourceSlices of one node's pool: a pure function of node, devices, mode and settings.

``build_slices`` is deterministic and has no side effects (no I/O, no clock, no randomness), so the
publisher may call it as often as it likes and compare its output with what the API server holds.
The objects are plain dicts in the resource.k8s.io/v1 JSON shape, ready to send.

Splitting follows the API's limits: at most 128 devices per slice, 64 when any device in the slice has
taints or consumes counters; counter sets live in slices of their own (the 1.35+ rule that a slice holds
either devices or counters), at most 8 per slice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from api.errors import XPUShareError
from controller.settings import PartitionLayout, SliceMode, SliceSettings
from controller.slices.modes import (
    ModeOutput,
    consumable_entry,
    counter_set,
    exclusive_entry,
    partition_entries,
)
from dra_driver.core.devices import Device, dns_label
from dra_driver.core.kubetypes import SliceDevice

API_VERSION = "resource.k8s.io/v1"
MODE_LABEL = "xpushare.io/slice-mode"
MAX_NAME = 253


class SliceBuildError(XPUShareError):
    """The devices cannot be published as given (for example two devices with one name)."""


def mode_output(devices: Sequence[Device], mode: SliceMode, settings: SliceSettings) -> ModeOutput:
    """Device entries (and counter sets) of ``devices`` in a concrete mode."""
    ordered = sorted(devices, key=lambda device: (device.type.value, device.index))
    names = [device.name for device in ordered]
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise SliceBuildError(f"devices: duplicate device names {duplicates}; each type/index must be unique")
    if mode is SliceMode.CONSUMABLE:
        return ModeOutput([consumable_entry(device, settings) for device in ordered], [])
    if mode is SliceMode.EXCLUSIVE:
        return ModeOutput([exclusive_entry(device, settings) for device in ordered], [])
    if mode is SliceMode.PARTITIONED:
        entries = [entry for device in ordered for entry in partition_entries(device, settings)]
        counted = settings.partition_layout is PartitionLayout.MENU
        return ModeOutput(entries, [counter_set(device) for device in ordered] if counted else [])
    raise SliceBuildError(f"mode: {mode.value!r} is not concrete; allowed consumable, partitioned, exclusive")


def pack_devices(entries: Iterable[SliceDevice], settings: SliceSettings) -> list[list[SliceDevice]]:
    """Fill slices in order; a slice closes when the next device would break its limit."""
    chunks: list[list[SliceDevice]] = []
    current: list[SliceDevice] = []
    restricted = False
    for entry in entries:
        entry_restricted = "taints" in entry or "consumesCounters" in entry
        limit = (
            settings.max_devices_per_slice_with_taints_or_counters
            if restricted or entry_restricted
            else settings.max_devices_per_slice
        )
        if current and len(current) >= limit:
            chunks.append(current)
            current, restricted = [], False
        current.append(entry)
        restricted = restricted or entry_restricted
    if current:
        chunks.append(current)
    return chunks


def slice_name_prefix(node_name: str, driver_name: str) -> str:
    """``<node>-<driver-dns>``, shortened with a hash of the node name when it would pass 253 characters."""
    driver = dns_label(driver_name)
    prefix = f"{node_name}-{driver}"
    room = MAX_NAME - len("-9999")
    if len(prefix) <= room:
        return prefix
    digest = hashlib.sha256(node_name.encode()).hexdigest()[:10]
    keep = room - len(driver) - len(digest) - 2
    return f"{node_name[:keep].rstrip('.-')}-{digest}-{driver}"


def slice_name(node_name: str, driver_name: str, number: int) -> str:
    return f"{slice_name_prefix(node_name, driver_name)}-{number}"


def owner_reference(node_name: str, node_uid: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid, "controller": True}


def build_slices(
    node_name: str,
    devices: Sequence[Device],
    mode: SliceMode,
    settings: SliceSettings,
    *,
    generation: int = 0,
    node_uid: str | None = None,
) -> list[dict[str, Any]]:
    """The desired slices of ``node_name``'s pool, counter slices first, names numbered from 0.

    Pure and deterministic: the same arguments give equal output. No devices give no slices.
    """
    output = mode_output(devices, mode, settings)
    step = settings.max_counter_sets_per_slice
    specs: list[dict[str, Any]] = [
        {"sharedCounters": output.counter_sets[start : start + step]}
        for start in range(0, len(output.counter_sets), step)
    ]
    specs.extend({"devices": chunk} for chunk in pack_devices(output.devices, settings))
    prefix = slice_name_prefix(node_name, settings.driver_name)
    slices = []
    for number, content in enumerate(specs):
        metadata: dict[str, Any] = {"name": f"{prefix}-{number}", "labels": {MODE_LABEL: mode.value}}
        if node_uid:
            metadata["ownerReferences"] = [owner_reference(node_name, node_uid)]
        spec = {
            "driver": settings.driver_name,
            "pool": {"name": node_name, "generation": generation, "resourceSliceCount": len(specs)},
            "nodeName": node_name,
            **content,
        }
        slices.append(
            {"apiVersion": API_VERSION, "kind": "ResourceSlice", "metadata": metadata, "spec": spec}
        )
    return slices
