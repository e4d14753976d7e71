"""Compute shares on the fake device: real tenant processes with the shim preloaded, measured per window.

Each tenant launches batches of kernels of a known duration and counts the device time it got per window
of wall time; the fake device serializes every process's kernels as a time-sliced device does.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from tests.integration.shim.conftest import claim_usage
from tests.support.shimlib import TenantGroup, TenantResult, TenantSpec

WINDOW_MS = 500


def _steady(result: TenantResult) -> float:
    """Median share over the windows after the first (start-up)."""
    return statistics.median(result.shares()[1:])


def test_without_the_shim_two_greedy_tenants_split_evenly_whatever_they_asked(tmp_path: Path) -> None:
    group = TenantGroup(tmp_path, preload=False)
    low, high = group.run([TenantSpec("a", cores=30), TenantSpec("b", cores=70)], 1.5, window_ms=WINDOW_MS)
    assert abs(_steady(low) - 50) < 5  # the contention is measurable
    assert abs(_steady(high) - 50) < 5


def test_two_tenants_get_30_and_70_percent(tmp_path: Path) -> None:
    group = TenantGroup(tmp_path)
    # 3 s, not 2: a completion charged after its hold-back expired loses its interval (about 35 ms was
    # seen once on a busy CI machine); over 3 s that stays inside the unchanged 5 % bound below.
    a, b = group.run([TenantSpec("a", cores=30), TenantSpec("b", cores=70)], 3, window_ms=WINDOW_MS)
    assert abs(_steady(a) - 30) <= 3, a.shares()
    assert abs(_steady(b) - 70) <= 3, b.shares()
    charged = {name: claim_usage(group.ledger_path(name)).used_ns for name in ("a", "b")}
    for result in (a, b):  # the ledger charged what each one really got on the device
        assert charged[result.spec.name] == pytest.approx(sum(result.busy_ns), rel=0.05)


def test_a_fixed_tenant_alone_is_capped(tmp_path: Path) -> None:
    spec = TenantSpec("a", cores=30, policy="fixed")
    (result,) = TenantGroup(tmp_path).run([spec], 1.5, window_ms=WINDOW_MS)
    assert all(share <= 32 for share in result.shares()), result.shares()
    assert _steady(result) >= 27
    container = claim_usage(TenantGroup(tmp_path).ledger_path("a"))
    assert container.throttled_ns > 500_000_000  # it waited at launch boundaries most of the time


@pytest.mark.parametrize("cores", [30, 0])  # 0: best effort, idle time only
def test_a_guaranteed_or_best_effort_tenant_alone_uses_the_idle_device(tmp_path: Path, cores: int) -> None:
    (result,) = TenantGroup(tmp_path).run([TenantSpec("a", cores=cores)], 1.5, window_ms=WINDOW_MS)
    assert _steady(result) >= 92, result.shares()


def test_launch_variants_and_streams_are_all_charged(tmp_path: Path) -> None:
    kinds = ["ex", "coop", "graph", "multi"]
    specs = [TenantSpec(kind, cores=25, policy="fixed", kind=kind) for kind in kinds]
    group = TenantGroup(tmp_path)
    results = group.run(specs, 2, window_ms=WINDOW_MS)
    for result in results:
        name = result.spec.name
        assert 22 <= _steady(result) <= 27, (name, result.shares())
        container = claim_usage(group.ledger_path(name))
        assert container.used_ns == pytest.approx(sum(result.busy_ns), rel=0.1), name


# rtKernelLaunch, and rtsLaunchKernelWithHostArgs (how aclnn operators launch)
@pytest.mark.parametrize("kind", ["kernel", "hostargs"])
def test_ascend_runtime_launches_are_charged_with_rt_events(tmp_path: Path, kind: str) -> None:
    group = TenantGroup(tmp_path, uuid="NPU-0")
    fixed, other = group.run([TenantSpec("a", cores=30, policy="fixed", vendor="acl", kind=kind),
                              TenantSpec("b", cores=70, vendor="acl", kind=kind)], 1.5, window_ms=WINDOW_MS)
    assert abs(_steady(fixed) - 30) <= 3, fixed.shares()
    assert abs(_steady(other) - 70) <= 3, other.shares()


def test_high_priority_keeps_its_throughput_beside_a_saturating_low_priority_tenant(tmp_path: Path) -> None:
    # A serving loop: 1 ms of device work, then 1 ms on the host.
    high = TenantSpec("high", cores=50, priority="high", gap_us=1000)
    low = TenantSpec("low", cores=50, priority="low")
    (alone,) = TenantGroup(tmp_path / "alone").run([high], 1.0, window_ms=WINDOW_MS)
    together = TenantGroup(tmp_path / "both").run([high, low], 1.0, window_ms=WINDOW_MS)
    assert together[0].total_batches >= 0.9 * alone.total_batches
    # While the high one idles for longer than the hold (10 ms gaps), the low one uses the device.
    sparse = TenantSpec("high", cores=50, priority="high", gap_us=10_000)
    high_sparse, low_busy = TenantGroup(tmp_path / "gaps").run([sparse, low], 1.0, window_ms=WINDOW_MS)
    assert _steady(low_busy) >= 25
    assert _steady(high_sparse) >= 7


@pytest.mark.parametrize("kind", ["copy", "query"])
def test_a_step_ending_in_a_copy_or_a_polled_query_leaves_its_idle_time_to_others(tmp_path: Path,
                                                                                  kind: str) -> None:
    # A step: 1 ms of kernels ending in a synchronous device-to-host copy, or in polling cuEventQuery
    # until its work is done (a query that finds it done is a completion point), then 10 ms on the host.
    other = TenantSpec("other", cores=0)  # best effort: idle time only
    stepping = TenantSpec("step", cores=50, gap_us=10_000, kind=kind)
    step, borrower = TenantGroup(tmp_path).run([stepping, other], 1.5, window_ms=WINDOW_MS)
    # Known to be idle once its step ended, the stepping tenant leaves its gaps to the other one (were
    # it counted busy until its next launch, the best-effort tenant would get almost nothing).
    assert _steady(borrower) >= 50, borrower.shares()
    assert step.total_batches >= 80, step.batches
