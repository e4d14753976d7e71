"""Frozen, typed views of the resource.k8s.io/v1 objects the allocator reads.

The allocator accepts plain dicts in the API's Obj shape (what the REST API returns or what
``ApiClient.sanitize_for_serialization`` produces) so that the simulator and a capacity planner can both
feed it; ``allocator.parse`` turns them into these values once, at the edge. Everything past that
edge works on these immutable values, which keeps the search pure and repeatable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.core.quantity import Quantity
from dra_driver.simulation.allocator.celenv import Semver

__all__ = [
    "AllocatedDevice",
    "Capacity",
    "Claim",
    "ClaimConfig",
    "Constraint",
    "CounterConsumption",
    "Device",
    "DeviceClass",
    "DeviceID",
    "Node",
    "NodeSelection",
    "Request",
    "RequestPolicy",
    "Slice",
    "Taint",
    "Toleration",
]

AttributeValue = bool | int | str | Semver | tuple[Any, ...]


@dataclass(frozen=True, slots=True, order=True)
class DeviceID:
    """A device's identity across the cluster: driver, pool and name."""

    driver: str
    pool: str
    device: str

    def __str__(self) -> str:
        return f"{self.driver}/{self.pool}/{self.device}"


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """How requests for one consumable capacity are defaulted and rounded (KEP-5075)."""

    default: Quantity | None = None
    min: Quantity | None = None
    max: Quantity | None = None
    step: Quantity | None = None
    valid_values: tuple[Quantity, ...] = ()


@dataclass(frozen=True, slots=True)
class Capacity:
    value: Quantity
    policy: RequestPolicy | None = None


@dataclass(frozen=True, slots=True)
class CounterConsumption:
    counter_set: str
    counters: Mapping[str, Quantity]


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        """Kubernetes toleration matching: empty key with Exists matches every taint."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator == "Equal" and self.value == taint.value


@dataclass(frozen=True, slots=True)
class NodeSelection:
    """Where a slice (or, with perDeviceNodeSelection, a device) is reachable from."""

    node_name: str = ""
    all_nodes: bool = False
    node_selector: Obj | None = None


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    capacity: Mapping[str, Capacity] = field(default_factory=dict)
    allow_multiple_allocations: bool = False
    consumes_counters: tuple[CounterConsumption, ...] = ()
    taints: tuple[Taint, ...] = ()
    node: NodeSelection | None = None


@dataclass(frozen=True, slots=True)
class Slice:
    name: str
    driver: str
    pool: str
    generation: int
    resource_slice_count: int
    node: NodeSelection
    per_device_node_selection: bool = False
    devices: tuple[Device, ...] = ()
    counter_sets: Mapping[str, Mapping[str, Quantity]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceClass:
    name: str
    selectors: tuple[str, ...] = ()
    config: tuple[Obj, ...] = ()  # DeviceClassConfiguration entries, copied into allocations as-is


@dataclass(frozen=True, slots=True)
class Request:
    """An exact request or one subrequest of a ``firstAvailable`` list (then ``parent`` is set)."""

    name: str
    device_class: str
    selectors: tuple[str, ...] = ()
    all_devices: bool = False
    count: int = 1
    capacity: Mapping[str, Quantity] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    raw_tolerations: tuple[Obj, ...] = ()
    admin_access: bool = False
    parent: str = ""

    @property
    def result_name(self) -> str:
        """The name in allocation results: ``<request>/<subrequest>`` for a subrequest."""
        return f"{self.parent}/{self.name}" if self.parent else self.name


@dataclass(frozen=True, slots=True)
class Constraint:
    requests: tuple[str, ...] = ()
    match_attribute: str = ""
    distinct_attribute: str = ""


@dataclass(frozen=True, slots=True)
class ClaimConfig:
    requests: tuple[str, ...]
    body: Obj  # the configuration without its ``requests`` (for example ``{"opaque": {...}}``)


@dataclass(frozen=True, slots=True)
class Claim:
    namespace: str
    name: str
    uid: str
    requests: tuple[tuple[Request, ...], ...]  # one tuple per request: itself, or its subrequests
    request_names: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    config: tuple[ClaimConfig, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AllocatedDevice:
    """One result of an allocation that already exists (it holds its device, capacity and counters)."""

    id: DeviceID
    share_id: str = ""
    consumed: Mapping[str, Quantity] = field(default_factory=dict)
    admin_access: bool = False
