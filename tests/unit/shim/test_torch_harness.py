"""The GPU harness's own arithmetic, checked without a GPU: a tenant's rate from its step times."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.gpu import torch_tenant
from tests.gpu.torchlib import Claim, Tenant, TenantRun

MS = 1_000_000


def _run(ends_ms: list[float], per_step: int = 256, windows: int = 6) -> TenantRun:
    return TenantRun(Tenant(Claim("t")), tuple([0] * windows), 1.0,
                     step_ends_ns=tuple(int(t * MS) for t in ends_ms), per_step=per_step)


def test_the_rate_is_exact_to_a_step_where_window_counts_are_not() -> None:
    """Steps of 98 ms: every 1 s window holds 10 of them (2,560 tokens) or 11, so window counts cannot
    tell 2,612 tokens/s from 2,560 or 2,816; the step times can."""
    run = _run([98.0 * k for k in range(1, 61)])
    assert run.rate() == pytest.approx(256 / 0.098, rel=1e-6)


def test_the_rate_leaves_the_first_window_out() -> None:
    """Start-up steps (slow here: 300 ms each) are not steady state."""
    slow = [300.0, 600.0, 900.0]
    steady = [1000.0 + 50 * k for k in range(0, 80)]
    assert _run(slow + steady).rate() == pytest.approx(256 / 0.050, rel=1e-6)


@pytest.mark.parametrize("ends", [[], [1500.0]], ids=["no steps", "one step"])
def test_too_few_steps_give_no_rate(ends: list[float]) -> None:
    assert _run(ends).rate() == 0.0


def test_the_tenant_reports_each_steps_completion_after_the_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.count(start=310 * MS, step=300 * MS)  # each step completes 300 ms after the last
    monkeypatch.setattr(time, "monotonic_ns", lambda: next(clock))
    counts, ends = torch_tenant._count(lambda: None, epoch=10 * MS, windows=2, window_ns=1000 * MS, batch=8,
                                       gap_s=0.0)
    assert ends == [300 * MS, 600 * MS, 900 * MS, 1200 * MS, 1500 * MS, 1800 * MS]
    assert counts == [24, 24]
