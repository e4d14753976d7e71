"""SlicePublisher against the embedded API server: modes, splitting, no-op restarts, changes, fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.deviceclasses import device_classes
from controller.publisher import KubeApi, NodeEvents, SlicePublisher
from controller.settings import PartitionLayout, RetrySettings, SliceMode, SliceSettings
from dra_driver.core.devices import Device, Health
from dra_driver.core.discovery.mock import MockBackend
from dra_driver.core.kube import RESOURCE_SLICES
from dra_driver.core.metrics import Registry
from dra_driver.simulation.allocator import StructuredAllocator
from dra_driver.simulation.apiserver import ApiServer
from tests.support.apiserver import api_client
from tests.support.resource_schema import RESOURCE_V1, errors
from tests.unit.controller.slices.inventory import npu

Obj = dict[str, Any]
CONCRETE = [SliceMode.CONSUMABLE, SliceMode.PARTITIONED, SliceMode.EXCLUSIVE]
NO_WAIT = RetrySettings(attempts=4, base_seconds=0.001, cap_seconds=0.01)


def publisher(
    api: KubeApi,
    node: Obj,
    mode: SliceMode = SliceMode.AUTO,
    registry: Registry | None = None,
    layout: PartitionLayout = PartitionLayout.FIXED,
) -> SlicePublisher:
    return SlicePublisher(
        api,
        node["metadata"]["name"],
        SliceSettings(mode=mode, partition_layout=layout),
        node_uid=node["metadata"]["uid"],
        retry=NO_WAIT,
        registry=registry or Registry(),
    )


def stored(api: KubeApi, node_name: str) -> list[Obj]:
    items = api.list(RESOURCE_SLICES, fieldSelector=f"spec.nodeName={node_name}")
    return sorted(items, key=lambda obj: obj["metadata"]["name"])


def claim(name: str, device_class: str, capacity: dict[str, str] | None = None) -> Obj:
    exactly: Obj = {"deviceClassName": device_class}
    if capacity:
        exactly["capacity"] = {"requests": capacity}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {"devices": {"requests": [{"name": "accel", "exactly": exactly}]}},
    }


@pytest.mark.parametrize("mode", CONCRETE)
def test_default_inventory_publishes_valid_slices_that_the_scheduler_can_allocate(
    api: KubeApi, make_node: Callable[[str], Obj], schemas_dir: Path, mode: SliceMode
) -> None:
    node = make_node("node-a")
    devices = MockBackend().discover()
    result = publisher(api, node, mode).publish(devices)
    assert result.mode is mode
    slices = stored(api, "node-a")
    assert len(slices) == result.slices == result.created
    for obj in slices:
        assert errors(schemas_dir, RESOURCE_V1, "io.k8s.api.resource.v1.ResourceSlice", obj) == []
        assert obj["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    allocator = StructuredAllocator(slices, device_classes())
    capacity = {"memory": "16Gi", "cores": "25"} if mode is SliceMode.CONSUMABLE else None
    npu_claim, gpu_claim = claim("a", "npu.xpushare.io", capacity), claim("b", "gpu.xpushare.io", capacity)
    allocations = allocator.allocate([npu_claim, gpu_claim], node)
    chosen = [allocation["devices"]["results"][0] for allocation in allocations]
    assert [result["pool"] for result in chosen] == ["node-a", "node-a"]
    assert chosen[0]["device"].startswith("npu-")
    assert chosen[1]["device"].startswith("gpu-")
    if mode is SliceMode.CONSUMABLE:
        assert chosen[0]["consumedCapacity"]["memory"] == "16Gi"


def test_two_hundred_devices_on_one_node_are_split_and_stored(
    api: KubeApi, make_node: Callable[[str], Obj]
) -> None:
    node = make_node("big")
    devices = [npu(i) for i in range(200)]
    devices[10] = devices[10].with_health(Health.UNHEALTHY, "ecc")
    result = publisher(api, node, SliceMode.CONSUMABLE).publish(devices)
    slices = stored(api, "big")
    counts = [len(obj["spec"]["devices"]) for obj in slices]
    assert sum(counts) == 200
    assert counts == [64, 128, 8]
    assert {obj["spec"]["pool"]["resourceSliceCount"] for obj in slices} == {3} == {result.slices}


def test_restart_with_no_change_writes_nothing(api: KubeApi, make_node: Callable[[str], Obj]) -> None:
    node = make_node("node-a")
    devices = MockBackend().discover()
    publisher(api, node, SliceMode.PARTITIONED).publish(devices)
    before = {obj["metadata"]["name"]: obj["metadata"]["resourceVersion"] for obj in stored(api, "node-a")}
    again = publisher(api, node, SliceMode.PARTITIONED).publish(devices)  # a new process: a new publisher
    assert again.writes == 0
    after = {obj["metadata"]["name"]: obj["metadata"]["resourceVersion"] for obj in stored(api, "node-a")}
    assert after == before


def test_removed_device_and_health_changes_are_republished(
    api: KubeApi, make_node: Callable[[str], Obj]
) -> None:
    node = make_node("node-a")
    pub = publisher(api, node, SliceMode.CONSUMABLE)
    devices = [npu(i) for i in range(3)]
    assert pub.publish(devices).generation == 1

    def devices_by_name() -> dict[str, Obj]:
        return {d["name"]: d for obj in stored(api, "node-a") for d in obj["spec"]["devices"]}

    sick = [devices[0], devices[1].with_health(Health.UNHEALTHY, "HBM ECC error"), devices[2]]
    assert pub.publish(sick).generation == 2
    taints = devices_by_name()["npu-1"]["taints"]
    assert [(t["key"], t["effect"]) for t in taints] == [("xpushare.io/unhealthy", "NoSchedule")]
    assert pub.publish(devices).generation == 3
    assert "taints" not in devices_by_name()["npu-1"]
    assert pub.publish(devices[:2]).generation == 4
    assert sorted(devices_by_name()) == ["npu-0", "npu-1"]
    assert {obj["spec"]["pool"]["generation"] for obj in stored(api, "node-a")} == {4}
    pub.publish([])
    assert stored(api, "node-a") == []


def test_many_devices_shrinking_deletes_obsolete_slices_first(
    api: KubeApi, make_node: Callable[[str], Obj]
) -> None:
    node = make_node("node-a")
    pub = publisher(api, node, SliceMode.CONSUMABLE)
    pub.publish([npu(i) for i in range(200)])
    result = pub.publish([npu(i) for i in range(5)])
    assert (result.deleted, result.updated, result.created) == (1, 1, 0)
    assert [len(obj["spec"]["devices"]) for obj in stored(api, "node-a")] == [5]


def test_a_stale_listing_meets_a_conflict_and_is_retried(
    api: KubeApi, make_node: Callable[[str], Obj], caplog: pytest.LogCaptureFixture
) -> None:
    node = make_node("node-a")
    pub = publisher(api, node, SliceMode.CONSUMABLE)
    pub.publish([npu(0)])
    stale = stored(api, "node-a")
    pub.publish([npu(0), npu(1)])  # moves the resourceVersion on
    with caplog.at_level(logging.INFO, logger="dra_driver.core.kube"):
        result = pub.publish([npu(0), npu(1), npu(2)], stored=stale)  # first try: 409; the retry lists again
    retries = [r.__dict__["status"] for r in caplog.records if r.name == "dra_driver.core.kube"]
    assert retries == [409]
    assert result.generation == 3
    assert len(stored(api, "node-a")[0]["spec"]["devices"]) == 3


BOTH_GATES = ("DRAConsumableCapacity", "DRAPartitionableDevices")


@pytest.mark.parametrize(
    ("disabled", "layout", "expected"),
    [
        (("DRAConsumableCapacity",), PartitionLayout.FIXED, SliceMode.PARTITIONED),
        (("DRAConsumableCapacity",), PartitionLayout.MENU, SliceMode.PARTITIONED),
        # Fixed pieces are plain devices: no gate needed, so even a server with neither gate shares.
        (BOTH_GATES, PartitionLayout.FIXED, SliceMode.PARTITIONED),
        (BOTH_GATES, PartitionLayout.MENU, SliceMode.EXCLUSIVE),
    ],
)
def test_auto_mode_falls_back_loudly_when_the_server_drops_gated_fields(
    disabled: tuple[str, ...], layout: PartitionLayout, expected: SliceMode, caplog: pytest.LogCaptureFixture
) -> None:
    with ApiServer(disabled_gates=disabled) as server, api_client(server) as client:
        api = KubeApi(client, timeout_seconds=10)
        node = api.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "old"}})
        registry = Registry()
        pub = publisher(api, node, SliceMode.AUTO, registry, layout)
        with caplog.at_level(logging.WARNING, logger="controller.publisher.publisher"):
            result = pub.publish(MockBackend().discover())
        assert result.mode is expected
        assert "falling back from consumable to partitioned" in caplog.text
        events = api.list("/api/v1/namespaces/default/events")
        assert {event["reason"] for event in events} == {"SliceModeFallback"}
        assert all(event["involvedObject"]["name"] == "old" for event in events)
        fallbacks = registry.counter("xpushare_slice_mode_fallbacks_total", "")
        assert fallbacks.value(node="old", from_mode="consumable", to_mode="partitioned") == 1
        slices = stored(api, "old")
        assert {
            d["attributes"]["xpushare.io/sharing"]["string"]
            for s in slices
            for d in s["spec"].get("devices", [])
        } == {expected.value}
        assert pub.publish(MockBackend().discover()).writes == 0
        restarted = publisher(api, node, SliceMode.AUTO, registry, layout)
        assert restarted.publish(MockBackend().discover()).writes == 0
        assert restarted.mode is expected
        assert len(api.list("/api/v1/namespaces/default/events")) == len(events)


def test_dropped_taints_leave_unhealthy_devices_out_without_a_rewrite_loop() -> None:
    with ApiServer(disabled_gates=("DRADeviceTaints",)) as server, api_client(server) as client:
        api = KubeApi(client, timeout_seconds=10)
        node = api.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
        pub = publisher(api, node, SliceMode.CONSUMABLE)
        devices: list[Device] = [npu(0), npu(1).with_health(Health.UNHEALTHY, "gone")]
        pub.publish(devices)
        names = [d["name"] for obj in stored(api, "n") for d in obj["spec"]["devices"]]
        assert names == ["npu-0"]
        assert pub.publish(devices).writes == 0


def test_events_survive_an_api_error(api: KubeApi, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        NodeEvents(api, namespace="no-such-namespace").warning("n", None, "Test", "message")
    assert "could not record event" in caplog.text


def test_an_explicit_mode_the_server_cannot_keep_is_reported_once_and_not_rewritten() -> None:
    with ApiServer(disabled_gates=("DRAConsumableCapacity",)) as server, api_client(server) as client:
        api = KubeApi(client, timeout_seconds=10)
        node = api.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
        pub = publisher(api, node, SliceMode.CONSUMABLE)
        assert pub.publish(MockBackend().discover()).mode is SliceMode.CONSUMABLE
        assert pub.publish(MockBackend().discover()).writes == 0
        events = api.list("/api/v1/namespaces/default/events")
        assert [event["reason"] for event in events] == ["SliceModeUnsupported"]
