"""Building snapshots and workloads for the planning tests, and a naive planner to check answers against."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from controller.deviceclasses import device_classes
from dra_driver.planning import ClusterSnapshot, PlanOptions, PlanReport, Workload, parse_workload, plan
from dra_driver.simulation.allocator import StructuredAllocator, UnschedulableError
from tests.support.plan_cluster import DRIVER, JSON, add_usage

CLASSES = tuple(device_classes(DRIVER))


def snapshot(
    slices: Sequence[JSON], nodes: Sequence[JSON] = (), claims: Sequence[JSON] = (), pods: Sequence[JSON] = ()
) -> ClusterSnapshot:
    return ClusterSnapshot(
        slices=tuple(slices),
        device_classes=CLASSES,
        claims=tuple(claims),
        nodes=tuple(nodes),
        pods=tuple(pods),
    )


def workload(*documents: JSON) -> Workload:
    return parse_workload(list(documents), "workload.yaml")


def run(cluster: ClusterSnapshot, work: Workload, replicas: int, *, compare: bool = False) -> PlanReport:
    return plan(cluster, work, PlanOptions(replicas, compare_modes=compare))


def used_by_device(report: PlanReport) -> dict[tuple[str, str], dict[str, Fraction]]:
    return {(d.node, d.device): dict(d.used) for d in report.devices}


def totals(used: dict[Any, dict[str, Fraction]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for amounts in used.values():
        for name, value in amounts.items():
            out[name] += value  # type: ignore[assignment]
    return out


def naive_plan(
    cluster: ClusterSnapshot, work: Workload, replicas: int
) -> tuple[int, dict[tuple[str, str], dict[str, Fraction]]]:
    """First fit over every node for every replica with one allocator for the whole cluster (the baseline
    the benchmark measures): how many fit, and per (pool, physical device) what is used."""
    allocator = StructuredAllocator(cluster.slices, cluster.device_classes, cluster.claims)
    nodes = sorted({str(s["spec"]["nodeName"]) for s in cluster.slices})
    used: dict[tuple[str, str], dict[str, Fraction]] = {}
    for claim in cluster.claims:
        add_usage(used, claim["status"]["allocation"], cluster.slices)
    placed = 0
    for replica in range(replicas):
        try:
            answer = allocator.place(work.replica_claims(replica), nodes)
        except UnschedulableError:
            break
        for allocation in answer.allocations:
            allocator.record({"status": {"allocation": allocation}})
            add_usage(used, allocation, cluster.slices)
        placed += 1
    return placed, used
