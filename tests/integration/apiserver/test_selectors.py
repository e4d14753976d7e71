"""Label selectors and the field selectors the driver uses, on lists through the typed client."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.apiserver import objects


@pytest.fixture
def pods(core: client.CoreV1Api) -> client.CoreV1Api:
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_pod("default", objects.pod("a1", "node-a", {"app": "web", "tier": "front"}))
    core.create_namespaced_pod("default", objects.pod("a2", "node-a", {"app": "db"}))
    core.create_namespaced_pod("default", objects.pod("b1", "node-b", {"app": "web"}))
    core.create_namespaced_pod("team", objects.pod("t1", "node-a", {"app": "web"}))
    return core


def _names(result: object) -> list[str]:
    return sorted(item.metadata.name for item in result.items)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a1", "b1", "t1"]),
    ("app==web,tier=front", ["a1"]),
    ("app!=web", ["a2"]),
    ("app in (db, web)", ["a1", "a2", "b1", "t1"]),
    ("app notin (web)", ["a2"]),
    ("tier", ["a1"]),
    ("!tier", ["a2", "b1", "t1"]),
])
def test_label_selectors_of_every_operator(pods: client.CoreV1Api, selector: str,
                                           expected: list[str]) -> None:
    assert _names(pods.list_pod_for_all_namespaces(label_selector=selector)) == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("spec.nodeName=node-a", ["a1", "a2", "t1"]),
    ("spec.nodeName!=node-a", ["b1"]),
    ("metadata.name=a2", ["a2"]),
    ("metadata.namespace=team", ["t1"]),
    ("spec.nodeName=node-a,metadata.namespace=default", ["a1", "a2"]),
])
def test_pod_field_selectors(pods: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    assert _names(pods.list_pod_for_all_namespaces(field_selector=selector)) == expected


def test_namespaced_list_sees_only_its_namespace(pods: client.CoreV1Api) -> None:
    assert _names(pods.list_namespaced_pod("team")) == ["t1"]
    assert _names(pods.list_namespaced_pod("default", field_selector="spec.nodeName=node-a",
                                           label_selector="app=web")) == ["a1"]


def test_slice_field_selectors_on_node_and_driver(resource: client.ResourceV1Api) -> None:
    resource.create_resource_slice(objects.resource_slice("a", "node-a"))
    resource.create_resource_slice(objects.resource_slice("b", "node-b"))
    other = objects.resource_slice("c", "node-a")
    other["spec"]["driver"] = "gpu.example.com"
    resource.create_resource_slice(other)
    assert _names(resource.list_resource_slice(field_selector="spec.nodeName=node-a")) == ["a", "c"]
    assert _names(resource.list_resource_slice(field_selector="spec.driver=xpushare.io")) == ["a", "b"]
    both = "spec.nodeName=node-a,spec.driver=xpushare.io"
    assert _names(resource.list_resource_slice(field_selector=both)) == ["a"]
    assert _names(resource.list_resource_slice(label_selector="xpushare.io/node=node-b")) == ["b"]


def test_unsupported_field_selector_is_a_400(resource: client.ResourceV1Api) -> None:
    with pytest.raises(ApiException) as info:
        resource.list_resource_slice(field_selector="spec.devices=x")
    assert info.value.status == 400
    assert "field label not supported: spec.devices" in json.loads(info.value.body)["message"]


def test_malformed_label_selector_is_a_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as info:
        core.list_node(label_selector="app in web")
    assert info.value.status == 400
