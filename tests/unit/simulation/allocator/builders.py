"""Small builders for API objects in the resource.k8s.io/v1 JSON shape, so cases read as scenarios."""

from __future__ import annotations

from typing import Any

DRIVER = "xpushare.io"
GPU_CLASS_SELECTOR = 'device.driver == "xpushare.io" && device.attributes["xpushare.io"].type == "gpu"'

JSON = dict[str, Any]


def device(
    name: str,
    *,
    memory: str = "80Gi",
    cores: str = "100",
    shared: bool = True,
    policy: bool = True,
    attrs: JSON | None = None,
    **extra: Any,
) -> JSON:
    """A GPU as the consumable mode publishes it: memory in 256Mi steps, cores in steps of 1."""
    capacity: JSON = {"memory": {"value": memory}, "cores": {"value": cores}}
    if shared and policy:
        capacity["memory"]["requestPolicy"] = {
            "default": memory,
            "validRange": {"min": "256Mi", "max": memory, "step": "256Mi"},
        }
        capacity["cores"]["requestPolicy"] = {
            "default": "0",
            "validRange": {"min": "0", "max": cores, "step": "1"},
        }
    attributes: JSON = {"type": {"string": "gpu"}, "model": {"string": "H100"}}
    for key, value in (attrs or {}).items():
        attributes[key] = value
    out: JSON = {"name": name, "attributes": attributes, "capacity": capacity}
    if shared:
        out["allowMultipleAllocations"] = True
    out.update(extra)
    return out


def slice_(
    name: str,
    devices: list[JSON],
    *,
    node: str = "node-a",
    pool: str | None = None,
    generation: int = 1,
    count: int = 1,
    counters: list[JSON] | None = None,
    **spec_extra: Any,
) -> JSON:
    spec: JSON = {
        "driver": DRIVER,
        "pool": {"name": pool or node, "generation": generation, "resourceSliceCount": count},
    }
    if node:
        spec["nodeName"] = node
    if devices:
        spec["devices"] = devices
    if counters:
        spec["sharedCounters"] = counters
    spec.update(spec_extra)
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": spec,
    }


def device_class(
    name: str = "gpu.xpushare.io", selector: str = GPU_CLASS_SELECTOR, config: list[JSON] | None = None
) -> JSON:
    spec: JSON = {"selectors": [{"cel": {"expression": selector}}]}
    if config:
        spec["config"] = config
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": spec,
    }


def exactly(
    *,
    capacity: JSON | None = None,
    count: int | None = None,
    mode: str | None = None,
    selectors: list[str] | None = None,
    device_class_name: str = "gpu.xpushare.io",
    **extra: Any,
) -> JSON:
    out: JSON = {"deviceClassName": device_class_name}
    if capacity is not None:
        out["capacity"] = {"requests": capacity}
    if count is not None:
        out["count"] = count
    if mode is not None:
        out["allocationMode"] = mode
    if selectors:
        out["selectors"] = [{"cel": {"expression": s}} for s in selectors]
    out.update(extra)
    return out


def claim(
    name: str,
    *requests: JSON,
    namespace: str = "default",
    constraints: list[JSON] | None = None,
    config: list[JSON] | None = None,
    allocation: JSON | None = None,
) -> JSON:
    """A claim whose requests are given as {"name": ..., "exactly": ...} or {"name", "firstAvailable"}."""
    devices: JSON = {"requests": list(requests)}
    if constraints:
        devices["constraints"] = constraints
    if config:
        devices["config"] = config
    out: JSON = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"devices": devices},
    }
    if allocation is not None:
        out["status"] = {"allocation": allocation}
    return out


def gpu_claim(name: str, capacity: JSON | None = None, **kwargs: Any) -> JSON:
    """The common case: one request named ``gpu`` for one device of the GPU class."""
    return claim(name, {"name": "gpu", "exactly": exactly(capacity=capacity, **kwargs)})


def devices_of(allocation: JSON) -> list[str]:
    return [r["device"] for r in allocation["devices"]["results"]]
