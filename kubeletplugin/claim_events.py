"""Events on ResourceClaims for what their users must know: a claim was prepared (with the limits its
containers get) or could not be prepared (with the reason).

``kubectl describe resourceclaim`` (and the pod's events through it) then answers "what did my pod get"
and "why is it stuck in ContainerCreating" without access to the node. Events are posted from a thread
of their own, so the kubelet's prepare never waits on the API server; the queue is bounded (a flood
drops the newest, logged), and a claim's failure is reported at most once per ``min_gap_s``: the kubelet
retries a failing prepare in a loop, and every retry would otherwise post.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubeletplugin.physical import ClaimLimit

log = logging.getLogger(__name__)

PREPARED_REASON = "Prepared"
FAILED_REASON = "PrepareFailed"
QUEUE_SIZE = 256
_STOP = object()


class ClaimEventApi(Protocol):
    def claim_event(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None: ...


@dataclass(frozen=True, slots=True)
class _Event:
    claim: dict[str, Any]
    reason: str
    message: str
    warning: bool


def claim_object(namespace: str, name: str, uid: str) -> dict[str, Any]:
    """The part of a claim an event names."""
    return {"metadata": {"namespace": namespace, "name": name, "uid": uid}}


def describe_limits(node: str, limits: Sequence[ClaimLimit]) -> str:
    """``prepared on node-a: npu-1 16Gi, 25 % of its compute (guaranteed, normal priority); ...``"""
    parts = []
    for limit in limits:
        memory = f"{limit.memory_bytes / (1 << 30):g}Gi" if limit.memory_bytes else "no memory limit"
        parts.append(f"{limit.device} {memory}, {limit.core_percent} % of its compute ({limit.policy.value}, "
                     f"{limit.priority.value} priority)")
    return f"prepared on {node}: " + "; ".join(parts)


class ClaimEvents:
    """``start``, then ``prepared``/``failed`` from any thread (never blocking), then ``stop``."""

    def __init__(self, api: ClaimEventApi, *, min_gap_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, size: int = QUEUE_SIZE) -> None:
        self.api = api
        self.min_gap_s = min_gap_s
        self.clock = clock
        self.dropped = 0
        self._queue: queue.Queue[_Event | object] = queue.Queue(maxsize=size)
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="claim-events", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Post what is queued (within ``timeout_s``), then end the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.warning("claim events: queue full at stop; the rest is dropped")
        self._thread.join(timeout=timeout_s)
        self._thread = None

    def post(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None:
        """Any event on a claim, posted from the events thread."""
        self._put(_Event(claim, reason, message, warning))

    def prepared(self, claim: dict[str, Any], message: str) -> None:
        uid = str((claim.get("metadata") or {}).get("uid", ""))
        with self._lock:
            self._failed_at.pop(uid, None)  # a later failure is news again
        self._put(_Event(claim, PREPARED_REASON, message, warning=False))

    def failed(self, claim: dict[str, Any], message: str) -> None:
        uid = str((claim.get("metadata") or {}).get("uid", ""))
        now = self.clock()
        with self._lock:
            last = self._failed_at.get(uid)
            if last is not None and now - last < self.min_gap_s:
                return
            self._failed_at[uid] = now
            if len(self._failed_at) > 4 * QUEUE_SIZE:  # claims that never came back: forget the oldest
                for old in sorted(self._failed_at, key=self._failed_at.__getitem__)[:QUEUE_SIZE]:
                    del self._failed_at[old]
        self._put(_Event(claim, FAILED_REASON, message, warning=True))

    def _put(self, event: _Event) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            log.warning("claim events: queue full, event dropped",
                        extra={"reason": event.reason, "dropped": self.dropped})

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, _Event)
            try:  # the API client logs and swallows its own failures; anything else must not end the thread
                self.api.claim_event(item.claim, item.reason, item.message, warning=item.warning)
            except Exception:
                log.exception("claim events: posting failed", extra={"reason": item.reason})
