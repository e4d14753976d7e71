"""The semantic diff that decides whether a pool needs writes, and the generation rules of the plan."""

from __future__ import annotations

import copy
from typing import Any

from controller.publisher.diff import plan_pool, same_slice
from controller.publisher.gates import CONSUMABLE, PARTITIONED, TAINTS, dropped_features
from controller.settings import PartitionLayout, SliceMode, SliceSettings
from controller.slices import build_slices
from dra_driver.core.devices import Health
from tests.unit.controller.slices.inventory import gpu, npu

Obj = dict[str, Any]
SETTINGS = SliceSettings()


def as_stored(slices: list[Obj], generation: int = 4) -> list[Obj]:
    """What an API server returns: metadata filled in, quantities re-spelt, taints stamped."""
    stored = copy.deepcopy(slices)
    for number, obj in enumerate(stored):
        obj["metadata"].update(uid=f"uid-{number}", resourceVersion=str(100 + number), generation=1)
        obj["spec"]["pool"]["generation"] = generation
        for device in obj["spec"].get("devices", []):
            memory = device["capacity"]["memory"]
            memory["value"] = "65536Mi" if memory["value"] == "64Gi" else memory["value"]
            for taint in device.get("taints", []):
                taint["timeAdded"] = "2026-01-01T00:00:00Z"
    return stored


def test_server_spelling_and_metadata_do_not_count_as_changes() -> None:
    devices = [npu(0), npu(1).with_health(Health.UNHEALTHY, "x")]
    desired = build_slices("n", devices, SliceMode.CONSUMABLE, SETTINGS, node_uid="u")
    plan = plan_pool(desired, as_stored(desired))
    assert plan.empty
    assert plan.generation == 4


def test_a_changed_device_bumps_the_generation_of_every_slice() -> None:
    before = build_slices("n", [npu(i) for i in range(130)], SliceMode.CONSUMABLE, SETTINGS)
    stored = as_stored(before, generation=4)
    devices = [npu(i) for i in range(130)]
    for index in (0, 100):  # both slices now hold a tainted device: 64 per slice, so three slices
        devices[index] = devices[index].with_health(Health.UNHEALTHY, "x")
    plan = plan_pool(build_slices("n", devices, SliceMode.CONSUMABLE, SETTINGS), stored)
    assert plan.generation == 5
    assert not plan.deletes
    names = [obj["metadata"]["name"] for obj in plan.writes]
    assert names == ["n-xpushare-io-0", "n-xpushare-io-1", "n-xpushare-io-2"]
    assert {obj["spec"]["pool"]["generation"] for obj in plan.writes} == {5}
    assert [obj["metadata"]["resourceVersion"] for obj in plan.updates] == ["100", "101"]
    assert [obj["metadata"]["name"] for obj in plan.creates] == ["n-xpushare-io-2"]


def test_slices_no_longer_wanted_are_deleted() -> None:
    stored = as_stored(build_slices("n", [npu(i) for i in range(200)], SliceMode.CONSUMABLE, SETTINGS))
    stranger = copy.deepcopy(stored[0])
    stranger["metadata"]["name"] = "n-old-naming-abcde"
    plan = plan_pool(build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS), [*stored, stranger])
    assert sorted(obj["metadata"]["name"] for obj in plan.deletes) == [
        "n-old-naming-abcde",
        "n-xpushare-io-1",
    ]
    assert [obj["metadata"]["name"] for obj in plan.updates] == ["n-xpushare-io-0"]


def test_removing_every_device_deletes_the_pool() -> None:
    stored = as_stored(build_slices("n", [npu(0)], SliceMode.EXCLUSIVE, SETTINGS))
    plan = plan_pool([], stored)
    assert [obj["metadata"]["name"] for obj in plan.deletes] == ["n-xpushare-io-0"]
    assert not plan.writes


def test_mixed_generations_are_rewritten_even_with_equal_content() -> None:
    desired = build_slices("n", [npu(i) for i in range(200)], SliceMode.CONSUMABLE, SETTINGS)
    stored = as_stored(desired, generation=2)
    stored[1]["spec"]["pool"]["generation"] = 3
    plan = plan_pool(desired, stored)
    assert plan.generation == 4
    assert len(plan.updates) == 2


def test_a_slice_with_another_node_or_pool_is_replaced_not_updated() -> None:
    desired = build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS)
    stored = as_stored(desired)
    stored[0]["spec"]["pool"]["name"] = "other-pool"
    plan = plan_pool(desired, stored)
    assert [obj["metadata"]["name"] for obj in plan.deletes] == ["n-xpushare-io-0"]
    assert [obj["metadata"]["name"] for obj in plan.creates] == ["n-xpushare-io-0"]


def test_a_new_node_uid_rewrites_the_owner_reference() -> None:
    old = as_stored(build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS, node_uid="old"))
    new = build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS, node_uid="new")
    assert not same_slice(new[0], old[0])
    assert len(plan_pool(new, old).updates) == 1


def test_dropped_gated_fields_are_noticed_per_feature() -> None:
    devices = [npu(0).with_health(Health.UNHEALTHY, "x"), gpu(0)]
    consumable = build_slices("n", devices, SliceMode.CONSUMABLE, SETTINGS)
    returned = copy.deepcopy(consumable)
    for device in returned[0]["spec"]["devices"]:
        device.pop("allowMultipleAllocations")
        device.pop("taints", None)
    assert dropped_features(zip(consumable, returned, strict=True)) == {CONSUMABLE, TAINTS}
    menu = SliceSettings(partition_layout=PartitionLayout.MENU)
    partitioned = build_slices("n", devices, SliceMode.PARTITIONED, menu)
    returned = copy.deepcopy(partitioned)
    returned[0]["spec"].pop("sharedCounters")
    assert dropped_features(zip(partitioned, returned, strict=True)) == {PARTITIONED}
    assert dropped_features(zip(partitioned, copy.deepcopy(partitioned), strict=True)) == set()


def test_other_labels_and_annotations_survive_an_update_and_do_not_count_as_changes() -> None:
    desired = build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS)
    stored = as_stored(desired)
    stored[0]["metadata"]["labels"]["team"] = "infra"
    stored[0]["metadata"]["annotations"] = {"note": "kept"}
    assert plan_pool(desired, stored).empty
    (update,) = plan_pool(build_slices("n", [npu(0), npu(1)], SliceMode.CONSUMABLE, SETTINGS), stored).updates
    assert update["metadata"]["labels"] == {"team": "infra", "xpushare.io/slice-mode": "consumable"}
    assert update["metadata"]["annotations"] == {"note": "kept"}


def test_a_changed_mode_label_is_a_change() -> None:
    stored = as_stored(build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS))
    stored[0]["metadata"]["labels"]["xpushare.io/slice-mode"] = "exclusive"
    assert not plan_pool(build_slices("n", [npu(0)], SliceMode.CONSUMABLE, SETTINGS), stored).empty
