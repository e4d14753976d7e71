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


# A GPU's scheduler gives contexts turns (time slices of about a millisecond) rather than an even share
# at every instant. A PyTorch loop synchronizes after each batch, so its context has nothing queued when
# the batch is done: the other context's turn begins, and the next batch waits for it to end.
SLICE_US = 1000


def _syncing(name: str, cores: int, kernel_us: int, batch: int) -> TenantSpec:
    return TenantSpec(name, cores=cores, kernel_us=kernel_us, batch=batch, gap_us=20)


def _turns(root: Path, kernel_us: int, batch: int) -> tuple[TenantGroup, TenantResult, TenantResult]:
    specs = [_syncing("a", 30, kernel_us, batch), _syncing("b", 70, kernel_us, batch)]
    bare_a, _ = TenantGroup(root / "bare", preload=False, device=SLICED, slice_us=SLICE_US).run(
        specs, 1.5, window_ms=WINDOW_MS)
    assert abs(_steady(bare_a) - 50) < 5, bare_a.shares()  # the device alone splits them evenly
    group = TenantGroup(root / "shim", device=SLICED, slice_us=SLICE_US)
    a, b = group.run(specs, 3, window_ms=WINDOW_MS)
    return group, a, b


def _charged(group: TenantGroup, result: TenantResult) -> int:
    return claim_usage(group.ledger_path(result.spec.name)).used_ns


def test_on_a_device_taking_turns_short_batches_are_charged_what_they_got(tmp_path: Path) -> None:
    """Each 400 us batch waits for the other context's turn to end, then runs whole in its own. Charged
    from its launch, the window held the wait too, which the other claim's work filled: the 70 % claim
    was charged about 12 % more than it got, and the 30 % claim less. Each window now starts when the
    device reached the stream (an event recorded before the batch), and a window charged beside work not
    yet charged is charged again once that work is."""
    group, a, b = _turns(tmp_path, kernel_us=100, batch=4)
    assert abs(_steady(a) - 30) <= 3, a.shares()
    # b cannot use all the rest: alone, the device idles while b's loop synchronizes between batches
    assert _steady(b) >= 55, b.shares()
    for result in (a, b):
        assert _charged(group, result) == pytest.approx(sum(result.busy_ns), rel=0.05), result.spec.name


def test_on_a_device_taking_turns_batches_longer_than_a_turn_split_30_70(tmp_path: Path) -> None:
    """2 ms batches are cut by 1 ms turns and run interleaved with the other claim's, as on a device that
    shares its time evenly, only coarser."""
    group, a, b = _turns(tmp_path, kernel_us=250, batch=8)
    assert abs(_steady(a) - 30) <= 3, a.shares()
    assert _steady(b) >= 60, b.shares()
    got = sum(a.busy_ns) + sum(b.busy_ns)
    assert _charged(group, a) + _charged(group, b) == pytest.approx(got, rel=0.05)
