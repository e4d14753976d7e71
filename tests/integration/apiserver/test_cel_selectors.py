"""422 for the CEL selectors kube-apiserver v1.36 refuses, as it answers (found by the realk8s parity table).

Guards: a claim, claim template or device class whose selector has a syntax error, a type error against
the DRA CEL environment, a result that is not a bool, or a cost over the limit is refused at create (and a
device class at update) with the selector's field named, the real server's reason and message; requests'
``exactly`` and every ``firstAvailable`` subrequest are checked. Well-typed selectors, and those using
CEL's optional syntax (which cel-python cannot parse), are stored. With DRAConsumableCapacity off,
``device.allowMultipleAllocations`` is an undefined field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.gates import CONSUMABLE_CAPACITY

JSON = dict[str, Any]
BROKEN = 'device.attributes["xpushare.io"].index =='
MISTYPED = "device.driver == 1"
TOO_COSTLY = (
    "device.attributes.exists(a, device.attributes.exists(b, device.attributes.exists(c, "
    "device.attributes.exists(d, a == d))))"
)


def claim_spec(*expressions: str) -> JSON:
    selectors = [{"cel": {"expression": e}} for e in expressions]
    return {
        "devices": {
            "requests": [
                {"name": "a", "exactly": {"deviceClassName": "gpu.xpushare.io", "selectors": selectors}},
                {
                    "name": "b",
                    "firstAvailable": [
                        {"name": "x", "deviceClassName": "gpu.xpushare.io"},
                        {"name": "y", "deviceClassName": "gpu.xpushare.io", "selectors": selectors},
                    ],
                },
            ]
        }
    }


def claim(name: str, *expressions: str) -> JSON:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": claim_spec(*expressions),
    }


def device_class(name: str, *expressions: str) -> JSON:
    selectors = [{"cel": {"expression": e}} for e in expressions]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"selectors": selectors},
    }


def refusal(err: ApiException) -> tuple[str, list[JSON]]:
    assert err.status == 422, err.body
    body: JSON = json.loads(err.body or "{}")
    assert body["reason"] == "Invalid"
    return body["message"], body["details"]["causes"]


def test_a_claim_with_a_broken_selector_is_refused_naming_the_field(apiserver: ApiServer) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        with pytest.raises(ApiException) as info:
            resource.create_namespaced_resource_claim("default", claim("broken", "true", BROKEN))  # type: ignore[arg-type]
        _, found = refusal(info.value)
        assert [c["field"] for c in found] == [
            "spec.devices.requests[0].exactly.selectors[1].cel.expression",
            "spec.devices.requests[1].firstAvailable[1].selectors[1].cel.expression",
        ]
        assert all(c["reason"] == "FieldValueInvalid" for c in found)
        assert found[0]["message"].startswith(
            'Invalid value: "device.attributes[\\"xpushare.io\\"].index ==": compilation failed: '
            "ERROR: <input>:1:42: Syntax error: mismatched input '<EOF>' expecting {"
        )
        assert not resource.list_namespaced_resource_claim("default").items


def test_type_errors_and_costs_over_the_limit_are_refused_as_kube_apiserver_refuses_them(
    apiserver: ApiServer,
) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        with pytest.raises(ApiException) as info:
            resource.create_namespaced_resource_claim(
                "default",
                claim("mistyped", MISTYPED, "device.nosuch", "device.driver", TOO_COSTLY),  # type: ignore[arg-type]
            )
        message, found = refusal(info.value)
        exactly = "spec.devices.requests[0].exactly.selectors"
        assert [(c["field"], c["reason"]) for c in found[:4]] == [
            (f"{exactly}[0].cel.expression", "FieldValueInvalid"),
            (f"{exactly}[1].cel.expression", "FieldValueInvalid"),
            (f"{exactly}[2].cel.expression", "FieldValueInvalid"),
            (f"{exactly}[3].cel.expression", "FieldValueForbidden"),
        ]
        assert len(found) == 8  # the same four in firstAvailable[1]
        # kube-apiserver v1.36.3's words, position and caret included
        assert [c["message"] for c in found[:4]] == [
            'Invalid value: "device.driver == 1": compilation failed: ERROR: <input>:1:15: found no matching '
            "overload for '_==_' applied to '(string, int)'\n | device.driver == 1\n | ..............^",
            'Invalid value: "device.nosuch": compilation failed: ERROR: <input>:1:7: undefined field '
            "'nosuch'\n | device.nosuch\n | ......^",
            'Invalid value: "device.driver": must evaluate to bool or the unknown type, not string',
            "Forbidden: too complex, exceeds cost limit",
        ]
        assert message.startswith(
            'ResourceClaim.resource.k8s.io "mistyped" is invalid: '
            f"[{exactly}[0].cel.expression: Invalid value: "
        )


def test_templates_and_device_classes_are_checked_too(apiserver: ApiServer) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        template = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": "broken", "namespace": "default"},
            "spec": {"spec": claim_spec(MISTYPED)},
        }
        with pytest.raises(ApiException) as info:
            resource.create_namespaced_resource_claim_template("default", template)  # type: ignore[arg-type]
        assert (
            refusal(info.value)[1][0]["field"]
            == "spec.spec.devices.requests[0].exactly.selectors[0].cel.expression"
        )
        with pytest.raises(ApiException) as info:
            resource.create_device_class(device_class("broken", "device.driver == "))  # type: ignore[arg-type]
        assert [c["field"] for c in refusal(info.value)[1]] == ["spec.selectors[0].cel.expression"]


def test_a_device_class_update_with_a_mistyped_selector_is_refused(apiserver: ApiServer) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        resource.create_device_class(device_class("gpus", 'device.driver == "gpu.xpushare.io"'))  # type: ignore[arg-type]
        with pytest.raises(ApiException) as info:
            resource.patch_device_class(
                "gpus", {"spec": {"selectors": [{"cel": {"expression": "device.attributes.size()"}}]}}
            )
        [found] = refusal(info.value)[1]
        assert found["message"].endswith("must evaluate to bool or the unknown type, not int")
        stored: JSON = api.sanitize_for_serialization(resource.read_device_class("gpus"))
        assert stored["spec"]["selectors"][0]["cel"]["expression"] == 'device.driver == "gpu.xpushare.io"'


def test_well_typed_and_optional_syntax_selectors_are_stored(apiserver: ApiServer) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        fine = claim(
            "fine",
            'device.driver == "xpushare.io" && device.attributes["xpushare.io"].index == 1',
            'device.capacity["xpushare.io"].memory.compareTo(quantity("32Gi")) >= 0',
            'device.attributes["xpushare.io"].index == "0" || device.attributes["xpushare.io"].model',
            'cel.bind(x, device.attributes["xpushare.io"], x.type in ["gpu", "npu"])',
            "device.attributes.all(d, device.attributes[d].all(k, k.size() < 33))",
            "device.allowMultipleAllocations",
            'device.attributes["xpushare.io"].?model.orValue("") == "H100"',
        )
        created = resource.create_namespaced_resource_claim("default", fine)  # type: ignore[arg-type]
        assert created.metadata is not None
        assert created.metadata.uid


def test_with_consumable_capacity_off_allow_multiple_allocations_is_an_undefined_field() -> None:
    with ApiServer(disabled_gates=(CONSUMABLE_CAPACITY,)) as server, server.client() as api:
        resource = client.ResourceV1Api(api)
        with pytest.raises(ApiException) as info:
            resource.create_device_class(device_class("shared", "device.allowMultipleAllocations"))  # type: ignore[arg-type]
        [found] = refusal(info.value)[1]
        assert "undefined field 'allowMultipleAllocations'" in found["message"]
        resource.create_device_class(device_class("any", 'device.driver == "xpushare.io"'))  # type: ignore[arg-type]
