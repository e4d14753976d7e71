"""Events for allocations refused at a claim's memory limit, read from the claim's real ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubeletplugin.refusal_events import REASON, RefusalReporter
from kubeletplugin.state import ClaimKey, ClaimPreparer
from shim.ledger import ClaimLedger
from tests.support.plugin_claims import claim, shared
from tests.support.plugin_preparer import MemoryReader, node_paths, node_preparer

UUID = "NPU-UUID-1"


class Events:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, bool]] = []

    def claim_event(self, obj: dict[str, Any], reason: str, message: str, warning: bool = True) -> None:
        self.posted.append((obj["metadata"]["name"], reason, message, warning))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _refuse(tmp_path: Path, uid: str, allocs: int, asked: int) -> None:
    """What the shim does when it refuses allocations: count them in the claim's ledger."""
    with ClaimLedger.open(node_paths(tmp_path).claim_ledger(UUID, uid), uid, UUID) as ledger:
        head = ledger.head_pointer()
        head.claim.refused_allocs += allocs
        head.claim.refused_bytes += asked


def _setup(tmp_path: Path) -> tuple[ClaimPreparer, ClaimKey, Events, Clock, RefusalReporter]:
    reader = MemoryReader()
    preparer = node_preparer(tmp_path, reader)
    key = reader.add(claim(name="train", results=[shared("npu-1", memory="8Gi", cores="30")]))
    preparer.prepare(key)
    events, clock = Events(), Clock()
    return preparer, key, events, clock, RefusalReporter(preparer, events, min_gap_s=60, clock=clock)


def test_new_refusals_become_one_warning_naming_the_device_limit_and_bytes(tmp_path: Path) -> None:
    _, key, events, _, reporter = _setup(tmp_path)
    uid = key.uid
    _refuse(tmp_path, uid, 1, 1 << 30)  # before the plugin started: already known, not reported again
    reporter.baseline()
    assert reporter.check() == 0
    _refuse(tmp_path, uid, 2, 6 << 30)
    assert reporter.check() == 1
    ((name, reason, message, warning),) = events.posted
    assert (name, reason, warning) == ("train", REASON, True)
    assert message.startswith(f"2 device memory allocation(s) on npu-1 refused at the claim's limit of "
                              f"{8 << 30} bytes ({6 << 30} bytes asked;")


def test_a_retrying_workload_gets_one_event_a_minute_with_everything_in_between(tmp_path: Path) -> None:
    _, key, events, clock, reporter = _setup(tmp_path)
    uid = key.uid
    reporter.baseline()
    _refuse(tmp_path, uid, 1, 100)
    assert reporter.check() == 1
    for _ in range(5):  # a tight retry loop, checked every 10 s
        clock.now += 10
        _refuse(tmp_path, uid, 10, 1000)
        assert reporter.check() == 0
    clock.now += 11
    assert reporter.check() == 1
    assert events.posted[1][2].startswith("50 device memory allocation(s) on npu-1")
    assert "(5000 bytes asked;" in events.posted[1][2]
    clock.now += 120
    assert reporter.check() == 0  # nothing new


def test_an_unprepared_claim_is_forgotten(tmp_path: Path) -> None:
    preparer, key, _, _, reporter = _setup(tmp_path)
    reporter.baseline()
    _refuse(tmp_path, key.uid, 1, 1)
    assert reporter.check() == 1
    preparer.unprepare(key)
    assert reporter.check() == 0
    assert reporter.tracked() == set()
