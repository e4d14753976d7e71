"""Capacity planning (``xpushare plan``) speed, beside a naive planner and the real kube-scheduler.

A cluster of 500 nodes x 8 H100 80Gi published in consumable mode (the product's slice builder), and a
workload of 1,000 replicas of a 16Gi/25 % claim template. Measured:

1. ``plan`` without the slice-mode comparison (the issue's target: under 5 s), and with it (what the
   command does by default); medians of --rounds runs;
2. the same on busy clusters: every node already holds one share, the same on every node (nodes alike
   still share one allocator), or a different one on each (no two nodes alike: each needs an allocator
   of its own, the planner's worst case for this shape);
3. reading the cluster as ``-f`` does, from a YAML and from a JSON dump (``kubectl get -o ...``);
4. baseline, in the same run: plain first fit, ``StructuredAllocator.place`` over every node for each
   replica with one allocator for the whole cluster (run once: it takes about a minute);
5. with --real (needs ../shared/k8s): the real kube-scheduler placing the same 1,000 pods, with the
   machinery of realk8s_bench.py: claims made by kube-controller-manager while the scheduler is stopped,
   then the scheduler started (client QPS 1000) and timed until the last pod is bound.

Usage: ``python benchmarks/plan_bench.py [--quick] [--rounds 5] [--nodes 500] [--replicas 1000] [--real]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from realk8s_bench import (  # noqa: E402
    BENCH_LABEL,
    CAPACITY_16GI_25,
    KCM_FLAGS,
    LAYOUTS,
    NO_SERVING,
    RAISED_QPS,
    BindWatcher,
    create_pods,
    h100s,
    list_pods,
    parallel,
    template_body,
)

from controller.deviceclasses import device_classes  # noqa: E402
from dra_driver.planning import ClusterSnapshot, PlanOptions, PlanReport, parse_workload, plan  # noqa: E402
from dra_driver.planning.files import load_cluster_files  # noqa: E402
from dra_driver.simulation.allocator import StructuredAllocator, UnschedulableError  # noqa: E402
from tests.support.control_plane import (  # noqa: E402
    ABSENT,
    DRIVER,
    available,
    component_argv,
    control_plane,
    create_node,
    install_device_classes,
    restart_component,
    start_component,
    stop_component,
    wait_for,
)

JSON = dict[str, Any]
T = TypeVar("T")
TEMPLATE = {"apiVersion": "resource.k8s.io/v1", **template_body("xpu", CAPACITY_16GI_25)}


def say(text: str = "") -> None:
    print(text, flush=True)


def row(label: str, seconds: float, placed: str = "") -> None:
    say(f"  {label:<58} {seconds:8.2f} s   {placed}")


def cluster(nodes: int, busy: str = "") -> ClusterSnapshot:
    """The benchmark's cluster; ``busy``: every node holds one share already, of the "same" size on every
    node, or of a "different" size on each (then no two nodes are alike: each needs an allocator)."""
    names = [f"n-{i:04d}" for i in range(nodes)]
    gpus = h100s(8)
    slices = [s for name in names for s in LAYOUTS["consumable"].slices(name, gpus)]
    node_objects = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": dict(BENCH_LABEL)},
            "status": {"allocatable": {"pods": "110", "cpu": "64", "memory": "512Gi"}},
        }
        for name in names
    ]
    claims = [
        busy_claim(name, index if busy == "different" else 0) for index, name in enumerate(names) if busy
    ]
    return ClusterSnapshot(
        slices=tuple(slices),
        device_classes=tuple(device_classes(DRIVER)),
        claims=tuple(claims),
        nodes=tuple(node_objects),
    )


def busy_claim(node: str, index: int) -> JSON:
    """A share on the node's gpu-0: 8Gi/10 %, or one of 500 distinct sizes (up to 12.5Gi and 10 %)."""
    consumed = (
        {"memory": f"{(index % 50 + 1) * 256}Mi", "cores": str(index // 50 + 1)}
        if index
        else {"memory": "8Gi", "cores": "10"}
    )
    result = {
        "request": "xpu",
        "driver": DRIVER,
        "pool": node,
        "device": "gpu-0",
        "shareID": f"s-{node}",
        "consumedCapacity": consumed,
    }
    return {
        "metadata": {"name": f"busy-{node}", "namespace": "default", "uid": f"busy-{node}"},
        "spec": {"devices": {"requests": [{"name": "xpu", "exactly": CAPACITY_16GI_25}]}},
        "status": {"allocation": {"devices": {"results": [result]}}},
    }


def median_s(action: Callable[[], T], rounds: int) -> tuple[float, T]:
    samples = []
    answer = action()  # one run to warm caches (CEL programs compile once per process)
    for _ in range(rounds):
        started = time.perf_counter()
        answer = action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), answer


def naive(snapshot: ClusterSnapshot, replicas: int) -> int:
    """First fit over every node for each replica, one allocator for the whole cluster."""
    work = parse_workload([TEMPLATE], "bench")
    allocator = StructuredAllocator(snapshot.slices, snapshot.device_classes, snapshot.claims)
    names = sorted(str(n["metadata"]["name"]) for n in snapshot.nodes)
    for replica in range(replicas):
        try:
            placement = allocator.place(work.replica_claims(replica), names)
        except UnschedulableError:
            return replica
        for allocation in placement.allocations:
            allocator.record({"status": {"allocation": allocation}})
    return replicas


def bench_plan(nodes: int, replicas: int, rounds: int) -> None:
    work = parse_workload([TEMPLATE], "bench")
    clusters = {
        "empty": cluster(nodes),
        "busy alike": cluster(nodes, "same"),
        "busy unlike": cluster(nodes, "different"),
    }
    for label, snapshot in clusters.items():
        for compare in (False, True):

            def once(snapshot: ClusterSnapshot = snapshot, compare: bool = compare) -> PlanReport:
                return plan(snapshot, work, PlanOptions(replicas, compare_modes=compare))

            seconds, report = median_s(once, rounds)
            what = "plan + mode comparison" if compare else "plan"
            row(f"{label} cluster: {what} (median)", seconds, f"placed {report.placed}/{replicas}")


def bench_read(nodes: int, rounds: int) -> None:
    snapshot = cluster(nodes)
    objects = [*snapshot.slices, *snapshot.device_classes, *snapshot.nodes]
    with tempfile.TemporaryDirectory() as directory:
        dumps = {"YAML": Path(directory) / "cluster.yaml", "JSON": Path(directory) / "cluster.json"}
        dumps["YAML"].write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
        dumps["JSON"].write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        for kind, path in dumps.items():

            def read(path: Path = path) -> ClusterSnapshot:
                return load_cluster_files([str(path)])

            seconds, _ = median_s(read, rounds)
            row(f"read a {kind} dump of it, {path.stat().st_size / 2**20:.0f} MiB (median)", seconds)


def real_scheduler(nodes: int, replicas: int, limit_s: float, stall_s: float) -> tuple[int, float]:
    """The real kube-scheduler placing ``replicas`` pods (claims made beforehand, scheduler stopped);
    seconds from its start to the last binding, or to the end of the run when not all were bound."""
    with control_plane("plan-bench") as real:
        restart_component(real, "kube-controller-manager", KCM_FLAGS)
        scheduler_argv = component_argv(real, "kube-scheduler")
        stop_component(real, "kube-scheduler")
        install_device_classes(real)
        names = [f"n-{i:04d}" for i in range(nodes)]
        parallel(lambda name: create_node(real, name, BENCH_LABEL), names)
        gpus = h100s(8)
        parallel(
            real.resource.create_resource_slice,
            [s for n in names for s in LAYOUTS["consumable"].slices(n, gpus)],
        )
        real.core.create_namespace({"metadata": {"name": "bench"}})  # type: ignore[arg-type]
        wait_for(
            "the default ServiceAccount", lambda: real.core.list_namespaced_service_account("bench").items
        )
        body = template_body("xpu", CAPACITY_16GI_25)
        real.resource.create_namespaced_resource_claim_template("bench", body)  # type: ignore[arg-type]
        create_pods(real.api, "bench", "xpu", replicas)

        def claims_made() -> str | None:
            pods, version = list_pods(real.api, "bench")
            made = sum(bool((p.get("status") or {}).get("resourceClaimStatuses")) for p in pods)
            return version if made == replicas else None

        watcher = BindWatcher(real, "bench", wait_for("the claims", claims_made, timeout_s=900, every_s=1.0))
        flags = [*NO_SERVING, f"--kube-api-qps={RAISED_QPS}", f"--kube-api-burst={RAISED_QPS}"]
        started = time.monotonic()
        start_component(real, "kube-scheduler", [*scheduler_argv, *flags])
        try:
            seen, progress = 0, started
            while len(watcher.bound) < replicas:
                time.sleep(0.2)
                now = time.monotonic()
                if len(watcher.bound) != seen:
                    seen, progress = len(watcher.bound), now
                if now - started > limit_s or now - progress > stall_s:
                    break
            ended = time.monotonic()
        finally:
            watcher.stop()
            stop_component(real, "kube-scheduler")
        times = sorted(watcher.bound.values())
        last = times[-1] if len(times) == replicas else ended
        return len(times), last - started


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 nodes, 100 replicas, 2 rounds, no baseline")
    parser.add_argument("--rounds", type=int, default=5, help="runs per planner figure (default 5)")
    parser.add_argument("--nodes", type=int, default=500, help="nodes of 8 H100 (default 500)")
    parser.add_argument("--replicas", type=int, default=1000, help="replicas to place (default 1000)")
    parser.add_argument(
        "--real", action="store_true", help="also time the real kube-scheduler (../shared/k8s)"
    )
    parser.add_argument("--limit-s", type=float, default=600.0, help="longest the real scheduler may take")
    args = parser.parse_args()
    nodes, replicas, rounds = (50, 100, 2) if args.quick else (args.nodes, args.replicas, args.rounds)
    load = os.getloadavg()
    say(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    say(f"{nodes} nodes x 8 H100 80Gi (consumable), {replicas} replicas of 16Gi/25 %")
    bench_plan(nodes, replicas, rounds)
    bench_read(nodes, rounds)
    if not args.quick:
        snapshot = cluster(nodes)
        started = time.perf_counter()
        placed = naive(snapshot, replicas)
        seconds = time.perf_counter() - started
        row("baseline: first fit with place() over every node (once)", seconds, f"placed {placed}/{replicas}")
    if args.real and not available():
        say(f"  real kube-scheduler: skipped: {ABSENT}")
    elif args.real:
        placed, seconds = real_scheduler(nodes, replicas, args.limit_s, stall_s=120.0)
        row(f"real kube-scheduler at client QPS {RAISED_QPS} (once)", seconds, f"placed {placed}/{replicas}")
    load = os.getloadavg()
    say(f"machine: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
