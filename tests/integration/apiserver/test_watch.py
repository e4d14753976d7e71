"""Watches through ``kubernetes.watch.Watch``: initial state, resume from a version, 410 Gone, selectors."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects, rawhttp
from tests.support.apiserver import api_client


def _collect(func: object, count: int, **kwargs: object) -> list[tuple[str, str]]:
    """(type, name) of the first ``count`` events, bounded by a server-side timeout."""
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    for event in stream.stream(func, timeout_seconds=5, **kwargs):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) >= count:
            stream.stop()
    return seen


def test_watch_without_version_sends_current_objects_then_changes(
        apiserver: ApiServer, resource: client.ResourceV1Api) -> None:
    resource.create_resource_slice(objects.resource_slice("s1", "n1"))

    def later() -> None:
        time.sleep(0.3)
        with api_client(apiserver) as api:
            other = client.ResourceV1Api(api)
            other.create_resource_slice(objects.resource_slice("s2", "n1"))
            other.patch_resource_slice("s2", {"metadata": {"labels": {"a": "b"}}})
            other.delete_resource_slice("s1")

    writer = threading.Thread(target=later)
    writer.start()
    events = _collect(resource.list_resource_slice, 4)
    writer.join(timeout=10)
    assert events == [("ADDED", "s1"), ("ADDED", "s2"), ("MODIFIED", "s2"), ("DELETED", "s1")]


def test_watch_resumes_from_a_resource_version(resource: client.ResourceV1Api) -> None:
    first = resource.create_resource_slice(objects.resource_slice("s1", "n1"))
    resource.create_resource_slice(objects.resource_slice("s2", "n1"))
    resource.delete_resource_slice("s1")
    events = _collect(resource.list_resource_slice, 2, resource_version=first.metadata.resource_version)
    assert events == [("ADDED", "s2"), ("DELETED", "s1")]


def test_watch_from_a_version_older_than_the_history_is_410_gone() -> None:
    with ApiServer(history=3) as server, api_client(server) as api:
        res = client.ResourceV1Api(api)
        first = res.create_resource_slice(objects.resource_slice("s0", "n1"))
        for i in range(1, 6):
            res.create_resource_slice(objects.resource_slice(f"s{i}", "n1"))
        with pytest.raises(ApiException) as info:
            _collect(res.list_resource_slice, 1, resource_version=first.metadata.resource_version)
        assert info.value.status == 410
        status, body, _ = rawhttp.request(
            server, "GET", f"/apis/resource.k8s.io/v1/resourceslices?watch=true&timeoutSeconds=2&"
                           f"resourceVersion={first.metadata.resource_version}")
        assert status == 200
        assert body["type"] == "ERROR"
        assert body["object"]["code"] == 410
        assert body["object"]["reason"] == "Expired"


def test_watch_filters_by_field_and_label_selector(
        apiserver: ApiServer, core: client.CoreV1Api) -> None:
    start = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", objects.pod("on-a", "node-a", {"app": "x"}))
    core.create_namespaced_pod("default", objects.pod("on-b", "node-b", {"app": "x"}))
    core.create_namespaced_pod("default", objects.pod("on-a-other", "node-a", {"app": "y"}))
    events = _collect(core.list_namespaced_pod, 1, namespace="default", resource_version=start,
                      field_selector="spec.nodeName=node-a", label_selector="app=x")
    assert events == [("ADDED", "on-a")]


def test_watch_of_one_namespace_ignores_other_namespaces(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team"}})
    start = core.list_namespace().metadata.resource_version
    core.create_namespaced_pod("team", objects.pod("elsewhere"))
    core.create_namespaced_pod("default", objects.pod("here"))
    events = _collect(core.list_namespaced_pod, 1, namespace="default", resource_version=start)
    assert events == [("ADDED", "here")]


def test_watch_ends_at_timeout_seconds(apiserver: ApiServer) -> None:
    begin = time.monotonic()
    status, body, headers = rawhttp.request(
        apiserver, "GET", "/api/v1/namespaces?watch=1&timeoutSeconds=1&resourceVersion=1000000")
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == ""
    assert 0.9 <= time.monotonic() - begin < 5


def test_open_watches_end_when_the_server_stops() -> None:
    server = ApiServer().start()
    results: list[int] = []

    def watcher() -> None:
        status, _, _ = rawhttp.request(server, "GET", "/api/v1/nodes?watch=true&resourceVersion=1")
        results.append(status)

    thread = threading.Thread(target=watcher)
    thread.start()
    time.sleep(0.3)
    server.stop()
    thread.join(timeout=5)
    assert results == [200]


def test_bookmarks_carry_the_current_version(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    core.create_node(objects.node("n1"))
    status, body, _ = rawhttp.request(
        apiserver, "GET", "/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
                          "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
    assert status == 200
    lines = body.strip().splitlines()
    assert '"type":"ADDED"' in lines[0]
    assert '"type":"BOOKMARK"' in lines[1]
    assert "k8s.io/initial-events-end" in lines[1]


def test_objects_entering_and_leaving_a_field_selector_are_added_and_deleted(
        apiserver: ApiServer, core: client.CoreV1Api) -> None:
    """A kubelet-style watch on spec.nodeName sees a pod appear when it is bound to the node."""
    start = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", objects.pod("p1"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    status, _, _ = rawhttp.request(apiserver, "POST", "/api/v1/namespaces/default/pods/p1/binding",
                                   json.dumps(binding))
    assert status == 201
    core.patch_namespaced_pod("p1", "default", {"metadata": {"labels": {"app": "x"}}})
    core.patch_namespaced_pod("p1", "default", {"metadata": {"labels": {"app": "y"}}})
    events = _collect(core.list_namespaced_pod, 2, namespace="default", resource_version=start,
                      field_selector="spec.nodeName=node-a", label_selector="app=x")
    assert events == [("ADDED", "p1"), ("DELETED", "p1")]


def test_legacy_watch_path_for_one_object(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    start = core.list_node().metadata.resource_version
    core.create_node(objects.node("n1"))
    core.create_node(objects.node("n2"))
    status, body, _ = rawhttp.request(
        apiserver, "GET", f"/api/v1/watch/nodes/n2?resourceVersion={start}&timeoutSeconds=1")
    assert status == 200
    assert body["type"] == "ADDED"
    assert body["object"]["metadata"]["name"] == "n2"
