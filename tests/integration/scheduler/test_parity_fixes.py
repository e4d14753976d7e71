"""Differences from the real scheduler found by ``tests/realk8s/test_parity.py``, fixed in the stand-in.

Guards: claim configs are copied into ``status.allocation.devices.config`` with their ``requests`` as the
claim lists them, as kube-scheduler does (even when the list names every request of the claim).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from dra_driver.simulation.scheduler import SimScheduler
from tests.integration.scheduler.test_simscheduler import GPU_CLASS, NS, gpu_slice, pod

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
