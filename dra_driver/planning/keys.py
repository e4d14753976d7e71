"""Telling devices and nodes apart by what the allocator can see of them.

Two devices (or two nodes) that publish the same entries, counters and the attributes the selectors
read get the same answers from the allocator, whatever their names, pools, UUIDs or bus ids; keying by
that lets the planner ask once for many. ``keep`` is the set of attribute names the selectors read
(``celmemo.referenced_names``), or None when that cannot be told: then every attribute counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dra_driver.core.kubetypes import Obj, ObjView
from dra_driver.core.quantity import Quantity

__all__ = ["key_of", "slices_key", "visible_entry", "visible_slices"]


def _plain(value: Any) -> Any:
    """Parsed quantities (of interned slices) as their exact value: cheaper than their canonical text."""
    return str(value.value) if isinstance(value, Quantity) else str(value)


def key_of(value: Any) -> str:
    """A canonical text of JSON-like ``value`` to compare or look up by."""
    return json.dumps(value, sort_keys=True, default=_plain)


def visible_entry(entry: ObjView, keep: frozenset[str] | None) -> Obj:
    """A slice's device entry with the attributes no selector reads left out."""
    if keep is None:
        return dict(entry)
    attributes = entry.get("attributes") or {}
    return {**entry, "attributes": {k: v for k, v in attributes.items() if k.rpartition("/")[2] in keep}}


def slices_key(slices: Sequence[ObjView], keep: frozenset[str] | None) -> str:
    """A node's slices as a key: per slice its driver, slice count, entries and counters; names aside."""
    parts = []
    for s in sorted(slices, key=lambda s: (str(s["spec"].get("driver")), str(s["metadata"]["name"]))):
        spec = s["spec"]
        devices = [visible_entry(d, keep) for d in spec.get("devices") or ()]
        count = (spec.get("pool") or {}).get("resourceSliceCount")
        parts.append([spec.get("driver"), count, devices, spec.get("sharedCounters")])
    return key_of(parts)


def visible_slices(slices: Sequence[ObjView], keep: frozenset[str] | None) -> list[ObjView]:
    """The slices with the attributes nothing reads left out: what an allocator needs to see of them.
    Fewer attributes make the allocator's parsing and its CEL variable of each device cheaper, and change
    no answer (the allocator reads attributes only through selectors and constraints)."""
    if keep is None:
        return list(slices)
    return [_visible_slice(obj, keep) for obj in slices]


def _visible_slice(obj: ObjView, keep: frozenset[str]) -> ObjView:
    spec = obj.get("spec") or {}
    devices = spec.get("devices")
    if not devices:
        return obj
    return {**obj, "spec": {**spec, "devices": [visible_entry(d, keep) for d in devices]}}
