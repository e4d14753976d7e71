"""Discovery documents complete enough for kubectl and client-go: verbs, kinds, scope, short names."""

from __future__ import annotations

import pytest
from kubernetes import client

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import rawhttp


def _resources(server: ApiServer, path: str) -> dict[str, dict[str, object]]:
    status, body, _ = rawhttp.request(server, "GET", path)
    assert status == 200
    assert body["kind"] == "APIResourceList"
    return {r["name"]: r for r in body["resources"]}


def test_core_resource_list(apiserver: ApiServer) -> None:
    resources = _resources(apiserver, "/api/v1")
    assert set(resources) >= {"nodes", "pods", "events", "namespaces", "pods/status", "nodes/status"}
    assert resources["pods"]["namespaced"] is True
    assert resources["nodes"]["namespaced"] is False
    assert resources["pods"]["kind"] == "Pod"
    assert "po" in resources["pods"]["shortNames"]
    assert set(resources["pods"]["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch",
                                               "update", "watch"}
    assert resources["pods/status"]["verbs"] == ["get", "patch", "update"]


def test_resource_group_list(apiserver: ApiServer) -> None:
    resources = _resources(apiserver, "/apis/resource.k8s.io/v1")
    scopes = {name: r["namespaced"] for name, r in resources.items() if "/" not in name}
    assert scopes == {"resourceslices": False, "deviceclasses": False, "resourceclaims": True,
                      "resourceclaimtemplates": True}
    assert "resourceclaims/status" in resources
    assert _resources(apiserver, "/apis/coordination.k8s.io/v1")["leases"]["namespaced"] is True


def test_group_documents(apiserver: ApiServer) -> None:
    _, groups, _ = rawhttp.request(apiserver, "GET", "/apis")
    names = {g["name"]: g["preferredVersion"]["groupVersion"] for g in groups["groups"]}
    assert names == {"resource.k8s.io": "resource.k8s.io/v1", "coordination.k8s.io": "coordination.k8s.io/v1"}
    _, group, _ = rawhttp.request(apiserver, "GET", "/apis/resource.k8s.io")
    assert group["kind"] == "APIGroup"
    _, versions, _ = rawhttp.request(apiserver, "GET", "/api")
    assert versions["versions"] == ["v1"]


def test_version_through_the_client(kube_client: client.ApiClient) -> None:
    info = client.VersionApi(kube_client).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.36")


@pytest.mark.usefixtures("k8s_schemas")
def test_openapi_v3_serves_the_upstream_documents(apiserver: ApiServer) -> None:
    _, index, _ = rawhttp.request(apiserver, "GET", "/openapi/v3")
    url = index["paths"]["apis/resource.k8s.io/v1"]["serverRelativeURL"]
    status, document, _ = rawhttp.request(apiserver, "GET", url)
    assert status == 200
    assert "io.k8s.api.resource.v1.ResourceSlice" in document["components"]["schemas"]


def test_table_output_for_kubectl(apiserver: ApiServer) -> None:
    status, table, _ = rawhttp.request(apiserver, "GET", "/api/v1/namespaces", headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    assert status == 200
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert "default" in [row["cells"][0] for row in table["rows"]]
