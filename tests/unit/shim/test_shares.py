"""The compute-share rule (token buckets, borrowing, priority, attribution), driven with explicit
timestamps through the same C functions the shim calls at launch boundaries: each claim has its own
ledger, and what it knows of the others comes in as ``Peers`` built from their ledgers' heads with the
priorities the board gives them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.simulation.cbuild import have_compiler
from shim.ledger import ClaimLedger, Peers
from tests.support.shimlib import build_shim

MS = 1_000_000
T0 = 10_000 * MS  # an arbitrary CLOCK_MONOTONIC origin

Make = Callable[..., ClaimLedger]


@pytest.fixture(autouse=True)
def _compiled_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    if not have_compiler():
        pytest.skip("no C compiler: the shim cannot be built")
    monkeypatch.setenv("XPUSHARE_SHIM_LIBRARY", str(build_shim()))


@pytest.fixture
def claim(tmp_path: Path) -> Make:
    """A claim's ledger with its limits, as the plugin creates it (closed with the test's tmp_path)."""
    opened: list[ClaimLedger] = []

    def make(key: str, cores: int = 100, priority: str = "normal", policy: str = "guaranteed") -> ClaimLedger:
        path = tmp_path / key
        prio, pol = Priority(priority), ComputePolicy(policy)
        ClaimLedger.create(path, key, "GPU-1", 0, cores, priority=prio, policy=pol)
        ledger = ClaimLedger.open(path, key, "GPU-1")
        opened.append(ledger)
        return ledger

    return make


def test_the_bucket_refills_at_the_share_of_wall_time_and_stops_at_one_bucket(claim: Make) -> None:
    a = claim("a", 30, policy="fixed")
    proc = a.attach_process()
    assert a.admit(proc, T0) > 0  # a new claim starts with an empty bucket: no burst
    assert a.admit(proc, T0 + 10 * MS) == 0
    assert a.usage().tokens_ns == 3 * MS  # 30 % of 10 ms
    a.admit(proc, T0 + 1000 * MS)
    assert a.usage().tokens_ns == 6 * MS  # capped at 30 % of the 20 ms bucket window


def test_a_fixed_claim_waits_for_what_it_used_even_alone(claim: Make) -> None:
    a = claim("a", 25, policy="fixed")
    proc = a.attach_process()
    a.admit(proc, T0)
    assert a.admit(proc, T0 + 4 * MS) == 0  # 1 ms of tokens
    a.charge(proc, 3 * MS)  # used 3 ms: 2 ms in debt, repaid at 25 %: 8 ms of wall time
    assert a.admit(proc, T0 + 4 * MS + 100_000) == 1 * MS  # waits are at most 1 ms per step
    assert a.admit(proc, T0 + 11 * MS) > 0
    assert a.admit(proc, T0 + 12 * MS + 100_000) == 0
    assert a.usage().used_ns == 3 * MS


def test_a_claim_between_two_batches_is_not_idle_to_a_borrower(claim: Make) -> None:
    """A peer that synchronizes after each batch has no work queued for a moment; borrowing its "idle"
    time would put the borrower's batch beside its next one."""
    a, b = claim("a", 30), claim("b", 70)
    pa, pb = a.attach_process(), b.attach_process()
    a.admit(pa, T0)
    a.charge(pa, 5 * MS)
    b.admit(pb, T0 + MS)  # b launched, its batch completed, it is in its synchronize: nothing pending
    assert a.admit(pa, T0 + MS + 500_000, peers=Peers().add(b, Priority.NORMAL, T0 + MS + 500_000)) > 0
    assert a.admit(pa, T0 + 3 * MS, peers=Peers().add(b, Priority.NORMAL, T0 + 3 * MS)) == 0  # idle by now


def test_a_guaranteed_claim_borrows_only_while_no_other_claim_has_work(claim: Make) -> None:
    a, b = claim("a", 30), claim("b", 70)
    pa, pb = a.attach_process(), b.attach_process()
    a.admit(pa, T0)
    a.charge(pa, 5 * MS)
    assert a.admit(pa, T0 + 100_000, peers=Peers().add(b, Priority.NORMAL, T0)) == 0  # others idle
    a.set_pending(pa, True)
    assert a.admit(pa, T0 + 200_000, peers=Peers().add(b, Priority.NORMAL, T0)) == 0  # its own work
    b.set_pending(pb, True)
    busy = Peers().add(b, Priority.NORMAL, T0)
    assert busy.busy == 1
    assert a.admit(pa, T0 + 300_000, peers=busy) > 0  # another claim has work: no borrowing
    b.set_pending(pb, False)
    assert a.admit(pa, T0 + 400_000, peers=Peers().add(b, Priority.NORMAL, T0)) == 0
    assert a.usage().npending == 1


def test_a_fixed_claim_never_borrows(claim: Make) -> None:
    a, b = claim("a", 30, policy="fixed"), claim("b", 70)
    pa = a.attach_process()
    a.admit(pa, T0)
    a.charge(pa, 5 * MS)
    idle = Peers().add(b, Priority.NORMAL, T0)
    assert a.admit(pa, T0 + 100_000, peers=idle) > 0  # an idle device, and still capped


def test_a_guaranteed_claims_debt_from_borrowing_is_capped_at_one_bucket(claim: Make) -> None:
    a = claim("a", 50)
    proc = a.attach_process()
    a.admit(proc, T0)
    a.charge(proc, 1000 * MS)  # a second alone on the device
    assert a.usage().tokens_ns == -10 * MS  # -(50 % of 20 ms): repaid in 20 ms under contention


def test_high_priority_goes_first_and_lower_ones_use_the_gaps(claim: Make) -> None:
    hi, lo = claim("hi", 50, "high"), claim("lo", 50, "low")
    phi, plo = hi.attach_process(), lo.attach_process()

    def view(ledger: ClaimLedger, priority: Priority, now: int) -> Peers:
        return Peers().add(ledger, priority, now)

    hi.admit(phi, T0 - 20 * MS)  # both buckets started (a new claim's is empty): tokens decide nothing below
    lo.admit(plo, T0 - 20 * MS)
    assert lo.admit(plo, T0, peers=view(hi, Priority.HIGH, T0)) == 0
    assert hi.admit(phi, T0 + MS, peers=view(lo, Priority.LOW, T0 + MS)) == 0
    held = view(hi, Priority.HIGH, T0 + 2 * MS)
    assert lo.admit(plo, T0 + 2 * MS, peers=held) > 0  # the high claim launched 1 ms ago
    assert lo.shadowed(T0 + 2 * MS, view(hi, Priority.HIGH, T0 + 2 * MS))
    assert not hi.shadowed(T0 + 2 * MS, view(lo, Priority.LOW, T0 + 2 * MS))
    assert lo.admit(plo, T0 + 7 * MS, peers=view(hi, Priority.HIGH, T0 + 7 * MS)) == 0  # 6 ms of silence
    assert not lo.shadowed(T0 + 200 * MS, view(hi, Priority.HIGH, T0 + 200 * MS))


def test_a_peers_priority_is_the_boards_not_what_its_ledger_says(claim: Make) -> None:
    lo, forger = claim("lo", 50, "normal"), claim("forger", 50, "low")
    plo, pf = lo.attach_process(), forger.attach_process()
    lo.admit(plo, T0 - 20 * MS)  # its bucket started: tokens, not borrowing, admit it below
    forger.set_limits(0, 50, Priority.HIGH)  # its own file says high...
    forger.admit(pf, T0)
    forger.admit(pf, T0 + 5 * MS)  # ...and it just launched
    assert forger.usage().launch_ns == T0 + 5 * MS
    board_says_low = Peers().add(forger, Priority.LOW, T0 + 6 * MS)
    assert lo.admit(plo, T0 + 6 * MS, peers=board_says_low) == 0  # not held back
    assert not lo.shadowed(T0 + 6 * MS, board_says_low)


def test_a_peers_future_timestamps_count_as_now_at_most(claim: Make) -> None:
    a, b = claim("a"), claim("b")
    pb = b.attach_process()
    b.admit(pb, T0)
    b.admit(pb, T0 + 10**15)  # a launch "far in the future"
    b.publish(pb, T0 + 10**15)
    assert b.attribute(T0, T0 + 10**15) == 10**15  # "charged" far into the future
    peers = Peers().add(b, Priority.HIGH, T0 + MS)
    assert peers.launch_ns(Priority.HIGH) == T0 + MS
    assert peers.unpublished_ns == T0 + MS
    assert peers.attributed_ns == T0 + MS
    assert a.shadowed(T0 + MS + XPUSHARE_PRIORITY_SHADOW_NS, peers) is False  # not held for ever
    # What a's work after now costs is still charged to a: the forged time covers at most up to now.
    assert a.attribute(T0, T0 + 3 * MS, peers) == 2 * MS


XPUSHARE_PRIORITY_SHADOW_NS = 100 * MS


def test_each_interval_of_device_time_is_charged_once(claim: Make) -> None:
    a, b = claim("a"), claim("b")
    assert a.attribute(T0, T0 + 2 * MS) == 2 * MS
    assert a.attribute(T0 + MS, T0 + 3 * MS) == MS  # queued behind its own first: only its own part
    assert a.attribute(T0, T0 + 3 * MS) == 0
    assert a.attribute(T0 + 5 * MS, T0 + 6 * MS) == MS  # an idle gap is nobody's
    assert b.attribute(T0 + 5 * MS, T0 + 8 * MS, Peers().add(a, Priority.NORMAL, T0 + 9 * MS)) == 2 * MS


def test_work_queued_behind_another_claims_is_charged_only_past_it_both_ways(claim: Make) -> None:
    """Two claims alternating on a serializing device: every interval is charged to one claim only, and
    the charges add up to the device's busy time."""
    a, b = claim("a"), claim("b")
    now = T0 + 100 * MS

    def view(peer: ClaimLedger) -> Peers:
        return Peers().add(peer, Priority.NORMAL, now)

    # Both queued at T0; a's work completes at +2 ms, b's (behind it) at +5 ms, a's next at +6 ms,
    # b's next (queued at +1 ms behind both) at +9 ms.
    charged = [a.attribute(T0, T0 + 2 * MS, view(b)), b.attribute(T0, T0 + 5 * MS, view(a)),
               a.attribute(T0 + 2 * MS, T0 + 6 * MS, view(b)), b.attribute(T0 + MS, T0 + 9 * MS, view(a))]
    assert charged == [2 * MS, 3 * MS, MS, 3 * MS]
    assert sum(charged) == 9 * MS  # the device was busy from T0 to T0 + 9 ms
    assert a.attribute(T0, T0 + 9 * MS, view(b)) == 0  # nothing is charged twice, whoever asks
    assert b.attribute(T0, T0 + 9 * MS, view(a)) == 0


def test_older_uncharged_work_of_a_peer_or_of_the_claim_holds_a_charge_back(claim: Make) -> None:
    a, b = claim("a"), claim("b")
    pa, pb, pa2 = a.attach_process(), b.attach_process(), a.attach_process()
    b.publish(pb, T0 + MS)
    peers = Peers().add(b, Priority.NORMAL, T0 + 3 * MS)
    assert a.earlier_work(pa, T0 + 2 * MS, peers)  # b's work was recorded first
    assert not a.earlier_work(pa, T0 + MS // 2, peers)
    a.set_pending(pa, True)
    a.set_pending(pa2, True)
    a.publish(pa2, T0 + MS)
    assert a.earlier_work(pa, T0 + 2 * MS)  # the claim's other process, no peers needed
    assert a.usage().unpublished_ns == T0 + MS  # the claim's oldest, for its peers


def test_a_quota_change_applies_at_the_next_check_within_the_files_ceiling(claim: Make) -> None:
    a = claim("a", 10, policy="fixed")
    proc = a.attach_process()
    a.admit(proc, T0)
    assert a.set_limits(0, 60, Priority.NORMAL, ComputePolicy.FIXED)
    a.admit(proc, T0 + 10 * MS)
    assert a.usage().tokens_ns == 6 * MS
    a.admit(proc, T0 + 30 * MS, 40)  # the limits file's allocation caps what the board says
    assert a.usage().tokens_ns == 8 * MS  # refilled at 40 %, and the bucket is 40 % of 20 ms


# --- time-sliced devices: a window's time is shared by every context with work on the device ---------


def test_a_window_alone_on_a_time_sliced_device_is_charged_whole(claim: Make) -> None:
    a = claim("a")
    pa = a.attach_process()
    assert a.share(pa, T0, T0 + 4 * MS) == 4 * MS
    assert a.share(pa, T0 + 4 * MS, T0 + 4 * MS) == 0  # an empty window costs nothing


def test_overlapping_windows_of_two_claims_split_the_overlap_evenly(claim: Make) -> None:
    """The preempting GPU of the issue: b's batch ran inside a's busy stretch; the device gave each half
    of the time they overlapped, and the charges add up to the busy time, whoever charges first."""
    a, b = claim("a"), claim("b")
    pa, pb = a.attach_process(), b.attach_process()
    now = T0 + 100 * MS
    a.publish_window(pa, T0, T0 + 10 * MS)
    b.publish_window(pb, T0 + 2 * MS, T0 + 6 * MS)
    charged_a = a.share(pa, T0, T0 + 10 * MS, Peers().add(b, Priority.NORMAL, now))
    charged_b = b.share(pb, T0 + 2 * MS, T0 + 6 * MS, Peers().add(a, Priority.NORMAL, now))
    assert (charged_a, charged_b) == (8 * MS, 2 * MS)
    assert charged_a + charged_b == 10 * MS


def test_a_peers_uncharged_work_counts_as_an_open_window_up_to_now(claim: Make) -> None:
    a, b = claim("a"), claim("b")
    pa, pb = a.attach_process(), b.attach_process()
    b.publish_window(pb, T0, T0 + 2 * MS)
    b.set_pending(pb, True)
    b.publish(pb, T0 + MS)  # launched at +1 ms, still uncharged: running since its last window's end
    peers = Peers().add(b, Priority.NORMAL, T0 + 8 * MS)
    assert peers.windows() == [(T0, T0 + 2 * MS), (T0 + 2 * MS, T0 + 8 * MS)]
    assert a.share(pa, T0 + 4 * MS, T0 + 8 * MS, peers) == 2 * MS
    assert a.share(pa, T0 + 8 * MS, T0 + 10 * MS, peers) == 2 * MS  # after the peer was read: whole


def test_a_peers_forged_future_or_inverted_windows_cost_nothing_beyond_now(claim: Make) -> None:
    a, b = claim("a"), claim("b")
    pa, pb = a.attach_process(), b.attach_process()
    b.publish_window(pb, T0 + 5 * MS, T0 + 10**15)  # "busy" far into the future
    peers = Peers().add(b, Priority.NORMAL, T0 + 6 * MS)
    assert peers.windows() == [(T0 + 5 * MS, T0 + 6 * MS)]  # clamped to when it was read
    assert a.share(pa, T0, T0 + 8 * MS, peers) == 7 * MS + MS // 2


def test_the_claims_other_processes_share_the_window_too(claim: Make) -> None:
    a = claim("a")
    p1, p2 = a.attach_process(), a.attach_process()
    a.publish_window(p2, T0, T0 + 4 * MS)
    a.publish_window(p1, T0, T0 + 4 * MS)  # its own window does not count against it
    assert a.share(p1, T0, T0 + 4 * MS) == 2 * MS
    a.set_pending(p1, True)
    a.set_pending(p2, True)
    a.publish(p2, T0 + 5 * MS)  # p2 launched more at +5 ms and has not charged it yet
    assert a.share(p1, T0 + 4 * MS, T0 + 8 * MS) == MS + 3 * MS // 2


def test_a_continuing_window_extends_the_last_one_and_the_ring_wraps(claim: Make) -> None:
    a = claim("a")
    pa = a.attach_process()
    a.publish_window(pa, T0, T0 + MS)
    a.publish_window(pa, T0 + MS, T0 + 2 * MS)
    assert a.windows() == ((pa, T0, T0 + 2 * MS),)
    for i in range(40):  # separate windows: the ring keeps the latest 32
        a.publish_window(pa, T0 + (3 + 2 * i) * MS, T0 + (4 + 2 * i) * MS)
    kept = a.windows()
    assert len(kept) == 32
    assert min(start for _, start, _ in kept) == T0 + (3 + 2 * 8) * MS
