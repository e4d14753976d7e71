"""Clusters and workloads for the capacity-planning tests, built with the product's own slice builder.

Shared by the unit tests, the test against the embedded API server, the real-cluster test and the
benchmark, so they all plan on the slices a node plugin would publish. Devices are ``Device`` values
(the discovery model); slices come from ``controller.slices.build_slices``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from controller.settings import PartitionLayout, SliceMode, SliceSettings
from controller.slices import build_slices
from dra_driver.core.devices import GIB, Device, DeviceType, Health
from dra_driver.core.quantity import parse_quantity

JSON = dict[str, Any]
DRIVER = "xpushare.io"
GPU, NPU = "gpu.xpushare.io", "npu.xpushare.io"
# The documented "at least 16Gi and 25 %" form of partitioned mode (docs/configuration.md).
AT_LEAST = 'device.capacity["xpushare.io"].{name}.compareTo(quantity("{value}")) >= 0'


def gpu(
    index: int, memory_gib: int = 80, *, model: str = "H100-SXM5-80GB", node: str = "n", sick: bool = False
) -> Device:
    return Device(
        type=DeviceType.GPU, vendor="nvidia", model=model, uuid=f"GPU-{node}-{index}", index=index,
        memory_bytes=memory_gib * GIB, cores=132, device_node=f"/dev/nvidia{index}", minor=index,
        pci_bus_id=f"0000:{index + 1:02x}:00.0", numa_node=index // 4, driver_version="550.54.15",
        runtime_version="12.4", health=Health.UNHEALTHY if sick else Health.HEALTHY,
        health_message="XID 79" if sick else "",
    )  # fmt: skip


def npu(index: int, memory_gib: int = 64, *, node: str = "n") -> Device:
    return Device(
        type=DeviceType.NPU, vendor="huawei", model="Ascend910B3", uuid=f"NPU-{node}-{index}", index=index,
        memory_bytes=memory_gib * GIB, cores=20, device_node=f"/dev/davinci{index}", minor=index,
        pci_bus_id=f"0000:c{index + 1}:00.0", numa_node=0, driver_version="24.1.rc2",
        runtime_version="8.0.RC2",
    )  # fmt: skip


def settings(mode: SliceMode, layout: PartitionLayout | None = None) -> SliceSettings:
    if layout is None:
        return SliceSettings(driver_name=DRIVER, mode=mode)
    return SliceSettings(driver_name=DRIVER, mode=mode, partition_layout=layout)


def node_slices(
    node: str, devices: Sequence[Device], mode: SliceMode = SliceMode.CONSUMABLE,
    layout: PartitionLayout | None = None,
) -> list[JSON]:  # fmt: skip
    return build_slices(node, devices, mode, settings(mode, layout), generation=1)


def node_object(name: str, *, pods: int = 110, labels: Mapping[str, str] | None = None,
                taints: Iterable[JSON] = (), unschedulable: bool = False) -> JSON:  # fmt: skip
    spec: JSON = {"taints": list(taints)} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": spec,
        "status": {"allocatable": {"pods": str(pods), "cpu": "64", "memory": "512Gi"}},
    }  # fmt: skip


def request(
    device_class: str = GPU, memory: str | None = None, cores: str | None = None, *, name: str = "xpu",
    count: int | None = None, selectors: Sequence[str] = (), tolerations: Sequence[JSON] = (),
) -> JSON:  # fmt: skip
    exactly: JSON = {"deviceClassName": device_class}
    capacity = {k: v for k, v in (("memory", memory), ("cores", cores)) if v is not None}
    if capacity:
        exactly["capacity"] = {"requests": capacity}
    if selectors:
        exactly["selectors"] = [{"cel": {"expression": s}} for s in selectors]
    if count is not None:
        exactly["count"] = count
    if tolerations:
        exactly["tolerations"] = list(tolerations)
    return {"name": name, "exactly": exactly}


def at_least(memory: str, cores: str) -> str:
    """The documented partitioned-mode selector for "at least ``memory`` and ``cores`` %"."""
    return " && ".join(AT_LEAST.format(name=n, value=v) for n, v in (("memory", memory), ("cores", cores)))


def claim_spec(*requests: JSON, config: Sequence[JSON] = ()) -> JSON:
    devices: JSON = {"requests": list(requests)}
    if config:
        devices["config"] = list(config)
    return {"devices": devices}


def template(name: str, spec: JSON, namespace: str = "default") -> JSON:
    return {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace}, "spec": {"spec": spec},
    }  # fmt: skip


def sharing_config(memory_mib: int, core_percent: int, requests: Sequence[str] = ()) -> JSON:
    parameters = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", "memoryMiB": memory_mib,
                  "corePercent": core_percent}  # fmt: skip
    entry: JSON = {"opaque": {"driver": DRIVER, "parameters": parameters}}
    if requests:
        entry["requests"] = list(requests)
    return entry


def pod_spec(claims: Mapping[str, str], *, node_selector: Mapping[str, str] | None = None,
             tolerations: Sequence[JSON] = ({"operator": "Exists"},)) -> JSON:  # fmt: skip
    """A pod spec whose claims (pod claim name -> template) every container uses."""
    spec: JSON = {
        "containers": [{"name": "main", "image": "busybox",
                        "resources": {"claims": [{"name": name} for name in claims]}}],
        "resourceClaims": [{"name": name, "resourceClaimTemplateName": t} for name, t in claims.items()],
        "tolerations": list(tolerations),
    }  # fmt: skip
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    return spec


def deployment(name: str, spec: JSON, replicas: int = 1, namespace: str = "default") -> JSON:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }  # fmt: skip


def allocated_claim(name: str, results: Sequence[JSON], namespace: str = "default") -> JSON:
    """An existing claim holding ``results`` (device, pool, consumedCapacity as the scheduler wrote them)."""
    full = [{"request": "xpu", "driver": DRIVER, **r} for r in results]
    for i, r in enumerate(full):
        if "consumedCapacity" in r:
            r.setdefault("shareID", f"00000000-0000-0000-0000-{i:012d}")
    return {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": claim_spec(request()),
        "status": {"allocation": {"devices": {"results": full}}},
    }  # fmt: skip


Usage = dict[tuple[str, str], dict[str, Fraction]]  # (pool, physical device) -> capacity -> amount


def add_usage(used: Usage, allocation: JSON, slices: Iterable[JSON]) -> None:
    """Add what one ``status.allocation`` holds, per physical device, read independently of the planner:
    a share its consumedCapacity; a partition its counters, or its capacity when it has none (fixed
    pieces, which belong to their ``parent`` device); a whole device its capacity."""
    entries = {
        (s["spec"]["pool"]["name"], d["name"]): d for s in slices for d in s["spec"].get("devices") or ()
    }
    for result in allocation["devices"]["results"]:
        entry = entries.get((result["pool"], result["device"]))
        if entry is None:
            continue  # a device of a pool that is gone (an earlier test's)
        consumes = entry.get("consumesCounters") or []
        parent = (entry.get("attributes") or {}).get("xpushare.io/parent", {}).get("string")
        device = consumes[0]["counterSet"] if consumes else parent or entry["name"]
        if result.get("consumedCapacity"):
            amounts = result["consumedCapacity"]
        elif consumes:
            amounts = {k: v["value"] for k, v in consumes[0]["counters"].items()}
        else:
            amounts = {k: v["value"] for k, v in entry["capacity"].items()}
        held = used.setdefault((result["pool"], device), {})
        for name, value in amounts.items():
            held[name] = held.get(name, Fraction(0)) + parse_quantity(value).value


def planned_usage(plan_json: JSON) -> Usage:
    """The per-device use an ``xpushare plan -o json`` answer reports (devices with something used)."""
    return {
        (d["pool"], d["device"]): {name: Fraction(a["used"]) for name, a in d["capacity"].items()}
        for d in plan_json["devices"]
        if any(a["used"] for a in d["capacity"].values())
    }
