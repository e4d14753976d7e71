"""Parse API objects (dicts in the resource.k8s.io/v1 JSON shape) into the allocator's frozen model.

This is the allocator's only edge: bad input raises ``InputError`` naming the object and the field path
(``ResourceSlice node-a: spec.devices[2].capacity.memory.value: ...``), never a bare KeyError. Fields
the allocator does not use are ignored, so newer API servers with extra fields still work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from api.errors import ConfigError
from dra_driver.core.kubetypes import ObjView
from dra_driver.core.quantity import Quantity, QuantityError, parse_quantity
from dra_driver.simulation.allocator.celenv import parse_semver
from dra_driver.simulation.allocator.model import (
    AllocatedDevice,
    AttributeValue,
    Capacity,
    Claim,
    ClaimConfig,
    Constraint,
    CounterConsumption,
    Device,
    DeviceClass,
    DeviceID,
    Node,
    NodeSelection,
    Request,
    RequestPolicy,
    Slice,
    Taint,
    Toleration,
)

__all__ = [
    "InputError",
    "allocated_devices",
    "parse_claim",
    "parse_device_class",
    "parse_node",
    "parse_slice",
]

T = TypeVar("T")


class InputError(ConfigError):
    """An API object given to the allocator is malformed; the message names the object and field."""


def _map(obj: Any, where: str) -> ObjView:
    if obj is None:
        return {}
    if not isinstance(obj, Mapping):
        raise InputError(f"{where}: expected an object, got {type(obj).__name__}")
    return obj


def _list(obj: Any, where: str) -> Sequence[Any]:
    if obj is None:
        return ()
    if not isinstance(obj, list | tuple):
        raise InputError(f"{where}: expected a list, got {type(obj).__name__}")
    return obj


def _each(items: Any, where: str, parse: Callable[[ObjView, str], T]) -> tuple[T, ...]:
    return tuple(
        parse(_map(item, f"{where}[{i}]"), f"{where}[{i}]") for i, item in enumerate(_list(items, where))
    )


def _quantity(value: Any, where: str) -> Quantity:
    try:
        return parse_quantity(value, where)
    except QuantityError as err:
        raise InputError(str(err)) from err


def _opt_quantity(value: Any, where: str) -> Quantity | None:
    return None if value is None else _quantity(value, where)


def _name(obj: ObjView) -> str:
    return str(_map(obj.get("metadata"), "metadata").get("name", ""))


def _node_selection(spec: ObjView) -> NodeSelection:
    selector = spec.get("nodeSelector")
    return NodeSelection(
        node_name=str(spec.get("nodeName") or ""),
        all_nodes=bool(spec.get("allNodes")),
        node_selector=dict(selector) if isinstance(selector, Mapping) else None,
    )


def _attribute(raw: ObjView, where: str) -> AttributeValue:
    for key in ("bool", "int", "string"):
        if raw.get(key) is not None:
            return raw[key]  # type: ignore[no-any-return]
    try:
        if raw.get("version") is not None:
            return parse_semver(str(raw["version"]))
        for key in ("bools", "ints", "strings"):
            if raw.get(key) is not None:
                return tuple(raw[key])
        if raw.get("versions") is not None:
            return tuple(parse_semver(str(v)) for v in raw["versions"])
    except ValueError as err:
        raise InputError(f"{where}: {err}") from err
    raise InputError(f"{where}: no value; expected one of bool, int, string, version")


def _policy(raw: Any, where: str) -> RequestPolicy | None:
    if raw is None:
        return None
    raw = _map(raw, where)
    rng = _map(raw.get("validRange"), f"{where}.validRange")
    values = tuple(
        _quantity(v, f"{where}.validValues[{i}]") for i, v in enumerate(_list(raw.get("validValues"), where))
    )
    policy = RequestPolicy(
        default=_opt_quantity(raw.get("default"), f"{where}.default"),
        min=_opt_quantity(rng.get("min"), f"{where}.validRange.min"),
        max=_opt_quantity(rng.get("max"), f"{where}.validRange.max"),
        step=_opt_quantity(rng.get("step"), f"{where}.validRange.step"),
        valid_values=tuple(sorted(values)),
    )
    if policy.step is not None and policy.step.value <= 0:
        raise InputError(f"{where}.validRange.step: must be greater than zero, got {policy.step}")
    if policy.step is not None and policy.min is None:
        raise InputError(f"{where}.validRange.min: required when a step is set")
    return policy


def _capacity(raw: ObjView, where: str) -> Capacity:
    return Capacity(
        _quantity(raw.get("value"), f"{where}.value"),
        _policy(raw.get("requestPolicy"), f"{where}.requestPolicy"),
    )


def _counters(raw: Any, where: str) -> dict[str, Quantity]:
    return {
        str(name): _quantity(_map(counter, f"{where}.{name}").get("value"), f"{where}.{name}.value")
        for name, counter in _map(raw, where).items()
    }


def _consumption(raw: ObjView, where: str) -> CounterConsumption:
    return CounterConsumption(
        str(raw.get("counterSet", "")), _counters(raw.get("counters"), f"{where}.counters")
    )


def _taint(raw: ObjView, where: str) -> Taint:
    return Taint(
        key=str(raw.get("key", "")), effect=str(raw.get("effect", "")), value=str(raw.get("value") or "")
    )


def _device(raw: ObjView, where: str) -> Device:
    if not raw.get("name"):
        raise InputError(f"{where}.name: required")
    attributes = {
        str(k): _attribute(_map(v, f"{where}.attributes.{k}"), f"{where}.attributes.{k}")
        for k, v in _map(raw.get("attributes"), f"{where}.attributes").items()
    }
    capacity = {
        str(k): _capacity(_map(v, f"{where}.capacity.{k}"), f"{where}.capacity.{k}")
        for k, v in _map(raw.get("capacity"), f"{where}.capacity").items()
    }
    per_device = any(raw.get(key) for key in ("nodeName", "allNodes", "nodeSelector"))
    return Device(
        name=str(raw["name"]),
        attributes=attributes,
        capacity=capacity,
        allow_multiple_allocations=bool(raw.get("allowMultipleAllocations")),
        consumes_counters=_each(raw.get("consumesCounters"), f"{where}.consumesCounters", _consumption),
        taints=_each(raw.get("taints"), f"{where}.taints", _taint),
        node=_node_selection(raw) if per_device else None,
    )


def parse_slice(obj: ObjView) -> Slice:
    """A ResourceSlice; raises InputError naming the slice and field when it is malformed."""
    name = _name(obj)
    where = f"ResourceSlice {name}: spec"
    spec = _map(obj.get("spec"), where)
    pool = _map(spec.get("pool"), f"{where}.pool")
    if not spec.get("driver") or not pool.get("name"):
        raise InputError(f"{where}: driver and pool.name are required")
    counter_sets = {
        str(_map(cs, f"{where}.sharedCounters[{i}]").get("name", "")): _counters(
            _map(cs, "").get("counters"), f"{where}.sharedCounters[{i}].counters"
        )
        for i, cs in enumerate(_list(spec.get("sharedCounters"), f"{where}.sharedCounters"))
    }
    return Slice(
        name=name,
        driver=str(spec["driver"]),
        pool=str(pool["name"]),
        generation=int(pool.get("generation", 0)),
        resource_slice_count=int(pool.get("resourceSliceCount", 1)),
        node=_node_selection(spec),
        per_device_node_selection=bool(spec.get("perDeviceNodeSelection")),
        devices=_each(spec.get("devices"), f"{where}.devices", _device),
        counter_sets=counter_sets,
    )


def parse_device_class(obj: ObjView) -> DeviceClass:
    name = _name(obj)
    spec = _map(obj.get("spec"), f"DeviceClass {name}: spec")
    return DeviceClass(
        name=name,
        selectors=_selectors(spec.get("selectors"), f"DeviceClass {name}: spec.selectors"),
        config=tuple(
            dict(_map(c, "config")) for c in _list(spec.get("config"), f"DeviceClass {name}: spec.config")
        ),
    )


def _selectors(raw: Any, where: str) -> tuple[str, ...]:
    out = []
    for i, selector in enumerate(_list(raw, where)):
        cel = _map(_map(selector, f"{where}[{i}]").get("cel"), f"{where}[{i}].cel")
        if not cel.get("expression"):
            raise InputError(f"{where}[{i}].cel.expression: required (only CEL selectors are supported)")
        out.append(str(cel["expression"]))
    return tuple(out)


def _toleration(raw: ObjView, where: str) -> Toleration:
    return Toleration(
        key=str(raw.get("key") or ""),
        operator=str(raw.get("operator") or "Equal"),
        value=str(raw.get("value") or ""),
        effect=str(raw.get("effect") or ""),
    )


def _count(raw: Any, where: str) -> int:
    """An ExactCount request's count: 1 when absent, as the API server defaults it; 0 is refused there too."""
    if raw is None:
        return 1
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InputError(f"{where}: must be an integer, got {raw!r}")
    if raw < 1:
        raise InputError(f"{where}: must be at least 1, got {raw}")
    return raw


def _request(raw: ObjView, where: str, name: str, parent: str = "") -> Request:
    mode = str(raw.get("allocationMode") or "ExactCount")
    if mode not in {"ExactCount", "All"}:
        raise InputError(f"{where}.allocationMode: {mode!r} is not supported; allowed: ExactCount, All")
    count = _count(raw.get("count"), f"{where}.count")
    if not raw.get("deviceClassName"):
        raise InputError(f"{where}.deviceClassName: required")
    capacity = _map(
        _map(raw.get("capacity"), f"{where}.capacity").get("requests"), f"{where}.capacity.requests"
    )
    return Request(
        name=name,
        device_class=str(raw["deviceClassName"]),
        selectors=_selectors(raw.get("selectors"), f"{where}.selectors"),
        all_devices=mode == "All",
        count=count,
        capacity={str(k): _quantity(v, f"{where}.capacity.requests.{k}") for k, v in capacity.items()},
        tolerations=_each(raw.get("tolerations"), f"{where}.tolerations", _toleration),
        raw_tolerations=tuple(dict(t) for t in _list(raw.get("tolerations"), f"{where}.tolerations")),
        admin_access=bool(raw.get("adminAccess")),
        parent=parent,
    )


def _request_alternatives(raw: ObjView, where: str) -> tuple[Request, ...]:
    name = str(raw.get("name", ""))
    if raw.get("exactly") is not None:
        return (_request(_map(raw["exactly"], f"{where}.exactly"), f"{where}.exactly", name),)
    subs = _list(raw.get("firstAvailable"), f"{where}.firstAvailable")
    if not subs:
        raise InputError(f"{where}: one of exactly or firstAvailable is required")
    return tuple(
        _request(
            _map(s, f"{where}.firstAvailable[{i}]"),
            f"{where}.firstAvailable[{i}]",
            str(s.get("name", "")),
            name,
        )
        for i, s in enumerate(subs)
    )


def _constraint(raw: ObjView, where: str) -> Constraint:
    return Constraint(
        requests=tuple(str(r) for r in _list(raw.get("requests"), f"{where}.requests")),
        match_attribute=str(raw.get("matchAttribute") or ""),
        distinct_attribute=str(raw.get("distinctAttribute") or ""),
    )


def _claim_config(raw: ObjView, where: str) -> ClaimConfig:
    body = {k: v for k, v in raw.items() if k != "requests"}
    return ClaimConfig(tuple(str(r) for r in _list(raw.get("requests"), f"{where}.requests")), body)


def parse_claim(obj: ObjView) -> Claim:
    """A ResourceClaim's spec (its status is read by ``allocated_devices``)."""
    meta = _map(obj.get("metadata"), "metadata")
    key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    where = f"ResourceClaim {key}: spec.devices"
    devices = _map(_map(obj.get("spec"), where).get("devices"), where)
    raw_requests = _list(devices.get("requests"), f"{where}.requests")
    requests = tuple(
        _request_alternatives(_map(r, f"{where}.requests[{i}]"), f"{where}.requests[{i}]")
        for i, r in enumerate(raw_requests)
    )
    return Claim(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        requests=requests,
        request_names=tuple(str(_map(r, "").get("name", "")) for r in raw_requests),
        constraints=_each(devices.get("constraints"), f"{where}.constraints", _constraint),
        config=_each(devices.get("config"), f"{where}.config", _claim_config),
    )


def allocated_devices(obj: ObjView) -> tuple[AllocatedDevice, ...]:
    """The devices an existing claim holds, from ``status.allocation.devices.results``."""
    where = "status.allocation.devices.results"
    allocation = _map(_map(obj.get("status"), "status").get("allocation"), "status.allocation")
    results = _list(_map(allocation.get("devices"), "status.allocation.devices").get("results"), where)
    out = []
    for i, item in enumerate(results):
        raw = _map(item, f"{where}[{i}]")
        consumed = _map(raw.get("consumedCapacity"), f"{where}[{i}].consumedCapacity")
        out.append(
            AllocatedDevice(
                id=DeviceID(str(raw.get("driver", "")), str(raw.get("pool", "")), str(raw.get("device", ""))),
                share_id=str(raw.get("shareID") or ""),
                consumed={
                    str(k): _quantity(v, f"{where}[{i}].consumedCapacity.{k}") for k, v in consumed.items()
                },
                admin_access=bool(raw.get("adminAccess")),
            )
        )
    return tuple(out)


def parse_node(obj: ObjView | str) -> Node:
    """A Node object (name and labels matter) or just a node name."""
    if isinstance(obj, str):
        return Node(obj)
    meta = _map(obj.get("metadata"), "Node: metadata")
    labels = _map(meta.get("labels"), "Node: metadata.labels")
    return Node(str(meta.get("name", "")), {str(k): str(v) for k, v in labels.items()})
