"""PATCH flavours: JSON merge patch, strategic merge (lists by merge key), JSON patch and apply."""

from __future__ import annotations

import json

from kubernetes import client

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects, rawhttp

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
SLICE = "/apis/resource.k8s.io/v1/resourceslices/s1"
POD = "/api/v1/namespaces/default/pods/p1"


def _patch(server: ApiServer, path: str, body: object, content_type: str) -> dict[str, object]:
    status, result, _ = rawhttp.request(server, "PATCH", path, json.dumps(body), content_type=content_type)
    assert status == 200, result
    return dict(result)


def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists(
        apiserver: ApiServer, resource: client.ResourceV1Api) -> None:
    resource.create_resource_slice(objects.resource_slice("s1", "n1", devices=3))
    patched = _patch(apiserver, SLICE, {
        "metadata": {"labels": {"xpushare.io/node": None, "new": "yes"}},
        "spec": {"devices": [objects.device("only")]},
    }, MERGE)
    assert patched["metadata"]["labels"] == {"new": "yes"}  # type: ignore[index]
    assert [d["name"] for d in patched["spec"]["devices"]] == ["only"]  # type: ignore[index]
    assert patched["spec"]["driver"] == "xpushare.io"  # type: ignore[index]


def test_strategic_merge_merges_containers_by_name(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    body = objects.pod("p1")
    body["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    core.create_namespaced_pod("default", body)
    patched = _patch(apiserver, POD, {"spec": {"containers": [{"name": "main", "image": "alpine"}]}},
                     STRATEGIC)
    containers = {c["name"]: c["image"] for c in patched["spec"]["containers"]}  # type: ignore[index]
    assert containers == {"main": "alpine", "sidecar": "busybox"}


def test_strategic_merge_delete_directive_and_primitive_list_union(
        apiserver: ApiServer, core: client.CoreV1Api) -> None:
    body = objects.pod("p1")
    body["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    body["metadata"]["finalizers"] = ["a.example.com/x"]
    core.create_namespaced_pod("default", body)
    patched = _patch(apiserver, POD, {
        "metadata": {"finalizers": ["b.example.com/y"]},
        "spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]},
    }, STRATEGIC)
    assert [c["name"] for c in patched["spec"]["containers"]] == ["main"]  # type: ignore[index]
    assert patched["metadata"]["finalizers"] == ["a.example.com/x", "b.example.com/y"]  # type: ignore[index]
    core.patch_namespaced_pod("p1", "default", {"metadata": {"$deleteFromPrimitiveList/finalizers":
                                                             ["a.example.com/x", "b.example.com/y"]}})


def test_typed_client_dict_patch_is_strategic_and_merges_conditions_by_type(core: client.CoreV1Api) -> None:
    core.create_node(objects.node("n1"))
    core.patch_node_status("n1", {"status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]}})
    node = core.patch_node_status("n1", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions == {"Ready": "False", "MemoryPressure": "False"}


def test_json_patch_operations(apiserver: ApiServer, resource: client.ResourceV1Api) -> None:
    resource.create_resource_slice(objects.resource_slice("s1", "n1", devices=2))
    ops = [
        {"op": "test", "path": "/spec/pool/generation", "value": 1},
        {"op": "replace", "path": "/spec/pool/generation", "value": 2},
        {"op": "remove", "path": "/spec/devices/1"},
        {"op": "add", "path": "/metadata/labels/extra", "value": "1"},
    ]
    patched = resource.patch_resource_slice("s1", ops)
    assert patched.spec.pool.generation == 2
    assert [d.name for d in patched.spec.devices] == ["npu-0"]
    assert patched.metadata.labels["extra"] == "1"
    failing = [{"op": "test", "path": "/spec/pool/generation", "value": 9}]
    status, result, _ = rawhttp.request(apiserver, "PATCH", SLICE, json.dumps(failing),
                                        content_type="application/json-patch+json")
    assert status in (400, 422)
    assert result["kind"] == "Status"


def test_apply_patch_creates_then_updates(apiserver: ApiServer, resource: client.ResourceV1Api) -> None:
    manifest = objects.device_class("npu.xpushare.io")
    path = "/apis/resource.k8s.io/v1/deviceclasses/npu.xpushare.io?fieldManager=test"
    status, created, _ = rawhttp.request(apiserver, "PATCH", path, json.dumps(manifest), content_type=APPLY)
    assert status == 201
    manifest["metadata"]["labels"] = {"applied": "twice"}
    status, updated, _ = rawhttp.request(apiserver, "PATCH", path, json.dumps(manifest), content_type=APPLY)
    assert status == 200
    assert updated["metadata"]["labels"] == {"applied": "twice"}
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert resource.read_device_class("npu.xpushare.io").metadata.labels == {"applied": "twice"}


def test_patch_with_a_stale_resource_version_is_a_409(apiserver: ApiServer,
                                                      resource: client.ResourceV1Api) -> None:
    created = resource.create_resource_slice(objects.resource_slice("s1", "n1"))
    resource.patch_resource_slice("s1", {"metadata": {"labels": {"a": "1"}}})
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version, "labels": {"b": "2"}}}
    status, result, _ = rawhttp.request(apiserver, "PATCH", SLICE, json.dumps(stale), content_type=MERGE)
    assert status == 409
    assert result["reason"] == "Conflict"
