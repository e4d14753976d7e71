"""AdmissionReview requests around ResourceClaims, templates and DeviceClasses carrying configs."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
DRIVER = "xpushare.io"
GOOD = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", "priority": "high", "corePercent": 25}
BAD = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", "corePercent": 150}


def configs(*parameters: Obj, driver: str = DRIVER) -> list[Obj]:
    return [{"opaque": {"driver": driver, "parameters": p}} for p in parameters]


def claim(config: list[Obj]) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "train", "namespace": "team-a"},
        "spec": {"devices": {"requests": [], "config": config}},
    }


def template(config: list[Obj]) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "tpl", "namespace": "team-a"},
        "spec": {"spec": {"devices": {"requests": [], "config": config}}},
    }


def device_class(config: list[Obj]) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "npu.xpushare.io"},
        "spec": {"selectors": [], "config": config},
    }


def admission_review(obj: Obj, operation: str = "CREATE") -> Obj:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "resource.k8s.io", "version": "v1", "kind": obj["kind"]},
            "operation": operation,
            "object": obj,
        },
    }
