"""Whether one more replica could still use a device: the question fragmentation is about.

A device's free capacity is stranded for a workload when no further replica can use it. For each device
the allocator answers on a slice holding that device alone, with the device's current allocations
recorded: can one of the replica's requests (asking for one device) be served there? The answer depends
only on the device's entries and on what they hold, so devices that are equal in both (the same GPU model
on 500 nodes, each with two shares of the same size) are asked once. Entry names are renumbered and
attributes no selector reads are left out of that comparison (``celmemo.referenced_names``), so names,
UUIDs and bus ids of otherwise equal devices do not keep them apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dra_driver.core.kubetypes import Obj, ObjView
from dra_driver.planning.devices import PhysicalDevice
from dra_driver.planning.interning import QuantityInterner
from dra_driver.planning.keys import key_of, visible_entry, visible_slices
from dra_driver.planning.workload import Workload
from dra_driver.simulation.allocator import CelCache, StructuredAllocator, UnschedulableError

__all__ = ["DeviceProbe", "one_device_claims", "single_device"]

PROBE = "probe"


def _one_device(request: ObjView) -> Obj:
    def single(alternative: ObjView) -> Obj:
        return {**alternative, "allocationMode": "ExactCount", "count": 1}

    out = dict(request)
    if request.get("exactly") is not None:
        out["exactly"] = single(request["exactly"])
    if request.get("firstAvailable"):
        out["firstAvailable"] = [single(sub) for sub in request["firstAvailable"]]
    return out


def single_device(workload: Workload) -> bool:
    """Whether a replica takes exactly one device: then "one more fits on the node" is "one of its devices
    serves one more", and the device answers stand in for a whole-node allocation."""
    if len(workload.claims) != 1:
        return False
    devices = workload.claims[0].spec.get("devices") or {}
    requests = devices.get("requests") or []
    if len(requests) != 1 or devices.get("constraints"):
        return False
    alternatives = (
        [requests[0]["exactly"]] if requests[0].get("exactly") else requests[0].get("firstAvailable") or []
    )
    return all(
        a.get("allocationMode", "ExactCount") == "ExactCount" and int(a.get("count") or 1) == 1
        for a in alternatives
    )


def one_device_claims(workload: Workload) -> list[Obj]:
    """One claim per distinct request of a replica, each asking for a single device."""
    seen: dict[str, Obj] = {}
    for source in workload.claims:
        for request in (source.spec.get("devices") or {}).get("requests") or ():
            reduced = _one_device(request)
            seen.setdefault(json.dumps(reduced, sort_keys=True, default=str), reduced)
    return [
        {
            "metadata": {"name": f"{PROBE}-{i}", "namespace": PROBE, "uid": f"{PROBE}-{i}"},
            "spec": {"devices": {"requests": [request]}},
        }
        for i, request in enumerate(seen.values())
    ]


class DeviceProbe:
    """Answers "could one more replica use this device", once per distinct device and usage."""

    def __init__(
        self, classes: Sequence[ObjView], cel: CelCache, claims: Sequence[Obj], keep: frozenset[str] | None
    ) -> None:
        self._classes, self._cel, self._claims, self._keep = classes, cel, claims, keep
        self._answers: dict[tuple[str, str], bool] = {}
        self._shapes: dict[tuple[str, str, str], tuple[str, list[Obj], Obj | None, dict[str, str]]] = {}
        self._interned = QuantityInterner()
        self.asked = 0  # allocators built (distinct questions), for tests and the benchmark

    def serves(self, device: PhysicalDevice, *, empty: bool = False) -> bool:
        shape, entries, counter_set, renamed = self._shape(device)
        held = (
            []
            if empty
            else sorted(
                (
                    renamed[name],
                    sorted((result.get("consumedCapacity") or {}).items()),
                    bool(result.get("shareID")),
                )
                for name, result in device.held
            )
        )
        key = (shape, key_of(held))
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = self._ask(device.driver, entries, counter_set, held)
        return answer

    def _shape(self, device: PhysicalDevice) -> tuple[str, list[Obj], Obj | None, dict[str, str]]:
        """The device renumbered, and as a key (computed once per device: entries never change)."""
        found = self._shapes.get((device.driver, device.pool, device.name))
        if found is None:
            entries, counter_set, renamed = _renumbered(device)
            shape = key_of([device.driver, [visible_entry(e, self._keep) for e in entries], counter_set])
            found = self._shapes[(device.driver, device.pool, device.name)] = (
                shape,
                entries,
                counter_set,
                renamed,
            )
        return found

    def _ask(self, driver: str, entries: list[Obj], counter_set: Obj | None, held: list[Any]) -> bool:
        """Whether one of the one-device claims fits the device alone, with ``held`` recorded on it."""
        self.asked += 1
        spec: Obj = {
            "driver": driver,
            "pool": {"name": PROBE, "generation": 0, "resourceSliceCount": 1},
            "nodeName": PROBE,
            "devices": entries,
        }
        if counter_set is not None:
            spec["sharedCounters"] = [counter_set]
        (visible,) = visible_slices([{"metadata": {"name": PROBE}, "spec": spec}], self._keep)
        existing = [
            _holding(driver, i, name, consumed, shared) for i, (name, consumed, shared) in enumerate(held)
        ]
        allocator = StructuredAllocator(
            [self._interned.slice(visible)], self._classes, existing, cel=self._cel
        )
        for claim in self._claims:
            try:
                allocator.allocate([claim], PROBE)
            except UnschedulableError:
                continue
            return True
        return False


def _holding(driver: str, index: int, device: str, consumed: Any, shared: bool) -> Obj:
    """A claim that holds ``device`` of the probe's slice (a share of ``consumed``, or the device)."""
    result: Obj = {"request": "r", "driver": driver, "pool": PROBE, "device": device}
    if shared:
        result.update(shareID=f"s{index}", consumedCapacity=dict(consumed))
    return {"status": {"allocation": {"devices": {"results": [result]}}}}


def _renumbered(device: PhysicalDevice) -> tuple[list[Obj], Obj | None, dict[str, str]]:
    """The device's entries named d0, d1, ... and its counter set named c (names never change answers)."""
    renamed = {str(entry["name"]): f"d{i}" for i, entry in enumerate(device.entries)}
    set_name = str((device.counter_set or {}).get("name", ""))
    entries = []
    for entry in device.entries:
        copy = {**entry, "name": renamed[str(entry["name"])]}
        if entry.get("consumesCounters"):
            copy["consumesCounters"] = [
                {**c, "counterSet": "c" if c.get("counterSet") == set_name else c.get("counterSet")}
                for c in entry["consumesCounters"]
            ]
        entries.append(copy)
    counter_set = None if device.counter_set is None else {**device.counter_set, "name": "c"}
    return entries, counter_set, renamed
