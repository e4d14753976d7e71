"""Differences from the real scheduler found by ``tests/realk8s/test_parity.py``, fixed in the stand-in.

Guards: claim configs are copied into ``status.allocation.devices.config`` with their ``requests`` as the
claim lists them, as kube-scheduler does (even when the list names every request of the claim).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from dra_driver.simulation.scheduler import SimScheduler
from tests.integration.scheduler.test_simscheduler import GPU_CLASS, NS, gpu_slice, pod, template

JSON = dict[str, Any]
OPAQUE = {"driver": "xpushare.io", "parameters": {"apiVersion": "xpushare.io/v1alpha1", "kind": "Note"}}


def _setup(kube_client: client.ApiClient) -> tuple[client.CoreV1Api, client.ResourceV1Api]:
    core, resource = client.CoreV1Api(kube_client), client.ResourceV1Api(kube_client)
    resource.create_device_class(GPU_CLASS)  # type: ignore[arg-type]
    resource.create_resource_slice(gpu_slice("node-a"))  # type: ignore[arg-type]
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})  # type: ignore[arg-type]
    return core, resource


def test_claim_config_keeps_its_requests_in_the_allocation(kube_client: client.ApiClient) -> None:
    core, resource = _setup(kube_client)
    template: JSON = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "configured", "namespace": NS},
        "spec": {
            "spec": {
                "devices": {
                    "requests": [
                        {
                            "name": "gpu",
                            "exactly": {
                                "deviceClassName": "gpu.xpushare.io",
                                "capacity": {"requests": {"memory": "8Gi", "cores": "10"}},
                            },
                        }
                    ],
                    "config": [{"requests": ["gpu"], "opaque": OPAQUE}, {"opaque": OPAQUE}],
                }
            }
        },
    }
    resource.create_namespaced_resource_claim_template(NS, template)  # type: ignore[arg-type]
    core.create_namespaced_pod(NS, pod("configured", "configured"))  # type: ignore[arg-type]

    report = SimScheduler(kube_client).schedule_once()

    assert report.bound == {"default/configured": "node-a"}
    (claim,) = resource.list_namespaced_resource_claim(NS).items
    config = kube_client.sanitize_for_serialization(claim)["status"]["allocation"]["devices"]["config"]  # type: ignore[no-untyped-call]
    assert config == [
        {"source": "FromClaim", "requests": ["gpu"], "opaque": OPAQUE},
        {"source": "FromClaim", "opaque": OPAQUE},
    ]


def test_a_deleted_pods_claim_is_released_and_its_capacity_reused(kube_client: client.ApiClient) -> None:
    core, resource = _setup(kube_client)
    resource.create_namespaced_resource_claim_template(NS, template("half", "40Gi"))  # type: ignore[arg-type]
    shared: JSON = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "shared", "namespace": NS},
        "spec": template("x", "40Gi")["spec"]["spec"],
    }
    resource.create_namespaced_resource_claim(NS, shared)  # type: ignore[arg-type]
    for name in ("reader", "writer"):
        body = pod(name, None)
        body["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimName": "shared"}]
        body["spec"]["containers"][0]["resources"] = {"claims": [{"name": "gpu"}]}
        core.create_namespaced_pod(NS, body)  # type: ignore[arg-type]
    core.create_namespaced_pod(NS, pod("other", "half"))  # type: ignore[arg-type]
    scheduler = SimScheduler(kube_client)
    assert set(scheduler.schedule_once().bound) == {"default/reader", "default/writer", "default/other"}
    core.create_namespaced_pod(NS, pod("waiting", "half"))  # type: ignore[arg-type]
    assert "default/waiting" in scheduler.schedule_once().pending  # 80Gi: two 40Gi shares hold it all

    def status(name: str) -> JSON:
        read = resource.read_namespaced_resource_claim(name, NS)
        found: JSON = kube_client.sanitize_for_serialization(read)["status"]  # type: ignore[no-untyped-call]
        return found

    core.delete_namespaced_pod("reader", NS)
    scheduler.schedule_once()
    # Still used by the writer: only the reader's entry goes, the allocation stays.
    assert [r["name"] for r in status("shared")["reservedFor"]] == ["writer"]
    assert status("shared")["allocation"]

    core.delete_namespaced_pod("writer", NS)
    report = scheduler.schedule_once()
    assert status("shared") == {} or "allocation" not in status("shared")
    assert report.bound == {"default/waiting": "node-a"}
