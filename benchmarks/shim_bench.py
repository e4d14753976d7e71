"""Shim overhead on the fake CUDA driver, with and without the shim in the same run.

Measures, as medians over batches: the added cost of a kernel launch (function pointer from
cuGetProcAddress, as PyTorch calls it), of an allocation+free pair under a memory limit, and the wall time
of 256 processes starting together, each initialising and joining the device's ledger with one
allocation. Targets: launch < 1 us added (design: +15 ns), allocation < 2 us added, 256 processes < 1 s.

    python benchmarks/shim_bench.py [--launches N] [--allocs N] [--processes N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.shimlib import ShimSetup, build_program

MIB = 1 << 20
BATCHES = 15


def _median_ns(setup: ShimSetup, client: Path, command: str, count: int) -> float:
    result = setup.run([client, "gpa", "--", command, count, BATCHES], timeout=300)
    values = [float(line.split("ns=")[1]) for line in result.lines(command)]
    if len(values) != BATCHES:
        raise RuntimeError(f"{command} failed: {result.stdout}{result.stderr}")
    return statistics.median(values[2:])  # the first batches warm caches and page in the maps


def _startup_seconds(setup: ShimSetup, client: Path, processes: int) -> float:
    env = setup.env()
    start = time.perf_counter()
    procs = [subprocess.Popen([str(client), "dlsym", "--", "alloc", "4096"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    elapsed = time.perf_counter() - start
    failed = [out for out in outputs if "alloc rc=0" not in out]
    if failed:
        raise RuntimeError(f"{len(failed)} processes failed, e.g. {failed[0]!r}")
    return elapsed


def run(launches: int, allocs: int, processes: int) -> list[tuple[str, float, float, str]]:
    client = build_program("cuda_client")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        setups = {}
        for preload in (False, True):
            setup = ShimSetup(Path(scratch) / ("shim" if preload else "base"), preload=preload)
            setup.root.mkdir()
            setup.add_device(0, 512 * MIB)
            setups[preload] = setup
        for name, command, count, unit in (("launch", "benchlaunch", launches, "ns"),
                                           ("alloc+free", "benchalloc", allocs, "ns")):
            base, shim = (_median_ns(setups[p], client, command, count) for p in (False, True))
            rows.append((name, base, shim, unit))
        base, shim = (_startup_seconds(setups[p], client, processes) for p in (False, True))
        rows.append((f"{processes} processes start", base, shim, "s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200_000)
    parser.add_argument("--allocs", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=256)
    args = parser.parse_args()
    print(f"{'what':<24}{'no shim':>14}{'shim':>14}{'added':>14}")
    for name, base, shim, unit in run(args.launches, args.allocs, args.processes):
        print(f"{name:<24}{base:>12.3f}{unit:>2}{shim:>12.3f}{unit:>2}{shim - base:>12.3f}{unit:>2}")


if __name__ == "__main__":
    main()
