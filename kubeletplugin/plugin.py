"""The node plugin process: discovery, recovery, the gRPC sockets, slice publishing, clean shutdown.

Start order matters to the kubelet: the DRA socket must serve before the registration socket appears
(the kubelet dials the endpoint as soon as it sees the registration), and recovery must finish before
either (a prepare must never race the re-creation of checkpointed claims). Slices are published once the
node can prepare claims. On stop the registration socket goes first, so the kubelet stops sending calls,
then the DRA server drains and its socket is removed. The metrics endpoint starts first (its /readyz
turns ready once the DRA socket serves) and stops last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from api.errors import XPUShareError
from controller.publisher import KubeApi, PublishError, SlicePublisher
from controller.settings import SliceSettings
from dra_driver.core.devices import Device, DeviceType
from dra_driver.core.discovery.base import DeviceBackend, open_backend
from dra_driver.core.fileio import ensure_directory
from dra_driver.core.metrics import Registry, default_registry
from dra_driver.core.metrics_server import MetricsServer
from dra_driver.core.telemetry import tracer
from dra_driver.core.vendors import PROFILES, nvidia
from dra_driver.core.vendors.nvidia.toolkit import SPEC_DIRS, referred_spec
from kubeletplugin import cdi
from kubeletplugin.checkpoint import read_boot_id
from kubeletplugin.checkpoint_store import CheckpointStore
from kubeletplugin.claim_events import ClaimEvents, claim_object, describe_limits
from kubeletplugin.health import HealthMonitor, HealthServicer, add_health_service
from kubeletplugin.kube import KubeClaimReader
from kubeletplugin.ledgers import Ledgers
from kubeletplugin.limits import Catalog
from kubeletplugin.metrics import NodeCollector, NodeMetrics
from kubeletplugin.nodedirs import SHARED_DIR_MODE, prepare_directories
from kubeletplugin.physical import claim_limits
from kubeletplugin.quota_watch import QuotaWatcher
from kubeletplugin.recovery import RecoveryReport, recover
from kubeletplugin.refusal_events import RefusalReporter
from kubeletplugin.registration import RegistrationServicer, add_registration_service
from kubeletplugin.server import DraService, add_dra_services
from kubeletplugin.settings import PluginSettings
from kubeletplugin.sizes import UNSIZED_REASON, unsized_partitions
from kubeletplugin.state import ClaimKey, ClaimPreparer
from kubeletplugin.usage_sampler import UsageSampler

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


def api_client(kubeconfig: Path | None) -> k8s.ApiClient:
    """A client from the kubeconfig, else the in-cluster service account."""
    if kubeconfig is not None:
        created: k8s.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig)
        )
        return created
    k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()


def _log_driver_files(layout: cdi.HostLayout, device_types: set[DeviceType]) -> None:
    """Say, once at start, what containers of each vendor on this node get and which of its usual files
    the host lacks (they are left out: a missing source would fail every container)."""
    for device_type in sorted(device_types):
        profile, host = PROFILES[device_type], layout.vendor(device_type)
        missing = [path for path in profile.driver_files if path not in host.mounts]
        facts = {"vendor": profile.vendor, "files": len(host.mounts), "library_dirs": list(host.library_dirs),
                 "driver_prefix": host.host_prefix, "vendor_cdi_kind": host.cdi_kind}
        log.info("driver files for containers", extra=facts)
        if missing:
            log.warning("driver files missing on this host: left out of containers",
                        extra={"vendor": profile.vendor, "missing": missing})


def serve_unix(server: grpc.Server, path: Path) -> None:
    """Bind ``server`` to a unix socket at ``path`` that only root can open (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a socket left by a killed process
    old_umask = os.umask(0o177)  # the socket is never visible with wider permissions
    try:
        if server.add_insecure_port(f"unix://{path}") == 0:
            raise XPUShareError(f"listen on unix socket {path}: gRPC could not bind it")
        server.start()
    finally:
        os.umask(old_umask)
    path.chmod(0o600)


class Plugin:
    """One running node plugin; ``start`` then ``stop`` (or ``wait``)."""

    def __init__(
        self,
        settings: PluginSettings,
        backend: DeviceBackend | None = None,
        client: k8s.ApiClient | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.client = client
        self.registry = registry or default_registry()
        self.metrics_server: MetricsServer | None = None
        self._collector: NodeCollector | None = None
        self.devices: list[Device] = []
        self.recovery: RecoveryReport | None = None
        self.preparer: ClaimPreparer | None = None
        self.registration: RegistrationServicer | None = None
        self.monitor: HealthMonitor | None = None
        self.publisher: SlicePublisher | None = None
        self.quota_watcher: QuotaWatcher | None = None
        self.refusal_events: RefusalReporter | None = None
        self.claim_events: ClaimEvents | None = None
        self.usage_sampler: UsageSampler | None = None
        self._reader: KubeClaimReader | None = None
        self._dra_server: grpc.Server | None = None
        self._reg_server: grpc.Server | None = None
        self._service: DraService | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        with _tracer.start_as_current_span("plugin.start"):
            self._start_metrics()
            self._discover()
            prepare_directories(self.settings.paths, cdi.kind_for(self.settings.driver_name))
            self.preparer = self._build_preparer()
            self.recovery = recover(self.preparer, self.settings.node_name)
            if self.preparer.ledgers is not None:
                self.preparer.ledgers.ensure()
            sampler = self.usage_sampler = UsageSampler(self.preparer, self.settings.paths.usage_history)
            self._collector = NodeCollector(self.preparer, recent=lambda: sampler.published)
            self.registry.register(self._collector)
            self._start_quota_watch()
            self._start_refusal_events()
            self._start_claim_events()
            sampler.start()
            self.preparer.on_prepared = self._after_prepare
            self._start_dra_server()
            self._publish(self.devices)
            self._start_registration()
            self._start_health()
        if self.settings.shim_path is None:
            log.warning("no shim configured (--shim-path): containers get limits but nothing enforces them")
        log.info("kubelet plugin serving", extra={"socket": str(self.settings.dra_socket)})

    def _start_metrics(self) -> None:
        """Serve /metrics first: /healthz answers while discovery and recovery run, /readyz once the
        kubelet can prepare claims."""
        address = self.settings.metrics_listen
        if address is not None:
            self.metrics_server = MetricsServer(self.registry, address, ready=self.ready).start()

    def ready(self) -> bool:
        """Whether the DRA socket serves (what a readiness probe asks)."""
        return self._dra_server is not None and not self._stopped.is_set()

    def _discover(self) -> None:
        s = self.settings
        if self.backend is None:
            self.backend = open_backend(s.discovery_backend, **s.discovery_options)
        self.devices = self.backend.discover()
        if self.client is None:
            self.client = api_client(s.kubeconfig)
        log.info("devices discovered", extra={"count": len(self.devices), "backend": self.backend.name})

    def _slice_settings(self) -> SliceSettings:
        return self.settings.slice_settings

    def _build_preparer(self) -> ClaimPreparer:
        s = self.settings
        paths = s.paths
        assert self.client is not None
        spec_dirs = list(dict.fromkeys((*SPEC_DIRS, s.cdi_dir)))
        nvidia_kind, nvidia_devices = referred_spec(s.nvidia_cdi_kind, spec_dirs)
        gpu = nvidia.PROFILE.device_type
        layout = cdi.HostLayout.discover(
            s.device_root,
            s.driver_root,
            s.shim_path,
            paths.devices_dir,
            vendor_cdi_kinds={gpu: nvidia_kind} if nvidia_kind else None,
            vendor_cdi_devices={gpu: nvidia_devices},
            kind=cdi.kind_for(s.driver_name),
            driver_lookup_root=s.driver_lookup_root,
        )
        _log_driver_files(layout, {d.type for d in self.devices})
        ensure_directory(paths.devices_dir, SHARED_DIR_MODE)
        boot_id = read_boot_id(s.boot_id_path)
        store = CheckpointStore(paths.checkpoint_dir, boot_id, s.checkpoint_lock_timeout_s)
        self._reader = KubeClaimReader(self.client)
        return ClaimPreparer(
            driver=s.driver_name,
            pool=s.node_name,
            reader=self._reader,
            catalog=Catalog(self.devices, self._slice_settings()),
            store=store,
            layout=layout,
            paths=paths,
            ledgers=Ledgers(paths, {d.uuid: d.memory_bytes for d in self.devices}),
        )

    def _start_quota_watch(self) -> None:
        """Apply ``xpushare.io/quota`` claim annotations (before the first prepare can be answered)."""
        if not self.settings.quota_annotations:
            return
        assert self.preparer is not None
        assert self._reader is not None
        self.quota_watcher = QuotaWatcher(self.preparer, self._reader).start()

    def _start_refusal_events(self) -> None:
        """Tell claims' users, by events, when their allocations are refused at the memory limit."""
        assert self.preparer is not None
        if self._reader is not None and self.preparer.ledgers is not None:
            self.refusal_events = RefusalReporter(self.preparer, self._reader).start()

    def _start_claim_events(self) -> None:
        """Events on claims (prepared with their limits, refused with the reason), off the prepare path."""
        if self._reader is not None:
            self.claim_events = ClaimEvents(self._reader)
            self.claim_events.start()

    def _after_prepare(self, claim: dict[str, Any]) -> None:
        """Once per newly prepared claim, before the kubelet gets the answer: tell the user what its
        containers get and a size it did not choose (``kubeletplugin.sizes``), then apply the claim's quota
        annotation. The events are queued: the kubelet's answer never waits on the API server."""
        assert self.preparer is not None
        preparer, events = self.preparer, self.claim_events
        if events is not None:
            uid = str((claim.get("metadata") or {}).get("uid", ""))
            record = preparer.store.get(uid)
            if record is not None:
                limits = claim_limits(record.devices, preparer.quota(uid))
                events.prepared(claim, describe_limits(preparer.pool, limits))
            for message in unsized_partitions(claim, preparer.catalog, preparer.driver, preparer.pool):
                events.post(claim, UNSIZED_REASON, message)
        if self.quota_watcher is not None:
            self.quota_watcher.handle(claim)

    def _prepare_failed(self, key: ClaimKey, message: str) -> None:
        if self.claim_events is not None:
            self.claim_events.failed(claim_object(key.namespace, key.name, key.uid), message)

    def _grpc_server(self) -> grpc.Server:
        return grpc.server(
            ThreadPoolExecutor(max_workers=self.settings.grpc_workers, thread_name_prefix="grpc"),
            options=[("grpc.so_reuseport", 0)],
        )

    def _start_dra_server(self) -> None:
        assert self.preparer is not None
        self._service = DraService(
            self.preparer, self.settings.max_parallel_claims, NodeMetrics(self.registry),
            on_failed=self._prepare_failed,
        )
        self.monitor = HealthMonitor(self._backend(), self.devices, self.settings.health_interval_s)
        if self._collector is not None:
            monitor = self.monitor
            self._collector.health = lambda: monitor.snapshot()[1]
        server = self._grpc_server()
        add_dra_services(server, self._service)
        add_health_service(
            server, HealthServicer(self.monitor, self.preparer.catalog, self.settings.node_name)
        )
        serve_unix(server, self.settings.dra_socket)
        self._dra_server = server

    def _start_registration(self) -> None:
        self.registration = RegistrationServicer(self.settings.driver_name, str(self.settings.dra_socket))
        server = self._grpc_server()
        add_registration_service(server, self.registration)
        serve_unix(server, self.settings.registration_socket)
        self._reg_server = server

    def _start_health(self) -> None:
        assert self.monitor is not None
        self.monitor.on_change = self._publish
        self.monitor.start()

    def _backend(self) -> DeviceBackend:
        assert self.backend is not None
        return self.backend

    def _publish(self, devices: list[Device]) -> None:
        """Publish this node's pool (unhealthy devices get a taint); failures are logged, not fatal."""
        if not self.settings.publish_slices:
            return
        if self.publisher is None:
            assert self.client is not None
            api = KubeApi(self.client)
            self.publisher = SlicePublisher(
                api,
                self.settings.node_name,
                self._slice_settings(),
                node_uid=self._node_uid(api),
                registry=self.registry,
            )
        try:
            result = self.publisher.publish(devices)
        except PublishError as err:
            log.error("slice publishing failed", extra={"error": str(err)})
            return
        log.info("slices published", extra={"mode": result.mode.value, "slices": result.slices})

    def _node_uid(self, api: KubeApi) -> str | None:
        with contextlib.suppress(XPUShareError, KeyError, TypeError):
            node: dict[str, Any] = api.request("GET", f"/api/v1/nodes/{self.settings.node_name}")
            return str(node["metadata"]["uid"])
        return None

    def stop(self, grace_s: float = 5.0) -> None:
        """Unregister, drain calls in flight, remove both sockets. Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._collector is not None:
            self.registry.unregister(self._collector)
        if self._reg_server is not None:
            self._reg_server.stop(0).wait(grace_s)
        self.settings.registration_socket.unlink(missing_ok=True)
        if self.monitor is not None:
            self.monitor.stop()
        if self._dra_server is not None:
            self._dra_server.stop(grace_s).wait(grace_s + 1)
        self.settings.dra_socket.unlink(missing_ok=True)
        if self._service is not None:
            self._service.close()
        self._stop_background()
        if self.preparer is not None:
            self.preparer.store.close()
        if self.backend is not None:
            self.backend.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        log.info("kubelet plugin stopped")

    def _stop_background(self) -> None:
        """The threads that read the claims and ledgers, once no prepare can start."""
        if self.quota_watcher is not None:
            self.quota_watcher.stop()
        if self.refusal_events is not None:
            self.refusal_events.stop()
        if self.claim_events is not None:
            self.claim_events.stop()
        if self.usage_sampler is not None:
            self.usage_sampler.stop()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._stopped.wait(timeout_s)
