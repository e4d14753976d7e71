"""Compute share accuracy on the fake device: achieved vs requested share per tenant, beside no shim.

Every tenant is a real process (dra_driver/simulation/csrc/programs/tenant.c) with the shim preloaded over
the fake libcuda, whose device timeline serializes all processes' kernels as a time-sliced device does.
Each tenant saturates the device (one batch of four 250 us kernels queued ahead of the one it waits for)
and counts the device time it got per 1 s window; the table shows the median over the windows after the
first, and the worst window. Targets: within 2 percentage points at 10/90, 30/70, 50/50 and 4x25; a
fixed 30 % tenant alone at <= 30 (+2); a guaranteed tenant alone >= 95 %; a high-priority serving tenant
keeps >= 95 % of its alone throughput beside a saturating low-priority one.

    python benchmarks/share_accuracy.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.shimlib import TenantGroup, TenantResult, TenantSpec


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


def _run(specs: list[TenantSpec], seconds: float, preload: bool) -> list[TenantResult]:
    with tempfile.TemporaryDirectory() as scratch:
        return TenantGroup(Path(scratch), preload=preload).run(specs, seconds)


def share_rows(name: str, specs: list[TenantSpec], targets: list[float | None], labels: list[str],
               seconds: float) -> list[Row]:
    base = _run(specs, seconds, preload=False)
    shim = _run(specs, seconds, preload=True)
    return [Row(name, s.name, label, target, _median(b), _median(r), _worst(r, target or _median(r)))
            for s, label, target, b, r in zip(specs, labels, targets, base, shim, strict=True)]


def priority_rows(seconds: float) -> list[Row]:
    """A serving loop (1 ms of device work, then 1 ms on the host) at high priority beside a saturating
    low-priority tenant: its throughput relative to running alone, with and without the shim."""
    high = TenantSpec("high", cores=50, priority="high", gap_us=1000)
    low = TenantSpec("low", cores=50, priority="low")
    rows = []
    ratios = {}
    for preload in (False, True):
        (alone,) = _run([high], seconds, preload)
        together = _run([high, low], seconds, preload)
        ratios[preload] = (100.0 * together[0].total_batches / alone.total_batches, _median(together[1]))
    rows.append(Row("high vs low", "high", "% of alone", 100.0, ratios[False][0], ratios[True][0], 0.0))
    rows.append(Row("high vs low", "low", "rest", None, ratios[False][1], ratios[True][1], 0.0))
    sparse = TenantSpec("high", cores=50, priority="high", gap_us=10_000)
    base, shim = _run([sparse, low], seconds, False), _run([sparse, low], seconds, True)
    rows.append(Row("high idle 10ms gaps", "low", "fills gaps", None, _median(base[1]), _median(shim[1]),
                    0.0))
    return rows


def run(seconds: float) -> list[Row]:
    rows: list[Row] = []
    for name, shares in SHARES.items():
        specs = [TenantSpec(f"t{i}-{share}", cores=share) for i, share in enumerate(shares)]
        rows += share_rows(name, specs, [float(s) for s in shares], [f"{s} %" for s in shares], seconds)
    rows += share_rows("fixed 30% alone", [TenantSpec("fixed", cores=30, policy="fixed")], [30.0],
                       ["30 % cap"], seconds)
    rows += share_rows("guaranteed alone", [TenantSpec("guaranteed", cores=30)], [None], [">= 95 %"], seconds)
    return rows + priority_rows(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="run length per scenario (1 s windows)")
    args = parser.parse_args()
    rows = run(args.seconds)
    header = ("scenario", "tenant", "requested", "no shim", "shim", "error", "worst")
    print("{:<22}{:<14}{:>12}{:>10}{:>10}{:>9}{:>8}".format(*header))
    for r in rows:
        error = "" if r.error is None else f"{r.error:+.1f}"
        print(f"{r.scenario:<22}{r.tenant:<14}{r.requested:>12}{r.without:>10.1f}{r.with_shim:>10.1f}"
              f"{error:>9}{r.worst:>8.1f}")
    errors = [abs(r.error) for r in rows if r.error is not None and r.scenario in SHARES]
    print(f"median |error| over {', '.join(SHARES)}: {statistics.median(errors):.2f} pp; "
          f"largest {max(errors):.2f} pp")


if __name__ == "__main__":
    main()
