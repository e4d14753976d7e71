"""Builders of valid objects for the API server tests (plain dicts, as the driver sends them)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def node(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def pod(name: str, node_name: str = "", labels: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "main", "image": "busybox"}]}
    if node_name:
        spec["nodeName"] = node_name
    meta = {"name": name, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def owner_reference(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": "v1", "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"]}


def device(name: str, **extra: Any) -> Obj:
    return {
        "name": name,
        "attributes": {"xpushare.io/type": {"string": "npu"}, "xpushare.io/index": {"int": 0}},
        "capacity": {"memory": {"value": "64Gi"}, "cores": {"value": "100"}},
        **extra,
    }


def resource_slice(name: str, node_name: str, devices: int = 1, owner: Obj | None = None, **spec: Any) -> Obj:
    meta: Obj = {"name": name, "labels": {"xpushare.io/node": node_name}}
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": meta,
        "spec": {
            "driver": "xpushare.io",
            "nodeName": node_name,
            "pool": {"name": node_name, "generation": 1, "resourceSliceCount": 1},
            "devices": [device(f"npu-{i}") for i in range(devices)],
            **spec,
        },
    }


def claim(name: str, owner: Obj | None = None, capacity: Obj | None = None) -> Obj:
    exactly: Obj = {"deviceClassName": "npu.xpushare.io"}
    if capacity is not None:
        exactly["capacity"] = {"requests": capacity}
    meta: Obj = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [{**owner_reference(owner), "controller": True}]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": meta,
        "spec": {"devices": {"requests": [{"name": "npu", "exactly": exactly}]}},
    }


def claim_template(name: str) -> Obj:
    inner = claim("unused")["spec"]
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate", "metadata": {"name": name},
            "spec": {"spec": inner}}


def device_class(name: str) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"selectors": [{"cel": {"expression": "device.driver == 'xpushare.io'"}}]},
    }


def lease(name: str, holder: str) -> Obj:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}}


def allocation_status(pool: str, device_name: str) -> Obj:
    return {
        "allocation": {
            "devices": {
                "results": [{
                    "request": "npu", "driver": "xpushare.io", "pool": pool, "device": device_name,
                    "shareID": "4f1e6a3c-1b2d-4c5e-8f9a-0b1c2d3e4f50",
                    "consumedCapacity": {"memory": "16Gi", "cores": "25"},
                }],
            },
            "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [pool]}]}]},
        },
    }
