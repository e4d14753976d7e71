"""Leader election with a coordination.k8s.io/v1 Lease, so only one controller replica acts at a time.

The rules follow client-go's leaderelection: a candidate takes the lease when it is free or when its
holder has not renewed it for ``leaseDuration`` as measured on the candidate's own clock (from the
moment the candidate last saw the record change, so clock skew between replicas does not matter); the
leader renews every ``retryPeriod`` and steps down when it could not renew for ``renewDeadline``.
Writes carry the lease's resourceVersion, so two candidates racing for a free lease get one 409.
A leader that stops cleanly releases the lease so another replica takes over at once.

Time comes from a ``Clock`` so tests can move it by hand instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from controller.settings import LeaderSettings
from dra_driver.core.kube import ApiError, KubeApi
from dra_driver.core.kubetypes import Obj

log = logging.getLogger(__name__)



class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait up to ``seconds``; True when ``stop`` was set."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(seconds)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One candidate for one Lease; ``run`` blocks while campaigning and leading."""

    def __init__(
        self, api: KubeApi, identity: str, settings: LeaderSettings, clock: Clock | None = None
    ) -> None:
        self.api = api
        self.identity = identity
        self.settings = settings
        self.clock = clock or SystemClock()
        self.path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{settings.namespace}/leases/{settings.lease_name}"
        )
        self._observed: tuple[str, str, str] | None = None  # holder, renewTime, resourceVersion
        self._observed_at = 0.0
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    def try_acquire_or_renew(self) -> bool:
        """One election step: True when this candidate holds the lease afterwards."""
        try:
            lease = self.api.get(self.path)
        except ApiError as err:
            if err.status != 404:
                log.warning("lease read failed", extra={"lease": self.path, "error": str(err)})
                return False
            return self._write(None)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        self._observe(holder, spec, lease)
        duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_duration_seconds)
        expired = self.clock.monotonic() >= self._observed_at + duration
        if holder and holder != self.identity and not expired:
            self._leader = False
            return False
        return self._write(lease)

    def _observe(self, holder: str, spec: Obj, lease: Obj) -> None:
        record = (
            holder,
            str(spec.get("renewTime")),
            str((lease.get("metadata") or {}).get("resourceVersion")),
        )
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock.monotonic()

    def _write(self, lease: Obj | None) -> bool:
        now = _micro_time()
        spec = dict((lease or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        spec.update(
            holderIdentity=self.identity,
            renewTime=now,
            leaseDurationSeconds=max(1, round(self.settings.lease_duration_seconds)),
        )
        metadata: Obj = {"name": self.settings.lease_name, "namespace": self.settings.namespace}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
        try:
            if lease is None:
                self.api.create(self.path.rsplit("/", 1)[0], body)
            else:
                metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
                self.api.replace(self.path, body)
        except ApiError as err:
            if err.status not in (409, 422):
                log.warning("lease write failed", extra={"lease": self.path, "error": str(err)})
            self._leader = False
            return False
        if not self._leader:
            log.info("became leader", extra={"identity": self.identity, "lease": self.path})
        self._leader = True
        return True

    def release(self) -> None:
        """Give the lease up (holder cleared, 1 s duration) so another replica need not wait it out."""
        if not self._leader:
            return
        self._leader = False
        try:
            lease = self.api.get(self.path)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = {
                **lease["spec"],
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": _micro_time(),
            }
            self.api.replace(self.path, {**lease, "spec": spec})
            log.info("released leadership", extra={"identity": self.identity})
        except ApiError as err:
            log.warning("lease release failed", extra={"lease": self.path, "error": str(err)})

    def run(self, stop: threading.Event, lead: Callable[[threading.Event], None]) -> None:
        """Campaign until elected, then call ``lead(lost)`` in a thread while renewing.

        ``lost`` is set when leadership ends (renew deadline passed, or ``stop``); ``lead`` must return
        soon after. Returns once ``stop`` is set or leadership was lost.
        """
        while not self.try_acquire_or_renew():
            if self.clock.wait(stop, self.settings.retry_period_seconds):
                return
        lost = threading.Event()
        worker = threading.Thread(target=lead, args=(lost,), name="xpushare-leader", daemon=True)
        worker.start()
        try:
            self._renew_until_lost(stop, worker)
        finally:
            lost.set()
            worker.join(timeout=self.settings.renew_deadline_seconds)
            if stop.is_set():
                self.release()
            self._leader = False

    def _renew_until_lost(self, stop: threading.Event, worker: threading.Thread) -> None:
        last_renew = self.clock.monotonic()
        while not self.clock.wait(stop, self.settings.retry_period_seconds):
            if not worker.is_alive():
                # The leader's work ended on its own (a crash): holding the lease would stall the cluster.
                log.error("leader work stopped; stepping down", extra={"identity": self.identity})
                self.release()
                return
            if self.try_acquire_or_renew():
                last_renew = self.clock.monotonic()
            elif (
                self.clock.monotonic() - last_renew >= self.settings.renew_deadline_seconds
                or not self._holder_is_me()
            ):
                log.warning("lost leadership", extra={"identity": self.identity})
                return

    def _holder_is_me(self) -> bool:
        return self._observed is not None and self._observed[0] == self.identity
