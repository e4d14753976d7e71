"""The shapes of the Kubernetes JSON that XPUShare handles as plain dicts.

Objects travel as the API's JSON (``dict``) on the hot paths, where building the official client's
models would cost milliseconds per ResourceSlice (see ``dra_driver.core.kube``). ``Obj`` is any such
object or part of one; ``ObjView`` is one that the code only reads. The parts that several modules build
and read (the device entries and counter sets of a ResourceSlice) have a ``TypedDict`` so their keys are
checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

Obj = dict[str, Any]
ObjView = Mapping[str, Any]


def dig(obj: object, *keys: str) -> Any:
    """``obj[k1][k2]...``; None where a level is missing or not an object (for JSON read from outside,
    whose shape is not trusted)."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


class CounterSet(TypedDict):
    """One entry of a ResourceSlice's ``spec.sharedCounters``: counters that partitions consume."""

    name: str
    counters: dict[str, Obj]


class SliceDevice(TypedDict, total=False):
    """One entry of a ResourceSlice's ``spec.devices`` (resource.k8s.io/v1 ``Device``)."""

    name: str
    attributes: dict[str, Obj]
    capacity: dict[str, Obj]
    allowMultipleAllocations: bool
    consumesCounters: list[Obj]
    taints: list[Obj]
