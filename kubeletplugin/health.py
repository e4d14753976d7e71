"""Device health for the kubelet (``v1alpha1.DRAResourceHealth``), fed by the discovery backend.

A monitor thread asks the backend for health every ``interval_s`` (``check_health`` is cheap by
contract) and bumps a version when anything changed; each ``NodeWatchResources`` stream sends the full
state at once and again after every change. Every name this node may have published for a physical
device (the device itself and its partitions) carries that device's health, because the kubelet matches
health to pods by the allocated device name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from api.kubelet import health_v1alpha1_grpc, health_v1alpha1_pb2
from dra_driver.core.devices import Device, Health
from dra_driver.core.discovery.base import DeviceBackend
from kubeletplugin.limits import Catalog

log = logging.getLogger(__name__)

_STATUS = {
    Health.HEALTHY: health_v1alpha1_pb2.HEALTHY,
    Health.UNHEALTHY: health_v1alpha1_pb2.UNHEALTHY,
    Health.UNKNOWN: health_v1alpha1_pb2.UNKNOWN,
}


class HealthMonitor:
    """Polls the backend; thread-safe readers see a consistent (version, devices) pair."""

    def __init__(self, backend: DeviceBackend, devices: list[Device], interval_s: float = 10.0) -> None:
        self._backend = backend
        self._devices = list(devices)
        self._updated = {d.uuid: int(time.time()) for d in devices}
        self.interval_s = interval_s
        self._version = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_change: Callable[[list[Device]], None] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> tuple[int, list[Device], dict[str, int]]:
        with self._changed:
            return self._version, list(self._devices), dict(self._updated)

    def wait_for_change(self, version: int, timeout_s: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._version != version or self._stop.is_set(), timeout_s)

    def poll_once(self) -> bool:
        """Refresh health now; True when any device changed."""
        try:
            fresh = self._backend.check_health(self._devices)
        except Exception as err:  # a backend failure must not kill the stream: report it as unknown
            log.warning("health check failed", extra={"error": str(err)})
            fresh = [d.with_health(Health.UNKNOWN, f"health check failed: {err}") for d in self._devices]
        changed = [(d.health, d.health_message) for d in fresh] != [
            (d.health, d.health_message) for d in self._devices
        ]
        if changed:
            now = int(time.time())
            with self._changed:
                for old, new in zip(self._devices, fresh, strict=True):
                    if (old.health, old.health_message) != (new.health, new.health_message):
                        self._updated[new.uuid] = now
                        log.info(
                            "device health changed", extra={"device": new.name, "health": new.health.value}
                        )
                self._devices = fresh
                self._version += 1
                self._changed.notify_all()
            if self.on_change is not None:
                self.on_change(fresh)
        return changed

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll_once()


class HealthServicer(health_v1alpha1_grpc.DRAResourceHealthServicer):
    def __init__(self, monitor: HealthMonitor, catalog: Catalog, pool: str) -> None:
        self._monitor = monitor
        self._catalog = catalog
        self._pool = pool

    def _response(
        self, devices: list[Device], updated: dict[str, int]
    ) -> health_v1alpha1_pb2.NodeWatchResourcesResponse:
        by_uuid = {d.uuid: d for d in devices}
        response = health_v1alpha1_pb2.NodeWatchResourcesResponse()
        timeout = int(self._monitor.interval_s * 3) + 1
        for offer in self._catalog.offers():
            device = by_uuid.get(offer.physical.uuid)
            if device is None:
                continue
            response.devices.add(
                device=health_v1alpha1_pb2.DeviceIdentifier(pool_name=self._pool, device_name=offer.name),
                health=_STATUS[device.health],
                last_updated_time=updated.get(device.uuid, 0),
                health_check_timeout_seconds=timeout,
                message=device.health_message,
            )
        return response

    def NodeWatchResources(  # noqa: N802 - the gRPC method name
        self, request: health_v1alpha1_pb2.NodeWatchResourcesRequest, context: grpc.ServicerContext
    ) -> Iterator[health_v1alpha1_pb2.NodeWatchResourcesResponse]:
        version, devices, updated = self._monitor.snapshot()
        yield self._response(devices, updated)
        while context.is_active() and not self._monitor.stopped:
            self._monitor.wait_for_change(version, timeout_s=1.0)
            current, devices, updated = self._monitor.snapshot()
            if current != version:
                version = current
                yield self._response(devices, updated)


def add_health_service(server: grpc.Server, servicer: HealthServicer) -> None:
    health_v1alpha1_grpc.add_DRAResourceHealthServicer_to_server(servicer, server)
