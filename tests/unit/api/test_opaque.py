"""Finding our driver's configs inside DeviceClasses and claims, with paths like the API server's."""

from __future__ import annotations

from typing import Any

import pytest

from api.errors import ConfigValidationError
from api.v1alpha1 import API_VERSION, KIND, Priority, decode_object_configs, find_opaque_parameters


def sharing(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, **fields}


def opaque(driver: str, parameters: Any) -> dict[str, Any]:
    return {"opaque": {"driver": driver, "parameters": parameters}}


def claim(*configs: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "c"},
            "spec": {"devices": {"requests": [{"name": "npu"}], "config": list(configs)}}}


def test_claim_configs_of_other_drivers_are_ignored() -> None:
    obj = claim(opaque("gpu.example.com", {"whatever": True}),
                opaque("xpushare.io", sharing(priority="high")))
    ((path, config),) = decode_object_configs(obj)
    assert path == "spec.devices.config[1].opaque.parameters"
    assert config.priority is Priority.HIGH


def test_errors_of_every_config_are_reported_with_their_path() -> None:
    obj = claim(opaque("xpushare.io", sharing(corePercent=150)), opaque("other.io", []),
                opaque("xpushare.io", sharing(priority="top", extra=1)))
    with pytest.raises(ConfigValidationError) as caught:
        decode_object_configs(obj)
    assert [issue.path for issue in caught.value.issues] == [
        "spec.devices.config[0].opaque.parameters.corePercent",
        "spec.devices.config[2].opaque.parameters.priority",
        "spec.devices.config[2].opaque.parameters.extra",
    ]


def test_template_and_class_configs_sit_at_their_own_paths() -> None:
    template = {"kind": "ResourceClaimTemplate",
                "spec": {"spec": {"devices": {"config": [opaque("xpushare.io", sharing(corePercent=0))]}}}}
    device_class = {"kind": "DeviceClass", "spec": {"config": [opaque("xpushare.io", sharing(memoryMiB=0))]}}
    with pytest.raises(ConfigValidationError, match=r"^spec\.spec\.devices\.config\[0\]\.opaque\.parameters\."
                       r"corePercent: must be between 1 and 100 \(got 0\)$"):
        decode_object_configs(template)
    with pytest.raises(ConfigValidationError, match=r"^spec\.config\[0\]\.opaque\.parameters\.memoryMiB: "):
        decode_object_configs(device_class)


def test_allocated_claim_configs_in_status_are_checked_too() -> None:
    obj = claim()
    obj["status"] = {"allocation": {"devices": {"config": [
        {"source": "FromClass", **opaque("xpushare.io", sharing(priority="high"))}]}}}
    ((path, _config),) = decode_object_configs(obj)
    assert path == "status.allocation.devices.config[0].opaque.parameters"


def test_objects_without_configs_hold_nothing_to_check() -> None:
    assert decode_object_configs({"kind": "DeviceClass", "spec": {"selectors": []}}) == []
    assert decode_object_configs({"kind": "ResourceClaim", "spec": None}) == []


def test_driver_name_is_configurable() -> None:
    obj = claim(opaque("xpushare.io", sharing(corePercent=0)), opaque("npu.corp", sharing()))
    assert [found.path for found in find_opaque_parameters(obj, "npu.corp")] == [
        "spec.devices.config[1].opaque.parameters"]


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param({"kind": "Pod"}, "kind: must be one of DeviceClass, ResourceClaim, ResourceClaimTemplate"
                 " (got 'Pod')", id="unsupported kind"),
    pytest.param({"kind": "DeviceClass", "spec": {"config": {"opaque": {}}}},
                 "spec.config: must be a list of device configs", id="config is not a list"),
    pytest.param({"kind": "DeviceClass", "spec": {"config": ["x"]}}, "spec.config[0]: must be an object",
                 id="config entry is not an object"),
    pytest.param({"kind": "DeviceClass", "spec": {"config": [{"opaque": "x"}]}},
                 "spec.config[0].opaque: must be an object with driver and parameters",
                 id="opaque is a string"),
    pytest.param({"kind": "DeviceClass", "spec": {"config": [{"opaque": {"driver": "xpushare.io"}}]}},
                 "spec.config[0].opaque.parameters: required for driver xpushare.io",
                 id="parameters missing"),
    pytest.param({"kind": "DeviceClass", "spec": "x"}, "spec: must be an object", id="spec is a string"),
])
def test_malformed_objects_are_refused_with_a_path(obj: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        decode_object_configs(obj)
    assert str(caught.value) == expected


def test_parameters_given_as_a_json_string_are_refused_as_the_api_server_stores_them() -> None:
    obj = claim(opaque("xpushare.io", '{"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig"}'))
    with pytest.raises(ConfigValidationError, match=r"parameters: must be a JSON object .*\(got \"\{"):
        decode_object_configs(obj)
