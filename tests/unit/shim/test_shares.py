"""The compute-share rule in the ledger (token buckets, borrowing, priority, attribution), driven with
explicit timestamps through the same C functions the shim calls at launch boundaries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dra_driver.simulation.cbuild import have_compiler
from shim.ledger import Ledger
from tests.support.shimlib import build_shim

MS = 1_000_000
T0 = 10_000 * MS  # an arbitrary CLOCK_MONOTONIC origin


@pytest.fixture(autouse=True)
def _compiled_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    if not have_compiler():
        pytest.skip("no C compiler: the shim cannot be built")
    monkeypatch.setenv("XPUSHARE_SHIM_LIBRARY", str(build_shim()))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.create(tmp_path / "ledger", "GPU-1") as opened:
        yield opened


def _tokens(ledger: Ledger, key: str) -> int:
    container = ledger.snapshot().container(key)
    assert container is not None
    return container.tokens_ns


def test_the_bucket_refills_at_the_share_of_wall_time_and_stops_at_one_bucket(ledger: Ledger) -> None:
    ledger.set_container("a", 0, core_percent=30, policy="fixed")
    proc = ledger.attach_process("a", 0)
    assert ledger.admit(proc, T0) > 0  # a new claim starts with an empty bucket: no burst
    assert ledger.admit(proc, T0 + 10 * MS) == 0
    assert _tokens(ledger, "a") == 3 * MS  # 30 % of 10 ms
    ledger.admit(proc, T0 + 1000 * MS)
    assert _tokens(ledger, "a") == 6 * MS  # capped at 30 % of the 20 ms bucket window


def test_a_fixed_claim_waits_for_what_it_used_even_alone(ledger: Ledger) -> None:
    ledger.set_container("a", 0, core_percent=25, policy="fixed")
    proc = ledger.attach_process("a", 0)
    ledger.admit(proc, T0)
    assert ledger.admit(proc, T0 + 4 * MS) == 0  # 1 ms of tokens
    ledger.charge(proc, 3 * MS)  # used 3 ms: 2 ms in debt, repaid at 25 %: 8 ms of wall time
    wait = ledger.admit(proc, T0 + 4 * MS + 100_000)
    assert wait == 1 * MS  # waits are at most 1 ms per step; it keeps waiting until repaid
    assert ledger.admit(proc, T0 + 11 * MS) > 0
    assert ledger.admit(proc, T0 + 12 * MS + 100_000) == 0
    container = ledger.snapshot().container("a")
    assert container is not None
    assert container.used_ns == 3 * MS


def test_a_guaranteed_claim_borrows_only_while_no_other_claim_has_work(ledger: Ledger) -> None:
    ledger.set_container("a", 0, core_percent=30)
    ledger.set_container("b", 0, core_percent=70)
    a, b = ledger.attach_process("a", 0), ledger.attach_process("b", 0)
    ledger.admit(a, T0)
    ledger.charge(a, 5 * MS)
    assert ledger.admit(a, T0 + 100_000) == 0  # out of tokens, but the device is otherwise idle
    ledger.set_pending(a, True, T0)
    assert ledger.admit(a, T0 + 200_000) == 0  # its own work does not count against it
    ledger.set_pending(b, True, T0)
    assert ledger.admit(a, T0 + 300_000) > 0  # another claim has work: no borrowing
    ledger.set_pending(b, False, T0 + MS)
    assert ledger.admit(a, T0 + 400_000) == 0
    assert ledger.snapshot().npending == 1


def test_a_guaranteed_claims_debt_from_borrowing_is_capped_at_one_bucket(ledger: Ledger) -> None:
    ledger.set_container("a", 0, core_percent=50)
    proc = ledger.attach_process("a", 0)
    ledger.admit(proc, T0)
    ledger.charge(proc, 1000 * MS)  # a second alone on the device
    assert _tokens(ledger, "a") == -10 * MS  # -(50 % of 20 ms): repaid in 20 ms under contention


def test_high_priority_goes_first_and_lower_ones_use_the_gaps(ledger: Ledger) -> None:
    ledger.set_container("hi", 0, core_percent=50, priority="high")
    ledger.set_container("lo", 0, core_percent=50, priority="low")
    hi, lo = ledger.attach_process("hi", 0), ledger.attach_process("lo", 0)
    assert ledger.admit(lo, T0) == 0
    assert ledger.admit(hi, T0 + MS) == 0
    assert ledger.admit(lo, T0 + 2 * MS) > 0  # the high claim launched 1 ms ago
    assert ledger.shadowed(lo, T0 + 2 * MS)
    assert not ledger.shadowed(hi, T0 + 2 * MS)
    assert ledger.admit(lo, T0 + 7 * MS) == 0  # 6 ms of silence: the gap is the low claim's
    assert not ledger.shadowed(lo, T0 + 200 * MS)


def test_each_interval_of_device_time_is_charged_once(ledger: Ledger) -> None:
    assert ledger.attribute(T0, T0 + 2 * MS) == 2 * MS
    assert ledger.attribute(T0 + MS, T0 + 3 * MS) == MS  # queued behind the first: only its own part
    assert ledger.attribute(T0, T0 + 3 * MS) == 0
    assert ledger.attribute(T0 + 5 * MS, T0 + 6 * MS) == MS  # an idle gap is nobody's


def test_a_quota_change_bumps_the_generation_and_the_share_applies_at_the_next_check(ledger: Ledger) -> None:
    ledger.set_container("a", 0, core_percent=10, policy="fixed")
    proc = ledger.attach_process("a", 0)
    generation = ledger.snapshot().quota_generation
    ledger.admit(proc, T0)
    ledger.set_container("a", 0, core_percent=60, policy="fixed")
    assert ledger.snapshot().quota_generation == generation + 1
    ledger.admit(proc, T0 + 10 * MS)
    assert _tokens(ledger, "a") == 6 * MS
    ledger.admit(proc, T0 + 30 * MS, 40)  # the limits file's allocation caps what the ledger says
    assert _tokens(ledger, "a") == 8 * MS  # refilled at 40 %, and the bucket is 40 % of 20 ms
