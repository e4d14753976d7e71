"""Fixtures of the real-Kubernetes tier: a real v1.36 control plane (etcd, kube-apiserver, kube-scheduler,
kube-controller-manager; no kubelet) from ``../shared/k8s``, the node plugin publishing against it, and
the kubelet's side played by ``dra_driver.simulation.kubelet``. Starting and stopping the control plane
lives in ``tests.support.control_plane``, which the real-cluster benchmark uses too.

One control plane per pytest session and gate configuration: the default one (every DRA gate on) starts
with the first test that needs it, the one with ``DRAConsumableCapacity`` off (an older cluster) only when
a test asks for it. Each test gets its own namespace and its own node name (so its pool, devices and
allocations never meet another test's), and its objects are removed afterwards. Without ``../shared/k8s``
every test of the tier skips, naming the path.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.settings import SliceMode
from dra_driver.core.discovery.base import open_backend
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from kubeletplugin.settings import PluginSettings
from tests.support.control_plane import (
    ALL_GATES,
    DRIVER,
    K8S_DIR,
    NO_CONSUMABLE_GATES,
    Cluster,
    ControlPlaneError,
    NoControlPlane,
    control_plane,
    create_node,
    install_device_classes,
    wait_for,
)
from tests.support.plugin_node import INVENTORY, node_settings, prepare_node_root

__all__ = ["DRIVER", "K8S_DIR", "Cluster", "install_device_classes", "wait_for"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realk8s)


def _control_plane(name: str, gates: str) -> Iterator[Cluster]:
    try:
        with control_plane(name, gates) as cluster:
            yield cluster
    except NoControlPlane as absent:
        pytest.skip(str(absent))
    except ControlPlaneError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[Cluster]:
    """The default control plane: DRA with consumable capacity, partitionable devices, device taints."""
    yield from _control_plane("default", ALL_GATES)


@pytest.fixture(scope="session")
def old_cluster() -> Iterator[Cluster]:
    """A control plane with ``DRAConsumableCapacity`` off, as an older cluster has."""
    yield from _control_plane("noconsumable", NO_CONSUMABLE_GATES)


@dataclass
class TestNode:
    """One test's node: a Node object on the cluster and the plugin's directories on this machine."""

    __test__ = False
    cluster: Cluster
    name: str
    namespace: str
    root: Path
    sockets: Path

    def settings(self, **overrides: Any) -> PluginSettings:
        return node_settings(self.root, self.sockets, self.name, INVENTORY,
                             **{"health_interval_s": 5.0, **overrides})

    def start_plugin(self, mode: SliceMode, **overrides: Any) -> Plugin:
        settings = self.settings(slice_mode=mode, **overrides)
        backend = open_backend("mock", inventory=str(INVENTORY))
        plugin = Plugin(settings, backend=backend, client=self.cluster.api)
        plugin.start()
        return plugin

    def slices(self) -> list[dict[str, Any]]:
        found = self.cluster.resource.list_resource_slice(field_selector=f"spec.nodeName={self.name}")
        return [self.cluster.json(item) for item in found.items]


def create_pod(node: TestNode, name: str, template: str = "", *, claim: str = "") -> None:
    """A pod with one claim named ``xpu``: made from ``template``, or the existing ``claim``."""
    source = {"resourceClaimTemplateName": template} if template else {"resourceClaimName": claim}
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": node.namespace},
        "spec": {
            "containers": [{"name": "main", "image": "busybox", "resources": {"claims": [{"name": "xpu"}]}}],
            "resourceClaims": [{"name": "xpu", **source}],
            # The hand-made Node keeps its not-ready taint (no node lifecycle controller runs).
            "tolerations": [{"operator": "Exists"}],
        },
    }
    node.cluster.core.create_namespaced_pod(node.namespace, body)  # type: ignore[arg-type]


def name_of(obj: Any) -> str:
    return str(obj.metadata.name)


def _cleanup(cluster: Cluster, node: str, namespace: str) -> None:
    core, resource = cluster.core, cluster.resource
    with contextlib.suppress(ApiException):
        for pod in core.list_namespaced_pod(namespace).items:
            # No kubelet confirms a graceful deletion of a bound pod: delete at once, as `--force` does.
            core.delete_namespaced_pod(name_of(pod), namespace, grace_period_seconds=0)
    with contextlib.suppress(ApiException):
        core.delete_namespace(namespace)
    with contextlib.suppress(ApiException):
        for obj in resource.list_resource_slice(field_selector=f"spec.nodeName={node}").items:
            resource.delete_resource_slice(name_of(obj))
    with contextlib.suppress(ApiException):
        core.delete_node(node)
    with contextlib.suppress(ApiException):
        events = core.list_namespaced_event("default", field_selector=f"involvedObject.name={node}")
        for event in events.items:
            core.delete_namespaced_event(name_of(event), "default")


def _node(cluster: Cluster, tmp_path: Path) -> Iterator[TestNode]:
    suffix = uuid.uuid4().hex[:8]
    name, namespace = f"node-{suffix}", f"t-{suffix}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    create_node(cluster, name)
    # Pods need the namespace's default ServiceAccount, which the controller-manager creates.
    wait_for(
        "the default ServiceAccount",
        lambda: bool(cluster.core.list_namespaced_service_account(namespace).items),
    )
    sockets = prepare_node_root(tmp_path)
    try:
        yield TestNode(cluster, name, namespace, tmp_path, sockets)
    finally:
        _cleanup(cluster, name, namespace)
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def node(real_cluster: Cluster, tmp_path: Path) -> Iterator[TestNode]:
    """A fresh Node (and namespace) on the default cluster, removed with its slices and pods after."""
    install_device_classes(real_cluster)
    yield from _node(real_cluster, tmp_path)


@pytest.fixture
def old_node(old_cluster: Cluster, tmp_path: Path) -> Iterator[TestNode]:
    """A fresh Node (and namespace) on the cluster without consumable capacity."""
    yield from _node(old_cluster, tmp_path)


@pytest.fixture
def consumable_plugin(node: TestNode) -> Iterator[Plugin]:
    plugin = node.start_plugin(SliceMode.CONSUMABLE)
    yield plugin
    plugin.stop()


@pytest.fixture
def kubelet(consumable_plugin: Plugin) -> Iterator[KubeletClient]:
    """The kubelet's side: registered with the plugin over its registration socket."""
    with KubeletClient(consumable_plugin.settings.registration_socket) as kubelet_client:
        kubelet_client.register()
        yield kubelet_client


@pytest.fixture
def namespace(real_cluster: Cluster) -> Iterator[str]:
    """A fresh namespace on the default cluster, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    real_cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    with contextlib.suppress(ApiException):
        real_cluster.core.delete_namespace(name)
