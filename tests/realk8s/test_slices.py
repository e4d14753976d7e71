"""The node plugin's ResourceSlices as a real kube-apiserver (v1.36) accepts and stores them, in each
slice mode, and ``auto`` choosing its mode from what the server keeps."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from controller.settings import PartitionLayout, SliceMode
from tests.realk8s.conftest import TestNode, wait_for

NPU_MEMORY, GPU_MEMORY = "64Gi", "80Gi"


def devices_of(slices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for s in slices for d in s["spec"].get("devices", [])}


def capacities(device: dict[str, Any]) -> dict[str, str]:
    return {name: cap["value"] for name, cap in device.get("capacity", {}).items()}


def assert_one_pool(node: TestNode, slices: list[dict[str, Any]]) -> None:
    assert slices, "no ResourceSlice stored"
    assert len({(s["spec"]["driver"], s["spec"]["pool"]["name"]) for s in slices}) == 1
    assert len({s["spec"]["pool"]["generation"] for s in slices}) == 1
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in slices} == {len(slices)}
    assert {s["spec"]["nodeName"] for s in slices} == {node.name}


def test_consumable_slices_keep_shared_capacity_and_request_policies(node: TestNode) -> None:
    plugin = node.start_plugin(SliceMode.CONSUMABLE)
    try:
        assert plugin.publisher is not None
        assert plugin.publisher.mode is SliceMode.CONSUMABLE
        slices = node.slices()
    finally:
        plugin.stop()
    assert_one_pool(node, slices)
    devices = devices_of(slices)
    assert sorted(devices) == ["gpu-0", "npu-0", "npu-1"]
    for name, memory in (("npu-0", NPU_MEMORY), ("npu-1", NPU_MEMORY), ("gpu-0", GPU_MEMORY)):
        device = devices[name]
        assert device["allowMultipleAllocations"] is True  # the gated field survived the round trip
        assert capacities(device) == {"memory": memory, "cores": "100"}
        policy = device["capacity"]["memory"]["requestPolicy"]
        assert policy["default"] == memory
        assert "step" in policy["validRange"]
        assert device["attributes"]["xpushare.io/sharing"] == {"string": "consumable"}
    assert devices["npu-0"]["attributes"]["xpushare.io/type"] == {"string": "npu"}
    assert devices["gpu-0"]["attributes"]["xpushare.io/type"] == {"string": "gpu"}
    owner = slices[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Node", node.name)


def test_fixed_partitions_are_plain_devices_of_a_quarter_each(node: TestNode) -> None:
    plugin = node.start_plugin(SliceMode.PARTITIONED)
    try:
        slices = node.slices()
    finally:
        plugin.stop()
    assert_one_pool(node, slices)
    assert not any(s["spec"].get("sharedCounters") for s in slices)
    devices = devices_of(slices)
    assert sorted(devices) == sorted(f"{d}-1of4-{n}" for d in ("gpu-0", "npu-0", "npu-1") for n in range(4))
    for name, device in devices.items():
        assert not device.get("consumesCounters")
        assert device["attributes"]["xpushare.io/partition"] == {"string": "1/4"}
        assert capacities(device) == {"memory": "20Gi" if name.startswith("gpu") else "16Gi", "cores": "25"}


def test_partitioned_menu_slices_keep_counter_sets_and_partitions_consuming_them(node: TestNode) -> None:
    plugin = node.start_plugin(SliceMode.PARTITIONED, partition_layout=PartitionLayout.MENU)
    try:
        slices = node.slices()
    finally:
        plugin.stop()
    assert_one_pool(node, slices)
    counter_sets = {
        c["name"]: {k: v["value"] for k, v in c["counters"].items()}
        for s in slices
        for c in s["spec"].get("sharedCounters", [])
    }
    assert counter_sets == {
        "npu-0": {"memory": NPU_MEMORY, "cores": "100"},
        "npu-1": {"memory": NPU_MEMORY, "cores": "100"},
        "gpu-0": {"memory": GPU_MEMORY, "cores": "100"},
    }
    devices = devices_of(slices)
    assert len(devices) > 3  # partitions, several per physical device
    for name, device in devices.items():
        (consumes,) = device["consumesCounters"]
        assert consumes["counterSet"] in counter_sets
        assert name.startswith(consumes["counterSet"])
        counters = {k: v["value"] for k, v in consumes["counters"].items()}
        assert counters == capacities(device)
        assert "allowMultipleAllocations" not in device


def test_exclusive_slices_hold_one_whole_device_each(node: TestNode) -> None:
    plugin = node.start_plugin(SliceMode.EXCLUSIVE)
    try:
        slices = node.slices()
    finally:
        plugin.stop()
    assert_one_pool(node, slices)
    devices = devices_of(slices)
    assert sorted(devices) == ["gpu-0", "npu-0", "npu-1"]
    assert capacities(devices["npu-1"]) == {"memory": NPU_MEMORY, "cores": "100"}
    assert capacities(devices["gpu-0"]) == {"memory": GPU_MEMORY, "cores": "100"}
    for device in devices.values():
        assert "allowMultipleAllocations" not in device
        assert "requestPolicy" not in device["capacity"]["memory"]
        assert not device.get("consumesCounters")


def test_auto_mode_publishes_consumable_slices_where_the_server_keeps_them(node: TestNode) -> None:
    plugin = node.start_plugin(SliceMode.AUTO)
    try:
        assert plugin.publisher is not None
        assert plugin.publisher.mode is SliceMode.CONSUMABLE
        slices = node.slices()
    finally:
        plugin.stop()
    assert all(d.get("allowMultipleAllocations") for d in devices_of(slices).values())
    events = node.cluster.core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={node.name}"
    ).items
    assert [e.reason for e in events] == []


def test_auto_mode_falls_back_to_partitioned_when_consumable_capacity_is_gated_off(
    old_node: TestNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="controller.publisher")
    plugin = old_node.start_plugin(SliceMode.AUTO, partition_layout=PartitionLayout.MENU)
    try:
        assert plugin.publisher is not None
        assert plugin.publisher.mode is SliceMode.PARTITIONED
        slices = old_node.slices()
    finally:
        plugin.stop()
    assert_one_pool(old_node, slices)
    assert {s["metadata"]["labels"]["xpushare.io/slice-mode"] for s in slices} == {"partitioned"}
    assert any(s["spec"].get("sharedCounters") for s in slices)  # the menu's counters survived
    assert not any(d.get("allowMultipleAllocations") for d in devices_of(slices).values())
    assert any("falling back from consumable to partitioned" in r.getMessage() for r in caplog.records), (
        caplog.text
    )

    def fallback_event() -> Any:
        events = old_node.cluster.core.list_namespaced_event(
            "default", field_selector=f"involvedObject.name={old_node.name}"
        ).items
        return next((e for e in events if e.reason == "SliceModeFallback"), None)

    event = wait_for("the SliceModeFallback event", fallback_event, timeout_s=10)
    assert event.type == "Warning"
    assert event.involved_object.kind == "Node"
    assert "dropped the fields of consumable mode" in event.message
    assert "drops capacity.requests from claims" in event.message


def test_explicit_consumable_mode_on_a_gated_off_server_is_reported_not_changed(
    old_node: TestNode,
) -> None:
    plugin = old_node.start_plugin(SliceMode.CONSUMABLE)
    try:
        assert plugin.publisher is not None
        assert plugin.publisher.mode is SliceMode.CONSUMABLE
        slices = old_node.slices()
    finally:
        plugin.stop()
    assert sorted(devices_of(slices)) == ["gpu-0", "npu-0", "npu-1"]
    events = old_node.cluster.core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={old_node.name}"
    ).items
    assert "SliceModeUnsupported" in {e.reason for e in events}
