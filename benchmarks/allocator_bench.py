"""Structured allocator speed, each figure beside a baseline measured in the same run.

A cluster of 16 nodes with 8 consumable GPUs each (80Gi, 100 cores). Measured:

1. ``place`` of one 16Gi/25-core claim: the first call on a fresh allocator (CEL selectors evaluated)
   against a later call (per-device match results cached), the baseline being the cold call; and the
   worst case, a claim that fits nowhere, which evaluates the selectors of all 128 devices.
2. Packing 512 such claims one after another with ``record`` (what the scheduler stand-in does per pass),
   against the baseline of rebuilding the allocator from the dicts for every claim.

Usage: ``python benchmarks/allocator_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dra_driver.simulation.allocator import StructuredAllocator, UnschedulableError

JSON = dict[str, Any]
SELECTOR = 'device.driver == "xpushare.io" && device.attributes["xpushare.io"].type == "gpu"'
CLASS = {"metadata": {"name": "gpu.xpushare.io"}, "spec": {"selectors": [{"cel": {"expression": SELECTOR}}]}}


def cluster(nodes: int, gpus: int) -> tuple[list[JSON], list[str]]:
    policy = {"default": "80Gi", "validRange": {"min": "256Mi", "max": "80Gi", "step": "256Mi"}}
    cores = {"default": "0", "validRange": {"min": "0", "max": "100", "step": "1"}}
    slices = []
    names = [f"node-{i:02d}" for i in range(nodes)]
    for node in names:
        devices = [
            {
                "name": f"gpu-{g}",
                "allowMultipleAllocations": True,
                "attributes": {"type": {"string": "gpu"}, "index": {"int": g}},
                "capacity": {
                    "memory": {"value": "80Gi", "requestPolicy": policy},
                    "cores": {"value": "100", "requestPolicy": cores},
                },
            }
            for g in range(gpus)
        ]
        slices.append(
            {
                "metadata": {"name": f"{node}-xpushare.io"},
                "spec": {
                    "driver": "xpushare.io",
                    "nodeName": node,
                    "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                    "devices": devices,
                },
            }
        )
    return slices, names


def claim(i: int) -> JSON:
    return {
        "metadata": {"name": f"c{i}", "namespace": "default", "uid": f"uid-{i}"},
        "spec": {
            "devices": {
                "requests": [
                    {
                        "name": "gpu",
                        "exactly": {
                            "deviceClassName": "gpu.xpushare.io",
                            "capacity": {"requests": {"memory": "16Gi", "cores": "25"}},
                        },
                    }
                ]
            }
        },
    }


def placed(allocation: tuple[JSON, ...], i: int) -> JSON:
    return claim(i) | {"status": {"allocation": allocation[0]}}


def bench_place(slices: list[JSON], nodes: list[str], rounds: int) -> None:
    cold, warm, nowhere = [], [], []
    too_big = claim(2)
    too_big["spec"]["devices"]["requests"][0]["exactly"]["capacity"]["requests"]["memory"] = "96Gi"
    for _ in range(rounds):
        allocator = StructuredAllocator(slices, [CLASS])
        start = time.perf_counter()
        allocator.place([claim(0)], nodes)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        allocator.place([claim(1)], nodes)
        warm.append(time.perf_counter() - start)
        start = time.perf_counter()
        try:
            StructuredAllocator(slices, [CLASS]).place([too_big], nodes)  # visits all 128 devices
        except UnschedulableError:
            nowhere.append(time.perf_counter() - start)
    print(f"place one claim, cold CEL (baseline):   median {statistics.median(cold) * 1e3:8.2f} ms")
    print(f"place one claim, warm cache:            median {statistics.median(warm) * 1e3:8.2f} ms")
    print(f"unschedulable claim, 16 nodes, cold:    median {statistics.median(nowhere) * 1e3:8.2f} ms")


def bench_packing(slices: list[JSON], nodes: list[str], claims: int) -> None:
    allocator = StructuredAllocator(slices, [CLASS])
    start = time.perf_counter()
    for i in range(claims):
        allocator.record(placed(allocator.place([claim(i)], nodes).allocations, i))
    incremental = time.perf_counter() - start
    held: list[JSON] = []
    sample = max(1, claims // 8)
    start = time.perf_counter()
    for i in range(sample):
        fresh = StructuredAllocator(slices, [CLASS], held)
        held.append(placed(fresh.place([claim(i)], nodes).allocations, i))
    rebuild = (time.perf_counter() - start) / sample * claims
    print(
        f"pack {claims} claims with record():         {incremental:8.2f} s"
        f" ({claims / incremental:7.1f} claims/s)"
    )
    print(f"pack {claims} claims rebuilding (baseline): {rebuild:8.2f} s (extrapolated from {sample})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and claims")
    args = parser.parse_args()
    slices, nodes = cluster(16, 8)
    bench_place(slices, nodes, 3 if args.quick else 10)
    bench_packing(slices, nodes, 64 if args.quick else 512)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
