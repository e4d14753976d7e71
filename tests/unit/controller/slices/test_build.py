"""The pure slice builder: shape per mode, schema validity, splitting and naming."""

from __future__ import annotations

import copy
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from controller.settings import MAX_CLAIMS_PER_DEVICE, PartitionLayout, SliceMode, SliceSettings
from controller.slices import SliceBuildError, build_slices
from controller.slices.build import MAX_NAME
from dra_driver.core.devices import GIB, MIB, Health
from dra_driver.core.quantity import quantity_value
from tests.support.resource_schema import RESOURCE_V1, errors
from tests.unit.controller.slices.inventory import gpu, mixed, npu

CONCRETE_MODES = [SliceMode.CONSUMABLE, SliceMode.PARTITIONED, SliceMode.EXCLUSIVE]
SETTINGS = SliceSettings()
MENU = SliceSettings(partition_layout=PartitionLayout.MENU)


def devices_of(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [device for obj in slices for device in obj["spec"].get("devices", [])]


def by_name(slices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {device["name"]: device for device in devices_of(slices)}


@pytest.mark.parametrize(
    ("mode", "settings"), [*((mode, SETTINGS) for mode in CONCRETE_MODES), (SliceMode.PARTITIONED, MENU)]
)
def test_every_slice_of_each_mode_validates_strictly_against_the_upstream_schema(
    schemas_dir: Path, mode: SliceMode, settings: SliceSettings
) -> None:
    slices = build_slices("node-a", mixed(), mode, settings, generation=3, node_uid="uid-1")
    assert slices
    for obj in slices:
        assert errors(schemas_dir, RESOURCE_V1, "io.k8s.api.resource.v1.ResourceSlice", obj) == []


def test_schema_check_catches_a_misspelt_field(schemas_dir: Path) -> None:
    """Guards the strict validator itself: upstream schemas alone would accept unknown fields."""
    obj = build_slices("node-a", [npu(0)], SliceMode.CONSUMABLE, SETTINGS)[0]
    obj["spec"]["devices"][0]["allowMultipleAllocation"] = True
    assert errors(schemas_dir, RESOURCE_V1, "io.k8s.api.resource.v1.ResourceSlice", obj)


def test_consumable_device_defaults_to_whole_memory_and_best_effort_cores() -> None:
    device = by_name(build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS))["npu-0"]
    assert device["allowMultipleAllocations"] is True
    memory, cores = device["capacity"]["memory"], device["capacity"]["cores"]
    assert memory["value"] == "64Gi"
    # The minimum (1/64 of the device) keeps a device under the 64 claims its ledger tracks.
    assert memory["requestPolicy"] == {"default": "64Gi", "validRange": {"min": "1Gi", "step": "256Mi"}}
    assert cores == {
        "value": "100",
        "requestPolicy": {"default": "0", "validRange": {"min": "0", "step": "1"}},
    }
    assert device["attributes"]["xpushare.io/sharing"] == {"string": "consumable"}


def test_consumable_default_stays_on_the_step_grid_when_memory_is_not_a_multiple_of_the_step() -> None:
    memory = by_name(build_slices("n", [gpu(0)], SliceMode.CONSUMABLE, SETTINGS))["gpu-0"]["capacity"][
        "memory"
    ]
    default = quantity_value(memory["requestPolicy"]["default"])
    assert quantity_value(memory["value"]) == 81559 * MIB
    assert default == 318 * 256 * MIB
    assert (default - 256 * MIB) % (256 * MIB) == 0


@pytest.mark.parametrize("memory_mib", [81559, 65536, 8192, 1000])
def test_default_memory_minimum_fits_at_most_64_claims_on_a_device(memory_mib: int) -> None:
    settings = SliceSettings()
    low = settings.memory_min_for(memory_mib * MIB)
    assert low % settings.memory_step_bytes == 0
    assert (memory_mib * MIB) // low <= MAX_CLAIMS_PER_DEVICE
    assert low - settings.memory_step_bytes < -(-memory_mib * MIB // MAX_CLAIMS_PER_DEVICE)  # no larger


def test_an_explicit_memory_minimum_wins() -> None:
    assert SliceSettings(memory_min_bytes=512 * MIB).memory_min_for(80 * GIB) == 512 * MIB


def test_request_policy_steps_and_defaults_are_configurable() -> None:
    settings = SliceSettings(
        memory_step_bytes=GIB, memory_default_bytes=4 * GIB, cores_step=5, cores_default=10
    )
    capacity = by_name(build_slices("n", [npu(0)], SliceMode.CONSUMABLE, settings))["npu-0"]["capacity"]
    assert capacity["memory"]["requestPolicy"] == {
        "default": "4Gi",
        "validRange": {"min": "1Gi", "step": "1Gi"},
    }
    assert capacity["cores"]["requestPolicy"] == {"default": "10", "validRange": {"min": "0", "step": "5"}}


def test_device_that_cannot_be_shared_is_offered_whole_in_consumable_mode() -> None:
    device = by_name(build_slices("n", [npu(0, shareable=False)], SliceMode.CONSUMABLE, SETTINGS))["npu-0"]
    assert "allowMultipleAllocations" not in device
    assert all("requestPolicy" not in value for value in device["capacity"].values())
    assert device["attributes"]["xpushare.io/sharing"] == {"string": "exclusive"}


def test_exclusive_mode_publishes_whole_devices_without_policies() -> None:
    slices = build_slices("n", mixed(), SliceMode.EXCLUSIVE, SETTINGS)
    for device in devices_of(slices):
        assert "allowMultipleAllocations" not in device
        assert "consumesCounters" not in device
        assert set(device["capacity"]) == {"memory", "cores"}
        assert all(set(value) == {"value"} for value in device["capacity"].values())


def test_attributes_follow_the_design_names_and_types() -> None:
    attributes = by_name(build_slices("n", [npu(3)], SliceMode.CONSUMABLE, SETTINGS))["npu-3"]["attributes"]
    assert attributes["xpushare.io/type"] == {"string": "npu"}
    assert attributes["xpushare.io/model"] == {"string": "Ascend910B3"}
    assert attributes["xpushare.io/index"] == {"int": 3}
    assert attributes["xpushare.io/aicoreCount"] == {"int": 20}
    assert attributes["xpushare.io/driverVersion"] == {"version": "24.1.0-rc2"}
    assert attributes["xpushare.io/runtimeVersion"] == {"version": "8.0.0-RC3"}
    assert attributes["resource.kubernetes.io/pciBusID"] == {"string": "0000:03:00.0"}
    gpu_attributes = by_name(build_slices("n", [gpu(0)], SliceMode.CONSUMABLE, SETTINGS))["gpu-0"][
        "attributes"
    ]
    assert gpu_attributes["xpushare.io/smCount"] == {"int": 132}
    assert "xpushare.io/numaNode" not in gpu_attributes


def test_long_strings_are_clipped_to_the_api_limit() -> None:
    device = by_name(build_slices("n", [npu(0, model="X" * 100)], SliceMode.EXCLUSIVE, SETTINGS))["npu-0"]
    assert device["attributes"]["xpushare.io/model"] == {"string": "X" * 64}


def partitions_of(slices: list[dict[str, Any]], parent: str) -> list[dict[str, Any]]:
    return [d for d in devices_of(slices) if d["attributes"]["xpushare.io/parent"]["string"] == parent]


def test_fixed_layout_cuts_each_device_into_disjoint_quarters_without_counters() -> None:
    slices = build_slices("n", [gpu(0), npu(0)], SliceMode.PARTITIONED, SETTINGS)
    assert all("sharedCounters" not in obj["spec"] for obj in slices)
    for parent in ("gpu-0", "npu-0"):
        pieces = partitions_of(slices, parent)
        assert [d["name"] for d in pieces] == [f"{parent}-1of4-{n}" for n in range(4)]
        assert all("consumesCounters" not in d for d in pieces)
        assert {d["attributes"]["xpushare.io/partition"]["string"] for d in pieces} == {"1/4"}
        assert sum(int(d["capacity"]["cores"]["value"]) for d in pieces) == 100
    gpu_memory = {d["capacity"]["memory"]["value"] for d in partitions_of(slices, "gpu-0")}
    assert gpu_memory == {"20389Mi"}  # a quarter of 81559 MiB, rounded down to whole MiB
    # Plain devices: 128 a slice, as in the other modes without counters.
    many = build_slices("n", [npu(i) for i in range(40)], SliceMode.PARTITIONED, SETTINGS)
    assert [len(obj["spec"]["devices"]) for obj in many] == [128, 32]


def test_fixed_layout_of_mixed_sizes_numbers_pieces_within_their_size() -> None:
    settings = SliceSettings(
        fixed_partitions=MappingProxyType({"gpu": (Fraction(1, 4), Fraction(1, 2), Fraction(1, 4))})
    )
    names = [d["name"] for d in devices_of(build_slices("n", [gpu(0)], SliceMode.PARTITIONED, settings))]
    assert names == ["gpu-0-1of2-0", "gpu-0-1of4-0", "gpu-0-1of4-1"]
    whole = SliceSettings(fixed_partitions=MappingProxyType({"gpu": (Fraction(1),)}))
    (device,) = devices_of(build_slices("n", [gpu(0)], SliceMode.PARTITIONED, whole))
    assert device["name"] == "gpu-0"
    assert device["capacity"]["cores"]["value"] == "100"


def test_fixed_ascend_310p_is_cut_into_its_three_templates() -> None:
    chip = npu(1, model="Ascend310P3", memory=21 * GIB)
    pieces = partitions_of(build_slices("n", [chip], SliceMode.PARTITIONED, SETTINGS), "npu-1")
    assert [(d["name"], d["capacity"]["memory"]["value"]) for d in pieces] == [
        ("npu-1-4of7-0", "12Gi"),
        ("npu-1-2of7-0", "6Gi"),
        ("npu-1-1of7-0", "3Gi"),
    ]


def test_partitioned_gpu_offers_the_default_menu_and_counters_cover_each_size() -> None:
    slices = build_slices("n", [gpu(0)], SliceMode.PARTITIONED, MENU)
    counter_sets = [cs for obj in slices for cs in obj["spec"].get("sharedCounters", [])]
    assert [cs["name"] for cs in counter_sets] == ["gpu-0"]
    total = {key: quantity_value(c["value"]) for key, c in counter_sets[0]["counters"].items()}
    sizes: dict[str, list[dict[str, Any]]] = {}
    for device in partitions_of(slices, "gpu-0"):
        sizes.setdefault(device["attributes"]["xpushare.io/partition"]["string"], []).append(device)
        (consumption,) = device["consumesCounters"]
        assert consumption["counterSet"] == "gpu-0"
    assert {size: len(devices) for size, devices in sizes.items()} == {"1/8": 8, "1/4": 4, "1/2": 2, "1": 1}
    for devices in sizes.values():
        for key in ("memory", "cores"):
            used = sum(quantity_value(d["consumesCounters"][0]["counters"][key]["value"]) for d in devices)
            assert used <= total[key]


def test_partitioned_ascend_uses_hardware_templates() -> None:
    slices = build_slices(
        "n", [npu(0), npu(1, model="Ascend310P3", memory=21 * GIB)], SliceMode.PARTITIONED, MENU
    )
    sizes_910 = sorted(
        {d["attributes"]["xpushare.io/partition"]["string"] for d in partitions_of(slices, "npu-0")}
    )
    sizes_310 = sorted(
        {d["attributes"]["xpushare.io/partition"]["string"] for d in partitions_of(slices, "npu-1")}
    )
    assert sizes_910 == ["1", "1/2", "1/4"]
    assert sizes_310 == ["1/7", "2/7", "4/7"]
    assert len(partitions_of(slices, "npu-1")) == 7 + 3 + 1
    one_seventh = next(d for d in partitions_of(slices, "npu-1") if d["name"] == "npu-1-1of7-0")
    assert one_seventh["capacity"]["memory"]["value"] == "3Gi"
    assert one_seventh["capacity"]["cores"]["value"] == "14"


def test_partitioned_slices_hold_either_devices_or_counters_and_at_most_eight_sets() -> None:
    slices = build_slices("n", [npu(i) for i in range(20)], SliceMode.PARTITIONED, MENU)
    counter_slices = [obj for obj in slices if "sharedCounters" in obj["spec"]]
    assert [len(obj["spec"]["sharedCounters"]) for obj in counter_slices] == [8, 8, 4]
    for obj in slices:
        assert ("devices" in obj["spec"]) != ("sharedCounters" in obj["spec"])
        assert len(obj["spec"].get("devices", [])) <= 64


def test_two_hundred_devices_split_under_the_per_slice_limits() -> None:
    healthy = build_slices("n", [npu(i) for i in range(200)], SliceMode.CONSUMABLE, SETTINGS)
    assert [len(obj["spec"]["devices"]) for obj in healthy] == [128, 72]
    devices = [npu(i) for i in range(200)]
    devices[150] = devices[150].with_health(Health.UNHEALTHY, "lost")
    tainted = build_slices("n", devices, SliceMode.CONSUMABLE, SETTINGS)
    for obj in tainted:
        limit = 64 if any("taints" in d for d in obj["spec"]["devices"]) else 128
        assert len(obj["spec"]["devices"]) <= limit
    assert len(devices_of(tainted)) == 200
    assert len({d["name"] for d in devices_of(tainted)}) == 200


@pytest.mark.parametrize("mode", CONCRETE_MODES)
def test_pool_fields_names_and_owner_are_consistent_across_slices(mode: SliceMode) -> None:
    slices = build_slices("node-a", [npu(i) for i in range(200)], mode, SETTINGS, generation=7, node_uid="u")
    assert [obj["metadata"]["name"] for obj in slices] == [
        f"node-a-xpushare-io-{n}" for n in range(len(slices))
    ]
    for obj in slices:
        assert obj["spec"]["pool"] == {"name": "node-a", "generation": 7, "resourceSliceCount": len(slices)}
        assert obj["spec"]["nodeName"] == "node-a"
        assert obj["metadata"]["labels"] == {"xpushare.io/slice-mode": mode.value}
        assert obj["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "u", "controller": True}
        ]


def test_builder_is_deterministic_and_leaves_its_input_alone() -> None:
    devices = mixed()
    snapshot = copy.deepcopy(devices)
    first = build_slices("n", devices, SliceMode.PARTITIONED, SETTINGS)
    second = build_slices("n", list(reversed(devices)), SliceMode.PARTITIONED, SETTINGS)
    assert first == second
    assert devices == snapshot


def test_unhealthy_device_gets_a_noschedule_taint_unless_taints_are_off() -> None:
    devices = [npu(0).with_health(Health.UNHEALTHY, "HBM ECC multi-bit error"), npu(1)]
    tainted = by_name(build_slices("n", devices, SliceMode.CONSUMABLE, SETTINGS))
    assert tainted["npu-0"]["taints"] == [
        {"key": "xpushare.io/unhealthy", "effect": "NoSchedule", "value": "HBM-ECC-multi-bit-error"}
    ]
    assert "taints" not in tainted["npu-1"]
    untainted = build_slices("n", devices, SliceMode.CONSUMABLE, SliceSettings(device_taints=False))
    assert all("taints" not in d for d in devices_of(untainted))


def test_very_long_node_names_give_short_distinct_slice_names() -> None:
    first = "a" * 250
    second = "a" * 249 + "b"
    names = {
        obj["metadata"]["name"]
        for node in (first, second)
        for obj in build_slices(node, [npu(i) for i in range(300)], SliceMode.CONSUMABLE, SETTINGS)
    }
    assert len(names) == 6
    assert all(len(name) <= MAX_NAME for name in names)


def test_no_devices_give_no_slices_and_duplicates_or_auto_are_refused() -> None:
    assert build_slices("n", [], SliceMode.CONSUMABLE, SETTINGS) == []
    with pytest.raises(SliceBuildError, match="duplicate device names"):
        build_slices("n", [npu(0), npu(0)], SliceMode.CONSUMABLE, SETTINGS)
    with pytest.raises(SliceBuildError, match="not concrete"):
        build_slices("n", [npu(0)], SliceMode.AUTO, SETTINGS)
