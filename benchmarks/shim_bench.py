"""Shim overhead on the fake CUDA driver, with and without the shim in the same run.

Measures, as medians over batches: the added cost of a kernel launch (function pointer from
cuGetProcAddress, as PyTorch calls it) with no shim, with the claim's whole device (cores=100), with
compute control limiting it (cores=50), and beside three other claims on the device's board: idle
(cores=50, borrowing the idle device), and busy (each with a live process that has work on the device;
the launch checks then read their ledgers' heads and test that their processes live; cores=100, so
that the row measures the checks, not the claim waiting for its share); of a decoding loop's step (8
empty launches and a context synchronize: the shim covers the batch with an event, charges it when the
synchronize returns, and the next launch takes the slow path, all on the step's critical path, where
the device waits for the host); of an allocation+free pair
under a memory limit; a launch-bound run (each launch costs the host 2 us, as a real driver's does;
kernels of 1 us) as launches per second; and the wall time of 256 processes starting together, each
initialising and joining its claim's ledger with one allocation. Every device is laid out as the node
plugin lays it out (board, claim ledgers, limits files naming both). Targets: launch +15 ns (memory
limits), +100 ns with compute control (issue: < 1 us), < 1 % on the launch-bound run, a step < 2 us
added alone (0.2 % of a 1 ms decoding step; a real driver adds the cost of one event record, query and
elapsed-time call to it; each busy peer adds the fresh read of its head, one pread, before the step's
work is charged), allocation < 2 us added, 256 processes < 1 s.

    python benchmarks/shim_bench.py [--launches N] [--allocs N] [--processes N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shim import LIBRARY_ENV
from shim.ledger import ClaimLedger
from tests.support.shimlib import ShimSetup, build_program, build_shim

MIB = 1 << 20
BATCHES = 15


def _median_ns(setup: ShimSetup, client: Path, command: str, count: int,
               extra: dict[str, str] | None = None) -> float:
    result = setup.run([client, "gpa", "--", command, count, BATCHES], timeout=300, extra=extra)
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


def _launch_bound(setups: dict[str, ShimSetup], client: Path, launches: int,
                  rounds: int = 5) -> tuple[float, float]:
    """ns per launch when each launch costs the host 2 us; runs alternate so machine noise hits both."""
    bound = {"FAKE_CUDA_LAUNCH_NS": "2000"}
    samples: dict[str, list[float]] = {"base": [], "half": []}
    for _ in range(rounds):
        for name, values in samples.items():
            values.append(_median_ns(setups[name], client, "benchlaunch", launches, bound))
    return statistics.median(samples["base"]), statistics.median(samples["half"])


PEERS = ("peer-1", "peer-2", "peer-3")


@contextlib.contextmanager
def _setups(scratch: Path) -> Iterator[dict[str, ShimSetup]]:
    setups = {}
    for name, preload, cores in (("base", False, 100), ("whole", True, 100), ("half", True, 50),
                                 ("idle", True, 50), ("busy", True, 100)):
        setup = ShimSetup(scratch / name, preload=preload)
        setup.root.mkdir()
        device = setup.add_device(0, 512 * MIB, cores=cores)
        if name in ("idle", "busy"):
            for peer in PEERS:
                setup.device_dir(device.uuid).prepare(peer, 512 * MIB, 50 // len(PEERS))
        setups[name] = setup
    with contextlib.ExitStack() as live:
        for peer in PEERS:  # a live process of each busy peer, with work on the device
            path = setups["busy"].device_dir("GPU-0000").ledger(peer)
            ledger = live.enter_context(ClaimLedger.open(path, peer, "GPU-0000"))
            ledger.set_pending(ledger.attach_process(), True)
        yield setups


def run(launches: int, allocs: int, processes: int) -> list[tuple[str, float, float, str]]:
    client = build_program("cuda_client")
    rows = []
    with tempfile.TemporaryDirectory() as scratch, _setups(Path(scratch)) as setups:
        base = _median_ns(setups["base"], client, "benchlaunch", launches)
        for name, label in (("whole", "launch, cores=100"), ("half", "launch, cores=50"),
                            ("idle", "launch, cores=50, 3 idle peers"),
                            ("busy", "launch, cores=100, 3 busy")):
            rows.append((label, base, _median_ns(setups[name], client, "benchlaunch", launches), "ns"))
        base = _median_ns(setups["base"], client, "benchstep", launches // 10)
        for name, label in (("whole", "step, cores=100"), ("half", "step, cores=50"),
                            ("busy", "step, cores=100, 3 busy")):
            rows.append((label, base, _median_ns(setups[name], client, "benchstep", launches // 10), "ns"))
        base, shim = _launch_bound(setups, client, launches // 20)
        rows.append(("launch-bound, cores=50", 1e9 / base, 1e9 / shim, "/s"))
        base, shim = (_median_ns(setups[n], client, "benchalloc", allocs) for n in ("base", "whole"))
        rows.append(("alloc+free", base, shim, "ns"))
        base, shim = (_startup_seconds(setups[n], client, processes) for n in ("base", "whole"))
        rows.append((f"{processes} processes start", base, shim, "s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200_000)
    parser.add_argument("--allocs", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault(LIBRARY_ENV, str(build_shim()))  # the ledgers are made by the library preloaded
    print(f"{'what':<32}{'no shim':>15}{'shim':>15}{'added':>15}")
    for name, base, shim, unit in run(args.launches, args.allocs, args.processes):
        added = f"{100 * (shim - base) / base:+.2f} %" if unit == "/s" else f"{shim - base:.3f}{unit}"
        print(f"{name:<32}{base:>12.3f}{unit:>3}{shim:>12.3f}{unit:>3}{added:>15}")


if __name__ == "__main__":
    main()
