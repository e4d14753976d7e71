"""The scheduler stand-in of the simulation: kube-scheduler's DRA plugin plus the resourceclaim controller.

For each pending pod that uses our driver (one of its claims names a DeviceClass whose selectors mention
the driver), one pass creates missing claims from templates, allocates the pod's unallocated claims with
the structured allocator on the first node where all of them fit (claims already allocated pin the
node), writes ``status.allocation`` and ``reservedFor`` through the claim's status subresource, and binds
the pod. A pod that fits nowhere stays pending with ``PodScheduled=False``, reason ``Unschedulable`` and
the allocator's message, plus a ``FailedScheduling`` Event, as with the real scheduler. Pods without
claims, or whose claims are for other drivers, are left alone.

``schedule_once`` is one deterministic pass (pods by creation time, then namespace and name; nodes by
name), for tests; ``run`` repeats it until stopped, for the demo.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kubernetes import client

from api.errors import XPUShareError
from dra_driver.core.kube import ApiError
from dra_driver.core.kubetypes import Obj
from dra_driver.core.telemetry import tracer
from dra_driver.simulation.allocator import CelCache, StructuredAllocator, UnschedulableError
from dra_driver.simulation.scheduler.cluster import Cluster, retry_conflicts
from dra_driver.simulation.scheduler.podclaims import resolve_pod_claims, template_spec_of

__all__ = ["PassReport", "SimScheduler"]

_log = logging.getLogger(__name__)
_tracer = tracer(__name__)
COMPONENT = "xpushare-sim-scheduler"


@dataclass
class PassReport:
    """What one pass did: pods bound (to which node), left pending (why), or failed on an API error."""

    bound: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class _Snapshot:
    nodes: list[str]
    classes: list[Obj]
    claims: dict[tuple[str, str], Obj]
    allocator: StructuredAllocator


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _allocation(claim: Mapping[str, Any]) -> Obj | None:
    return (claim.get("status") or {}).get("allocation")


class SimScheduler:
    """Schedules pods that use DRA claims of one driver against the published ResourceSlices."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        driver_name: str = "xpushare.io",
        poll_interval: float = 0.5,
        cel: CelCache | None = None,
    ) -> None:
        self._cluster = Cluster(api_client)
        self._driver = driver_name
        self._interval = poll_interval
        self._cel = cel or CelCache()
        self._seen_pods: set[Any] = set()

    def run(self, stop: threading.Event) -> None:
        """Schedule until ``stop`` is set, one pass per poll interval; API errors are logged, not fatal."""
        while not stop.is_set():
            try:
                self.schedule_once()
            except XPUShareError as err:
                _log.warning("scheduling pass failed", extra={"error": str(err)})
            stop.wait(self._interval)

    def schedule_once(self) -> PassReport:
        """One pass over the pending pods, in a fixed order."""
        report = PassReport()
        with _tracer.start_as_current_span("simscheduler.pass"):
            self._release_claims_of_gone_pods(report)
            snapshot = self._snapshot()
            for pod in self._pending_pods():
                try:
                    self._schedule_pod(pod, snapshot, report)
                except XPUShareError as err:
                    _log.warning("scheduling a pod failed", extra={"pod": _key(pod), "error": str(err)})
                    report.errors[_key(pod)] = str(err)
        return report

    def _release_claims_of_gone_pods(self, report: PassReport) -> None:
        """As the resourceclaim controller does: drop ``reservedFor`` entries of pods that are gone, and
        deallocate a claim that is then reserved for nobody, so its devices are free again.

        Only pods this stand-in saw in an earlier pass count as gone: entries naming pods it never saw
        (claims written by hand, as tests do) are left alone."""
        live = {p["metadata"].get("uid") for p in self._cluster.pods()}
        gone, self._seen_pods = self._seen_pods - live, live
        if not gone:
            return
        for claim in self._cluster.claims():
            reserved = (claim.get("status") or {}).get("reservedFor") or []
            if not any(r.get("resource") == "pods" and r.get("uid") in gone for r in reserved):
                continue
            try:
                retry_conflicts(partial(self._release, claim, gone), f"release resourceclaim {_key(claim)}")
            except XPUShareError as err:
                _log.warning("releasing a claim failed", extra={"claim": _key(claim), "error": str(err)})
                report.errors[_key(claim)] = str(err)

    def _release(self, claim: Obj, gone: set[Any]) -> Obj | None:
        meta = claim["metadata"]
        current = self._cluster.claim(meta["namespace"], meta["name"])
        if current is None:
            return None
        status = current.setdefault("status", {})
        reserved = status.get("reservedFor") or []
        status["reservedFor"] = [
            r for r in reserved if r.get("resource") != "pods" or r.get("uid") not in gone
        ]
        if not status["reservedFor"]:
            status.pop("reservedFor")
            status.pop("allocation", None)
            status.pop("devices", None)
        _log.info("claim released", extra={"claim": _key(claim), "deallocated": "allocation" not in status})
        return self._cluster.replace_claim_status(current)

    def _snapshot(self) -> _Snapshot:
        nodes = sorted(
            n["metadata"]["name"]
            for n in self._cluster.nodes()
            if not (n.get("spec") or {}).get("unschedulable")
        )
        slices, classes = self._cluster.slices(), self._cluster.device_classes()
        if not nodes:
            # A bare simulation may run without Node objects; its nodes are those the slices name.
            nodes = sorted(
                {str(s["spec"]["nodeName"]) for s in slices if (s.get("spec") or {}).get("nodeName")}
            )
        claims = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in self._cluster.claims()}
        allocated = [c for c in claims.values() if _allocation(c)]
        allocator = StructuredAllocator(slices, classes, allocated, cel=self._cel)
        return _Snapshot(nodes, classes, claims, allocator)

    def _pending_pods(self) -> list[Obj]:
        pods = [
            p
            for p in self._cluster.pods()
            if not (p.get("spec") or {}).get("nodeName")
            and not p["metadata"].get("deletionTimestamp")
            and (p.get("spec") or {}).get("resourceClaims")
            and (p.get("status") or {}).get("phase", "Pending") == "Pending"
        ]
        return sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", _key(p)))

    def _schedule_pod(self, pod: Obj, snapshot: _Snapshot, report: PassReport) -> None:
        if not self._is_ours(pod, snapshot):
            return
        resolved = resolve_pod_claims(self._cluster, pod, snapshot.claims)
        if resolved.missing:
            self._unschedulable(pod, resolved.missing, report)
            return
        pending = [c for c in resolved.claims if not _allocation(c)]
        pinned = [a for a in (_allocation(c) for c in resolved.claims) if a]
        try:
            placement = snapshot.allocator.place(pending, snapshot.nodes, pinned)
        except UnschedulableError as err:
            self._unschedulable(pod, err.reason, report)
            return
        allocations = dict(zip((_key(c) for c in pending), placement.allocations, strict=True))
        for claim in resolved.claims:
            updated = self._reserve(claim, pod, allocations.get(_key(claim)))
            snapshot.claims[(updated["metadata"]["namespace"], updated["metadata"]["name"])] = updated
            if _key(claim) in allocations:
                snapshot.allocator.record(updated)
        self._cluster.bind(pod, placement.node)
        self._set_scheduled(pod)
        report.bound[_key(pod)] = placement.node
        _log.info("pod bound", extra={"pod": _key(pod), "node": placement.node})

    def _is_ours(self, pod: Obj, snapshot: _Snapshot) -> bool:
        """Whether any claim of the pod asks for a device class of our driver (unknown claims count)."""
        ours = {
            c["metadata"]["name"]
            for c in snapshot.classes
            if any(self._driver in str(s) for s in (c.get("spec") or {}).get("selectors") or ())
        }
        for entry in pod["spec"]["resourceClaims"]:
            spec = template_spec_of(self._cluster, pod, entry)
            if spec is None or ours.intersection(_class_names(spec)):
                return True
        return False

    def _reserve(self, claim: Obj, pod: Obj, allocation: Obj | None) -> Obj:
        """Write the allocation (if new) and add the pod to reservedFor, re-reading on conflicts."""
        meta = claim["metadata"]

        def attempt() -> Obj:
            current = self._cluster.claim(meta["namespace"], meta["name"])
            if current is None:
                raise ApiError(f"resourceclaim {_key(claim)} disappeared while scheduling", 404)
            status = current.setdefault("status", {})
            if allocation is not None:
                if status.get("allocation") and status["allocation"] != allocation:
                    # A plain ApiError, not a ConflictError: re-reading cannot make the allocations agree.
                    raise ApiError(f"resourceclaim {_key(claim)} was allocated by someone else", 409)
                status["allocation"] = allocation
            reserved = status.setdefault("reservedFor", [])
            uid = pod["metadata"].get("uid")
            if not any(r.get("uid") == uid for r in reserved):
                reserved.append({"resource": "pods", "name": pod["metadata"]["name"], "uid": uid})
            return self._cluster.replace_claim_status(current)

        return retry_conflicts(attempt, f"reserve resourceclaim {_key(claim)}")

    def _set_scheduled(self, pod: Obj) -> None:
        """PodScheduled=True, as the API server's binding does (the spec.nodeName fallback does not)."""
        conditions = [
            c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") != "PodScheduled"
        ]
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()})
        meta = pod["metadata"]
        self._cluster.patch_pod_status(
            meta["namespace"], meta["name"], {"status": {"conditions": conditions}}
        )

    def _unschedulable(self, pod: Obj, message: str, report: PassReport) -> None:
        report.pending[_key(pod)] = message
        conditions = list((pod.get("status") or {}).get("conditions") or ())
        previous = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if previous and previous.get("reason") == "Unschedulable" and previous.get("message") == message:
            return  # already reported; the real scheduler also does not repeat the same condition
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": _now(),
        }
        conditions = [c for c in conditions if c.get("type") != "PodScheduled"] + [condition]
        meta = pod["metadata"]
        self._cluster.patch_pod_status(
            meta["namespace"], meta["name"], {"status": {"conditions": conditions}}
        )
        self._cluster.create_event(meta["namespace"], _failed_scheduling_event(pod, message))
        _log.info("pod unschedulable", extra={"pod": _key(pod), "reason": message})


def _class_names(spec: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for request in (spec.get("devices") or {}).get("requests") or ():
        alternatives: Sequence[Mapping[str, Any]] = [
            request.get("exactly") or {},
            *(request.get("firstAvailable") or ()),
        ]
        names.update(str(a["deviceClassName"]) for a in alternatives if a.get("deviceClassName"))
    return names


def _failed_scheduling_event(pod: Mapping[str, Any], message: str) -> Obj:
    meta = pod["metadata"]
    now = _now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "reason": "FailedScheduling",
        "message": message,
        "type": "Warning",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
