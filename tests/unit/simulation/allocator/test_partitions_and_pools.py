"""Partitioned devices (KEP-4815 shared counters) and pool bookkeeping (generations, completeness).

Guards: partitions of one physical device never over-commit its counters, whether the counters live in
the same slice set or a separate counter slice; old pool generations and incomplete pools are ignored.
"""

from __future__ import annotations

from typing import Any

import pytest

from dra_driver.simulation.allocator import StructuredAllocator, UnschedulableError
from tests.unit.simulation.allocator.builders import DRIVER, device_class, devices_of, gpu_claim, slice_

JSON = dict[str, Any]
COUNTERS = [{"name": "gpu-0-counters", "counters": {"memory": {"value": "80Gi"}, "cores": {"value": "100"}}}]


def partition(name: str, fraction: int) -> JSON:
    """A partition taking 1/fraction of gpu-0's memory and cores."""
    return {
        "name": name,
        "attributes": {"type": {"string": "gpu"}},
        "capacity": {"memory": {"value": f"{80 // fraction}Gi"}},
        "consumesCounters": [
            {
                "counterSet": "gpu-0-counters",
                "counters": {
                    "memory": {"value": f"{80 // fraction}Gi"},
                    "cores": {"value": str(100 // fraction)},
                },
            }
        ],
    }


MENU = [
    partition("gpu-0-whole", 1),
    partition("gpu-0-half-0", 2),
    partition("gpu-0-half-1", 2),
    partition("gpu-0-quarter-0", 4),
]
COUNTER_SLICE = slice_("node-a-counters", [], count=2, counters=COUNTERS)
DEVICE_SLICE = slice_("node-a-devices", MENU, count=2)


@pytest.fixture
def allocator() -> StructuredAllocator:
    return StructuredAllocator([DEVICE_SLICE, COUNTER_SLICE], [device_class()])


def test_first_fit_takes_the_whole_device_and_then_no_partition_fits(allocator: StructuredAllocator) -> None:
    first = allocator.allocate([gpu_claim("a")], "node-a")
    assert devices_of(first[0]) == ["gpu-0-whole"]
    allocator.record(gpu_claim("a") | {"status": {"allocation": first[0]}})
    with pytest.raises(UnschedulableError, match=r"shared counters exhausted \(gpu-0-half-0, gpu-0-half-1"):
        allocator.allocate([gpu_claim("b")], "node-a")


def test_two_halves_fill_the_counters_and_block_the_whole_device(allocator: StructuredAllocator) -> None:
    halves = allocator.allocate(
        [gpu_claim("a", selectors=['device.capacity["xpushare.io"].memory == quantity("40Gi")'])] * 1,
        "node-a",
    )
    assert devices_of(halves[0]) == ["gpu-0-half-0"]
    two = allocator.allocate(
        [
            gpu_claim(
                "a",
                count=2,
                selectors=['device.capacity["xpushare.io"].memory.compareTo(quantity("40Gi")) == 0'],
            )
        ],
        "node-a",
    )
    assert devices_of(two[0]) == ["gpu-0-half-0", "gpu-0-half-1"]
    allocator.record(gpu_claim("a") | {"status": {"allocation": two[0]}})
    with pytest.raises(UnschedulableError, match="shared counters exhausted"):
        allocator.allocate([gpu_claim("b")], "node-a")


def test_a_half_and_a_quarter_leave_room_for_nothing_bigger_than_a_quarter(
    allocator: StructuredAllocator,
) -> None:
    claims = [
        gpu_claim("a", selectors=['device.capacity["xpushare.io"].memory.isLessThan(quantity("80Gi"))']),
        gpu_claim("b", selectors=['device.capacity["xpushare.io"].memory.isLessThan(quantity("40Gi"))']),
    ]
    got = allocator.allocate(claims, "node-a")
    assert [devices_of(a) for a in got] == [["gpu-0-half-0"], ["gpu-0-quarter-0"]]
    for name, allocation in zip("ab", got, strict=True):
        allocator.record(gpu_claim(name) | {"status": {"allocation": allocation}})
    with pytest.raises(UnschedulableError, match="shared counters exhausted"):
        allocator.allocate(
            [
                gpu_claim(
                    "c", selectors=['device.capacity["xpushare.io"].memory.isGreaterThan(quantity("20Gi"))']
                )
            ],
            "node-a",
        )


def test_counters_in_the_same_slice_as_devices_are_honoured_too() -> None:
    one_slice = slice_("node-a", MENU, counters=COUNTERS)
    allocator = StructuredAllocator([one_slice], [device_class()])
    got = allocator.allocate([gpu_claim("a"), gpu_claim("b")], "node-a")
    assert [devices_of(a) for a in got] == [["gpu-0-half-0"], ["gpu-0-half-1"]]


def test_only_the_newest_pool_generation_counts() -> None:
    old = slice_("node-a-old", [{"name": "gpu-old", "attributes": {"type": {"string": "gpu"}}}], generation=1)
    new = slice_("node-a-new", [{"name": "gpu-new", "attributes": {"type": {"string": "gpu"}}}], generation=2)
    allocator = StructuredAllocator([old, new], [device_class()])
    assert devices_of(allocator.allocate([gpu_claim("c")], "node-a")[0]) == ["gpu-new"]


def test_an_incomplete_pool_is_skipped_until_all_its_slices_exist() -> None:
    partial = slice_("node-a-0", [{"name": "gpu-0", "attributes": {"type": {"string": "gpu"}}}], count=2)
    allocator = StructuredAllocator([partial], [device_class()])
    with pytest.raises(UnschedulableError, match="no device on node node-a matches"):
        allocator.allocate([gpu_claim("c")], "node-a")


def test_first_fit_follows_pool_then_slice_name_order() -> None:
    plain = [{"name": n, "attributes": {"type": {"string": "gpu"}}} for n in ("x", "y")]
    slices = [
        slice_("b-slice", plain[:1], pool="pool-b", count=1),
        slice_("a-2", plain[1:], pool="pool-a", count=2),
        slice_("a-1", [{"name": "z", "attributes": {"type": {"string": "gpu"}}}], pool="pool-a", count=2),
    ]
    allocator = StructuredAllocator(slices, [device_class()])
    got = allocator.allocate([gpu_claim("c", count=3)], "node-a")
    assert [(r["pool"], r["device"]) for r in got[0]["devices"]["results"]] == [
        ("pool-a", "z"),
        ("pool-a", "y"),
        ("pool-b", "x"),
    ]
    assert {r["driver"] for r in got[0]["devices"]["results"]} == {DRIVER}


def test_a_shared_partition_charges_its_counters_once_however_many_shares_it_has() -> None:
    half = partition("gpu-0-half-0", 2) | {"allowMultipleAllocations": True}
    other_half = partition("gpu-0-half-1", 2)
    allocator = StructuredAllocator(
        [slice_("node-a", [half, other_half], counters=COUNTERS)], [device_class()]
    )
    small = {"memory": "10Gi"}
    got = allocator.allocate(
        [gpu_claim("a", small), gpu_claim("b", small), gpu_claim("c", small, count=2)], "node-a"
    )
    assert [devices_of(a) for a in got] == [
        ["gpu-0-half-0"],
        ["gpu-0-half-0"],
        ["gpu-0-half-0", "gpu-0-half-1"],
    ]


def test_recording_allocations_one_by_one_equals_starting_from_them() -> None:
    partial = ['device.capacity["xpushare.io"].memory.isLessThan(quantity("80Gi"))']
    claims = [gpu_claim(name, selectors=partial) for name in "ab"]  # the two halves
    incremental = StructuredAllocator([DEVICE_SLICE, COUNTER_SLICE], [device_class()])
    held = []
    for c in claims:
        allocation = incremental.allocate([c], "node-a")[0]
        held.append(c | {"status": {"allocation": allocation}})
        incremental.record(held[-1])
    fresh = StructuredAllocator([DEVICE_SLICE, COUNTER_SLICE], [device_class()], held)
    probe = [gpu_claim("p", selectors=['device.capacity["xpushare.io"].memory.isLessThan(quantity("40Gi"))'])]
    for allocator in (incremental, fresh):
        with pytest.raises(UnschedulableError, match="shared counters exhausted"):
            allocator.allocate(probe, "node-a")
