"""The OpenAPI documents generated from the client models: valid JSON Schema that accepts the objects the
tests send and rejects wrong shapes, with upstream's names and the extensions kubectl reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from dra_driver.simulation.apiserver import openapi
from dra_driver.simulation.apiserver.registry import KINDS, ResourceKind
from tests.integration.apiserver import objects

_BY_KIND = {kind.kind: kind for kind in KINDS}


def _validator(kind: ResourceKind) -> Draft202012Validator:
    document = openapi.v3_documents()[kind.schema_doc]
    uri = f"urn:test:{kind.schema_doc}"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{uri}#/components/schemas/{kind.schema}"}, registry=registry)


def _claim_with_status() -> dict[str, Any]:
    claim = objects.claim("c", capacity={"memory": "16Gi"})
    claim["status"] = objects.allocation_status("n1", "npu-0")
    return claim


VALID = [
    objects.node("n1"),
    objects.pod("p", node_name="n1", labels={"app": "demo"}),
    objects.resource_slice("s", "n1", devices=2),
    objects.claim("c", capacity={"memory": "16Gi"}),
    _claim_with_status(),
    objects.claim_template("t"),
    objects.device_class("npu.xpushare.io"),
    objects.lease("l", "holder"),
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
]


def test_every_component_is_a_valid_json_schema() -> None:
    for document in openapi.v3_documents().values():
        for schema in document["components"]["schemas"].values():
            Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("body", VALID, ids=lambda body: str(body["kind"]))
def test_the_test_objects_are_valid(body: dict[str, Any]) -> None:
    errors = list(_validator(_BY_KIND[body["kind"]]).iter_errors(body))
    assert errors == []


def test_a_quantity_may_be_a_number_as_on_a_real_server() -> None:
    body = objects.resource_slice("s", "n1")
    body["spec"]["devices"][0]["capacity"]["cores"]["value"] = 100
    assert list(_validator(_BY_KIND["ResourceSlice"]).iter_errors(body)) == []


@pytest.mark.parametrize(("change", "path"), [
    (lambda body: body["spec"].update(nodeName=7), ["spec", "nodeName"]),
    (lambda body: body["spec"]["pool"].update(generation="one"), ["spec", "pool", "generation"]),
    (lambda body: body["spec"]["devices"][0].update(attributes=["type"]),
     ["spec", "devices", 0, "attributes"]),
    (lambda body: body["spec"]["pool"].pop("name"), ["spec", "pool"]),
])
def test_a_wrong_shape_is_an_error_at_its_field(change: Any, path: list[object]) -> None:
    body = objects.resource_slice("s", "n1")
    change(body)
    errors = list(_validator(_BY_KIND["ResourceSlice"]).iter_errors(body))
    assert [list(error.absolute_path) for error in errors] == [path]


def test_components_carry_upstream_names_kinds_and_descriptions() -> None:
    schemas = openapi.v3_documents()["apis__resource.k8s.io__v1_openapi.json"]["components"]["schemas"]
    slice_schema = schemas["io.k8s.api.resource.v1.ResourceSlice"]
    assert slice_schema["x-kubernetes-group-version-kind"] == [
        {"group": "resource.k8s.io", "kind": "ResourceSlice", "version": "v1"}]
    devices = schemas["io.k8s.api.resource.v1.ResourceSliceSpec"]["properties"]["devices"]
    assert devices["description"].startswith("Devices lists some or all of the devices in this pool.")
    assert devices["items"] == {"$ref": "#/components/schemas/io.k8s.api.resource.v1.Device"}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "io.k8s.api.core.v1.NodeSelector" in schemas
    assert "Attributes:" not in json.dumps(schemas)


def test_patch_operations_declare_field_validation() -> None:
    """kubectl's QueryParamVerifier looks for it on the PATCH operation of the kind."""
    for kind in KINDS:
        paths = openapi.v3_documents()[kind.schema_doc]["paths"]
        patches = [ops["patch"] for ops in paths.values() if "patch" in ops and
                   ops["patch"]["x-kubernetes-group-version-kind"]["kind"] == kind.kind]
        assert patches, kind.kind
        for operation in patches:
            assert {"name": "fieldValidation", "in": "query"}.items() <= next(
                p for p in operation["parameters"] if p["name"] == "fieldValidation").items()


def test_patch_operations_accept_strategic_merge_patch() -> None:
    """Without it kubectl's client-side apply leaves the v3 document for the v2 one (JSON never served
    to it, see the handler) to compute its patch."""
    paths = openapi.v3_documents()["api__v1_openapi.json"]["paths"]
    content = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]["requestBody"]["content"]
    assert "application/strategic-merge-patch+json" in content


def test_strategic_merge_keys_for_the_lists_kubectl_patches() -> None:
    pod_spec = openapi.components()["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod_spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert pod_spec["containers"]["x-kubernetes-patch-strategy"] == "merge"


def test_the_v2_document_refers_to_definitions() -> None:
    document = json.loads(openapi.v2_payload())
    assert document["swagger"] == "2.0"
    assert document["info"]["title"] == openapi.TITLE
    text = json.dumps(document)
    assert "#/components/" not in text
    spec = document["definitions"]["io.k8s.api.resource.v1.ResourceSlice"]["properties"]["spec"]
    assert spec == {"$ref": "#/definitions/io.k8s.api.resource.v1.ResourceSliceSpec"}
