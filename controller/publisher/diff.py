"""Semantic comparison of desired and stored ResourceSlices, and the write plan that follows from it.

The API server hands back what we wrote in its own spelling: quantities in canonical form, empty lists
dropped, taints stamped with ``timeAdded``, metadata filled in. Comparing normalized specs keeps the
publisher from writing when nothing changed, which is what keeps a restart or a periodic resync free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.core.quantity import quantity_value

_POLICY_QUANTITIES = ("default",)
_RANGE_QUANTITIES = ("min", "max", "step")
IMMUTABLE = ("driver", "nodeName")
LABEL_PREFIX = "xpushare.io/"


def _quantity(text: Any) -> Fraction | Any:
    try:
        return quantity_value(text)
    except (ValueError, TypeError, ArithmeticError):
        return text


def _counters(counters: Any) -> Any:
    if not isinstance(counters, dict):
        return counters
    return {name: _quantity((value or {}).get("value")) for name, value in counters.items()}


def _capacity(capacity: Obj) -> Obj:
    out: Obj = {"value": _quantity(capacity.get("value"))}
    policy = capacity.get("requestPolicy")
    if policy:
        normalized: Obj = {
            key: _quantity(policy[key]) for key in _POLICY_QUANTITIES if policy.get(key) is not None
        }
        valid_range = policy.get("validRange")
        if valid_range:
            normalized["validRange"] = {k: _quantity(v) for k, v in valid_range.items() if v is not None}
        if policy.get("validValues"):
            normalized["validValues"] = [_quantity(v) for v in policy["validValues"]]
        out["requestPolicy"] = normalized
    return out


def _device(device: Obj) -> Obj:
    out = {key: value for key, value in device.items() if value not in (None, [], {}, False)}
    if "capacity" in out:
        out["capacity"] = {name: _capacity(value or {}) for name, value in out["capacity"].items()}
    if "consumesCounters" in out:
        out["consumesCounters"] = [
            (entry.get("counterSet"), _counters(entry.get("counters"))) for entry in out["consumesCounters"]
        ]
    if "taints" in out:
        out["taints"] = [
            {key: value for key, value in taint.items() if key != "timeAdded" and value}
            for taint in out["taints"]
        ]
    return out


def normalized_spec(spec: Obj) -> Obj:
    """The parts of a slice spec that matter, in one spelling; the pool generation is left out."""
    out: Obj = {key: value for key, value in spec.items() if value not in (None, [], {}, False)}
    pool = dict(out.get("pool") or {})
    pool.pop("generation", None)
    out["pool"] = pool
    if "devices" in out:
        out["devices"] = [_device(device) for device in out["devices"]]
    if "sharedCounters" in out:
        out["sharedCounters"] = [(s.get("name"), _counters(s.get("counters"))) for s in out["sharedCounters"]]
    return out


def _owners(obj: Obj) -> list[tuple[Any, ...]]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return sorted((r.get("apiVersion"), r.get("kind"), r.get("name"), r.get("uid")) for r in refs)


def _labels(obj: Obj) -> dict[str, Any]:
    """Our labels only: others' labels on our slices are theirs to keep."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {key: value for key, value in labels.items() if key.startswith(LABEL_PREFIX)}


def same_slice(desired: Obj, stored: Obj) -> bool:
    """True when ``stored`` already says what ``desired`` says (generation aside)."""
    return (
        _owners(desired) == _owners(stored)
        and _labels(desired) == _labels(stored)
        and normalized_spec(desired["spec"]) == normalized_spec(stored.get("spec") or {})
    )


def generation_of(obj: Obj) -> int:
    return int(((obj.get("spec") or {}).get("pool") or {}).get("generation") or 0)


@dataclass
class Plan:
    """Writes that bring the pool to the desired state: deletes first, then updates and creates."""

    generation: int
    deletes: list[Obj] = field(default_factory=list)
    updates: list[Obj] = field(default_factory=list)
    creates: list[Obj] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.deletes or self.updates or self.creates)

    @property
    def writes(self) -> list[Obj]:
        return [*self.updates, *self.creates]


def _immutable_changed(desired: Obj, stored: Obj) -> bool:
    old, new = stored.get("spec") or {}, desired["spec"]
    old_pool = (old.get("pool") or {}).get("name")
    return any(old.get(key) != new.get(key) for key in IMMUTABLE) or old_pool != new["pool"]["name"]


def plan_pool(desired: Sequence[Obj], stored: Iterable[Obj]) -> Plan:
    """Compare a pool's desired slices with the stored ones; an empty plan means nothing to write.

    Any change bumps the pool generation past every stored one and rewrites every slice with it, as
    consumers only trust the slices of a pool's highest generation.
    """
    by_name = {obj["metadata"]["name"]: obj for obj in stored}
    generations = {generation_of(obj) for obj in by_name.values()}
    current = max(generations, default=0)
    wanted = {obj["metadata"]["name"]: obj for obj in desired}
    obsolete = [
        obj for name, obj in by_name.items() if name not in wanted or _immutable_changed(wanted[name], obj)
    ]
    unchanged = (
        not obsolete
        and len(generations) <= 1
        and all(name in by_name and same_slice(obj, by_name[name]) for name, obj in wanted.items())
    )
    if unchanged:
        return Plan(current)
    plan = Plan(current + 1, deletes=obsolete)
    kept = set(by_name) - {obj["metadata"]["name"] for obj in obsolete}
    for name, obj in wanted.items():
        body = {
            **obj,
            "spec": {**obj["spec"], "pool": {**obj["spec"]["pool"], "generation": plan.generation}},
        }
        if name in kept:
            old_metadata = by_name[name]["metadata"]
            body["metadata"] = {
                **obj["metadata"],
                "labels": {**(old_metadata.get("labels") or {}), **(obj["metadata"].get("labels") or {})},
                "resourceVersion": old_metadata.get("resourceVersion"),
            }
            if old_metadata.get("annotations"):
                body["metadata"]["annotations"] = old_metadata["annotations"]
            plan.updates.append(body)
        else:
            plan.creates.append(body)
    return plan
