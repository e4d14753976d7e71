"""The chart's DeviceClasses and slice policy are the ones of deploy/manifests and of the controller.

The plain manifests are for clusters installed without Helm; the chart renders the same objects from
its own templates. Labels Helm adds for its bookkeeping are left out of the policy comparison; the
DeviceClasses must match exactly (the controller restores any difference in their selectors or label).
"""

from __future__ import annotations

import pytest

from controller.deviceclasses import device_classes
from tests.unit.deploy.chart import MANIFESTS_DIR, Obj, find, load_yaml_documents, render


def _manifest(name: str) -> list[Obj]:
    path = MANIFESTS_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} does not exist: nothing to compare with")
    return load_yaml_documents(path)


def _by_name(objects: list[Obj]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects}


def _without_labels(obj: Obj) -> Obj:
    return {**obj, "metadata": {"name": obj["metadata"]["name"]}}


def test_device_classes_equal_the_plain_manifests() -> None:
    chart = _by_name(find(render(), "DeviceClass"))
    assert chart == _by_name(_manifest("deviceclasses.yaml"))


@pytest.mark.parametrize("driver", ["xpushare.io", "share.example.com"])
def test_device_classes_equal_what_the_controller_installs(driver: str) -> None:
    chart = _by_name(find(render({"driverName": driver}), "DeviceClass"))
    assert chart == _by_name(device_classes(driver))
    for device_class in chart.values():
        expression = device_class["spec"]["selectors"][0]["cel"]["expression"]
        device_type = device_class["metadata"]["name"].split(".", 1)[0]
        assert f'device.driver == "{driver}"' in expression
        assert f'.type == "{device_type}"' in expression


@pytest.mark.parametrize("kind", ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"])
def test_slice_policy_equals_the_plain_manifest(kind: str) -> None:
    manifest = [_without_labels(o) for o in _manifest("resourceslice-policy.yaml") if o["kind"] == kind]
    chart = [_without_labels(o) for o in find(render(), kind)]
    assert chart == manifest
