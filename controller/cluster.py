"""The cluster controller process (``xpushare controller``): one leader among the replicas keeps our
DeviceClasses installed and deletes the pools of nodes that no longer exist; every replica serves the
admission webhook (it is stateless, so the Service may send reviews to any of them).

Pools are deleted here and not only by the Node owner reference because an owner reference needs the
Node's uid, which a plugin may not know, and because the kubelet that would clean up is gone with the
node. Each reconcile pass is one traced span with the counts it acted on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.deviceclasses import device_classes, install_device_classes
from controller.leader import Clock, LeaderElector
from controller.settings import DRIVER_NAME, LeaderSettings, RetrySettings
from dra_driver.core.kube import NODES, RESOURCE_SLICES, ApiError, KubeApi
from dra_driver.core.kubetypes import Obj
from dra_driver.core.metrics import Registry, default_registry
from dra_driver.core.telemetry import tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    driver_name: str = DRIVER_NAME
    identity: str = "xpushare-controller"
    resync_seconds: float = 30.0
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    class_sharing_config: dict[str, Any] | None = None


def orphaned_slices(slices: list[Obj], node_names: set[str]) -> list[Obj]:
    """Node-local slices whose node is gone (pure, for the GC pass and its tests)."""
    return [
        obj for obj in slices if (node := (obj.get("spec") or {}).get("nodeName")) and node not in node_names
    ]


class ClusterController:
    """What the leader does; ``reconcile`` is one pass, ``run`` campaigns and repeats it."""

    def __init__(
        self,
        api: KubeApi,
        settings: ControllerSettings,
        registry: Registry | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.elector = LeaderElector(api, settings.identity, settings.leader, clock)
        metrics = registry or default_registry()
        self._collected = metrics.counter(
            "xpushare_orphaned_slices_deleted_total", "ResourceSlices deleted because their node is gone"
        )
        self._passes = metrics.counter("xpushare_controller_reconciles_total", "Controller passes by outcome",
                                       labels=("outcome",))
        self._pass_seconds = metrics.histogram(
            "xpushare_controller_reconcile_seconds", "Duration of controller passes", RECONCILE_BUCKETS
        )
        self._leader = metrics.gauge(
            "xpushare_controller_leader", "1 while this replica holds the leader Lease, else 0"
        )
        self._leader.set(0)

    def collect_orphaned_pools(self) -> list[str]:
        """Delete the slices of nodes that no longer exist; returns the deleted slice names."""
        slices = self.api.list(RESOURCE_SLICES, fieldSelector=f"spec.driver={self.settings.driver_name}")
        if not slices:
            return []
        nodes = {(node.get("metadata") or {}).get("name", "") for node in self.api.list(NODES)}
        deleted = []
        for obj in orphaned_slices(slices, nodes):
            name = obj["metadata"]["name"]
            self.api.delete(f"{RESOURCE_SLICES}/{name}")
            deleted.append(name)
            log.info(
                "deleted slice of a deleted node", extra={"slice": name, "node": obj["spec"]["nodeName"]}
            )
        self._collected.inc(len(deleted))
        return deleted

    def reconcile(self) -> None:
        """One pass: DeviceClasses, then garbage collection; errors are logged and retried next pass."""
        start = time.perf_counter()
        try:
            self._reconcile()
        finally:
            self._pass_seconds.observe(time.perf_counter() - start)

    def _reconcile(self) -> None:
        with _tracer.start_as_current_span("xpushare.controller_reconcile") as span:
            try:
                classes = device_classes(self.settings.driver_name, self.settings.class_sharing_config)
                installed = install_device_classes(self.api, classes)
                deleted = self.collect_orphaned_pools()
            except ApiError as err:
                span.set_attribute("xpushare.outcome", "failed")
                self._passes.inc(outcome="failed")
                log.warning("controller pass failed", extra={"error": str(err)})
                return
            span.set_attribute("xpushare.classes_written", len(installed.created) + len(installed.updated))
            span.set_attribute("xpushare.slices_deleted", len(deleted))
            span.set_attribute("xpushare.outcome", "ok")
            self._passes.inc(outcome="ok")

    def lead(self, lost: threading.Event) -> None:
        """The leader's loop: reconcile now, then every ``resync_seconds`` until leadership ends."""
        while True:
            self.reconcile()
            if self.elector.clock.wait(lost, self.settings.resync_seconds):
                return

    def run(self, stop: threading.Event, on_lead: Callable[[], None] | None = None) -> None:
        """Campaign and lead until ``stop``; after a lost lease, campaign again."""
        while not stop.is_set():

            def lead(lost: threading.Event) -> None:
                self._leader.set(1)
                try:
                    if on_lead is not None:
                        on_lead()
                    self.lead(lost)
                finally:
                    self._leader.set(0)

            self.elector.run(stop, lead)
