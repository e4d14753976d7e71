"""The status subresource of ResourceClaims: each side of an update changes only its own part."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects, rawhttp


def _body(model: object) -> dict[str, object]:
    result: dict[str, object] = client.ApiClient().sanitize_for_serialization(model)
    return result


def test_status_set_on_create_is_dropped(resource: client.ResourceV1Api) -> None:
    body = objects.claim("c1")
    body["status"] = objects.allocation_status("node-a", "npu-0")
    created = resource.create_namespaced_resource_claim("default", body)
    assert created.status is None or created.status.allocation is None


def test_update_of_the_main_resource_ignores_status(resource: client.ResourceV1Api) -> None:
    created = resource.create_namespaced_resource_claim("default", objects.claim("c1"))
    body = _body(created)
    body["status"] = objects.allocation_status("node-a", "npu-0")
    body["metadata"]["labels"] = {"seen": "yes"}
    updated = resource.replace_namespaced_resource_claim("c1", "default", body)
    assert updated.metadata.labels == {"seen": "yes"}
    assert updated.status is None or updated.status.allocation is None


def test_status_update_writes_allocation_and_ignores_spec_and_labels(resource: client.ResourceV1Api) -> None:
    created = resource.create_namespaced_resource_claim("default", objects.claim("c1"))
    body = _body(created)
    body["status"] = objects.allocation_status("node-a", "npu-0")
    body["metadata"]["labels"] = {"ignored": "yes"}
    body["spec"]["devices"]["requests"][0]["name"] = "renamed"
    updated = resource.replace_namespaced_resource_claim_status("c1", "default", body)
    result = updated.status.allocation.devices.results[0]
    assert result.device == "npu-0"
    assert result.share_id == "4f1e6a3c-1b2d-4c5e-8f9a-0b1c2d3e4f50"
    assert result.consumed_capacity == {"memory": "16Gi", "cores": "25"}
    assert updated.spec.devices.requests[0].name == "npu"
    assert updated.metadata.labels is None
    assert updated.metadata.generation == created.metadata.generation


def test_status_patch_with_share_id_and_consumed_capacity(resource: client.ResourceV1Api) -> None:
    resource.create_namespaced_resource_claim("default", objects.claim("c1", capacity={"memory": "16Gi"}))
    patched = resource.patch_namespaced_resource_claim_status(
        "c1", "default", {"status": objects.allocation_status("node-a", "npu-1")})
    assert patched.status.allocation.devices.results[0].device == "npu-1"
    fetched = resource.read_namespaced_resource_claim_status("c1", "default")
    assert fetched.status.allocation.devices.results[0].consumed_capacity["cores"] == "25"
    assert fetched.spec.devices.requests[0].exactly.capacity.requests == {"memory": "16Gi"}


def test_claim_spec_is_immutable(resource: client.ResourceV1Api) -> None:
    created = resource.create_namespaced_resource_claim("default", objects.claim("c1"))
    body = _body(created)
    body["spec"]["devices"]["requests"][0]["name"] = "renamed"
    with pytest.raises(client.ApiException) as info:
        resource.replace_namespaced_resource_claim("c1", "default", body)
    assert info.value.status == 422
    assert json.loads(info.value.body)["details"]["causes"][0]["field"] == "spec"


def test_pod_status_subresource_keeps_the_phase_apart(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_pod("default", objects.pod("p1", "node-a"))
    assert created.status.phase == "Pending"
    running = core.patch_namespaced_pod_status("p1", "default", {"status": {"phase": "Running"}})
    assert running.status.phase == "Running"
    relabelled = core.patch_namespaced_pod("p1", "default", {"status": {"phase": "Failed"},
                                                             "metadata": {"labels": {"a": "b"}}})
    assert relabelled.status.phase == "Running"
    assert relabelled.metadata.labels == {"a": "b"}


def test_pod_binding_sets_the_node_once(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", objects.pod("p1"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    path = "/api/v1/namespaces/default/pods/p1/binding"
    status, result, _ = rawhttp.request(apiserver, "POST", path, json.dumps(binding))
    assert status == 201
    assert result["status"] == "Success"
    pod = core.read_namespaced_pod("p1", "default")
    assert pod.spec.node_name == "node-a"
    assert [(c.type, c.status) for c in pod.status.conditions] == [("PodScheduled", "True")]
    status, result, _ = rawhttp.request(apiserver, "POST", path, json.dumps(binding))
    assert status == 409
    assert "already assigned" in result["message"]
