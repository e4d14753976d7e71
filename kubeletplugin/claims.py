"""Reads a ResourceClaim (its JSON, as the API server sent it) into the part this node must prepare.

Pure: no I/O. Every refusal is a ``ClaimError`` whose message names the claim and the reason, because it
travels back to the kubelet as the claim's error and ends up in the pod's events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from api.errors import XPUShareError
from dra_driver.core.quantity import quantity_value

FROM_CLASS = "FromClass"


class ClaimError(XPUShareError):
    """A claim cannot be prepared on this node; the message names the claim and why."""


def claim_ref(namespace: str, name: str, uid: str) -> str:
    return f"claim {namespace}/{name} (uid {uid})"


@dataclass(frozen=True, slots=True)
class Consumed:
    """``consumedCapacity`` of a result, in bytes and percent; ``None`` where the scheduler wrote none."""

    memory_bytes: int | None
    core_percent: int | None


@dataclass(frozen=True, slots=True)
class Result:
    """One allocation result of our driver on this node."""

    request: str
    pool: str
    device: str
    share_id: str | None
    consumed: Consumed | None

    @property
    def request_name(self) -> str:
        """The request's name without a subrequest suffix (``gpu/small`` -> ``gpu``)."""
        return self.request.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class OpaqueConfig:
    """One opaque config of our driver; ``requests`` empty means it applies to every request."""

    from_class: bool
    requests: tuple[str, ...]
    parameters: Any
    path: str

    def applies_to(self, request: str) -> bool:
        return not self.requests or request in self.requests or request.split("/", 1)[0] in self.requests


@dataclass(frozen=True, slots=True)
class AllocatedClaim:
    uid: str
    namespace: str
    name: str
    results: tuple[Result, ...]
    configs: tuple[OpaqueConfig, ...]

    @property
    def ref(self) -> str:
        return claim_ref(self.namespace, self.name, self.uid)


def _quantity(value: Any, what: str) -> Fraction:
    try:
        return quantity_value(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{what} is not a quantity: {value!r}") from err


def _consumed(raw: Any, path: str) -> Consumed | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path} must be an object")
    memory = raw.get("memory")
    cores = raw.get("cores")
    memory_bytes = None if memory is None else int(_quantity(memory, f"{path}.memory"))
    core_percent = None if cores is None else _quantity(cores, f"{path}.cores")
    if core_percent is not None and core_percent.denominator != 1:
        raise ValueError(f"{path}.cores must be a whole number of percent (got {cores!r})")
    if (memory_bytes is not None and memory_bytes < 0) or (core_percent is not None and core_percent < 0):
        raise ValueError(f"{path} must not be negative")
    return Consumed(memory_bytes, None if core_percent is None else int(core_percent))


def _results(allocation: Mapping[str, Any], driver: str) -> list[Result]:
    results = []
    for i, raw in enumerate(allocation.get("devices", {}).get("results") or []):
        if raw.get("driver") != driver:
            continue  # another driver's device in the same claim: not ours to prepare
        path = f"status.allocation.devices.results[{i}]"
        results.append(
            Result(
                request=str(raw.get("request", "")),
                pool=str(raw.get("pool", "")),
                device=str(raw.get("device", "")),
                share_id=raw.get("shareID") or None,
                consumed=_consumed(raw.get("consumedCapacity"), f"{path}.consumedCapacity"),
            )
        )
    return results


def _configs(allocation: Mapping[str, Any], driver: str) -> list[OpaqueConfig]:
    configs = []
    for i, raw in enumerate(allocation.get("devices", {}).get("config") or []):
        opaque = raw.get("opaque") or {}
        if opaque.get("driver") != driver:
            continue  # configs of other drivers are theirs to judge
        configs.append(
            OpaqueConfig(
                from_class=raw.get("source") == FROM_CLASS,
                requests=tuple(raw.get("requests") or ()),
                parameters=opaque.get("parameters"),
                path=f"status.allocation.devices.config[{i}].opaque.parameters",
            )
        )
    # Class configs apply first, then claim configs; order within each source is kept.
    return sorted(configs, key=lambda c: not c.from_class)


def parse_claim(obj: Mapping[str, Any], *, uid: str, driver: str, pool: str) -> AllocatedClaim:
    """The results and configs of ``driver`` that this node (``pool``) must prepare for claim ``uid``."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    ref = claim_ref(namespace, name, uid)
    if meta.get("uid") != uid:
        raise ClaimError(
            f"{ref}: the API server holds uid {meta.get('uid')}; the claim was deleted and re-created"
        )
    allocation = (obj.get("status") or {}).get("allocation")
    if not allocation:
        raise ClaimError(f"{ref}: not allocated (status.allocation is empty)")
    try:
        results = _results(allocation, driver)
    except ValueError as err:
        raise ClaimError(f"{ref}: {err}") from err
    if not results:
        raise ClaimError(f"{ref}: the allocation holds no device of driver {driver}")
    foreign = sorted({r.pool for r in results if r.pool != pool})
    if foreign:
        raise ClaimError(
            f"{ref}: allocated on pool(s) {', '.join(foreign)}, but this node serves pool {pool}"
        )
    return AllocatedClaim(uid, namespace, name, tuple(results), tuple(_configs(allocation, driver)))
