"""deploy/manifests: the DeviceClasses match the controller's, and the slice policy's CEL does its job.

The ValidatingAdmissionPolicy is evaluated here with cel-python the way the API server evaluates it:
match condition, then variables in order, then each validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy.adapter import json_to_cel

from controller.deviceclasses import device_classes
from tests.support.resource_schema import RESOURCE_V1, errors

MANIFESTS = Path(__file__).resolve().parents[4] / "deploy" / "manifests"
PLUGIN_USER = "system:serviceaccount:xpushare-system:xpushare-kubelet-plugin"
Obj = dict[str, Any]


def load(name: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def test_device_class_manifest_matches_what_the_controller_installs(schemas_dir: Path) -> None:
    manifests = load("deviceclasses.yaml")
    assert manifests == device_classes()
    for obj in manifests:
        assert errors(schemas_dir, RESOURCE_V1, "io.k8s.api.resource.v1.DeviceClass", obj) == []


def test_every_manifest_is_a_kubernetes_object() -> None:
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in load(path.name):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path.name
            assert doc["metadata"].get("name"), path.name


def _cel(expression: str, activation: dict[str, Any]) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression)).evaluate(activation)


def evaluate_policy(request: Obj, obj: Obj | None, old: Obj | None) -> list[str] | None:
    """None when the policy does not apply; else the failed validations' messages (empty: allowed)."""
    policy = load("resourceslice-policy.yaml")[0]["spec"]
    activation: dict[str, Any] = {
        "request": json_to_cel(request),
        "object": json_to_cel(obj),
        "oldObject": json_to_cel(old),
    }
    if not all(bool(_cel(c["expression"], activation)) for c in policy["matchConditions"]):
        return None
    variables: dict[Any, Any] = {}
    for variable in policy["variables"]:
        activation["variables"] = celpy.celtypes.MapType(variables)
        variables[celpy.celtypes.StringType(variable["name"])] = _cel(variable["expression"], activation)
    activation["variables"] = celpy.celtypes.MapType(variables)
    failures = []
    for validation in policy["validations"]:
        if not bool(_cel(validation["expression"], activation)):
            message = validation.get("message") or str(_cel(validation["messageExpression"], activation))
            failures.append(" ".join(message.split()))
    return failures


def request(operation: str, node: str | None, username: str = PLUGIN_USER) -> Obj:
    extra = {"authentication.kubernetes.io/node-name": [node]} if node else {}
    return {"operation": operation, "userInfo": {"username": username, "extra": extra}}


def slice_of(node: str | None, driver: str = "xpushare.io") -> Obj:
    spec: Obj = {"driver": driver}
    if node:
        spec["nodeName"] = node
    return {"spec": spec}


def test_plugin_may_write_its_own_nodes_slices() -> None:
    assert evaluate_policy(request("CREATE", "node-a"), slice_of("node-a"), None) == []
    assert evaluate_policy(request("UPDATE", "node-a"), slice_of("node-a"), slice_of("node-a")) == []
    assert evaluate_policy(request("DELETE", "node-a"), None, slice_of("node-a")) == []


@pytest.mark.parametrize(
    ("req", "obj", "old", "message"),
    [
        (
            request("CREATE", "node-a"),
            slice_of("node-b"),
            None,
            "on node 'node-a' may not modify ResourceSlices of node 'node-b'",
        ),
        (
            request("DELETE", "node-a"),
            None,
            slice_of("node-b"),
            "may not modify ResourceSlices of node 'node-b'",
        ),
        (request("CREATE", "node-a"), slice_of(None), None, "may not modify ResourceSlices without a node"),
        (request("CREATE", None), slice_of("node-a"), None, "no node is associated with this user"),
        (request("CREATE", "node-a"), slice_of("node-a", "gpu.nvidia.com"), None, "driver 'gpu.nvidia.com'"),
    ],
)
def test_plugin_may_not_touch_other_slices(req: Obj, obj: Obj | None, old: Obj | None, message: str) -> None:
    failures = evaluate_policy(req, obj, old)
    assert failures
    assert any(message in failure for failure in failures), failures


def test_other_users_are_not_restricted_by_the_policy() -> None:
    assert (
        evaluate_policy(
            request("CREATE", None, "system:serviceaccount:kube-system:other"), slice_of("x"), None
        )
        is None
    )
