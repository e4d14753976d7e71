"""The chart's ValidatingAdmissionPolicy, enforced by the real API server for the kubelet plugin's own
identity: a service-account token bound to a pod on node A (the API server puts the node's name in the
token's user info, as for the plugin's pod) may write ResourceSlices of node A and of this driver only.
The chart's RBAC and policy objects are applied as they render, under a release of the test's own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from tests.realk8s.conftest import Cluster, wait_for
from tests.support.control_plane import create_node
from tests.unit.deploy.chart import render

DRIVER = "xpushare.io"
APPLIED = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
           "ValidatingAdmissionPolicyBinding")


def _slice(name: str, node: str, driver: str = DRIVER) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {"driver": driver, "nodeName": node,
                 "pool": {"name": node, "generation": 1, "resourceSliceCount": 1}, "devices": []},
    }


@pytest.fixture
def plugin_identity(real_cluster: Cluster) -> Iterator[tuple[client.ApiClient, str, str]]:
    """(an API client with the plugin's node-bound token, its node, another node); cleaned up after."""
    suffix = uuid.uuid4().hex[:6]
    namespace, release, here, there = f"vap-{suffix}", f"v{suffix}", f"node-a-{suffix}", f"node-b-{suffix}"
    real_cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    api = dynamic.DynamicClient(real_cluster.api)
    applied = [o for o in render({}, release=release, namespace=namespace) if o["kind"] in APPLIED]
    created: list[dict[str, Any]] = []
    try:
        for obj in applied:
            resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            resource.create(body=obj, namespace=namespace if resource.namespaced else None)
            created.append(obj)
        for node in (here, there):
            create_node(real_cluster, node)
        account = next(o["metadata"]["name"] for o in applied
                       if o["kind"] == "ServiceAccount" and o["metadata"]["name"].endswith("kubelet-plugin"))
        pod = real_cluster.core.create_namespaced_pod(namespace, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plugin"},
            "spec": {"nodeName": here, "serviceAccountName": account,
                     "containers": [{"name": "plugin", "image": "xpushare"}]},
        })
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[], expiration_seconds=600,
            bound_object_ref=client.V1BoundObjectReference(kind="Pod", api_version="v1", name="plugin",
                                                            uid=pod.metadata.uid)))
        answer = real_cluster.core.create_namespaced_service_account_token(account, namespace, request)
        token = answer.status.token
        settings = client.Configuration()
        admin = real_cluster.api.configuration
        settings.host, settings.ssl_ca_cert = admin.host, admin.ssl_ca_cert
        settings.verify_ssl = admin.verify_ssl
        settings.api_key = {"authorization": f"Bearer {token}"}
        yield client.ApiClient(settings), here, there
    finally:
        for obj in reversed(created):
            resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            with contextlib.suppress(ApiException):
                resource.delete(name=obj["metadata"]["name"],
                                namespace=namespace if resource.namespaced else None)
        for node in (here, there):
            with contextlib.suppress(ApiException):
                real_cluster.core.delete_node(node)
        with contextlib.suppress(ApiException):
            real_cluster.core.delete_namespace(namespace)


def _create(api: client.ApiClient, body: dict[str, Any]) -> str:
    """'ok', or the server's refusal."""
    try:
        client.ResourceV1Api(api).create_resource_slice(body)
    except ApiException as err:
        return f"{err.status}: {err.body}"
    return "ok"


def test_the_plugin_may_write_only_its_own_node_s_slices_of_its_driver(
        real_cluster: Cluster, plugin_identity: tuple[client.ApiClient, str, str]) -> None:
    plugin, here, there = plugin_identity
    suffix = uuid.uuid4().hex[:6]
    def refused_for_another_node() -> str | None:
        """The policy takes effect once the API server has loaded it: until then RBAC alone decides, and
        a slice that got through is removed again (each try under a name of its own)."""
        name = f"b-{uuid.uuid4().hex[:6]}"
        answer = _create(plugin, _slice(name, there))
        if answer == "ok":
            real_cluster.resource.delete_resource_slice(name)
            return None
        return answer

    foreign = wait_for("the policy refusing another node's slice", refused_for_another_node, timeout_s=20)
    assert foreign.startswith("422") or foreign.startswith("403"), foreign
    assert f"may not modify ResourceSlices of node '{there}'" in foreign
    assert _create(plugin, _slice(f"a-{suffix}", here)) == "ok"
    other_driver = _create(plugin, _slice(f"c-{suffix}", here, driver="other.example.com"))
    assert "may not modify ResourceSlices of driver 'other.example.com'" in other_driver
    real_cluster.resource.delete_resource_slice(f"a-{suffix}")
