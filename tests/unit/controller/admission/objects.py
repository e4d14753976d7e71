"""AdmissionReview requests around ResourceClaims, templates and DeviceClasses carrying configs."""

from __future__ import annotations

import json
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


def _review_with(path: str, value: Any) -> Obj:
    """A review of a claim with a bad config whose field at ``path`` (dotted, from the root) is ``value``."""
    body = admission_review(claim(configs(BAD)))
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    node[last] = value
    return body


DEEP = 500  # nested arrays: parseable, deeper than any real object
_CONFIG = "request.object.spec.devices.config"
_DEEP_PARAMETERS = configs({**GOOD, "x": json.loads("[" * DEEP + "]" * DEEP)})
_OBJ = "request.object"
# (case, review, what the denial's message says): wrong types at each level of an AdmissionReview
MALFORMED_REVIEWS: list[tuple[str, Any, str]] = [
    ("empty object", {}, "request: must be an object (got null)"),
    ("request a string", {"request": "nope"}, "request: must be an object (got a string)"),
    ("uid an array", _review_with("request.uid", ["x"]), "request.uid: must be a non-empty string"),
    ("uid empty", _review_with("request.uid", ""), "request.uid: must be a non-empty string"),
    ("operation an array", _review_with("request.operation", [1]), "request.operation: must be a string"),
    ("kind a string", _review_with("request.kind", "ResourceClaim"), "request.kind: must be an object"),
    ("kind an array", _review_with("request.kind", ["ResourceClaim"]), "request.kind: must be an object"),
    ("kind.kind a number", _review_with("request.kind.kind", 7), "request.kind.kind: must be a string"),
    ("object an array", _review_with(_OBJ, [1]), "request.object: must be an object"),
    ("object missing", _review_with(_OBJ, None), "request.object: must be an object (got null)"),
    ("object.kind an array", _review_with(f"{_OBJ}.kind", [1]), "request.object.kind: must be a string"),
    (
        "metadata an array",
        _review_with(f"{_OBJ}.metadata", [1]),
        "request.object.metadata: must be an object",
    ),
    (
        "metadata a string",
        _review_with(f"{_OBJ}.metadata", "m"),
        "request.object.metadata: must be an object",
    ),
    ("spec an array", _review_with(f"{_OBJ}.spec", [1]), "spec: must be an object"),
    ("devices an array", _review_with(f"{_OBJ}.spec.devices", [1]), "spec.devices: must be an object"),
    ("config an object", _review_with(_CONFIG, {"a": 1}), "spec.devices.config: must be a list"),
    ("config item a string", _review_with(_CONFIG, ["x"]), "spec.devices.config[0]: must be an object"),
    (
        "opaque an array",
        _review_with(_CONFIG, [{"opaque": [1]}]),
        "spec.devices.config[0].opaque: must be an",
    ),
    (
        "parameters a string",
        _review_with(_CONFIG, configs("corePercent=5")),  # type: ignore[arg-type]
        "spec.devices.config[0].opaque.parameters: must be a JSON object",
    ),
    (
        f"parameters {DEEP} deep",
        _review_with(_CONFIG, _DEEP_PARAMETERS),
        "spec.devices.config[0].opaque.parameters.x: unknown field",
    ),
]
