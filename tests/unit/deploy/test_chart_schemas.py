"""Every rendered object whose upstream schema is at hand validates against it, strictly.

core/v1 (ServiceAccount, Service, Secret, ConfigMap) and resource.k8s.io/v1 (DeviceClass) validate as
whole objects. apps/v1 is not among the upstream documents, but a DaemonSet's or Deployment's pod
template is a core/v1 PodTemplateSpec, so the part that carries nearly every field (containers,
volumes, probes, security contexts) is validated too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.resource_schema import RESOURCE_V1, errors
from tests.unit.deploy.chart import VARIANTS, find, render

CORE_V1 = "k8s/api__v1_openapi.json"
WHOLE_OBJECTS = {
    "ServiceAccount": (CORE_V1, "io.k8s.api.core.v1.ServiceAccount"),
    "Service": (CORE_V1, "io.k8s.api.core.v1.Service"),
    "Secret": (CORE_V1, "io.k8s.api.core.v1.Secret"),
    "ConfigMap": (CORE_V1, "io.k8s.api.core.v1.ConfigMap"),
    "DeviceClass": (RESOURCE_V1, "io.k8s.api.resource.v1.DeviceClass"),
}
POD_TEMPLATE = (CORE_V1, "io.k8s.api.core.v1.PodTemplateSpec")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_objects_validate_against_upstream_schemas(variant: str, schemas_dir: Path) -> None:
    objects = render(VARIANTS[variant])
    checked = 0
    for obj in objects:
        if obj["kind"] in WHOLE_OBJECTS:
            document, component = WHOLE_OBJECTS[obj["kind"]]
            assert errors(schemas_dir, document, component, obj) == [], obj["metadata"]["name"]
            checked += 1
        if obj["kind"] in {"DaemonSet", "Deployment"}:
            template = obj["spec"]["template"]
            assert errors(schemas_dir, *POD_TEMPLATE, template) == [], obj["metadata"]["name"]
            checked += 1
    assert checked >= 5


def test_schema_check_catches_a_misspelt_field(schemas_dir: Path) -> None:
    """Guards the test above: a typo in a pod template must not pass unnoticed."""
    plugin = find(render(), "DaemonSet")[0]
    plugin["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    found = errors(schemas_dir, *POD_TEMPLATE, plugin["spec"]["template"])
    assert any("volumeMount" in line for line in found)
