"""Events on claims: posted off the prepare path, in order, failures at most once per gap, never blocking."""

from __future__ import annotations

import threading
from typing import Any

from api.v1alpha1.sharing import ComputePolicy, Priority
from kubeletplugin.claim_events import (
    FAILED_REASON,
    PREPARED_REASON,
    ClaimEvents,
    claim_object,
    describe_limits,
)
from kubeletplugin.physical import ClaimLimit

GIB = 1 << 30


class Api:
    def __init__(self, gate: threading.Event | None = None) -> None:
        self.posted: list[tuple[str, str, str, bool]] = []
        self.gate = gate

    def claim_event(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        self.posted.append((claim["metadata"]["uid"], reason, message, warning))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_prepared_and_failed_claims_are_posted_in_order_and_failures_rate_limited() -> None:
    api, clock = Api(), Clock()
    events = ClaimEvents(api, min_gap_s=60, clock=clock)
    events.start()
    claim = claim_object("ns", "c", "uid-1")
    events.failed(claim, "no capacity")
    events.failed(claim, "no capacity")  # the kubelet's retry a moment later: not again
    clock.now += 61
    events.failed(claim, "still no capacity")
    events.prepared(claim, "prepared on n: npu-0 16Gi")
    events.failed(claim, "broken again")  # after a success, a failure is news
    events.stop()
    assert [(r, m) for _, r, m, _ in api.posted] == [
        (FAILED_REASON, "no capacity"),
        (FAILED_REASON, "still no capacity"),
        (PREPARED_REASON, "prepared on n: npu-0 16Gi"),
        (FAILED_REASON, "broken again"),
    ]
    assert [w for *_, w in api.posted] == [True, True, False, True]


def test_a_slow_api_server_never_blocks_the_caller_and_a_full_queue_drops() -> None:
    gate = threading.Event()
    api = Api(gate)
    events = ClaimEvents(api, size=2)
    events.start()
    for i in range(10):  # returns at once though nothing can be posted
        events.prepared(claim_object("ns", f"c{i}", f"uid-{i}"), "m")
    assert events.dropped >= 7
    gate.set()
    events.stop()
    assert 1 <= len(api.posted) <= 3


def test_an_api_that_raises_does_not_end_the_events_thread() -> None:
    class Broken(Api):
        def claim_event(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None:
            if message == "boom":
                raise RuntimeError("bug")
            super().claim_event(claim, reason, message, warning)

    api = Broken()
    events = ClaimEvents(api)
    events.start()
    events.post(claim_object("ns", "a", "uid-a"), "X", "boom")
    events.post(claim_object("ns", "b", "uid-b"), "Y", "fine")
    events.stop()
    assert [(u, r) for u, r, _, _ in api.posted] == [("uid-b", "Y")]


def test_the_prepared_message_names_each_device_s_limits() -> None:
    limits = [ClaimLimit(uuid="U0", device="npu-0", position=0, memory_bytes=16 * GIB, core_percent=25,
                         priority=Priority.NORMAL, policy=ComputePolicy.GUARANTEED),
              ClaimLimit(uuid="U1", device="gpu-0", position=1, memory_bytes=0, core_percent=100,
                         priority=Priority.HIGH, policy=ComputePolicy.FIXED)]
    assert describe_limits("node-a", limits) == (
        "prepared on node-a: npu-0 16Gi, 25 % of its compute (guaranteed, normal priority); "
        "gpu-0 no memory limit, 100 % of its compute (fixed, high priority)")
