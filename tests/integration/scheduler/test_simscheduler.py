"""The scheduler stand-in against the embedded API server, through the official client only.

Guards the claim path of the simulation: a pod with a claim template gets a claim named and owned like the
resourceclaim controller's, allocated against the published slice, reserved for the pod, and the pod is
bound; what cannot be placed stays pending with the scheduler's condition and an Event; two pods share a
device by consumable capacity until it is exhausted; other pods are left alone.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from kubernetes import client

from dra_driver.simulation.scheduler import SimScheduler

JSON = dict[str, Any]
NS = "default"
GPU_SELECTOR = 'device.driver == "xpushare.io" && device.attributes["xpushare.io"].type == "gpu"'
GPU_CLASS = {
    "apiVersion": "resource.k8s.io/v1",
    "kind": "DeviceClass",
    "metadata": {"name": "gpu.xpushare.io"},
    "spec": {"selectors": [{"cel": {"expression": GPU_SELECTOR}}]},
}


def gpu_slice(node: str, memory: str = "80Gi") -> JSON:
    policy = {"default": memory, "validRange": {"min": "256Mi", "max": memory, "step": "256Mi"}}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-xpushare.io"},
        "spec": {
            "driver": "xpushare.io",
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": "gpu-0",
                    "allowMultipleAllocations": True,
                    "attributes": {"type": {"string": "gpu"}, "model": {"string": "H100"}},
                    "capacity": {
                        "memory": {"value": memory, "requestPolicy": policy},
                        "cores": {
                            "value": "100",
                            "requestPolicy": {
                                "default": "0",
                                "validRange": {"min": "0", "max": "100", "step": "1"},
                            },
                        },
                    },
                }
            ],
        },
    }


def template(name: str, memory: str, device_class: str = "gpu.xpushare.io") -> JSON:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "spec": {
                "devices": {
                    "requests": [
                        {
                            "name": "gpu",
                            "exactly": {
                                "deviceClassName": device_class,
                                "capacity": {"requests": {"memory": memory, "cores": "25"}},
                            },
                        }
                    ]
                }
            }
        },
    }


def pod(name: str, template_name: str | None) -> JSON:
    container: JSON = {"name": "main", "image": "busybox"}
    spec: JSON = {"containers": [container]}
    if template_name:
        spec["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": template_name}]
        container["resources"] = {"claims": [{"name": "gpu"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}


@pytest.fixture
def apis(kube_client: client.ApiClient) -> tuple[client.CoreV1Api, client.ResourceV1Api]:
    core, resource = client.CoreV1Api(kube_client), client.ResourceV1Api(kube_client)
    resource.create_device_class(GPU_CLASS)
    resource.create_resource_slice(gpu_slice("node-a"))
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
    return core, resource


def as_json(kube_client: client.ApiClient, obj: Any) -> JSON:
    return kube_client.sanitize_for_serialization(obj)  # type: ignore[no-any-return]


def test_pod_with_a_claim_template_gets_a_claim_allocated_reserved_and_bound(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    resource.create_namespaced_resource_claim_template(NS, template("gpu-16g", "16Gi"))
    created = core.create_namespaced_pod(NS, pod("trainer", "gpu-16g"))

    report = SimScheduler(kube_client).schedule_once()

    assert report.errors == {}
    assert report.bound == {"default/trainer": "node-a"}
    bound = as_json(kube_client, core.read_namespaced_pod("trainer", NS))
    assert bound["spec"]["nodeName"] == "node-a"
    assert [(c["type"], c["status"]) for c in bound["status"]["conditions"]] == [("PodScheduled", "True")]
    statuses = bound["status"]["resourceClaimStatuses"]
    assert [s["name"] for s in statuses] == ["gpu"]
    claim_name = statuses[0]["resourceClaimName"]
    assert re.fullmatch(r"trainer-gpu-[bcdfghjklmnpqrstvwxz2456789]{5}", claim_name)
    claim = as_json(kube_client, resource.read_namespaced_resource_claim(claim_name, NS))
    owner = claim["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Pod",
        "trainer",
        created.metadata.uid,
        True,
    )
    result = claim["status"]["allocation"]["devices"]["results"][0]
    assert (result["driver"], result["pool"], result["device"]) == ("xpushare.io", "node-a", "gpu-0")
    assert result["consumedCapacity"] == {"memory": "16Gi", "cores": "25"}
    assert result["shareID"]
    assert claim["status"]["reservedFor"] == [
        {"resource": "pods", "name": "trainer", "uid": created.metadata.uid}
    ]


def test_a_pod_that_fits_nowhere_stays_pending_with_the_reason_and_an_event(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    resource.create_namespaced_resource_claim_template(NS, template("gpu-too-big", "96Gi"))
    core.create_namespaced_pod(NS, pod("greedy", "gpu-too-big"))
    scheduler = SimScheduler(kube_client)

    report = scheduler.schedule_once()
    scheduler.schedule_once()  # the same reason again must not repeat the event

    assert "cannot allocate all claims" in report.pending["default/greedy"]
    waiting = as_json(kube_client, core.read_namespaced_pod("greedy", NS))
    assert not waiting["spec"].get("nodeName")
    condition = next(c for c in waiting["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert condition["message"].startswith("0/1 nodes are available: 1 cannot allocate all claims.")
    events = core.list_namespaced_event(NS, field_selector="involvedObject.name=greedy").items
    assert [(e.reason, e.type) for e in events] == [("FailedScheduling", "Warning")]
    assert len(resource.list_namespaced_resource_claim(NS).items) == 1  # the claim exists once


def test_two_pods_share_one_device_by_consumable_capacity(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    resource.create_namespaced_resource_claim_template(NS, template("gpu-40g", "40Gi"))
    core.create_namespaced_pod(NS, pod("first", "gpu-40g"))
    core.create_namespaced_pod(NS, pod("second", "gpu-40g"))

    report = SimScheduler(kube_client).schedule_once()

    assert report.bound == {"default/first": "node-a", "default/second": "node-a"}
    claims = [as_json(kube_client, c) for c in resource.list_namespaced_resource_claim(NS).items]
    results = [c["status"]["allocation"]["devices"]["results"][0] for c in claims]
    assert [r["device"] for r in results] == ["gpu-0", "gpu-0"]
    assert len({r["shareID"] for r in results}) == 2


def test_an_exhausted_device_leaves_the_next_pod_pending(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    resource.create_namespaced_resource_claim_template(NS, template("gpu-48g", "48Gi"))
    core.create_namespaced_pod(NS, pod("first", "gpu-48g"))
    scheduler = SimScheduler(kube_client)
    assert scheduler.schedule_once().bound == {"default/first": "node-a"}

    core.create_namespaced_pod(NS, pod("second", "gpu-48g"))
    report = scheduler.schedule_once()  # a new pass must see the first allocation in the claim status

    assert report.bound == {}
    assert "not enough free capacity (gpu-0)" in report.pending["default/second"]
    second = as_json(kube_client, core.read_namespaced_pod("second", NS))
    assert not second["spec"].get("nodeName")


def test_pods_without_claims_or_for_other_drivers_are_left_alone(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    resource.create_device_class(
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": "nic.example.com"},
            "spec": {"selectors": [{"cel": {"expression": 'device.driver == "example.com"'}}]},
        }
    )
    resource.create_namespaced_resource_claim_template(
        NS, template("nic", "1Gi", device_class="nic.example.com")
    )
    core.create_namespaced_pod(NS, pod("plain", None))
    core.create_namespaced_pod(NS, pod("other-driver", "nic"))

    report = SimScheduler(kube_client).schedule_once()

    assert (report.bound, report.pending, report.errors) == ({}, {}, {})
    assert resource.list_namespaced_resource_claim(NS).items == []
    for name in ("plain", "other-driver"):
        assert not core.read_namespaced_pod(name, NS).spec.node_name


def test_pods_sharing_one_claim_land_on_its_node_and_are_both_reserved(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    core.create_node(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-0"}}
    )  # sorts first, no GPU
    shared_spec = template("unused", "8Gi")["spec"]["spec"]
    resource.create_namespaced_resource_claim(
        NS,
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": "team-gpu", "namespace": NS},
            "spec": shared_spec,
        },
    )
    pods = []
    for name in ("reader", "writer"):
        body = pod(name, None)
        body["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimName": "team-gpu"}]
        pods.append(core.create_namespaced_pod(NS, body))
    scheduler = SimScheduler(kube_client)

    assert scheduler.schedule_once().bound == {"default/reader": "node-a", "default/writer": "node-a"}

    claim = as_json(kube_client, resource.read_namespaced_resource_claim("team-gpu", NS))
    assert [r["name"] for r in claim["status"]["reservedFor"]] == ["reader", "writer"]
    assert len(claim["status"]["allocation"]["devices"]["results"]) == 1


def test_run_binds_pods_created_while_it_is_running(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    resource.create_namespaced_resource_claim_template(NS, template("gpu-8g", "8Gi"))
    stop = threading.Event()
    worker = threading.Thread(
        target=SimScheduler(kube_client, poll_interval=0.05).run, args=(stop,), daemon=True
    )
    worker.start()
    try:
        core.create_namespaced_pod(NS, pod("late", "gpu-8g"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not core.read_namespaced_pod("late", NS).spec.node_name:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=5)
    assert core.read_namespaced_pod("late", NS).spec.node_name == "node-a"
    assert not worker.is_alive()


def test_a_pending_pod_is_bound_once_a_node_with_room_appears(
    kube_client: client.ApiClient, apis: tuple[client.CoreV1Api, client.ResourceV1Api]
) -> None:
    core, resource = apis
    resource.create_namespaced_resource_claim_template(NS, template("gpu-120g", "120Gi"))
    core.create_namespaced_pod(NS, pod("patient", "gpu-120g"))
    scheduler = SimScheduler(kube_client)
    assert "default/patient" in scheduler.schedule_once().pending

    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-b"}})
    resource.create_resource_slice(gpu_slice("node-b", memory="141Gi"))
    assert scheduler.schedule_once().bound == {"default/patient": "node-b"}

    waiting = as_json(kube_client, core.read_namespaced_pod("patient", NS))
    condition = next(c for c in waiting["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["status"] == "True"
    assert len(resource.list_namespaced_resource_claim(NS).items) == 1
