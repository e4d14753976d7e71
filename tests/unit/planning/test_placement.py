"""How many replicas fit and where: each case against hand arithmetic, and the planner's fast paths
(per-node allocators, equal empty nodes answered once, refused nodes dropped) against a naive first fit
over every node with one allocator for the whole cluster."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from controller.settings import SliceMode
from dra_driver.core.devices import GIB
from tests.support.plan_cluster import (
    GPU,
    NPU,
    allocated_claim,
    claim_spec,
    deployment,
    gpu,
    node_object,
    node_slices,
    npu,
    pod_spec,
    request,
    template,
)
from tests.unit.planning.helpers import naive_plan, run, snapshot, workload

GPU_24 = template("gpu-24", claim_spec(request(GPU, "24Gi", "25")))


def three_nodes(**node_args: object) -> list[dict[str, object]]:
    return [s for i in range(3) for s in node_slices(f"node-{i}", [gpu(0), gpu(1)])]


def test_a_consumable_fill_up_places_what_fits_and_names_why_the_rest_does_not() -> None:
    """Three 24Gi shares fit an 80Gi H100 (a fourth would need 96Gi): 2 GPUs x 3 nodes x 3 = 18."""
    report = run(snapshot(three_nodes()), workload(GPU_24), 30)
    assert (report.requested, report.placed) == (30, 18)
    assert Counter({n.name: n.replicas for n in report.nodes}) == {"node-0": 6, "node-1": 6, "node-2": 6}
    assert report.reason.startswith("0/3 nodes are available: 3 cannot allocate all claims. node-0: ")
    assert "not enough free capacity" in report.reason
    assert all(d.used == {"memory": 72 * GIB, "cores": 75} for d in report.devices)


def test_replicas_spread_over_the_nodes_fewest_pods_first_ties_by_name() -> None:
    nodes = [node_object("node-0"), node_object("node-1"), node_object("node-2")]
    bound = [{"spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}}] * 2  # node-1 runs two pods
    report = run(snapshot(three_nodes(), nodes, pods=bound), workload(GPU_24), 4)
    assert {n.name: n.replicas for n in report.nodes} == {"node-0": 2, "node-1": 0, "node-2": 2}
    assert report.reason == ""


def test_existing_claims_take_their_share_of_the_devices() -> None:
    held = allocated_claim(
        "old", [{"pool": "node-0", "device": "gpu-0", "consumedCapacity": {"memory": "64Gi", "cores": "10"}}]
    )
    report = run(snapshot(three_nodes(), claims=[held]), workload(GPU_24), 30)
    assert report.placed == 18 - 3  # gpu-0 of node-0 keeps 16Gi: no 24Gi share fits there
    gpu0 = next(d for d in report.devices if (d.node, d.device) == ("node-0", "gpu-0"))
    assert gpu0.replicas == 0
    assert gpu0.used["memory"] == 64 * GIB


def test_a_node_takes_no_more_pods_than_its_allocatable_pods() -> None:
    nodes = [node_object("node-0", pods=2), node_object("node-1"), node_object("node-2")]
    report = run(snapshot(three_nodes(), nodes), workload(GPU_24), 30)
    assert report.placed == 2 + 6 + 6
    assert report.refused["node-0"] == "Too many pods"
    assert report.reason.startswith("0/3 nodes are available: 1 Too many pods, 2 cannot allocate all claims.")


NO_TOLERATIONS = pod_spec({"xpu": "gpu-24"}, tolerations=())
EXCLUSIONS = [
    pytest.param(
        node_object("node-2", taints=[{"key": "gpu", "value": "a100", "effect": "NoSchedule"}]),
        NO_TOLERATIONS,
        "node(s) had untolerated taint",
        id="taint",
    ),
    pytest.param(
        node_object("node-2", labels={"pool": "b"}),
        pod_spec({"xpu": "gpu-24"}, node_selector={"pool": "a"}),
        "node(s) didn't match Pod's node affinity/selector",
        id="node-selector",
    ),
    pytest.param(
        node_object("node-2", unschedulable=True), NO_TOLERATIONS, "node(s) were unschedulable", id="cordoned"
    ),
]


@pytest.mark.parametrize(("node", "pod", "excluded"), EXCLUSIONS)
def test_nodes_the_pod_may_not_go_to_are_left_out_with_the_schedulers_reason(
    node: dict[str, object], pod: dict[str, object], excluded: str
) -> None:
    nodes = [node_object("node-0", labels={"pool": "a"}), node_object("node-1", labels={"pool": "a"}), node]
    work = workload(deployment("infer", pod, replicas=30), GPU_24)
    report = run(snapshot(three_nodes(), nodes), work, 30)
    assert report.placed == 12
    assert next(n for n in report.nodes if n.name == "node-2").excluded == excluded
    assert f"1 {excluded}" in report.reason


def test_a_pod_that_tolerates_everything_may_go_to_a_cordoned_node_as_kube_scheduler_allows() -> None:
    nodes = [node_object("node-0"), node_object("node-1"), node_object("node-2", unschedulable=True)]
    work = workload(deployment("infer", pod_spec({"xpu": "gpu-24"}), replicas=30), GPU_24)
    assert run(snapshot(three_nodes(), nodes), work, 30).placed == 18


def test_without_a_pod_spec_node_taints_are_not_applied_and_the_plan_says_so() -> None:
    tainted = node_object("node-2", taints=[{"key": "gpu", "effect": "NoSchedule"}])
    report = run(
        snapshot(three_nodes(), [node_object("node-0"), node_object("node-1"), tainted]), workload(GPU_24), 30
    )
    assert report.placed == 18
    assert any("taints" in note and "no pod spec" in note for note in report.notes)


def test_memory_only_requests_take_no_cores_and_no_request_takes_the_whole_device() -> None:
    memory_only = run(snapshot(three_nodes()), workload(template("m", claim_spec(request(GPU, "20Gi")))), 100)
    assert memory_only.placed == 4 * 6  # 20Gi x 4 = 80Gi; cores default to 0
    whole = run(snapshot(three_nodes()), workload(template("w", claim_spec(request(GPU)))), 100)
    assert whole.placed == 6


def test_a_two_device_claim_needs_two_devices_with_room_on_one_node() -> None:
    report = run(
        snapshot(three_nodes()), workload(template("two", claim_spec(request(GPU, "48Gi", "50", count=2)))), 9
    )
    assert report.placed == 3  # one per node: 48Gi twice leaves 32Gi on each GPU
    assert all(d.used["memory"] == 48 * GIB for d in report.devices)


def test_a_deployment_with_two_claims_per_replica_needs_both_on_the_same_node() -> None:
    slices = [*node_slices("node-0", [gpu(0), npu(1)]), *node_slices("node-1", [gpu(0)])]
    spec = pod_spec({"gpu": "g", "npu": "n"})
    work = workload(
        deployment("pair", spec, replicas=7),
        template("g", claim_spec(request(GPU, "10Gi", "10"))),
        template("n", claim_spec(request(NPU, "16Gi", "25"))),
    )
    report = run(snapshot(slices), work, work.replicas or 1)
    assert report.placed == 4  # the NPU holds four 25 % shares; node-1 has no NPU
    assert "no device on node node-1 matches" in report.refused["node-1"]
    assert "not enough free capacity (npu-1)" in report.refused["node-0"]


AT_LEAST_16GI = 'device.capacity["xpushare.io"].memory.compareTo(quantity("16Gi")) >= 0'
USED_30GI = allocated_claim(
    "x", [{"pool": "b", "device": "gpu-1", "consumedCapacity": {"memory": "30Gi", "cores": "40"}}]
)
MIXED = [
    *node_slices("a", [gpu(0), gpu(1, 40, model="A100-40GB")]),
    *node_slices("b", [npu(0), gpu(1)]),
    *node_slices("c", [gpu(0)]),
]
PARTITIONED = [s for n in "abc" for s in node_slices(n, [gpu(0), gpu(1)], SliceMode.PARTITIONED)]
EXCLUSIVE = [s for n in "ab" for s in node_slices(n, [gpu(0), gpu(1), gpu(2)], SliceMode.EXCLUSIVE)]
AGAINST_NAIVE = [
    pytest.param(
        "mixed", MIXED, [USED_30GI], claim_spec(request(GPU, "12Gi", "15")), 100, id="mixed-nodes-and-usage"
    ),
    pytest.param(
        "partitioned",
        PARTITIONED,
        [],
        claim_spec(request(GPU, selectors=[AT_LEAST_16GI])),
        40,
        id="partitioned",
    ),
    pytest.param("exclusive", EXCLUSIVE, [], claim_spec(request(GPU)), 10, id="exclusive"),
]


@pytest.mark.parametrize(("name", "slices", "claims", "spec", "replicas"), AGAINST_NAIVE)
def test_the_planner_agrees_with_a_naive_first_fit_over_every_node(
    name: str,
    slices: list[dict[str, object]],
    claims: list[dict[str, object]],
    spec: dict[str, object],
    replicas: int,
) -> None:
    """Same count, and (every node being full, each filled first fit) the same use of every device."""
    cluster = snapshot(slices, claims=claims)
    work = workload(template(name, spec))
    report = run(cluster, work, replicas)
    placed, naive = naive_plan(cluster, work, replicas)
    assert report.placed == placed < replicas
    ours = {(d.pool, d.device): dict(d.used) for d in report.devices if any(d.used.values())}
    assert ours == {k: v for k, v in naive.items() if any(v.values())}


def test_two_hundred_equal_nodes_each_get_their_full_share_device_by_device() -> None:
    """Equal empty nodes are answered from one sequence: each must still end exactly full."""
    slices = [
        s for i in range(200) for s in node_slices(f"n-{i:03d}", [gpu(g, node=f"n{i}") for g in range(8)])
    ]
    work = workload(template("g", claim_spec(request(GPU, "16Gi", "25"))))
    report = run(snapshot(slices), work, 200 * 32 + 5)
    assert report.placed == 200 * 32
    assert {d.pool for d in report.devices} == {f"n-{i:03d}" for i in range(200)}
    assert all(d.replicas == 4 and d.used == {"memory": 64 * GIB, "cores": 100} for d in report.devices)


def test_nodes_that_differ_only_in_an_attribute_a_selector_reads_are_not_taken_for_equal() -> None:
    slices = [
        s for i in range(3) for s in node_slices(f"n-{i}", [gpu(0, node=f"n{i}"), gpu(1, node=f"n{i}")])
    ]
    only = request(GPU, "16Gi", "25", selectors=['device.attributes["xpushare.io"].uuid == "GPU-n1-0"'])
    report = run(snapshot(slices), workload(template("one", claim_spec(only))), 10)
    assert report.placed == 4
    assert {(d.node, d.device) for d in report.devices if d.replicas} == {("n-1", "gpu-0")}


def test_nodes_that_differ_only_in_an_attribute_a_constraint_reads_are_not_taken_for_equal() -> None:
    """Two GPUs on one NUMA node, or one on each: a claim for two on one NUMA node fits only the first."""
    split = [gpu(0, node="b"), dataclasses.replace(gpu(1, node="b"), numa_node=1)]
    slices = [*node_slices("a", [gpu(0, node="a"), gpu(1, node="a")]), *node_slices("b", split)]
    spec = claim_spec(request(GPU, "40Gi", "50", count=2))
    spec["devices"]["constraints"] = [{"requests": ["xpu"], "matchAttribute": "xpushare.io/numaNode"}]
    report = run(snapshot(slices), workload(template("pair", spec)), 4)
    assert report.placed == 2
    assert {n.name: n.replicas for n in report.nodes} == {"a": 2, "b": 0}
