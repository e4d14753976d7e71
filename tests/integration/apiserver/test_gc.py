"""Garbage collection by ownerReferences: dependents go with their owner, orphaning keeps them."""

from __future__ import annotations

from kubernetes import client

from tests.integration.apiserver import objects


def _owned_slices(resource: client.ResourceV1Api, node: client.V1Node) -> None:
    owner = {"kind": "Node", "metadata": {"name": node.metadata.name, "uid": node.metadata.uid}}
    for i in range(3):
        resource.create_resource_slice(objects.resource_slice(f"{node.metadata.name}-{i}", node.metadata.name,
                                                              owner=owner))


def test_deleting_a_node_deletes_its_slices(core: client.CoreV1Api, resource: client.ResourceV1Api) -> None:
    node_a = core.create_node(objects.node("node-a"))
    node_b = core.create_node(objects.node("node-b"))
    _owned_slices(resource, node_a)
    _owned_slices(resource, node_b)
    core.delete_node("node-a")
    names = sorted(s.metadata.name for s in resource.list_resource_slice().items)
    assert names == ["node-b-0", "node-b-1", "node-b-2"]


def test_deleting_a_pod_deletes_its_claims_but_not_others(core: client.CoreV1Api,
                                                          resource: client.ResourceV1Api) -> None:
    pod = core.create_namespaced_pod("default", objects.pod("p1"))
    owner = {"kind": "Pod", "metadata": {"name": "p1", "uid": pod.metadata.uid}}
    resource.create_namespaced_resource_claim("default", objects.claim("p1-npu", owner=owner))
    resource.create_namespaced_resource_claim("default", objects.claim("shared"))
    core.delete_namespaced_pod("p1", "default")
    names = [c.metadata.name for c in resource.list_namespaced_resource_claim("default").items]
    assert names == ["shared"]


def test_a_dependent_with_a_surviving_owner_stays(core: client.CoreV1Api,
                                                  resource: client.ResourceV1Api) -> None:
    first = core.create_namespaced_pod("default", objects.pod("p1"))
    second = core.create_namespaced_pod("default", objects.pod("p2"))
    body = objects.claim("shared")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": p.metadata.name, "uid": p.metadata.uid}
        for p in (first, second)]
    resource.create_namespaced_resource_claim("default", body)
    core.delete_namespaced_pod("p1", "default")
    assert resource.read_namespaced_resource_claim("shared", "default").metadata.name == "shared"
    core.delete_namespaced_pod("p2", "default")
    assert resource.list_namespaced_resource_claim("default").items == []


def test_orphan_propagation_keeps_dependents_without_the_reference(
        core: client.CoreV1Api, resource: client.ResourceV1Api) -> None:
    node = core.create_node(objects.node("node-a"))
    _owned_slices(resource, node)
    core.delete_node("node-a", propagation_policy="Orphan")
    remaining = resource.list_resource_slice().items
    assert len(remaining) == 3
    assert all(s.metadata.owner_references is None for s in remaining)


def test_deleting_a_namespace_deletes_what_it_holds(core: client.CoreV1Api,
                                                    resource: client.ResourceV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_pod("team", objects.pod("p1"))
    resource.create_namespaced_resource_claim("team", objects.claim("c1"))
    core.delete_namespace("team")
    assert core.list_pod_for_all_namespaces().items == []
    assert resource.list_resource_claim_for_all_namespaces().items == []


def test_finalizers_hold_deletion_until_removed(resource: client.ResourceV1Api) -> None:
    body = objects.claim("c1")
    body["metadata"]["finalizers"] = ["resource.kubernetes.io/delete-protection"]
    resource.create_namespaced_resource_claim("default", body)
    resource.delete_namespaced_resource_claim("c1", "default")
    held = resource.read_namespaced_resource_claim("c1", "default")
    assert held.metadata.deletion_timestamp is not None
    resource.patch_namespaced_resource_claim("c1", "default", {"metadata": {"finalizers": None}})
    assert resource.list_namespaced_resource_claim("default").items == []
