"""Optimistic concurrency: 409 on a stale resourceVersion or an existing name, 404 Status, no lost update."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects
from tests.support.apiserver import api_client


def test_update_with_a_stale_resource_version_is_a_409_conflict(resource: client.ResourceV1Api) -> None:
    created = resource.create_resource_slice(objects.resource_slice("s1", "n1"))
    stale_body = client.ApiClient().sanitize_for_serialization(created)
    resource.patch_resource_slice("s1", {"metadata": {"labels": {"moved": "on"}}})
    stale_body["spec"]["pool"]["generation"] = 7
    with pytest.raises(ApiException) as info:
        resource.replace_resource_slice("s1", stale_body)
    assert info.value.status == 409
    status = json.loads(info.value.body)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    assert resource.read_resource_slice("s1").spec.pool.generation == 1


def test_creating_an_existing_name_is_a_409_already_exists(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", objects.pod("p1"))
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod("default", objects.pod("p1"))
    assert info.value.status == 409
    status = json.loads(info.value.body)
    assert status["reason"] == "AlreadyExists"
    assert status["details"] == {"name": "p1", "group": "", "kind": "pods"}


def test_the_same_name_in_another_namespace_is_a_different_object(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    first = core.create_namespaced_pod("default", objects.pod("p1"))
    second = core.create_namespaced_pod("other", objects.pod("p1"))
    assert first.metadata.uid != second.metadata.uid


def test_missing_objects_are_a_404_not_found_status(resource: client.ResourceV1Api) -> None:
    with pytest.raises(ApiException) as info:
        resource.read_namespaced_resource_claim("absent", "default")
    assert info.value.status == 404
    status = json.loads(info.value.body)
    assert status["kind"] == "Status"
    assert status["reason"] == "NotFound"
    assert status["message"] == 'resourceclaims.resource.k8s.io "absent" not found'
    assert status["details"]["group"] == "resource.k8s.io"


def test_delete_with_a_stale_precondition_is_a_409(resource: client.ResourceV1Api) -> None:
    created = resource.create_device_class(objects.device_class("gpu.xpushare.io"))
    resource.patch_device_class("gpu.xpushare.io", {"metadata": {"labels": {"x": "y"}}})
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(
        resource_version=created.metadata.resource_version))
    with pytest.raises(ApiException) as info:
        resource.delete_device_class("gpu.xpushare.io", body=stale)
    assert info.value.status == 409
    assert resource.read_device_class("gpu.xpushare.io").metadata.labels == {"x": "y"}


def _increment_with_retries(server: ApiServer, worker: int, rounds: int, errors: list[BaseException]) -> None:
    with api_client(server) as api:
        coord = client.CoordinationV1Api(api)
        try:
            for _ in range(rounds):
                while True:
                    lease = coord.read_namespaced_lease("counter", "default")
                    body = client.ApiClient().sanitize_for_serialization(lease)
                    count = int(body["metadata"]["annotations"]["count"])
                    body["metadata"]["annotations"]["count"] = str(count + 1)
                    body["spec"]["holderIdentity"] = f"worker-{worker}"
                    try:
                        coord.replace_namespaced_lease("counter", "default", body)
                        break
                    except ApiException as err:
                        if err.status != 409:
                            raise
        except BaseException as err:
            errors.append(err)


def test_eight_threads_updating_one_object_with_retries_lose_no_update(
        apiserver: ApiServer, coordination: client.CoordinationV1Api) -> None:
    """Every read-modify-write either lands or gets a 409 that the writer retries: count is exact."""
    body = objects.lease("counter", "nobody")
    body["metadata"]["annotations"] = {"count": "0"}
    coordination.create_namespaced_lease("default", body)
    errors: list[BaseException] = []
    rounds = 15
    threads = [threading.Thread(target=_increment_with_retries, args=(apiserver, w, rounds, errors))
               for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    final = coordination.read_namespaced_lease("counter", "default")
    assert final.metadata.annotations["count"] == str(8 * rounds)


def test_concurrent_patches_without_a_version_are_all_applied(
        apiserver: ApiServer, resource: client.ResourceV1Api) -> None:
    """Patches carry no resourceVersion: the server retries lost races itself, so none is dropped."""
    resource.create_resource_slice(objects.resource_slice("s1", "n1"))

    def label(worker: int) -> None:
        with api_client(apiserver) as api:
            api_res = client.ResourceV1Api(api)
            for i in range(10):
                api_res.patch_resource_slice("s1", {"metadata": {"labels": {f"w{worker}-{i}": "x"}}})

    threads = [threading.Thread(target=label, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    labels = resource.read_resource_slice("s1").metadata.labels
    assert len([k for k in labels if k.startswith("w")]) == 80


def test_update_of_a_recreated_object_with_the_old_uid_is_a_409(core: client.CoreV1Api) -> None:
    old = client.ApiClient().sanitize_for_serialization(core.create_node(objects.node("n1")))
    core.delete_node("n1")
    core.create_node(objects.node("n1"))
    del old["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as info:
        core.replace_node("n1", old)
    assert info.value.status == 409
    assert "Precondition failed: UID" in json.loads(info.value.body)["message"]
