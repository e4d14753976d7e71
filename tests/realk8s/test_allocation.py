"""The whole path on a real cluster: the resourceclaim controller makes claims from templates, the real
kube-scheduler allocates them against the plugin's consumable slices and binds the pods, and the kubelet's
side (``dra_driver.simulation.kubelet``) prepares and unprepares them over the plugin's socket."""

from __future__ import annotations

import json
from typing import Any

from dra_driver.simulation.kubelet import ClaimRef, KubeletClient
from kubeletplugin import cdi
from kubeletplugin.plugin import Plugin
from shim.limits import read_limits_file
from tests.realk8s.conftest import Cluster, TestNode, create_pod, name_of, wait_for

GIB = 1 << 30


def create_template(node: TestNode, name: str, device_class: str, memory: str, cores: str) -> None:
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": node.namespace},
        "spec": {
            "spec": {
                "devices": {
                    "requests": [
                        {
                            "name": "xpu",
                            "exactly": {
                                "deviceClassName": device_class,
                                "capacity": {"requests": {"memory": memory, "cores": cores}},
                            },
                        }
                    ]
                }
            }
        },
    }
    node.cluster.resource.create_namespaced_resource_claim_template(node.namespace, body)  # type: ignore[arg-type]


def read_pod(node: TestNode, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = node.cluster.json(node.cluster.core.read_namespaced_pod(name, node.namespace))
    return pod


def bound_claim(node: TestNode, pod_name: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """Wait until the scheduler bound ``pod_name`` to the node; return its allocated claim."""

    def bound() -> dict[str, Any] | None:
        pod = read_pod(node, pod_name)
        return pod if pod["spec"].get("nodeName") else None

    pod = wait_for(f"pod {pod_name} bound", bound, timeout_s)
    assert pod["spec"]["nodeName"] == node.name
    (status,) = pod["status"]["resourceClaimStatuses"]
    claim: dict[str, Any] = node.cluster.json(
        node.cluster.resource.read_namespaced_resource_claim(status["resourceClaimName"], node.namespace)
    )
    return claim


def pod_scheduled_condition(node: TestNode, pod_name: str) -> dict[str, Any] | None:
    conditions = read_pod(node, pod_name)["status"].get("conditions") or []
    return next((c for c in conditions if c["type"] == "PodScheduled"), None)


def claim_ref(claim: dict[str, Any]) -> ClaimRef:
    return ClaimRef.of(claim)


def delete_pods(cluster: Cluster, namespace: str) -> None:
    for pod in cluster.core.list_namespaced_pod(namespace).items:
        cluster.core.delete_namespaced_pod(name_of(pod), namespace, grace_period_seconds=0)


def test_scheduler_allocates_shares_that_the_plugin_prepares_and_unprepares(
    node: TestNode, consumable_plugin: Plugin, kubelet: KubeletClient
) -> None:
    create_template(node, "npu-16gi", "npu.xpushare.io", "16Gi", "25")
    create_template(node, "gpu-20gi", "gpu.xpushare.io", "20Gi", "50")
    create_pod(node, "train", "npu-16gi")
    create_pod(node, "infer", "gpu-20gi")

    claims = {pod: bound_claim(node, pod) for pod in ("train", "infer")}
    expected = {"train": ("npu-", "16Gi", "25", 16 * GIB, 25), "infer": ("gpu-0", "20Gi", "50", 20 * GIB, 50)}
    for pod, claim in claims.items():
        prefix, memory, cores, _, _ = expected[pod]
        # The resourceclaim controller made the claim from the template, owned by the pod.
        owner = claim["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("Pod", pod)
        assert [r["name"] for r in claim["status"]["reservedFor"]] == [pod]
        (result,) = claim["status"]["allocation"]["devices"]["results"]
        assert (result["driver"], result["pool"], result["request"]) == ("xpushare.io", node.name, "xpu")
        assert result["device"].startswith(prefix)
        assert result["consumedCapacity"] == {"memory": memory, "cores": cores}
        assert result["shareID"]
        assert claim["status"]["allocation"]["nodeSelector"]

    settings = consumable_plugin.settings
    response = kubelet.prepare([claim_ref(c) for c in claims.values()], version="v1")
    for pod, claim in claims.items():
        uid = claim["metadata"]["uid"]
        (result,) = claim["status"]["allocation"]["devices"]["results"]
        answer = response.claims[uid]
        assert answer.error == ""
        (device,) = answer.devices
        assert (device.pool_name, device.device_name) == (node.name, result["device"])
        assert device.share_id == result["shareID"]
        assert list(device.cdi_device_ids) == [f"xpushare.io/claim={uid}-{result['device']}"]
        spec = json.loads(cdi.spec_path(settings.cdi_dir, uid).read_text())
        assert spec["kind"] == "xpushare.io/claim"
        assert [d["name"] for d in spec["devices"]] == [f"{uid}-{result['device']}"]
        limits = read_limits_file(settings.paths.limits_file(uid))
        _, _, _, memory_bytes, core_percent = expected[pod]
        assert [(d.memory_limit_bytes, d.core_percent) for d in limits.devices] == [
            (memory_bytes, core_percent)
        ]

    delete_pods(node.cluster, node.namespace)
    # With the pods gone the controller-manager releases and deletes the generated claims.
    wait_for(
        "the generated claims deleted",
        lambda: not node.cluster.resource.list_namespaced_resource_claim(node.namespace).items,
    )
    unprepared = kubelet.unprepare([claim_ref(c) for c in claims.values()], version="v1")
    for claim in claims.values():
        uid = claim["metadata"]["uid"]
        assert unprepared.claims[uid].error == ""
        assert not cdi.spec_path(settings.cdi_dir, uid).exists()
        assert not settings.paths.limits_file(uid).exists()


def test_a_full_npu_pool_leaves_the_next_pod_pending_with_the_schedulers_reason(
    node: TestNode, consumable_plugin: Plugin
) -> None:
    # Two 64Gi NPUs hold two 32Gi shares each.
    create_template(node, "npu-half", "npu.xpushare.io", "32Gi", "50")
    for index in range(4):
        create_pod(node, f"half-{index}", "npu-half")
    claims = [bound_claim(node, f"half-{index}") for index in range(4)]
    shares: dict[str, list[str]] = {}
    for claim in claims:
        (result,) = claim["status"]["allocation"]["devices"]["results"]
        shares.setdefault(result["device"], []).append(result["shareID"])
    assert sorted(shares) == ["npu-0", "npu-1"]
    assert all(len(set(ids)) == 2 for ids in shares.values())  # two distinct shares of each device

    create_pod(node, "one-too-many", "npu-half")

    def unschedulable() -> dict[str, Any] | None:
        condition = pod_scheduled_condition(node, "one-too-many")
        return condition if condition and condition["status"] == "False" else None

    condition = wait_for("the PodScheduled=False condition", unschedulable)
    assert condition["reason"] == "Unschedulable"
    assert "cannot allocate all claims" in condition["message"], condition["message"]
    assert read_pod(node, "one-too-many")["spec"].get("nodeName") is None

    # Freeing one share lets the scheduler place the waiting pod.
    node.cluster.core.delete_namespaced_pod("half-0", node.namespace, grace_period_seconds=0)
    claim = bound_claim(node, "one-too-many", timeout_s=60)
    (result,) = claim["status"]["allocation"]["devices"]["results"]
    assert result["consumedCapacity"] == {"memory": "32Gi", "cores": "50"}
