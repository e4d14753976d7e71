"""Compute share accuracy on the fake device: achieved vs requested share per tenant, beside no shim.

Every tenant is a real process (dra_driver/simulation/csrc/programs/tenant.c) with the shim preloaded over
the fake libcuda. Its device either runs all processes' kernels in turns (``serial``) or shares its time
between every process with work as a GPU's time slicing does (``time-sliced``); the limits files say
which, as the plugin writes them. Each tenant saturates the device (one batch of four 250 us kernels
queued ahead of the one it waits for) and counts the device time it got per 1 s window; a run's figure is
the median over the windows after the first, and the table shows the median over ``--runs`` runs, and
the worst window of any run. ``--burn N`` keeps N processes spinning on the CPU meanwhile (the fake's
kernels and the shim compete with them for the CPUs, which a real device's kernels do not); the load
average is printed. Targets: within 2 percentage points at 10/90, 30/70, 50/50 and 4x25; a
fixed 30 % tenant alone at <= 30 (+2); a guaranteed tenant alone >= 95 %; a high-priority serving tenant
keeps >= 95 % of its alone throughput beside a saturating low-priority one.

``--slice-us N`` makes the time-sliced device take turns of N us, as a GPU's scheduler gives its
contexts time slices, and has the tenants synchronize after each 400 us batch, as a PyTorch loop does.

    python benchmarks/share_accuracy.py [--seconds 4] [--runs 5] [--device serial|time-sliced]
                                        [--slice-us 0] [--burn 0] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dra_driver.core.devices import Scheduling
from tests.support.shimlib import TenantGroup, TenantResult, TenantSpec


@dataclass(frozen=True)
class Options:
    seconds: float = 4.0  # per run
    runs: int = 1  # per scenario, with and without the shim
    device: Scheduling = Scheduling.SERIAL  # how the fake device shares its time
    slice_us: int = 0  # time-sliced in turns of this length; tenants then synchronize after each batch


@dataclass(frozen=True)
class Row:
    scenario: str
    tenant: str
    requested: str
    target: float | None
    without: float
    with_shim: float
    worst: float

    @property
    def error(self) -> float | None:
        return None if self.target is None else self.with_shim - self.target


SHARES: dict[str, list[int]] = {"10/90": [10, 90], "30/70": [30, 70], "50/50": [50, 50], "4x25": [25] * 4}


def _median(result: TenantResult) -> float:
    shares = result.shares()
    return statistics.median(shares[1:] if len(shares) > 2 else shares)


def _worst(result: TenantResult, target: float) -> float:
    shares = result.shares()
    return max((abs(s - target) for s in (shares[1:] if len(shares) > 2 else shares)), default=0.0)


def _run(specs: list[TenantSpec], opts: Options, preload: bool) -> list[TenantResult]:
    with tempfile.TemporaryDirectory() as scratch:
        return TenantGroup(Path(scratch), preload=preload, device=opts.device,
                           slice_us=opts.slice_us).run(specs, opts.seconds)


def share_rows(name: str, specs: list[TenantSpec], targets: list[float | None], labels: list[str],
               opts: Options) -> list[Row]:
    """Each tenant's median over the runs (without the shim, then with it), and its worst window."""
    base = [_run(specs, opts, preload=False) for _ in range(opts.runs)]
    shim = [_run(specs, opts, preload=True) for _ in range(opts.runs)]
    rows = []
    for i, (spec, label, target) in enumerate(zip(specs, labels, targets, strict=True)):
        with_shim = statistics.median(_median(run[i]) for run in shim)
        worst = max(_worst(run[i], target or with_shim) for run in shim)
        rows.append(Row(name, spec.name, label, target, statistics.median(_median(run[i]) for run in base),
                        with_shim, worst))
    return rows


def priority_rows(opts: Options) -> list[Row]:
    """A serving loop (1 ms of device work, then 1 ms on the host) at high priority beside a saturating
    low-priority tenant: its throughput relative to running alone, with and without the shim."""
    high = TenantSpec("high", cores=50, priority="high", gap_us=1000)
    low = TenantSpec("low", cores=50, priority="low")
    rows = []
    ratios = {}
    for preload in (False, True):
        (alone,) = _run([high], opts, preload)
        together = _run([high, low], opts, preload)
        ratios[preload] = (100.0 * together[0].total_batches / alone.total_batches, _median(together[1]))
    rows.append(Row("high vs low", "high", "% of alone", 100.0, ratios[False][0], ratios[True][0], 0.0))
    rows.append(Row("high vs low", "low", "rest", None, ratios[False][1], ratios[True][1], 0.0))
    sparse = TenantSpec("high", cores=50, priority="high", gap_us=10_000)
    base, shim = _run([sparse, low], opts, False), _run([sparse, low], opts, True)
    rows.append(Row("high idle 10ms gaps", "low", "fills gaps", None, _median(base[1]), _median(shim[1]),
                    0.0))
    return rows


def run(opts: Options, quick: bool = False) -> list[Row]:
    rows: list[Row] = []
    # On a device taking turns, tenants synchronize after each batch of 400 us, as a PyTorch loop does.
    kernel_us, gap_us = (100, 20) if opts.slice_us else (TenantSpec.kernel_us, TenantSpec.gap_us)
    for name, shares in SHARES.items():
        specs = [TenantSpec(f"t{i}-{share}", cores=share, kernel_us=kernel_us, gap_us=gap_us)
                 for i, share in enumerate(shares)]
        rows += share_rows(name, specs, [float(s) for s in shares], [f"{s} %" for s in shares], opts)
    fixed = TenantSpec("fixed", cores=30, policy="fixed", kernel_us=kernel_us, gap_us=gap_us)
    rows += share_rows("fixed 30% alone", [fixed], [30.0], ["30 % cap"], opts)
    if quick:
        return rows
    rows += share_rows("guaranteed alone", [TenantSpec("guaranteed", cores=30)], [None], [">= 95 %"], opts)
    return rows + priority_rows(opts)


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def load_samples(period_s: float = 5.0) -> Iterator[list[float]]:
    """The 1-minute load average, sampled every ``period_s`` while the block runs."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(period_s):
            samples.append(os.getloadavg()[0])

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def cpu_burners(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPU while the block runs."""
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="run length per scenario (1 s windows)")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario, with and without the shim")
    parser.add_argument("--device", choices=[m.value for m in Scheduling], default=Scheduling.SERIAL.value)
    parser.add_argument("--slice-us", type=int, default=0,
                        help="time-sliced device whose contexts take turns of this length (a GPU's time "
                             "slices); tenants then synchronize after each batch")
    parser.add_argument("--burn", type=int, default=0, help="CPU-spinning processes beside the tenants")
    parser.add_argument("--quick", action="store_true", help="the share scenarios and fixed 30 %% only")
    args = parser.parse_args()
    device = Scheduling.TIME_SLICED if args.slice_us else Scheduling(args.device)
    opts = Options(args.seconds, max(1, args.runs), device, max(0, args.slice_us))
    with cpu_burners(args.burn), load_samples() as loads:
        rows = run(opts, args.quick)
    load = f"median {statistics.median(loads):.1f}, max {max(loads):.1f}" if loads else "not sampled"
    turns = f" in turns of {opts.slice_us} us, tenants synchronizing each batch" if opts.slice_us else ""
    print(f"device {opts.device}{turns}, {opts.runs} runs of {opts.seconds:g} s per scenario, "
          f"{args.burn} CPU burners, {os.cpu_count()} CPUs, 1-minute load average {load}")
    header = ("scenario", "tenant", "requested", "no shim", "shim", "error", "worst")
    print("{:<22}{:<14}{:>12}{:>10}{:>10}{:>9}{:>8}".format(*header))
    for r in rows:
        error = "" if r.error is None else f"{r.error:+.1f}"
        print(f"{r.scenario:<22}{r.tenant:<14}{r.requested:>12}{r.without:>10.1f}{r.with_shim:>10.1f}"
              f"{error:>9}{r.worst:>8.1f}")
    # A tenant that synchronizes after each batch leaves the device idle between its batches, so alone it
    # cannot use all of it: there, only the claims at or under half (those the shim holds back) are judged.
    judged = [r for r in rows if r.error is not None and r.scenario in SHARES
              and (not opts.slice_us or (r.target or 0) <= 50)]
    errors = [abs(r.error) for r in judged if r.error is not None]
    scope = " (claims at or under 50 %: a tenant synchronizing each batch cannot fill the device)" \
        if opts.slice_us else ""
    print(f"median |error| over {', '.join(SHARES)}{scope}: {statistics.median(errors):.2f} pp; "
          f"largest {max(errors):.2f} pp")


if __name__ == "__main__":
    main()
