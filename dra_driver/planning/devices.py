"""The physical devices behind the published slices, and how much of each the allocations hold.

The allocator works on slice entries; a planner reports per physical device. An entry that consumes a
counter set is a partition of the device that set stands for (KEP-4815, the menu layout); entries with
the same ``parent`` attribute are fixed pieces of one device (our driver's fixed layout); any other entry
is a device of its own. Totals are the counter set's counters, the pieces' capacities added up, or the
entry's capacities. Used is what allocations hold: the ``consumedCapacity`` of shares, the counters or
capacities of entries taken whole. Only the newest generation of a complete pool counts, as for the
allocator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from controller.settings import ATTRIBUTE_DOMAIN
from controller.slices.build import MODE_LABEL
from dra_driver.core.kubetypes import Obj, ObjView
from dra_driver.core.quantity import parse_quantity

__all__ = ["DeviceBook", "PhysicalDevice", "capacity_name"]

EntryKey = tuple[str, str, str]  # driver, pool, entry name


def capacity_name(name: str, driver: str) -> str:
    """A capacity's name without the driver's own domain (``xpushare.io/memory`` -> ``memory``)."""
    return name.removeprefix(f"{driver}/")


@dataclass(frozen=True, slots=True)
class _Entry:
    device: PhysicalDevice
    name: str
    shared: bool
    capacity: Mapping[str, Fraction]
    counters: Mapping[str, Fraction]


@dataclass
class PhysicalDevice:
    """One physical device (a counter set, a parent's pieces, or one entry) and what is held of it."""

    node: str  # the pool's node; empty for pools reachable from several nodes
    driver: str
    pool: str
    name: str
    label: str = ""  # the slice mode label of its slices (our driver's), empty for other drivers
    entries: list[Obj] = field(default_factory=list)  # as published, in order
    counter_set: Obj | None = None
    total: dict[str, Fraction] = field(default_factory=dict)
    used: dict[str, Fraction] = field(default_factory=dict)
    replicas: set[int] = field(default_factory=set)  # planned replicas holding part of it
    held: list[tuple[str, Obj]] = field(default_factory=list)  # (entry, its allocation result)

    @property
    def free(self) -> dict[str, Fraction]:
        return {
            name: max(Fraction(0), value - self.used.get(name, Fraction(0)))
            for name, value in self.total.items()
        }


class _Quantities:
    """Slices repeat a handful of quantity strings thousands of times: parse each once."""

    def __init__(self) -> None:
        self._seen: dict[Any, Fraction] = {}

    def __call__(self, text: Any, where: str) -> Fraction:
        value = self._seen.get(text)
        if value is None:
            value = self._seen[text] = parse_quantity(text, where).value
        return value


def _newest_complete(slices: Iterable[ObjView]) -> dict[tuple[str, str], list[ObjView]]:
    pools: dict[tuple[str, str], list[ObjView]] = {}
    for s in slices:
        spec = s.get("spec") or {}
        key = (str(spec.get("driver", "")), str((spec.get("pool") or {}).get("name", "")))
        members = pools.setdefault(key, [])
        generation = int((spec.get("pool") or {}).get("generation", 0))
        if members and generation < int(members[0]["spec"]["pool"].get("generation", 0)):
            continue
        if members and generation > int(members[0]["spec"]["pool"].get("generation", 0)):
            members.clear()
        members.append(s)
    return {
        key: sorted(members, key=lambda s: str(s["metadata"]["name"]))
        for key, members in pools.items()
        if len(members) == int(members[0]["spec"]["pool"].get("resourceSliceCount", 1))
    }


def _parent(entry: ObjView) -> str | None:
    attributes = entry.get("attributes") or {}
    for key in (f"{ATTRIBUTE_DOMAIN}/parent", "parent"):
        value = (attributes.get(key) or {}).get("string")
        if value:
            return str(value)
    return None


class DeviceBook:
    """Every physical device of the usable pools, and the allocations held on each."""

    def __init__(self, slices: Iterable[ObjView]) -> None:
        self.devices: list[PhysicalDevice] = []
        self._entries: dict[EntryKey, _Entry] = {}
        self._shares: dict[EntryKey, int] = {}
        self._quantity = _Quantities()
        for (driver, pool), members in sorted(_newest_complete(slices).items()):
            self._add_pool(driver, pool, members, self._quantity)

    def _add_pool(self, driver: str, pool: str, members: list[ObjView], quantity: _Quantities) -> None:
        nodes = {str(s["spec"].get("nodeName") or "") for s in members}
        node = nodes.pop() if len(nodes) == 1 else ""
        label = str(((members[0].get("metadata") or {}).get("labels") or {}).get(MODE_LABEL, ""))
        sets = {str(cs.get("name")): cs for s in members for cs in s["spec"].get("sharedCounters") or ()}
        groups: dict[str, PhysicalDevice] = {}
        for s in members:
            for entry in s["spec"].get("devices") or ():
                where = f"ResourceSlice {s['metadata']['name']}: device {entry.get('name')}"
                consumes = entry.get("consumesCounters") or []
                group = (
                    str(consumes[0].get("counterSet")) if consumes else _parent(entry) or str(entry["name"])
                )
                device = groups.get(group)
                if device is None:
                    device = groups[group] = PhysicalDevice(node, driver, pool, group, label)
                    counter_set = sets.get(group) if consumes else None
                    device.counter_set = dict(counter_set) if counter_set is not None else None
                    for name, counter in ((counter_set or {}).get("counters") or {}).items():
                        device.total[name] = quantity(counter.get("value"), f"{where}: counter {name}")
                    self.devices.append(device)
                device.entries.append(dict(entry))
                capacity = {
                    capacity_name(name, driver): quantity(value.get("value"), f"{where}: capacity {name}")
                    for name, value in (entry.get("capacity") or {}).items()
                }
                counters = {
                    name: quantity(value.get("value"), f"{where}: counter {name}")
                    for c in consumes
                    for name, value in (c.get("counters") or {}).items()
                }
                if device.counter_set is None:  # a piece or a device of its own: its capacity counts
                    for name, value in capacity.items():
                        device.total[name] = device.total.get(name, Fraction(0)) + value
                shared = bool(entry.get("allowMultipleAllocations"))
                self._entries[(driver, pool, str(entry["name"]))] = _Entry(
                    device, str(entry["name"]), shared, capacity, counters
                )

    def hold(self, allocation: ObjView, replica: int | None = None) -> None:
        """Account for one claim's ``status.allocation``; ``replica`` marks a planned one."""
        for result in (allocation.get("devices") or {}).get("results") or ():
            key = (str(result.get("driver", "")), str(result.get("pool", "")), str(result.get("device", "")))
            entry = self._entries.get(key)
            if entry is None or result.get("adminAccess"):
                continue
            device = entry.device
            device.held.append((entry.name, dict(result)))
            if replica is not None:
                device.replicas.add(replica)
            first = not self._shares.get(key)
            self._shares[key] = self._shares.get(key, 0) + 1
            if entry.shared:
                for name, value in (result.get("consumedCapacity") or {}).items():
                    _add(device.used, capacity_name(name, key[0]), self._quantity(value, "consumedCapacity"))
            if device.counter_set is not None and (first or not entry.shared):
                for name, value in entry.counters.items():
                    _add(device.used, name, value)
            elif not entry.shared:
                for name, value in entry.capacity.items():
                    _add(device.used, name, value)

    def hold_claims(self, claims: Iterable[ObjView]) -> None:
        """Account for every allocated claim (existing ones)."""
        for claim in claims:
            allocation = (claim.get("status") or {}).get("allocation")
            if allocation:
                self.hold(allocation)


def _add(into: dict[str, Fraction], name: str, value: Fraction) -> None:
    into[name] = into.get(name, Fraction(0)) + value
