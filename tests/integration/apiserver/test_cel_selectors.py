"""422 for CEL selectors that do not compile, as kube-apiserver answers (found by the realk8s parity table).

Guards: a claim, claim template or device class whose selector has a syntax error is refused at create
with the field of the expression named; valid selectors, and those using CEL's optional syntax (which
cel-python cannot parse), are stored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from dra_driver.simulation.apiserver import ApiServer

JSON = dict[str, Any]
BROKEN = 'device.attributes["xpushare.io"].index =='


def claim_spec(*expressions: str) -> JSON:
    selectors = [{"cel": {"expression": e}} for e in expressions]
    return {
        "devices": {
            "requests": [
                {"name": "a", "exactly": {"deviceClassName": "gpu.xpushare.io", "selectors": selectors}},
                {
                    "name": "b",
                    "firstAvailable": [
                        {"name": "x", "deviceClassName": "gpu.xpushare.io", "selectors": selectors}
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


def causes(err: ApiException) -> list[JSON]:
    assert err.status == 422, err.body
    body: JSON = json.loads(err.body)
    assert body["reason"] == "Invalid"
    found: list[JSON] = body["details"]["causes"]
    return found


def test_a_claim_with_a_broken_selector_is_refused_naming_the_field(apiserver: ApiServer) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        with pytest.raises(ApiException) as info:
            resource.create_namespaced_resource_claim("default", claim("broken", "true", BROKEN))  # type: ignore[arg-type]
        found = causes(info.value)
        assert [c["field"] for c in found] == [
            "spec.devices.requests[0].exactly.selectors[1].cel.expression",
            "spec.devices.requests[1].firstAvailable[0].selectors[1].cel.expression",
        ]
        assert all(c["reason"] == "FieldValueInvalid" for c in found)
        assert all(f'"{BROKEN}": compilation failed' in c["message"] for c in found)
        assert not resource.list_namespaced_resource_claim("default").items


def test_templates_and_device_classes_are_checked_too(apiserver: ApiServer) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        template = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": "broken", "namespace": "default"},
            "spec": {"spec": claim_spec(BROKEN)},
        }
        with pytest.raises(ApiException) as info:
            resource.create_namespaced_resource_claim_template("default", template)  # type: ignore[arg-type]
        assert (
            causes(info.value)[0]["field"]
            == "spec.spec.devices.requests[0].exactly.selectors[0].cel.expression"
        )
        device_class = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": "broken"},
            "spec": {"selectors": [{"cel": {"expression": "device.driver == "}}]},
        }
        with pytest.raises(ApiException) as info:
            resource.create_device_class(device_class)  # type: ignore[arg-type]
        assert [c["field"] for c in causes(info.value)] == ["spec.selectors[0].cel.expression"]


def test_valid_and_optional_syntax_selectors_are_stored(apiserver: ApiServer) -> None:
    with apiserver.client() as api:
        resource = client.ResourceV1Api(api)
        fine = claim(
            "fine",
            'device.driver == "xpushare.io" && device.attributes["xpushare.io"].index == 1',
            'device.capacity["xpushare.io"].memory.compareTo(quantity("32Gi")) >= 0',
            'device.attributes["xpushare.io"].?model.orValue("") == "H100"',
        )
        assert resource.create_namespaced_resource_claim("default", fine).metadata.uid  # type: ignore[arg-type]
