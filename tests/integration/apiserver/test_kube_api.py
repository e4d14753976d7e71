"""``KubeApi``, the plain-JSON client the components use, against the embedded API server."""

from __future__ import annotations

from kubernetes import client

from dra_driver.core.kube import KubeApi


def test_find_returns_the_object_or_none_when_it_does_not_exist(kube_client: client.ApiClient) -> None:
    api = KubeApi(kube_client, timeout_seconds=10)
    api.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    found = api.find("/api/v1/nodes/n1")
    assert found is not None
    assert found["metadata"]["name"] == "n1"
    assert api.find("/api/v1/nodes/absent") is None
