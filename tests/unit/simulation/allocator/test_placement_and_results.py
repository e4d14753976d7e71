"""Node placement, the shape of ``status.allocation`` (configs, node selector, share IDs) and purity.

Guards: the first node in order where all claims fit wins and pinned allocations restrict nodes; results
carry configs with FromClass/FromClaim sources like kube-scheduler; the same inputs give the same output;
bad input fails with a message naming the field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from dra_driver.simulation.allocator import InputError, StructuredAllocator, UnschedulableError
from tests.unit.simulation.allocator.builders import claim, device, device_class, exactly, gpu_claim, slice_

JSON = dict[str, Any]
OPAQUE = {
    "opaque": {
        "driver": "xpushare.io",
        "parameters": {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", "priority": "high"},
    }
}
SLICES = [
    slice_("node-a-gpus", [device("gpu-0", memory="16Gi")], node="node-a"),
    slice_("node-b-gpus", [device("gpu-0", memory="80Gi")], node="node-b"),
]


def test_place_picks_the_first_node_where_every_claim_fits() -> None:
    allocator = StructuredAllocator(SLICES, [device_class()])
    placement = allocator.place([gpu_claim("c", {"memory": "32Gi"})], ["node-a", "node-b"])
    assert placement.node == "node-b"
    selector = placement.allocations[0]["nodeSelector"]
    assert selector == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-b"]}]}
        ]
    }


def test_place_reports_every_node_when_nothing_fits() -> None:
    allocator = StructuredAllocator(SLICES, [device_class()])
    with pytest.raises(UnschedulableError) as caught:
        allocator.place([gpu_claim("c", {"memory": "96Gi"})], ["node-a", "node-b"])
    assert caught.value.reason.startswith("0/2 nodes are available: 2 cannot allocate all claims.")
    assert set(caught.value.details) == {"node-a", "node-b"}


def test_an_allocated_claim_pins_the_pod_to_its_node() -> None:
    allocator = StructuredAllocator(SLICES, [device_class()])
    pinned = {
        "nodeSelector": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}
            ]
        }
    }
    with pytest.raises(UnschedulableError) as caught:
        allocator.place([gpu_claim("c", {"memory": "32Gi"})], ["node-a", "node-b"], pinned=[pinned])
    assert "not available on this node" in caught.value.details["node-b"]


def test_a_slice_for_labelled_nodes_is_reachable_through_its_node_selector() -> None:
    selector = {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["east"]}]}]
    }
    shared = slice_("net", [device("gpu-0")], node="", pool="fabric", nodeSelector=selector)
    allocator = StructuredAllocator([shared], [device_class()])
    west = {"metadata": {"name": "w", "labels": {"zone": "west"}}}
    east = {"metadata": {"name": "e", "labels": {"zone": "east"}}}
    placement = allocator.place([gpu_claim("c")], [west, east])
    assert placement.node == "e"
    assert placement.allocations[0]["nodeSelector"] == selector


def test_class_and_claim_configs_are_copied_with_their_source_and_requests() -> None:
    classes = [device_class(config=[OPAQUE])]
    two_requests = claim(
        "c",
        {"name": "a", "exactly": exactly(capacity={"memory": "1Gi"})},
        {"name": "b", "exactly": exactly(capacity={"memory": "1Gi"})},
        config=[{"requests": ["b"], **OPAQUE}, {"requests": ["nope"], **OPAQUE}],
    )
    allocator = StructuredAllocator([slice_("s", [device("gpu-0")])], classes)
    config = allocator.allocate([two_requests], "node-a")[0]["devices"]["config"]
    # The class config applies to both requests, so its list is dropped ("empty means all").
    assert config == [{"source": "FromClass", **OPAQUE}, {"source": "FromClaim", "requests": ["b"], **OPAQUE}]


def test_the_same_inputs_give_the_same_allocation_and_share_ids() -> None:
    claims = [gpu_claim("a", {"memory": "1Gi"}), gpu_claim("b", {"memory": "1Gi"})]
    first = StructuredAllocator(SLICES, [device_class()]).allocate(claims, "node-b")
    second = StructuredAllocator(copy.deepcopy(SLICES), [device_class()]).allocate(
        copy.deepcopy(claims), "node-b"
    )
    assert first == second
    share_ids = [a["devices"]["results"][0]["shareID"] for a in first]
    assert len(set(share_ids)) == 2


def test_allocate_neither_mutates_its_inputs_nor_commits_anything() -> None:
    slices, claims = copy.deepcopy(SLICES), [gpu_claim("a", {"memory": "80Gi"})]
    before = copy.deepcopy((slices, claims))
    allocator = StructuredAllocator(slices, [device_class()])
    allocator.allocate(claims, "node-b")
    allocator.allocate(claims, "node-b")  # would not fit twice if the first call had committed
    assert (slices, claims) == before


@pytest.mark.parametrize(
    ("bad_slice", "field"),
    [
        (slice_("s", [device("gpu-0", memory="lots")]), "spec.devices[0].capacity.memory.value"),
        (slice_("s", [{"attributes": {}}]), "spec.devices[0].name"),
        (slice_("s", [{"name": "d", "attributes": {"x": {}}}]), "spec.devices[0].attributes.x"),
    ],
    ids=["malformed quantity", "device without a name", "attribute without a value"],
)
def test_bad_input_names_the_object_and_field(bad_slice: JSON, field: str) -> None:
    with pytest.raises(InputError, match=re.escape(f"ResourceSlice s: {field}")):
        StructuredAllocator([bad_slice], [device_class()])


@pytest.mark.parametrize(("count", "message"), [
    (0, "must be at least 1, got 0"),
    (-2, "must be at least 1"),
    ("2", "must be an integer, got '2'"),
    (True, "must be an integer, got True"),
], ids=["zero", "negative", "string", "bool"])
def test_a_request_count_below_one_or_not_an_integer_is_refused_naming_the_field(count: object,
                                                                                 message: str) -> None:
    """The API server defaults a missing count to 1 and refuses 0; reading 0 as 1 would allocate a claim
    it never stores."""
    allocator = StructuredAllocator(copy.deepcopy(SLICES), [device_class()])
    with pytest.raises(InputError, match=r"requests\[0\]\.exactly\.count: " + re.escape(message)):
        allocator.allocate([gpu_claim("a", {"memory": "1Gi"}, count=count)], "node-b")


def test_a_request_without_a_count_asks_for_one_device() -> None:
    allocator = StructuredAllocator(copy.deepcopy(SLICES), [device_class()])
    (allocation,) = allocator.allocate([gpu_claim("a", {"memory": "1Gi"})], "node-b")
    assert len(allocation["devices"]["results"]) == 1
