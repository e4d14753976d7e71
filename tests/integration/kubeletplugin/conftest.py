"""Fixtures of the node plugin's integration tests: a node in temporary directories, the plugin running
against the embedded API server, a registered kubelet-like client, and claims allocated by the scheduler
stand-in."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controller.deviceclasses import device_classes
from dra_driver.core.discovery.base import open_backend
from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import ClaimRef, KubeletClient
from dra_driver.simulation.scheduler import SimScheduler
from kubeletplugin.plugin import Plugin
from kubeletplugin.settings import PluginSettings
from tests.support.apiserver import api_client, apiserver, kube_client
from tests.support.plugin_node import INVENTORY, node_settings, prepare_node_root

__all__ = ["apiserver", "kube_client"]

NODE = "node-a"
NS = "default"


@dataclass
class NodeDirs:
    root: Path
    sockets: Path
    inventory: Path

    def settings(self, **overrides: Any) -> PluginSettings:
        return node_settings(self.root, self.sockets, NODE, self.inventory,
                             **{"health_interval_s": 0.2, **overrides})


@pytest.fixture
def node_dirs(tmp_path: Path) -> Iterator[NodeDirs]:
    sockets = prepare_node_root(tmp_path)
    inventory = tmp_path / "inventory.yaml"
    shutil.copy(INVENTORY, inventory)
    yield NodeDirs(tmp_path, sockets, inventory)
    shutil.rmtree(sockets, ignore_errors=True)


def start_plugin(server: ApiServer, settings: PluginSettings) -> Plugin:
    backend = open_backend("mock", inventory=settings.discovery_options["inventory"])
    plugin = Plugin(settings, backend=backend, client=api_client(server))
    plugin.start()
    return plugin


@pytest.fixture
def plugin(apiserver: ApiServer, node_dirs: NodeDirs) -> Iterator[Plugin]:
    running = start_plugin(apiserver, node_dirs.settings())
    yield running
    running.stop()


@pytest.fixture
def kubelet(plugin: Plugin) -> Iterator[KubeletClient]:
    with KubeletClient(plugin.settings.registration_socket) as kubelet_client:
        kubelet_client.register()
        yield kubelet_client


def kubeconfig_for(server: ApiServer, path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sim",
        "clusters": [{"name": "sim", "cluster": {"server": server.url}}],
        "users": [{"name": "sim", "user": {"token": "xpushare-sim"}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def claim_body(
    name: str,
    memory: str = "16Gi",
    cores: str = "25",
    device_class: str = "npu.xpushare.io",
    config: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    requests = {"memory": memory, "cores": cores}
    spec: dict[str, Any] = {
        "devices": {
            "requests": [
                {
                    "name": "npu",
                    "exactly": {"deviceClassName": device_class, "capacity": {"requests": requests}},
                }
            ]
        }
    }
    if config:
        spec["devices"]["config"] = config
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def pod_body(name: str, claim_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "containers": [{"name": "main", "image": "busybox", "resources": {"claims": [{"name": "npu"}]}}],
            "resourceClaims": [{"name": "npu", "resourceClaimName": claim_name}],
        },
    }


Allocate = Callable[..., dict[str, Any]]


@pytest.fixture
def allocate(kube_client: client.ApiClient, plugin: Plugin) -> Allocate:
    """Create a claim and a pod using it, let the scheduler stand-in allocate it; return the claim JSON."""
    return make_allocator(kube_client)


def make_allocator(kube_client: client.ApiClient, driver_name: str = "xpushare.io") -> Allocate:
    """Allocation through the scheduler stand-in, against the slices a running plugin published."""
    resource, core = client.ResourceV1Api(kube_client), client.CoreV1Api(kube_client)
    for device_class in device_classes(driver_name):
        resource.create_device_class(device_class)
    scheduler = SimScheduler(kube_client, driver_name=driver_name)

    def run(name: str, **claim_kwargs: Any) -> dict[str, Any]:
        resource.create_namespaced_resource_claim(NS, claim_body(name, **claim_kwargs))
        core.create_namespaced_pod(NS, pod_body(f"{name}-pod", name))
        report = scheduler.schedule_once()
        assert report.bound.get(f"{NS}/{name}-pod") == NODE, report
        return read_claim(kube_client, name)

    return run


def read_claim(kube_client: client.ApiClient, name: str) -> dict[str, Any]:
    obj = client.ResourceV1Api(kube_client).read_namespaced_resource_claim(name, NS)
    return kube_client.sanitize_for_serialization(obj)  # type: ignore[no-any-return]


def ref(obj: dict[str, Any]) -> ClaimRef:
    return ClaimRef.of(obj)


def claim_events(kube_client: client.ApiClient, name: str, reason: str) -> list[Any]:
    """The events with ``reason`` on the object named ``name`` in the tests' namespace."""
    found = client.CoreV1Api(kube_client).list_namespaced_event(NS).items
    return [e for e in found if e.involved_object.name == name and e.reason == reason]


def within(seconds: float, check: Callable[[], Any]) -> Any:
    """``check()``'s first truthy value within ``seconds`` (polling every 20 ms), else its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
