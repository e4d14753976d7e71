"""Notice which gated fields an API server dropped from the slices we wrote.

An API server with a DRA feature gate off does not reject the gated fields: it silently drops them on
write. Comparing each written slice with the object the server returned is the only reliable probe
(discovery documents list the fields whatever the gates say).
"""

from __future__ import annotations

from collections.abc import Iterable

from dra_driver.core.kubetypes import Obj

CONSUMABLE = "consumable"
PARTITIONED = "partitioned"
TAINTS = "taints"


def _device_fields(device: Obj) -> set[tuple[str, str]]:
    """Gated fields of a device as (feature, field) pairs: one missing field is enough to notice."""
    found = set()
    if device.get("allowMultipleAllocations"):
        found.add((CONSUMABLE, "allowMultipleAllocations"))
    for name, value in (device.get("capacity") or {}).items():
        if (value or {}).get("requestPolicy"):
            found.add((CONSUMABLE, f"capacity.{name}.requestPolicy"))
    if device.get("consumesCounters"):
        found.add((PARTITIONED, "consumesCounters"))
    if device.get("taints"):
        found.add((TAINTS, "taints"))
    return found


def _fields(obj: Obj) -> dict[str, set[tuple[str, str]]]:
    """Gated fields per device name; the key "" holds slice-level ones."""
    spec = obj.get("spec") or {}
    fields: dict[str, set[tuple[str, str]]] = {
        "": {(PARTITIONED, "sharedCounters")} if spec.get("sharedCounters") else set()
    }
    for device in spec.get("devices") or []:
        fields[str(device.get("name"))] = _device_fields(device)
    return fields


def dropped_features(pairs: Iterable[tuple[Obj, Obj]]) -> set[str]:
    """Features with a field present in a written slice but missing from the server's answer."""
    dropped: set[str] = set()
    for written, returned in pairs:
        after = _fields(returned)
        for name, before in _fields(written).items():
            dropped |= {feature for feature, _ in before - after.get(name, set())}
    return dropped


def _strip_device(device: Obj, features: set[str]) -> None:
    if CONSUMABLE in features:
        device.pop("allowMultipleAllocations", None)
        for value in (device.get("capacity") or {}).values():
            value.pop("requestPolicy", None)
    if PARTITIONED in features:
        device.pop("consumesCounters", None)
    if TAINTS in features:
        device.pop("taints", None)


def strip_features(slices: list[Obj], features: set[str]) -> list[Obj]:
    """The slices as a server without ``features`` keeps them (modified in place and returned).

    Used for a mode configured explicitly that the server cannot keep: comparing against what the server
    stores stops the publisher from rewriting the same dropped fields on every publish.
    """
    for obj in slices:
        spec = obj["spec"]
        if PARTITIONED in features:
            spec.pop("sharedCounters", None)
        for device in spec.get("devices") or []:
            _strip_device(device, features)
    return slices
