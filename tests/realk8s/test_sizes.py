"""Asking for a size that every mode honours: on a cluster whose API server drops capacity requests
(``DRAConsumableCapacity`` off, the default of Kubernetes 1.34 and 1.35), ``auto`` publishes partitions,
and a claim selects one by its capacity with CEL. The capacity request alone is dropped at write, and
the claim then gets the first partition, whatever its size: the hazard the selector avoids."""

from __future__ import annotations

import time
from typing import Any

from controller.settings import PartitionLayout, SliceMode
from dra_driver.core.quantity import quantity_value
from dra_driver.simulation.kubelet import ClaimRef, KubeletClient
from kubeletplugin.sizes import UNSIZED_REASON
from shim.limits import read_limits_file
from tests.realk8s.conftest import TestNode, create_pod, install_device_classes, wait_for
from tests.realk8s.test_allocation import pod_scheduled_condition

# The documented selector for "at least 16Gi and 25 % of a GPU" (docs/configuration.md).
AT_LEAST_16GI_25PCT = (
    'device.capacity["xpushare.io"].memory.compareTo(quantity("16Gi")) >= 0 && '
    'device.capacity["xpushare.io"].cores.compareTo(quantity("25")) >= 0'
)


def claim(node: TestNode, name: str, exactly: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": node.namespace},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": exactly}]}},
    }
    created = node.cluster.resource.create_namespaced_resource_claim(node.namespace, body)  # type: ignore[arg-type]
    return node.cluster.json(created)  # type: ignore[no-any-return]


def allocated_device(node: TestNode, claim_name: str) -> dict[str, Any]:
    """The slice entry of the device the scheduler gave the claim, once it did."""

    def allocated() -> str | None:
        read = node.cluster.resource.read_namespaced_resource_claim(claim_name, node.namespace)
        allocation = (node.cluster.json(read).get("status") or {}).get("allocation")
        return allocation["devices"]["results"][0]["device"] if allocation else None

    name = wait_for(f"claim {claim_name} allocated", allocated, timeout_s=30)
    devices = [d for s in node.slices() for d in s["spec"].get("devices") or []]
    return next(d for d in devices if d["name"] == name)


def size_of(device: dict[str, Any]) -> tuple[int, int]:
    capacity = device["capacity"]
    return int(quantity_value(capacity["memory"]["value"])), int(quantity_value(capacity["cores"]["value"]))


def test_a_capacity_selector_gets_at_least_its_size_where_capacity_requests_are_dropped(
    old_node: TestNode,
) -> None:
    install_device_classes(old_node.cluster)
    # The menu layout offers every size, so a claim that names none can get one too small.
    plugin = old_node.start_plugin(SliceMode.AUTO, partition_layout=PartitionLayout.MENU)
    try:
        wait_for("partitioned slices", lambda: any(
            d.get("consumesCounters") for s in old_node.slices() for d in s["spec"].get("devices") or []))
        selected = claim(old_node, "selected", {
            "deviceClassName": "gpu.xpushare.io",
            "selectors": [{"cel": {"expression": AT_LEAST_16GI_25PCT}}],
        })
        requested = claim(old_node, "requested", {
            "deviceClassName": "gpu.xpushare.io",
            "capacity": {"requests": {"memory": "16Gi", "cores": "25"}},
        })
        # This API server drops what its gate does not know, silently: the hazard the selector avoids.
        assert "capacity" not in requested["spec"]["devices"]["requests"][0]["exactly"]
        assert selected["spec"]["devices"]["requests"][0]["exactly"]["selectors"]
        create_pod(old_node, "selected", claim="selected")
        create_pod(old_node, "requested", claim="requested")

        memory, cores = size_of(allocated_device(old_node, "selected"))
        assert memory >= 16 << 30
        assert cores >= 25
        # The smallest partition that fits: a quarter of the H100 (20Gi, 25 %), not a half or the whole.
        assert (memory, cores) == (20 << 30, 25)
        memory, cores = size_of(allocated_device(old_node, "requested"))
        assert memory < 16 << 30, "the request was honoured although the server dropped it"

        # Prepared as the kubelet does: the claim that named no size is told what it got, on the claim.
        with KubeletClient(plugin.settings.registration_socket) as kubelet:
            kubelet.register()
            claims = [old_node.cluster.json(old_node.cluster.resource.read_namespaced_resource_claim(
                name, old_node.namespace)) for name in ("selected", "requested")]
            response = kubelet.prepare([ClaimRef.of(c) for c in claims], version="v1")
            assert all(response.claims[c["metadata"]["uid"]].error == "" for c in claims)
        def notices() -> dict[str, str]:
            events = old_node.cluster.core.list_namespaced_event(old_node.namespace).items
            return {e.involved_object.name: e.message for e in events if e.reason == UNSIZED_REASON}

        # Events are posted from the plugin's own thread, after the kubelet got its answer.
        wait_for("the size notice", lambda: bool(notices()), timeout_s=10)
        time.sleep(0.5)  # a notice for the other claim, were there one, would have arrived too
        assert list(notices()) == ["requested"]
        assert f"({memory >> 30}Gi, {cores} % of the device's cores)" in notices()["requested"]
    finally:
        plugin.stop()


def test_in_exclusive_mode_the_sharing_config_sizes_a_whole_device_on_any_cluster(old_node: TestNode) -> None:
    """Exclusive mode needs no gate: the claim takes a whole device and its SharingConfig sets the limits."""
    install_device_classes(old_node.cluster)
    plugin = old_node.start_plugin(SliceMode.EXCLUSIVE)
    try:
        sharing = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", "memoryMiB": 16384,
                   "corePercent": 25}
        body = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": "exclusive", "namespace": old_node.namespace},
            "spec": {"devices": {
                "requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.xpushare.io"}}],
                "config": [{"opaque": {"driver": "xpushare.io", "parameters": sharing}}],
            }},
        }
        old_node.cluster.resource.create_namespaced_resource_claim(old_node.namespace, body)  # type: ignore[arg-type]
        create_pod(old_node, "exclusive", claim="exclusive")
        assert size_of(allocated_device(old_node, "exclusive")) == (80 << 30, 100)  # the whole H100
        obj = old_node.cluster.json(old_node.cluster.resource.read_namespaced_resource_claim(
            "exclusive", old_node.namespace))
        with KubeletClient(plugin.settings.registration_socket) as kubelet:
            kubelet.register()
            response = kubelet.prepare([ClaimRef.of(obj)], version="v1")
        assert response.claims[obj["metadata"]["uid"]].error == ""
        limits = read_limits_file(plugin.settings.paths.limits_file(obj["metadata"]["uid"]))
        assert [(d.memory_limit_bytes, d.core_percent) for d in limits.devices] == [(16 << 30, 25)]
    finally:
        plugin.stop()


def test_fixed_quarters_place_four_claims_a_gpu_where_capacity_requests_are_dropped(
    old_node: TestNode,
) -> None:
    """The default layout needs no gate: the H100's four quarters go to four claims, the fifth waits."""
    install_device_classes(old_node.cluster)
    plugin = old_node.start_plugin(SliceMode.AUTO)
    try:
        wait_for("fixed partitions", lambda: any(
            d["name"].endswith("-1of4-0") for s in old_node.slices() for d in s["spec"].get("devices") or []))
        assert not any(s["spec"].get("sharedCounters") for s in old_node.slices())
        at_least = {
            "deviceClassName": "gpu.xpushare.io",
            "selectors": [{"cel": {"expression": AT_LEAST_16GI_25PCT}}],
        }
        names = [f"quarter-{n}" for n in range(5)]
        for name in names:
            claim(old_node, name, at_least)
            create_pod(old_node, name, claim=name)
        placed = [allocated_device(old_node, name) for name in names[:4]]
        assert sorted(d["name"] for d in placed) == [f"gpu-0-1of4-{n}" for n in range(4)]
        assert {size_of(d) for d in placed} == {(20 << 30, 25)}

        def unschedulable() -> dict[str, Any] | None:
            condition = pod_scheduled_condition(old_node, names[4])
            return condition if condition and condition["status"] == "False" else None

        condition = wait_for("the fifth pod's PodScheduled=False", unschedulable, timeout_s=30)
        assert "cannot allocate all claims" in condition["message"], condition["message"]
    finally:
        plugin.stop()
