"""Builders for ResourceClaim JSON and devices, shared by the kubelet plugin's unit and integration tests.

They write allocations the way kube-scheduler does (results with ``consumedCapacity`` and ``shareID``
for consumable devices; class configs before claim configs), so tests that cannot run the scheduler
stand-in still hand the plugin realistic claims.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from typing import Any

from dra_driver.core.devices import GIB, Device, DeviceType

DRIVER = "xpushare.io"
NODE = "node-a"


def npu(index: int, memory_gib: int = 64) -> Device:
    return Device(
        type=DeviceType.NPU,
        vendor="huawei",
        model="Ascend910B3",
        uuid=f"NPU-UUID-{index}",
        index=index,
        memory_bytes=memory_gib * GIB,
        cores=20,
        device_node=f"/dev/davinci{index}",
        minor=index,
    )


def gpu(index: int, minor: int | None = None, memory_gib: int = 80) -> Device:
    return Device(
        type=DeviceType.GPU,
        vendor="nvidia",
        model="H100-SXM5-80GB",
        uuid=f"GPU-UUID-{index}",
        index=index,
        memory_bytes=memory_gib * GIB,
        cores=132,
        device_node=f"/dev/nvidia{index if minor is None else minor}",
        minor=index if minor is None else minor,
    )


def result(
    device: str,
    *,
    request: str = "req",
    pool: str = NODE,
    driver: str = DRIVER,
    share_id: str | None = None,
    consumed: dict[str, str] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": request, "driver": driver, "pool": pool, "device": device}
    if share_id is not None:
        entry["shareID"] = share_id
    if consumed is not None:
        entry["consumedCapacity"] = consumed
    return entry


def shared(
    device: str, memory: str = "16Gi", cores: str = "25", request: str = "req", **kw: Any
) -> dict[str, Any]:
    """A consumable-mode result: a share of ``device`` with a fresh share id."""
    return result(
        device,
        request=request,
        share_id=str(uuidlib.uuid4()),
        consumed={"memory": memory, "cores": cores},
        **kw,
    )


def opaque(
    parameters: Any, source: str = "FromClaim", requests: Sequence[str] = (), driver: str = DRIVER
) -> dict[str, Any]:
    entry: dict[str, Any] = {"source": source, "opaque": {"driver": driver, "parameters": parameters}}
    if requests:
        entry["requests"] = list(requests)
    return entry


def sharing(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", **fields}


def claim(
    name: str = "claim-a",
    *,
    namespace: str = "default",
    uid: str | None = None,
    results: Sequence[dict[str, Any]] | None = None,
    configs: Sequence[dict[str, Any]] = (),
    reserved: bool = True,
) -> dict[str, Any]:
    """Claim JSON; ``results=None`` leaves it unallocated."""
    obj: dict[str, Any] = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuidlib.uuid4())},
        "spec": {
            "devices": {"requests": [{"name": "req", "exactly": {"deviceClassName": "npu.xpushare.io"}}]}
        },
        "status": {},
    }
    if results is not None:
        obj["status"]["allocation"] = {"devices": {"results": list(results), "config": list(configs)}}
        if reserved:
            obj["status"]["reservedFor"] = [
                {"resource": "pods", "name": f"{name}-pod", "uid": str(uuidlib.uuid4())}
            ]
    return obj
