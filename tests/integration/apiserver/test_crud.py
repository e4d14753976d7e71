"""Create, read, update, patch and delete every served kind through the official typed client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.apiserver import objects


def _crud_cases(core: client.CoreV1Api, res: client.ResourceV1Api,
                coord: client.CoordinationV1Api) -> dict[str, tuple[Any, ...]]:
    """kind -> (create, read, replace, patch, delete, list, body); namespaced calls get "default"."""
    ns = "default"
    return {
        "Node": (core.create_node, core.read_node, core.replace_node, core.patch_node, core.delete_node,
                 core.list_node, objects.node("n1")),
        "Namespace": (core.create_namespace, core.read_namespace, core.replace_namespace,
                      core.patch_namespace, core.delete_namespace, core.list_namespace,
                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        "Pod": (*_ns(ns, core.create_namespaced_pod, core.read_namespaced_pod, core.replace_namespaced_pod,
                     core.patch_namespaced_pod, core.delete_namespaced_pod, core.list_namespaced_pod),
                objects.pod("p1")),
        "Event": (*_ns(ns, core.create_namespaced_event, core.read_namespaced_event,
                       core.replace_namespaced_event, core.patch_namespaced_event,
                       core.delete_namespaced_event, core.list_namespaced_event),
                  {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Published",
                   "message": "slice published", "type": "Normal",
                   "involvedObject": {"kind": "Node", "name": "n1", "apiVersion": "v1"}}),
        "ResourceSlice": (res.create_resource_slice, res.read_resource_slice, res.replace_resource_slice,
                          res.patch_resource_slice, res.delete_resource_slice, res.list_resource_slice,
                          objects.resource_slice("n1-npu", "n1", devices=2)),
        "ResourceClaim": (*_ns(ns, res.create_namespaced_resource_claim, res.read_namespaced_resource_claim,
                               res.replace_namespaced_resource_claim, res.patch_namespaced_resource_claim,
                               res.delete_namespaced_resource_claim, res.list_namespaced_resource_claim),
                          objects.claim("c1")),
        "ResourceClaimTemplate": (*_ns(ns, res.create_namespaced_resource_claim_template,
                                       res.read_namespaced_resource_claim_template,
                                       res.replace_namespaced_resource_claim_template,
                                       res.patch_namespaced_resource_claim_template,
                                       res.delete_namespaced_resource_claim_template,
                                       res.list_namespaced_resource_claim_template),
                                  objects.claim_template("t1")),
        "DeviceClass": (res.create_device_class, res.read_device_class, res.replace_device_class,
                        res.patch_device_class, res.delete_device_class, res.list_device_class,
                        objects.device_class("npu.xpushare.io")),
        "Lease": (*_ns(ns, coord.create_namespaced_lease, coord.read_namespaced_lease,
                       coord.replace_namespaced_lease, coord.patch_namespaced_lease,
                       coord.delete_namespaced_lease, coord.list_namespaced_lease),
                  objects.lease("l1", "node-a")),
    }


def _ns(namespace: str, *funcs: Callable[..., Any]) -> tuple[Callable[..., Any], ...]:
    """Bind the namespace: create(body) / read(name) / replace(name, body) / list() take it last."""
    create, read, replace, patch, delete, listing = funcs
    return (
        lambda body: create(namespace, body),
        lambda name: read(name, namespace),
        lambda name, body: replace(name, namespace, body),
        lambda name, body: patch(name, namespace, body),
        lambda name: delete(name, namespace),
        lambda **kw: listing(namespace, **kw),
    )


KINDS = ["Node", "Namespace", "Pod", "Event", "ResourceSlice", "ResourceClaim", "ResourceClaimTemplate",
         "DeviceClass", "Lease"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_through_create_get_update_patch_list_and_delete(
        kind: str, core: client.CoreV1Api, resource: client.ResourceV1Api,
        coordination: client.CoordinationV1Api) -> None:
    create, read, replace, patch, delete, listing, body = _crud_cases(core, resource, coordination)[kind]
    name = body["metadata"]["name"]
    created = create(body)
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1
    fetched = read(name)
    assert fetched.metadata.resource_version == created.metadata.resource_version

    updated_body = client.ApiClient().sanitize_for_serialization(fetched)
    updated_body["metadata"].setdefault("labels", {})["stage"] = "updated"
    updated = replace(name, updated_body)
    assert updated.metadata.labels["stage"] == "updated"
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    assert updated.metadata.uid == created.metadata.uid

    patched = patch(name, {"metadata": {"annotations": {"xpushare.io/patched": "yes"}}})
    assert patched.metadata.annotations["xpushare.io/patched"] == "yes"
    assert patched.metadata.labels["stage"] == "updated"

    names = [item.metadata.name for item in listing().items]
    assert name in names
    delete(name)
    with pytest.raises(ApiException) as info:
        read(name)
    assert info.value.status == 404


def test_namespaces_default_and_kube_system_exist_at_start(core: client.CoreV1Api) -> None:
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system"} <= names
    assert core.read_namespace("default").status.phase == "Active"


def test_generation_moves_on_spec_change_only(resource: client.ResourceV1Api) -> None:
    created = resource.create_resource_slice(objects.resource_slice("s1", "n1"))
    labelled = resource.patch_resource_slice("s1", {"metadata": {"labels": {"a": "b"}}})
    assert labelled.metadata.generation == created.metadata.generation == 1
    bumped = resource.patch_resource_slice("s1", {"spec": {"pool": {"generation": 2}}})
    assert bumped.metadata.generation == 2
    assert bumped.spec.pool.generation == 2


def test_unchanged_update_writes_nothing(resource: client.ResourceV1Api) -> None:
    created = resource.create_resource_slice(objects.resource_slice("s1", "n1"))
    again = resource.patch_resource_slice("s1", {"metadata": {"labels": {"xpushare.io/node": "n1"}}})
    assert again.metadata.resource_version == created.metadata.resource_version


def test_resource_version_is_cluster_wide_and_increasing(core: client.CoreV1Api,
                                                         resource: client.ResourceV1Api) -> None:
    first = core.create_node(objects.node("n1"))
    second = resource.create_resource_slice(objects.resource_slice("s1", "n1"))
    third = core.create_namespaced_pod("default", objects.pod("p1"))
    versions = [int(o.metadata.resource_version) for o in (first, second, third)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3
    listed = resource.list_resource_slice()
    assert int(listed.metadata.resource_version) >= versions[-1]


def test_generate_name_gives_a_unique_name(core: client.CoreV1Api) -> None:
    body = objects.pod("")
    body["metadata"] = {"generateName": "worker-"}
    first = core.create_namespaced_pod("default", body)
    second = core.create_namespaced_pod("default", body)
    assert first.metadata.name.startswith("worker-")
    assert first.metadata.name != second.metadata.name


def test_pagination_with_limit_and_continue(resource: client.ResourceV1Api) -> None:
    for i in range(5):
        resource.create_resource_slice(objects.resource_slice(f"s{i}", "n1"))
    page = resource.list_resource_slice(limit=2)
    seen = [s.metadata.name for s in page.items]
    while page.metadata._continue:
        page = resource.list_resource_slice(limit=2, _continue=page.metadata._continue)
        seen += [s.metadata.name for s in page.items]
    assert seen == [f"s{i}" for i in range(5)]


def test_create_in_missing_namespace_is_not_found(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod("nowhere", objects.pod("p1"))
    assert info.value.status == 404


def test_dry_run_create_validates_but_stores_nothing(core: client.CoreV1Api) -> None:
    preview = core.create_node(objects.node("n1"), dry_run="All")
    assert preview.metadata.name == "n1"
    assert core.list_node().items == []


def test_delete_collection_with_a_label_selector(resource: client.ResourceV1Api) -> None:
    resource.create_resource_slice(objects.resource_slice("a", "node-a"))
    resource.create_resource_slice(objects.resource_slice("b", "node-b"))
    resource.delete_collection_resource_slice(label_selector="xpushare.io/node=node-a")
    assert [s.metadata.name for s in resource.list_resource_slice().items] == ["b"]
