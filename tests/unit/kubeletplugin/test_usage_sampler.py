"""The plugin's usage sampler on real claim ledgers: one pass reads every prepared claim's ledger of each
device and publishes the history; claims that went away drop out, an unreadable ledger is survived, and
``stop`` ends the thread and removes the file."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from kubeletplugin.state import ClaimKey, ClaimPreparer
from kubeletplugin.usage_file import UsageFile, read_usage_file
from kubeletplugin.usage_history import NS_PER_S, Share
from kubeletplugin.usage_sampler import UsageSampler
from shim import library_path
from shim.ledger import ClaimLedger
from tests.support.plugin_claims import claim, shared
from tests.support.plugin_preparer import MemoryReader, damage_ledger, node_preparer
from tests.support.usage_clocks import Clocks

UUID = "NPU-UUID-0"


@pytest.fixture
def node(tmp_path: Path) -> tuple[ClaimPreparer, MemoryReader]:
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no claim ledgers")
    reader = MemoryReader()
    return node_preparer(tmp_path, reader), reader


def _prepare(preparer: ClaimPreparer, reader: MemoryReader, name: str, cores: str) -> ClaimKey:
    key = reader.add(claim(name, results=[shared("npu-0", memory="4Gi", cores=cores)]))
    preparer.prepare(key)
    return key


def _charge(preparer: ClaimPreparer, key: ClaimKey, used_ns: int, throttled_ns: int = 0) -> None:
    """What the claim's shims do as its kernels run and wait: add to its ledger's counters."""
    with ClaimLedger.open(preparer.paths.claim_ledger(UUID, key.uid), key.uid, UUID) as ledger:
        head = ledger.head_pointer()
        head.claim.used_ns += used_ns
        head.claim.throttled_ns += throttled_ns


def _published(sampler: UsageSampler, clocks: Clocks) -> UsageFile:
    return read_usage_file(sampler.path, clocks.ns, clocks.wall())


def test_a_pass_a_second_publishes_each_claims_last_10_s_and_minute(
    node: tuple[ClaimPreparer, MemoryReader],
) -> None:
    preparer, reader = node
    train, serve = _prepare(preparer, reader, "train", "30"), _prepare(preparer, reader, "serve", "70")
    clocks = Clocks()
    sampler = UsageSampler(preparer, preparer.paths.usage_history, clock_ns=clocks.mono, wall=clocks.wall)
    for second in range(70):
        if second:
            clocks.ns += NS_PER_S
            _charge(preparer, train, int(0.3 * NS_PER_S), int(0.1 * NS_PER_S))
            _charge(preparer, serve, int((0.1 if second < 60 else 0.6) * NS_PER_S))
        sampler.sample()
    found = _published(sampler, clocks)
    assert set(found.samples) == {(train.uid, UUID), (serve.uid, UUID)}
    assert all(len(points) <= 3 for points in found.samples.values())  # not the whole ring
    assert found.share((train.uid, UUID), 10) == Share(10.0, 30.0, 10.0)
    assert found.share((serve.uid, UUID), 10) == Share(10.0, 60.0, 0.0)
    assert found.share((serve.uid, UUID), 60) == Share(60.0, 18.3, 0.0)  # 50 s at 10 %, then 10 s at 60 %
    assert sampler.published == found.samples  # what the metrics show is what the file says


def test_an_unprepared_claim_drops_out_of_the_history(node: tuple[ClaimPreparer, MemoryReader]) -> None:
    preparer, reader = node
    stay, leave = _prepare(preparer, reader, "stay", "30"), _prepare(preparer, reader, "leave", "30")
    clocks = Clocks()
    sampler = UsageSampler(preparer, preparer.paths.usage_history, clock_ns=clocks.mono, wall=clocks.wall)
    sampler.sample()
    preparer.unprepare(leave)
    clocks.ns += NS_PER_S
    sampler.sample()
    assert set(_published(sampler, clocks).samples) == {(stay.uid, UUID)}
    assert set(sampler.history.points()) == {(stay.uid, UUID)}


def test_an_unreadable_ledger_is_a_gap_for_its_claim_alone(
    node: tuple[ClaimPreparer, MemoryReader], caplog: pytest.LogCaptureFixture
) -> None:
    preparer, reader = node
    hurt, fine = _prepare(preparer, reader, "hurt", "30"), _prepare(preparer, reader, "fine", "30")
    clocks = Clocks()
    sampler = UsageSampler(preparer, preparer.paths.usage_history, clock_ns=clocks.mono, wall=clocks.wall)
    sampler.sample()
    damage_ledger(preparer.paths.claim_ledger(UUID, hurt.uid), "garbage")  # its tenant's doing
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            clocks.ns += NS_PER_S
            _charge(preparer, fine, NS_PER_S // 2)
            sampler.sample()
    found = _published(sampler, clocks)
    assert set(found.samples) == {(fine.uid, UUID)}
    assert found.share((fine.uid, UUID), 10) == Share(3.0, 50.0, 0.0)
    warned = [r.getMessage() for r in caplog.records if r.name == "kubeletplugin.ledgers"]
    assert warned == ["claim ledger unreadable"]  # once, not every second


def test_no_ledgers_no_history(tmp_path: Path) -> None:
    """Without the shim library nothing is charged: the file says so by naming no claim."""
    reader = MemoryReader()
    preparer = node_preparer(tmp_path, reader, ledgers=False)
    _prepare(preparer, reader, "plain", "30")
    clocks = Clocks()
    sampler = UsageSampler(preparer, preparer.paths.usage_history, clock_ns=clocks.mono, wall=clocks.wall)
    sampler.sample()
    assert _published(sampler, clocks).samples == {}


def test_the_thread_publishes_at_once_and_stop_ends_it_and_removes_the_file(
    node: tuple[ClaimPreparer, MemoryReader],
) -> None:
    preparer, reader = node
    _prepare(preparer, reader, "train", "30")
    path = preparer.paths.usage_history
    sampler = UsageSampler(preparer, path, interval_s=0.05).start()
    written = threading.Event()
    for _ in range(200):
        if path.is_file():
            written.set()
            break
        threading.Event().wait(0.01)
    assert written.is_set()
    sampler.stop()
    assert sampler._thread is not None
    assert not sampler._thread.is_alive()
    assert not path.exists()


def test_a_failing_pass_is_logged_once_and_the_next_ones_go_on(
    node: tuple[ClaimPreparer, MemoryReader], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    preparer, reader = node
    _prepare(preparer, reader, "train", "30")
    path = tmp_path / "gone" / "usage.json"  # its directory missing: every write fails
    sampler = UsageSampler(preparer, path)
    with caplog.at_level(logging.INFO, logger="kubeletplugin.usage_sampler"):
        for _ in range(3):
            sampler._pass()
        path.parent.mkdir()
        sampler._pass()
    logged = [r.getMessage() for r in caplog.records if r.name == "kubeletplugin.usage_sampler"]
    assert logged == ["usage history: pass failed", "usage history: written again"]
    assert path.is_file()
