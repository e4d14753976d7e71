"""Events for device allocations refused at a claim's memory limit.

"Why did my job run out of memory?" is answered where users look: a Warning event on the ResourceClaim
(``kubectl describe resourceclaim``, and the pod's claim status links to it) naming the device, how many
allocations were refused and how many bytes they asked for, beside the limit and the usage then. The
shims count refusals in each claim's ledger (``refused_allocs``, ``refused_bytes``); this reporter reads
those counters every ``interval_s`` (bounded reads, never a lock) and posts at most one event per claim
per ``min_gap_s``, summing what happened in between, so a workload that retries in a tight loop cannot
flood the API server. Refusals counted before the plugin started are not reported again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubeletplugin.checkpoint import ClaimState, PreparedClaim
from kubeletplugin.physical import by_physical
from kubeletplugin.state import ClaimPreparer

log = logging.getLogger(__name__)

REASON = "MemoryLimitReached"

Counts = tuple[int, int]  # allocations refused, bytes they asked for


class ClaimEvents(Protocol):
    def claim_event(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """One device's ledger of a claim, as read for the reporter."""

    uuid: str
    device: str
    counts: Counts
    limit_bytes: int
    used_bytes: int
    peak_bytes: int

    def describe(self, allocs: int, asked: int) -> str:
        return (f"{allocs} device memory allocation(s) on {self.device} refused at the claim's limit of "
                f"{self.limit_bytes} bytes ({asked} bytes asked; {self.used_bytes} bytes in use, peak "
                f"{self.peak_bytes}); raise the claim's memory or lower the workload's")


def _claim_object(claim: PreparedClaim) -> dict[str, Any]:
    return {"metadata": {"namespace": claim.namespace, "name": claim.name, "uid": claim.uid}}


class RefusalReporter:
    """Turns new refusals in the claims' ledgers into rate-limited events; ``start`` then ``stop``."""

    def __init__(
        self,
        preparer: ClaimPreparer,
        api: ClaimEvents,
        *,
        interval_s: float = 10.0,
        min_gap_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.preparer, self.api = preparer, api
        self.interval_s, self.min_gap_s, self.clock = interval_s, min_gap_s, clock
        self._reported: dict[tuple[str, str], Counts] = {}  # (claim, device UUID): counts last reported
        self._last_event: dict[str, float] = {}  # claim UID: when its last event was posted
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def baseline(self) -> None:
        """Take the counts as they are as already reported (at start: refusals before it were)."""
        for uid, claim in self._prepared().items():
            for reading in self._readings(uid, claim):
                self._reported[(uid, reading.uuid)] = reading.counts

    def check(self) -> int:
        """Post the events due now; returns how many were posted."""
        posted = 0
        prepared = self._prepared()
        for key in [k for k in self._reported if k[0] not in prepared]:
            del self._reported[key]  # unprepared: its UID will not come back
        for uid in [u for u in self._last_event if u not in prepared]:
            del self._last_event[uid]
        now = self.clock()
        for uid, claim in prepared.items():
            last = self._last_event.get(uid)
            if last is not None and now - last < self.min_gap_s:
                continue
            lines: list[str] = []
            fresh: dict[tuple[str, str], Counts] = {}
            for reading in self._readings(uid, claim):
                before = self._reported.get((uid, reading.uuid), (0, 0))
                allocs, asked = reading.counts[0] - before[0], reading.counts[1] - before[1]
                if allocs > 0:
                    lines.append(reading.describe(allocs, max(0, asked)))
                    fresh[(uid, reading.uuid)] = reading.counts
            if not lines:
                continue
            self.api.claim_event(_claim_object(claim), REASON, "; ".join(lines))
            self._reported.update(fresh)
            self._last_event[uid] = now
            posted += 1
        return posted

    def tracked(self) -> set[str]:
        """The claims whose counts are remembered (prepared ones only)."""
        return {uid for uid, _ in self._reported}

    def _prepared(self) -> dict[str, PreparedClaim]:
        return {uid: c for uid, c in self.preparer.store.claims().items()
                if c.state is ClaimState.PREPARE_COMPLETED}

    def _readings(self, uid: str, claim: PreparedClaim) -> list[Reading]:
        """Per device of the claim whose ledger can be read: its refusal counters and usage now."""
        ledgers = self.preparer.ledgers
        if ledgers is None or not ledgers.enabled():
            return []
        readings = []
        for share in by_physical(claim.devices):
            usage = ledgers.claim_usage(share.uuid, uid)
            if usage is not None:
                readings.append(Reading(share.uuid, share.device, (usage.refused_allocs, usage.refused_bytes),
                                        usage.limit_bytes, usage.used_bytes, usage.peak_bytes))
        return readings

    def start(self) -> RefusalReporter:
        self.baseline()
        self._thread = threading.Thread(target=self._run, name="refusal-events", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # a bad read or a failed post must not end the reporting
                log.exception("refusal events: check failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
