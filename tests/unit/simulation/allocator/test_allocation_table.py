"""Table of allocation scenarios: what each claim gets, what it consumes, and why it fails when it does.

Each case guards one rule of structured-parameters allocation that our slices depend on (KEP-5075
consumable capacity, KEP-4815 counters, CEL selectors, counts, first fit); the case id says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from dra_driver.simulation.allocator import StructuredAllocator, UnschedulableError
from tests.unit.simulation.allocator.builders import (
    claim,
    device,
    device_class,
    exactly,
    gpu_claim,
    slice_,
)

JSON = dict[str, Any]
TWO_GPUS = [slice_("node-a-gpus", [device("gpu-0"), device("gpu-1")])]


def held(name: str, dev: str, consumed: JSON | None = None, share: str = "") -> JSON:
    """An existing claim that already holds ``dev`` on node-a (with a share if ``consumed`` is given)."""
    result: JSON = {"request": "gpu", "driver": "xpushare.io", "pool": "node-a", "device": dev}
    if consumed is not None:
        result.update(shareID=share or f"share-{name}", consumedCapacity=consumed)
    return gpu_claim(name) | {"status": {"allocation": {"devices": {"results": [result]}}}}


@dataclass(frozen=True)
class Case:
    claims: list[JSON]
    expect: list[list[tuple[str, JSON | None]]] | None = None  # per claim: (device, consumedCapacity)
    error: str = ""
    slices: list[JSON] = field(default_factory=lambda: TWO_GPUS)
    classes: list[JSON] = field(default_factory=lambda: [device_class()])
    existing: list[JSON] = field(default_factory=list)


def valid_values_slice() -> JSON:
    """One shareable GPU whose memory may only be taken as 10Gi, 20Gi or 40Gi."""
    policy = {"default": "10Gi", "validValues": ["10Gi", "20Gi", "40Gi"]}
    gpu = {
        "name": "gpu-0",
        "allowMultipleAllocations": True,
        "attributes": {"type": {"string": "gpu"}},
        "capacity": {"memory": {"value": "40Gi", "requestPolicy": policy}},
    }
    return slice_("s", [gpu])


def mem(memory: str, cores: str = "0") -> JSON:
    return {"memory": memory, "cores": cores}


CASES = {
    # --- rounding (requestPolicy) ---
    "memory request rounds up to the next 256Mi step": Case(
        [gpu_claim("c", {"memory": "1000Mi"})], [[("gpu-0", mem("1Gi"))]]
    ),
    "request below validRange min rounds up to the min": Case(
        [gpu_claim("c", {"memory": "1Mi"})], [[("gpu-0", mem("256Mi"))]]
    ),
    "request on a step boundary is kept as is": Case(
        [gpu_claim("c", {"memory": "16Gi", "cores": "25"})], [[("gpu-0", mem("16Gi", "25"))]]
    ),
    "request above validRange max does not fit": Case(
        [gpu_claim("c", {"memory": "81Gi"})], error="outside the device's capacities or request policy"
    ),
    "unrequested capacity takes the policy default (whole memory, zero cores)": Case(
        [gpu_claim("c")], [[("gpu-0", mem("80Gi", "0"))]]
    ),
    "without a request policy an unrequested capacity takes the whole value": Case(
        [gpu_claim("c", {"memory": "10Gi"})],
        [[("gpu-0", mem("10Gi", "100"))]],
        slices=[slice_("s", [device("gpu-0", policy=False)])],
    ),
    "validValues round up to the smallest value at or above the request": Case(
        [gpu_claim("c", {"memory": "17Gi"})],
        [[("gpu-0", {"memory": "20Gi"})]],
        slices=[valid_values_slice()],
    ),
    "a request above every valid value does not fit": Case(
        [gpu_claim("c", {"memory": "41Gi"})],
        error="request policy",
        slices=[valid_values_slice()],
    ),
    "a capacity name qualified with the driver domain matches the unqualified capacity": Case(
        [gpu_claim("c", {"xpushare.io/memory": "2Gi"})], [[("gpu-0", mem("2Gi"))]]
    ),
    "a capacity the device does not publish makes it unsuitable": Case(
        [gpu_claim("c", {"bandwidth": "1"})], error="request policy"
    ),
    # --- exhaustion ---
    "two 40Gi claims fill one 80Gi device, first fit keeps them on gpu-0": Case(
        [gpu_claim("a", {"memory": "40Gi"}), gpu_claim("b", {"memory": "40Gi"})],
        [[("gpu-0", mem("40Gi"))], [("gpu-0", mem("40Gi"))]],
    ),
    "a third claim spills to the next device when the first is full": Case(
        [gpu_claim("c", {"memory": "40Gi"})],
        [[("gpu-1", mem("40Gi"))]],
        existing=[held("x", "gpu-0", mem("40Gi")), held("y", "gpu-0", mem("40Gi"))],
    ),
    "every device full: the claim is unschedulable with the reason": Case(
        [gpu_claim("c", {"memory": "1Gi"})],
        error="not enough free capacity (gpu-0, gpu-1)",
        existing=[held("x", "gpu-0", mem("80Gi")), held("y", "gpu-1", mem("80Gi"))],
    ),
    "cores are exhausted independently of memory": Case(
        [gpu_claim("c", {"memory": "1Gi", "cores": "30"})],
        [[("gpu-1", mem("1Gi", "30"))]],
        existing=[held("x", "gpu-0", mem("1Gi", "80"))],
    ),
    "an exclusive device goes to one claim only": Case(
        [gpu_claim("a"), gpu_claim("b"), gpu_claim("c")],
        error="in use (gpu-0, gpu-1)",
        slices=[slice_("s", [device("gpu-0", shared=False), device("gpu-1", shared=False)])],
    ),
    "an exclusive device already held by a claim is skipped": Case(
        [gpu_claim("c")],
        [[("gpu-1", None)]],
        existing=[held("x", "gpu-0")],
        slices=[slice_("s", [device("gpu-0", shared=False), device("gpu-1", shared=False)])],
    ),
    "an exclusive device only serves capacity requests it can hold": Case(
        [gpu_claim("c", {"memory": "40Gi"})],
        [[("gpu-1", None)]],
        slices=[slice_("s", [device("gpu-0", memory="24Gi", shared=False), device("gpu-1", shared=False)])],
    ),
    # --- several claims sharing one device ---
    "four quarter-core claims share one device": Case(
        [gpu_claim(n, {"memory": "20Gi", "cores": "25"}) for n in "abcd"],
        [[("gpu-0", mem("20Gi", "25"))]] * 4,
    ),
    # --- multi-device claims ---
    "a count of two takes two distinct devices": Case(
        [gpu_claim("c", {"memory": "8Gi"}, count=2)], [[("gpu-0", mem("8Gi")), ("gpu-1", mem("8Gi"))]]
    ),
    "a count larger than the matching devices is unschedulable": Case(
        [gpu_claim("c", count=3)], error="needs 3 of 2 matching devices"
    ),
    "allocation mode All takes every matching device": Case(
        [gpu_claim("c", {"memory": "1Gi"}, mode="All")], [[("gpu-0", mem("1Gi")), ("gpu-1", mem("1Gi"))]]
    ),
    "two requests of one claim may land on the same shared device": Case(
        [
            claim(
                "c",
                {"name": "a", "exactly": exactly(capacity=mem("8Gi"))},
                {"name": "b", "exactly": exactly(capacity=mem("8Gi"))},
            )
        ],
        [[("gpu-0", mem("8Gi")), ("gpu-0", mem("8Gi"))]],
    ),
    "matchAttribute keeps a claim's devices on one NUMA node": Case(
        [
            claim(
                "c",
                {"name": "gpu", "exactly": exactly(count=2, capacity=mem("1Gi"))},
                constraints=[{"matchAttribute": "xpushare.io/numaNode"}],
            )
        ],
        [[("gpu-1", mem("1Gi")), ("gpu-2", mem("1Gi"))]],
        slices=[
            slice_(
                "s",
                [
                    device("gpu-0", attrs={"numaNode": {"int": 0}}),
                    device("gpu-1", attrs={"numaNode": {"int": 1}}),
                    device("gpu-2", attrs={"numaNode": {"int": 1}}),
                ],
            )
        ],
        existing=[held("x", "gpu-0", mem("80Gi"))],
    ),
    "distinctAttribute spreads a claim's devices": Case(
        [
            claim(
                "c",
                {"name": "gpu", "exactly": exactly(count=2, capacity=mem("1Gi"))},
                constraints=[{"distinctAttribute": "xpushare.io/numaNode"}],
            )
        ],
        [[("gpu-0", mem("1Gi")), ("gpu-2", mem("1Gi"))]],
        slices=[
            slice_(
                "s",
                [
                    device("gpu-0", attrs={"numaNode": {"int": 0}}),
                    device("gpu-1", attrs={"numaNode": {"int": 0}}),
                    device("gpu-2", attrs={"numaNode": {"int": 1}}),
                ],
            )
        ],
    ),
    # --- CEL selectors ---
    "the class selector filters on driver and type": Case(
        [gpu_claim("c")],
        error="no device on node node-a matches",
        classes=[device_class(selector='device.attributes["xpushare.io"].type == "npu"')],
    ),
    "a request selector compares capacity quantities": Case(
        [gpu_claim("c", selectors=['device.capacity["xpushare.io"].memory.compareTo(quantity("64Gi")) > 0'])],
        [[("gpu-1", mem("80Gi"))]],
        slices=[slice_("s", [device("gpu-0", memory="32Gi"), device("gpu-1")])],
    ),
    "isGreaterThan and isLessThan select by memory": Case(
        [gpu_claim("c", selectors=['device.capacity["xpushare.io"].memory.isLessThan(quantity("64Gi"))'])],
        [[("gpu-0", mem("32Gi"))]],
        slices=[slice_("s", [device("gpu-0", memory="32Gi"), device("gpu-1")])],
    ),
    "a version attribute compares as semver, not as text": Case(
        [
            gpu_claim(
                "c",
                selectors=['device.attributes["xpushare.io"].driverVersion.isGreaterThan(semver("535.9.0"))'],
            )
        ],
        [[("gpu-1", mem("80Gi"))]],
        slices=[
            slice_(
                "s",
                [
                    device("gpu-0", attrs={"driverVersion": {"version": "535.10.0"}}),
                    device("gpu-1", attrs={"driverVersion": {"version": "550.54.15"}}),
                ],
            )
        ],
        existing=[held("x", "gpu-0", mem("80Gi"))],
    ),
    "an unknown attribute domain is an empty map, so has() is false": Case(
        [gpu_claim("c", selectors=['!has(device.attributes["example.com"].x)'])], [[("gpu-0", mem("80Gi"))]]
    ),
    "a CEL runtime error fails the claim with the error": Case(
        [gpu_claim("c", selectors=['device.attributes["xpushare.io"].missing == "x"'])],
        error="CEL runtime error",
    ),
    "a CEL syntax error fails the claim with the error": Case(
        [gpu_claim("c", selectors=["device.driver == "])], error="CEL compile error"
    ),
    "a missing device class fails the claim": Case(
        [gpu_claim("c", device_class_name="tpu.example.com")], error="device class tpu.example.com not found"
    ),
    # --- firstAvailable ---
    "firstAvailable falls back to the next subrequest and names it request/subrequest": Case(
        [
            claim(
                "c",
                {
                    "name": "gpu",
                    "firstAvailable": [
                        {
                            "name": "big",
                            "deviceClassName": "gpu.xpushare.io",
                            "capacity": {"requests": mem("90Gi")},
                        },
                        {
                            "name": "small",
                            "deviceClassName": "gpu.xpushare.io",
                            "capacity": {"requests": mem("8Gi")},
                        },
                    ],
                },
            )
        ],
        [[("gpu-0", mem("8Gi"))]],
    ),
    # --- taints ---
    "a NoSchedule taint keeps a device out unless tolerated": Case(
        [gpu_claim("a"), gpu_claim("b", tolerations=[{"key": "maintenance", "operator": "Exists"}])],
        [[("gpu-1", mem("80Gi"))], [("gpu-0", mem("80Gi"))]],
        slices=[
            slice_(
                "s",
                [device("gpu-0", taints=[{"key": "maintenance", "effect": "NoSchedule"}]), device("gpu-1")],
            )
        ],
    ),
}


def _consumed(result: JSON) -> JSON | None:
    return result.get("consumedCapacity")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_allocation_scenario(case: Case) -> None:
    allocator = StructuredAllocator(case.slices, case.classes, case.existing)
    if case.error:
        with pytest.raises(UnschedulableError, match=re.escape(case.error)):
            allocator.allocate(case.claims, "node-a")
        return
    allocations = allocator.allocate(case.claims, "node-a")
    got = [[(r["device"], _consumed(r)) for r in a["devices"]["results"]] for a in allocations]
    assert got == case.expect
    for allocation in allocations:
        for result in allocation["devices"]["results"]:
            assert bool(result.get("shareID")) == (result.get("consumedCapacity") is not None)
