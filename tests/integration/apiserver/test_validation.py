"""422 Invalid for objects a real API server rejects: schema violations and the DRA limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects, rawhttp

SLICES = "/apis/resource.k8s.io/v1/resourceslices"


def _rejected(server: ApiServer, body: dict[str, Any], path: str = SLICES) -> dict[str, Any]:
    status, result, _ = rawhttp.request(server, "POST", path, json.dumps(body))
    assert status == 422, result
    assert result["reason"] == "Invalid"
    assert result["kind"] == "Status"
    return dict(result)


def _fields(status: dict[str, Any]) -> list[str]:
    return [c["field"] for c in status["details"]["causes"]]


def test_a_slice_with_129_devices_is_invalid(apiserver: ApiServer, resource: client.ResourceV1Api) -> None:
    with pytest.raises(ApiException) as info:
        resource.create_resource_slice(objects.resource_slice("big", "n1", devices=129))
    assert info.value.status == 422
    status = json.loads(info.value.body)
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueTooMany", "field": "spec.devices",
        "message": "Too many: 129: must have at most 128 items"}
    assert resource.create_resource_slice(objects.resource_slice("full", "n1", devices=128)).metadata.uid


def test_with_taints_or_counters_the_device_limit_is_64(apiserver: ApiServer) -> None:
    body = objects.resource_slice("tainted", "n1", devices=65)
    body["spec"]["devices"][0]["taints"] = [{"key": "xpushare.io/unhealthy", "effect": "NoSchedule"}]
    status = _rejected(apiserver, body)
    assert "must have at most 64 items" in status["details"]["causes"][0]["message"]


def test_device_name_with_capitals_names_the_field(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1", devices=2)
    body["spec"]["devices"][1]["name"] = "NPU-1"
    status = _rejected(apiserver, body)
    assert _fields(status) == ["spec.devices[1].name"]
    assert "RFC 1123 label" in status["message"]
    assert status["message"].startswith('ResourceSlice.resource.k8s.io "s1" is invalid: spec.devices[1].name')


def test_object_name_must_be_a_dns_subdomain(apiserver: ApiServer) -> None:
    status = _rejected(apiserver, objects.resource_slice("Bad_Name", "n1"))
    assert _fields(status) == ["metadata.name"]


def test_wrong_type_names_the_field(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1")
    body["spec"]["pool"]["generation"] = "one"
    status = _rejected(apiserver, body)
    assert _fields(status) == ["spec.pool.generation"]
    assert status["details"]["causes"][0]["reason"] == "FieldValueTypeInvalid"


def test_missing_required_field_names_the_field(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1")
    del body["spec"]["driver"]
    status = _rejected(apiserver, body)
    assert _fields(status) == ["spec.driver"]
    assert status["details"]["causes"][0]["reason"] == "FieldValueRequired"


def test_attribute_limits(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1")
    device = body["spec"]["devices"][0]
    device["attributes"]["xpushare.io/model"] = {"string": "x" * 65}
    status = _rejected(apiserver, body)
    assert _fields(status) == ["spec.devices[0].attributes[xpushare.io/model].string"]
    device["attributes"] = {f"a{i}": {"int": i} for i in range(31)}
    status = _rejected(apiserver, body)
    assert status["details"]["causes"][0]["message"].startswith("Too many: 33")


def test_more_than_eight_counter_sets_is_invalid(apiserver: ApiServer) -> None:
    body = objects.resource_slice("counters", "n1")
    body["spec"].pop("devices")
    body["spec"]["sharedCounters"] = [{"name": f"gpu-{i}", "counters": {"memory": {"value": "80Gi"}}}
                                      for i in range(9)]
    status = _rejected(apiserver, body)
    assert _fields(status) == ["spec.sharedCounters"]


def test_quantities_accept_numbers_and_come_back_canonical(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1")
    body["spec"]["devices"][0]["capacity"] = {"cores": {"value": 100}, "memory": {"value": "65536Mi"},
                                              "clock": {"value": "1.5"}}
    status, created, _ = rawhttp.request(apiserver, "POST", SLICES, json.dumps(body))
    assert status == 201
    capacity = created["spec"]["devices"][0]["capacity"]
    assert capacity == {"cores": {"value": "100"}, "memory": {"value": "64Gi"}, "clock": {"value": "1500m"}}


def test_a_malformed_quantity_names_the_field(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1")
    body["spec"]["devices"][0]["capacity"]["memory"] = {"value": "lots"}
    status = _rejected(apiserver, body)
    assert _fields(status) == ["spec.devices[0].capacity[memory].value"]


def test_several_errors_are_reported_together(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1", devices=2)
    body["spec"]["devices"][0]["name"] = "A"
    body["spec"]["devices"][1]["name"] = "B"
    status = _rejected(apiserver, body)
    assert _fields(status) == ["spec.devices[0].name", "spec.devices[1].name"]


def test_unknown_fields_are_dropped_with_a_warning_and_rejected_when_strict(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1")
    body["spec"]["bogus"] = True
    status, result, headers = rawhttp.request(apiserver, "POST", SLICES, json.dumps(body))
    assert status == 201
    assert "bogus" not in result["spec"]
    assert 'unknown field \\"spec.bogus\\"' in headers["warning"] or "spec.bogus" in headers["warning"]
    body["metadata"]["name"] = "s2"
    strict = SLICES + "?fieldValidation=Strict"
    status, result, _ = rawhttp.request(apiserver, "POST", strict, json.dumps(body))
    assert status == 400
    assert 'unknown field "spec.bogus"' in result["message"]


def test_invalid_claim_request_name(apiserver: ApiServer) -> None:
    body = objects.claim("c1")
    body["spec"]["devices"]["requests"][0]["name"] = "Bad Name"
    status = _rejected(apiserver, body, "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims")
    assert _fields(status) == ["spec.devices.requests[0].name"]


def test_rejected_update_leaves_the_stored_object_alone(resource: client.ResourceV1Api) -> None:
    resource.create_resource_slice(objects.resource_slice("s1", "n1", devices=2))
    with pytest.raises(ApiException) as info:
        resource.patch_resource_slice("s1", {"spec": {"devices": [objects.device("UPPER")]}})
    assert info.value.status == 422
    assert [d.name for d in resource.read_resource_slice("s1").spec.devices] == ["npu-0", "npu-1"]


def _policy_slice(policy: dict[str, Any], shared: bool = True) -> dict[str, Any]:
    body = objects.resource_slice("s1", "n1")
    device = body["spec"]["devices"][0]
    if shared:
        device["allowMultipleAllocations"] = True
    device["capacity"]["memory"] = {"value": "64Gi", "requestPolicy": policy}
    return body


def test_a_consumable_request_policy_as_the_publisher_writes_it_is_valid(apiserver: ApiServer) -> None:
    policy = {"default": "64Gi", "validRange": {"min": "256Mi", "step": "256Mi"}}
    status, created, _ = rawhttp.request(apiserver, "POST", SLICES, json.dumps(_policy_slice(policy)))
    assert status == 201, created


@pytest.mark.parametrize(("policy", "shared", "field"), [
    ({"default": "64Gi", "validRange": {"min": "256Mi"}}, False,
     "spec.devices[0].capacity[memory].requestPolicy"),
    ({"validRange": {"min": "256Mi"}}, True, "spec.devices[0].capacity[memory].requestPolicy.default"),
    ({"default": "128Gi", "validRange": {"min": "256Mi"}}, True,
     "spec.devices[0].capacity[memory].requestPolicy.default"),
    ({"default": "1000Mi", "validRange": {"min": "256Mi", "step": "256Mi"}}, True,
     "spec.devices[0].capacity[memory].requestPolicy.validRange.step"),
    ({"default": "1Gi", "validRange": {"min": "256Mi", "max": "80Gi"}}, True,
     "spec.devices[0].capacity[memory].requestPolicy.validRange.max"),
    ({"default": "1Gi", "validValues": ["2Gi", "1Gi"]}, True,
     "spec.devices[0].capacity[memory].requestPolicy.validValues"),
    ({"default": "3Gi", "validValues": ["1Gi", "2Gi"]}, True,
     "spec.devices[0].capacity[memory].requestPolicy.validValues"),
])
def test_request_policy_rules(apiserver: ApiServer, policy: dict[str, Any], shared: bool, field: str) -> None:
    assert _fields(_rejected(apiserver, _policy_slice(policy, shared))) == [field]


def test_pool_rules(apiserver: ApiServer) -> None:
    body = objects.resource_slice("s1", "n1")
    body["spec"]["pool"] = {"name": "Node_A", "generation": -1, "resourceSliceCount": 0}
    assert _fields(_rejected(apiserver, body)) == ["spec.pool.name", "spec.pool.resourceSliceCount",
                                                   "spec.pool.generation"]


def test_without_the_upstream_schemas_the_server_serves_and_still_enforces_the_dra_limits(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An installed package has no shared/ beside it: the demo must still run, with a warning."""
    with caplog.at_level("WARNING"), ApiServer(schema_dir=tmp_path / "absent") as server:
        resource = client.ResourceV1Api(server.client())
        created = resource.create_resource_slice(objects.resource_slice("ok", "n1", devices=2))
        assert created.metadata.uid
        with pytest.raises(ApiException) as info:
            resource.create_resource_slice(objects.resource_slice("big", "n1", devices=129))
        assert info.value.status == 422
    assert "upstream Kubernetes schemas not found" in caplog.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body: body.update(spec=7), "spec"),
        (lambda body: body["spec"].update(devices={"name": "a"}), "spec.devices"),
        (lambda body: body["spec"]["devices"].__setitem__(1, "gpu-1"), "spec.devices[1]"),
        (lambda body: body["spec"]["devices"][0].update(attributes=["type"]), "spec.devices[0].attributes"),
        (lambda body: body["spec"].update(pool="node-a"), "spec.pool"),
    ],
)
def test_without_the_upstream_schemas_a_body_of_the_wrong_shape_is_a_422_naming_the_field(
    tmp_path: Any, change: Any, field: str
) -> None:
    """The DRA checks walk the body: a wrong type there is the client's error, never a server error."""
    body = objects.resource_slice("s1", "n1", devices=2)
    change(body)
    with ApiServer(schema_dir=tmp_path / "absent") as server:
        status = _rejected(server, body)
    assert status["code"] == 422
    assert _fields(status) == [field]
