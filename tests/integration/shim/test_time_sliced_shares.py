"""Compute shares on a device that time-slices its contexts, as NVIDIA GPUs do.

The fake device in its time-sliced mode (``FAKE_CUDA_TIMESLICED=1``) runs every process with queued work
at the same rate, so one tenant's batch runs interleaved with the other's rather than after it. The
tenants count the device time their batches got per window, so the split is measured from outside.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from dra_driver.core.devices import Scheduling
from tests.integration.shim.conftest import claim_usage
from tests.support.shimlib import TenantGroup, TenantResult, TenantSpec

WINDOW_MS = 500
SLICED = Scheduling.TIME_SLICED


def _steady(result: TenantResult) -> float:
    return statistics.median(result.shares()[1:])


def test_without_the_shim_the_time_sliced_device_splits_evenly(tmp_path: Path) -> None:
    group = TenantGroup(tmp_path, preload=False, device=SLICED)
    a, b = group.run([TenantSpec("a", cores=30), TenantSpec("b", cores=70)], 1.5, window_ms=WINDOW_MS)
    assert abs(_steady(a) - 50) < 5, a.shares()
    assert abs(_steady(b) - 50) < 5, b.shares()


def test_two_tenants_get_30_and_70_percent_and_are_charged_what_they_got(tmp_path: Path) -> None:
    group = TenantGroup(tmp_path, device=SLICED)
    a, b = group.run([TenantSpec("a", cores=30), TenantSpec("b", cores=70)], 3, window_ms=WINDOW_MS)
    assert abs(_steady(a) - 30) <= 3, a.shares()
    assert abs(_steady(b) - 70) <= 3, b.shares()
    for result in (a, b):
        charged = claim_usage(group.ledger_path(result.spec.name)).used_ns
        assert charged == pytest.approx(sum(result.busy_ns), rel=0.05), result.spec.name


def test_a_fixed_tenant_alone_is_capped(tmp_path: Path) -> None:
    (result,) = TenantGroup(tmp_path, device=SLICED).run([TenantSpec("a", cores=30, policy="fixed")], 1.5,
                                                          window_ms=WINDOW_MS)
    assert 27 <= _steady(result) <= 32, result.shares()



def test_a_claim_with_two_processes_is_held_to_its_share_against_one_with_one(tmp_path: Path) -> None:
    """The device gives each process (context) an equal part, so without the shim the two-process claim
    gets two thirds; each of its processes is charged for the windows it shared with the other too."""
    two, other = [TenantSpec("a", cores=50), TenantSpec("a", cores=50)], TenantSpec("b", cores=50)
    bare = TenantGroup(tmp_path / "bare", preload=False, device=SLICED)
    assert _steady(bare.run([*two, other], 2, window_ms=WINDOW_MS)[2]) < 38  # more processes, more time
    shim = TenantGroup(tmp_path / "shim", device=SLICED)
    first, second, single = shim.run([*two, other], 3, window_ms=WINDOW_MS)
    claim_a = [x + y for x, y in zip(first.shares(), second.shares(), strict=True)]
    assert abs(statistics.median(claim_a[1:]) - 50) <= 3, claim_a
    assert abs(_steady(single) - 50) <= 3, single.shares()
