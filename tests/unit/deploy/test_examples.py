"""deploy/examples: every scenario is documented and its YAML is what a cluster would accept.

Claims and templates validate against the upstream resource.k8s.io/v1 schema, pods (and the pod
templates of workloads) against core/v1, opaque configs with the driver's own strict decoder, CEL
selectors compile, device class names exist in the chart, and inline Python scripts compile.
"""

from __future__ import annotations

from pathlib import Path

import celpy
import pytest

from api.v1alpha1 import SharingConfig, decode_object_configs
from tests.support.resource_schema import RESOURCE_V1, errors
from tests.unit.deploy.chart import EXAMPLES_DIR, Obj, find, load_yaml_documents, render

CORE_V1 = "k8s/api__v1_openapi.json"
SCENARIOS = sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.is_dir())
SCHEMAS = {
    "ResourceClaim": (RESOURCE_V1, "io.k8s.api.resource.v1.ResourceClaim"),
    "ResourceClaimTemplate": (RESOURCE_V1, "io.k8s.api.resource.v1.ResourceClaimTemplate"),
    "Pod": (CORE_V1, "io.k8s.api.core.v1.Pod"),
}


def _documents(scenario: str) -> list[Obj]:
    return [
        doc for path in sorted((EXAMPLES_DIR / scenario).glob("*.yaml")) for doc in load_yaml_documents(path)
    ]


def _claim_specs(doc: Obj) -> list[Obj]:
    if doc["kind"] == "ResourceClaim":
        return [doc["spec"]]
    if doc["kind"] == "ResourceClaimTemplate":
        return [doc["spec"]["spec"]]
    return []


def _pod_specs(doc: Obj) -> list[Obj]:
    if doc["kind"] == "Pod":
        return [doc["spec"]]
    if doc["kind"] in {"Deployment", "DaemonSet", "StatefulSet", "Job"}:
        return [doc["spec"]["template"]["spec"]]
    return []


def test_the_four_scenarios_exist() -> None:
    assert {"npu-16gi-25pct", "gpu-two-tenants", "exclusive-shared-claim", "partitioned-gpu"} <= set(
        SCENARIOS
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_has_a_readme_and_yaml(scenario: str) -> None:
    folder = EXAMPLES_DIR / scenario
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# ")
    assert f"deploy/examples/{scenario}/" in readme, "the README shows how to apply the scenario"
    assert _documents(scenario)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_objects_validate_against_upstream_schemas(scenario: str, schemas_dir: Path) -> None:
    for doc in _documents(scenario):
        if doc["kind"] in SCHEMAS:
            assert errors(schemas_dir, *SCHEMAS[doc["kind"]], doc) == [], doc["metadata"]["name"]
        for pod in _pod_specs(doc):
            template = {"metadata": {}, "spec": pod}
            assert errors(schemas_dir, CORE_V1, "io.k8s.api.core.v1.PodTemplateSpec", template) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_claims_use_the_charts_device_classes_and_valid_cel(scenario: str) -> None:
    classes = {o["metadata"]["name"] for o in find(render(), "DeviceClass")}
    environment = celpy.Environment()
    requests = [
        r for doc in _documents(scenario) for spec in _claim_specs(doc) for r in spec["devices"]["requests"]
    ]
    for request in requests:
        assert request["exactly"]["deviceClassName"] in classes
        for selector in request["exactly"].get("selectors", []):
            environment.compile(selector["cel"]["expression"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_opaque_configs_decode_with_the_driver(scenario: str) -> None:
    for doc in _documents(scenario):
        if doc["kind"] in {"ResourceClaim", "ResourceClaimTemplate", "DeviceClass"}:
            for path, config in decode_object_configs(doc):
                assert isinstance(config, SharingConfig), path


def test_exclusive_claim_carries_its_limits_in_a_sharing_config() -> None:
    claim = next(d for d in _documents("exclusive-shared-claim") if d["kind"] == "ResourceClaim")
    [(path, config)] = decode_object_configs(claim)
    assert path.startswith("spec.devices.config[0]")
    assert (config.memoryMiB, config.corePercent) == (8192, 30)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_reference_claims_they_declare(scenario: str) -> None:
    docs = _documents(scenario)
    templates = {d["metadata"]["name"] for d in docs if d["kind"] == "ResourceClaimTemplate"}
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "ResourceClaim"}
    pods = [pod for doc in docs for pod in _pod_specs(doc)]
    assert pods
    for pod in pods:
        declared = {}
        for entry in pod["resourceClaims"]:
            declared[entry["name"]] = entry
            assert (
                entry.get("resourceClaimTemplateName") in templates
                or entry.get("resourceClaimName") in claims
            )
        for item in pod["containers"]:
            for claim in item["resources"]["claims"]:
                assert claim["name"] in declared


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_inline_python_scripts_compile(scenario: str) -> None:
    for doc in _documents(scenario):
        for pod in _pod_specs(doc):
            for item in pod["containers"]:
                if item.get("command", [])[:2] == ["python", "-c"]:
                    compile(item["args"][0], f"{scenario}/{item['name']}", "exec")


def test_consumable_requests_ask_for_memory_and_cores() -> None:
    template = next(d for d in _documents("npu-16gi-25pct") if d["kind"] == "ResourceClaimTemplate")
    request = template["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    assert request["capacity"]["requests"] == {"memory": "16Gi", "cores": "25"}
    shares = [
        int(t["spec"]["spec"]["devices"]["requests"][0]["exactly"]["capacity"]["requests"]["cores"])
        for t in _documents("gpu-two-tenants")
        if t["kind"] == "ResourceClaimTemplate"
    ]
    assert sorted(shares) == [30, 70]
