"""The ``xpushare.io/quota`` claim annotation: live quota changes through the API server.

``kubectl annotate resourceclaim NAME xpushare.io/quota=memory=8Gi,cores=30`` changes a prepared claim's
limits on its node, as ``xpushare quota`` does there (``kubeletplugin.quota.apply_quota``: board entries,
limits file, quota record). Removing the annotation gives the claim its whole allocation back. A value
that does not parse or exceeds the allocation changes nothing and is reported as a Warning Event on the
claim, naming the field and the allowed range (once per value).

How it scales: one watch per node on all ResourceClaims, started without a resourceVersion (the current
claims arrive as ADDED) and resumed from the last version seen, bookmarks included; a 410 starts over.
That is one long-lived connection per node, served from the API server's watch cache, and no periodic
reads: a change reaches the node in the time the API server takes to send one event. ResourceClaims
cannot be field-selected by node, so each node reads every claim's change and drops those it has not
prepared after looking up the UID in memory. (Per-claim polling would cost one GET per prepared claim
every period on every node; a watch per namespace one connection per namespace.)

A claim annotated before it was prepared is handled right after prepare, before the kubelet gets the
answer (``ClaimPreparer.on_prepared``), so its containers start with the quota.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from api.errors import ConfigError, XPUShareError
from dra_driver.core.kube import ApiError, Backoff
from kubeletplugin.checkpoint import ClaimState
from kubeletplugin.quota import (
    ANNOTATION,
    QuotaError,
    apply_quota,
    parse_annotation,
    restore_allocation,
)
from kubeletplugin.state import ClaimPreparer

log = logging.getLogger(__name__)

INVALID_REASON = "InvalidQuota"
FAILED_REASON = "QuotaNotApplied"
APPLIED_REASON = "QuotaApplied"
_BACKOFF = Backoff(attempts=None, base_seconds=0.2, cap_seconds=10.0)


class ClaimWatch(Protocol):
    """What the watcher needs of the API server (``kube.KubeClaimReader``)."""

    def watch_claims(
        self, resource_version: str, timeout_s: int, on_open: Callable[[Any], None] | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def claim_event(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None: ...


class QuotaWatcher:
    """Applies the quota annotation of the claims this node prepared; ``start`` then ``stop``."""

    def __init__(
        self,
        preparer: ClaimPreparer,
        api: ClaimWatch,
        watch_timeout_s: int = 300,
        backoff: Backoff = _BACKOFF,
    ) -> None:
        self.preparer, self.api, self.paths = preparer, api, preparer.paths
        self.watch_timeout_s = watch_timeout_s
        self.backoff = backoff
        self._seen: dict[str, str | None] = {}  # claim UID -> annotation value last handled
        self._seen_lock = threading.Lock()
        self._stop = threading.Event()
        self._response: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> QuotaWatcher:
        self._thread = threading.Thread(target=self._run, name="quota-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            _close(response)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        version, failures = "", 0
        while not self._stop.is_set():
            try:
                version = self._watch(version)
                failures = 0
            except ApiError as err:
                if self._stop.is_set():
                    return
                delay = self.backoff.delay(failures)
                failures += 1
                log.warning("claim watch failed, retrying", extra={"error": str(err), "delay": delay})
                self._stop.wait(delay)

    def _watch(self, version: str) -> str:
        """One watch request; returns the version to resume from ("" after a 410: start over)."""
        for event in self.api.watch_claims(version, self.watch_timeout_s, self._opened):
            if self._stop.is_set():
                break
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                log.info("claim watch expired; starting over", extra={"status": obj.get("code")})
                return ""
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                self.handle(obj)
            elif kind == "DELETED":
                self._forget(str((obj.get("metadata") or {}).get("uid", "")))
        self._response = None
        return version

    def _opened(self, response: Any) -> None:
        """In the watch thread, as a request opens: one opened after ``stop`` is closed at once (``stop``
        itself would join this very thread)."""
        self._response = response
        if self._stop.is_set():
            _close(response)

    def _forget(self, uid: str) -> None:
        with self._seen_lock:
            self._seen.pop(uid, None)

    def handle(self, obj: dict[str, Any]) -> None:
        """Apply the claim's annotation if it changed since last handled; never raises."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        prepared = self.preparer.store.get(uid)
        if prepared is None or prepared.state is not ClaimState.PREPARE_COMPLETED:
            self._forget(uid)
            return
        value = (meta.get("annotations") or {}).get(ANNOTATION)
        with self._seen_lock:
            known, previous = uid in self._seen, self._seen.get(uid)
            if (known and previous == value) or (not known and value is None):
                self._seen[uid] = value
                return
            self._seen[uid] = value
        try:
            with self.preparer.locked(uid):
                self._apply(obj, uid, value)
        except Exception:  # a bug must not end the watch: the next change is handled again
            log.exception("quota annotation not applied", extra={"claim_uid": uid})

    def _apply(self, obj: dict[str, Any], uid: str, value: str | None) -> None:
        claim = self.preparer.store.get(uid)
        if claim is None or claim.state is not ClaimState.PREPARE_COMPLETED:
            return  # unprepared meanwhile
        try:
            if value is None:
                quotas = restore_allocation(self.paths, claim)
            else:
                quotas = apply_quota(self.paths, uid, parse_annotation(value), claim)
        except ConfigError as err:
            self._report(obj, INVALID_REASON, f"{ANNOTATION}={value!r} ignored: {err}")
            return
        except (QuotaError, XPUShareError) as err:
            self._report(obj, FAILED_REASON, f"{ANNOTATION}={value!r} not applied: {err}")
            return
        summary = ", ".join(f"{q.device}: memory {q.memory_bytes} bytes, cores {q.core_percent}%"
                            for q in quotas)
        self.api.claim_event(obj, APPLIED_REASON, f"quota applied on this node: {summary}", warning=False)

    def _report(self, obj: dict[str, Any], reason: str, message: str) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        log.warning("quota annotation refused", extra={"claim_uid": uid, "reason": reason, "error": message})
        self.api.claim_event(obj, reason, message)


def _close(response: Any) -> None:
    try:
        response.shutdown()  # ends a blocked read at once
    except Exception:  # best effort: the server-side timeout ends it anyway
        log.debug("closing the claim watch failed", exc_info=True)
