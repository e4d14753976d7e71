"""Fixtures of the real-Kubernetes tier: a real v1.36 control plane (etcd, kube-apiserver, kube-scheduler,
kube-controller-manager; no kubelet) from ``../shared/k8s``, the node plugin publishing against it, and
the kubelet's side played by ``dra_driver.simulation.kubelet``.

One control plane per pytest session and gate configuration: the default one (every DRA gate on) starts
with the first test that needs it, the one with ``DRAConsumableCapacity`` off (an older cluster) only when
a test asks for it. Each test gets its own namespace and its own node name (so its pool, devices and
allocations never meet another test's), and its objects are removed afterwards. Without ``../shared/k8s``
every test of the tier skips, naming the path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from controller.deviceclasses import device_classes
from controller.settings import SliceMode
from dra_driver.core.discovery.base import open_backend
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from kubeletplugin.settings import PluginSettings
from tests.conftest import SHARED_DIR
from tests.support.plugin_node import INVENTORY, node_settings, prepare_node_root

K8S_DIR = SHARED_DIR / "k8s"
DRIVER = "xpushare.io"
ALL_GATES = (
    "DynamicResourceAllocation=true,DRAConsumableCapacity=true,DRAPartitionableDevices=true,"
    "DRADeviceTaints=true,DRAPrioritizedList=true,DRAAdminAccess=true"
)
NO_CONSUMABLE_GATES = ALL_GATES.replace("DRAConsumableCapacity=true", "DRAConsumableCapacity=false")

T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realk8s)


@dataclass
class Cluster:
    """A running control plane: its state directory, kubeconfig and an admin ApiClient."""

    dir: Path
    kubeconfig: Path
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def resource(self) -> client.ResourceV1Api:
        return client.ResourceV1Api(self.api)

    def json(self, obj: Any) -> Any:
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def _control_plane(name: str, gates: str) -> Iterator[Cluster]:
    if not (K8S_DIR / "up.sh").is_file():
        pytest.skip(f"no real Kubernetes control plane: {K8S_DIR} (../shared/k8s) is absent")
    state = Path(tempfile.mkdtemp(prefix=f"xps-k8s-{name}-"))
    env = {**os.environ, "FEATURE_GATES": gates}
    try:
        done = subprocess.run(
            [str(K8S_DIR / "up.sh"), str(state)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{K8S_DIR}/up.sh failed ({done.returncode}): {done.stderr[-2000:]}")
        kubeconfig = Path(done.stdout.strip().splitlines()[-1].removeprefix("KUBECONFIG="))
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        try:
            yield Cluster(state, kubeconfig, api)
        finally:
            api.close()
    finally:
        subprocess.run([str(K8S_DIR / "down.sh"), str(state)], capture_output=True, timeout=60, check=False)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[Cluster]:
    """The default control plane: DRA with consumable capacity, partitionable devices, device taints."""
    yield from _control_plane("default", ALL_GATES)


@pytest.fixture(scope="session")
def old_cluster() -> Iterator[Cluster]:
    """A control plane with ``DRAConsumableCapacity`` off, as an older cluster has."""
    yield from _control_plane("noconsumable", NO_CONSUMABLE_GATES)


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 30.0, every_s: float = 0.2) -> T:
    """Poll ``probe`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def install_device_classes(cluster: Cluster) -> None:
    for device_class in device_classes(DRIVER):
        try:
            cluster.resource.create_device_class(device_class)  # type: ignore[arg-type]
        except ApiException as err:
            if err.status != 409:
                raise


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

    def start_plugin(self, mode: SliceMode) -> Plugin:
        settings = self.settings(slice_mode=mode)
        backend = open_backend("mock", inventory=str(INVENTORY))
        plugin = Plugin(settings, backend=backend, client=self.cluster.api)
        plugin.start()
        return plugin

    def slices(self) -> list[dict[str, Any]]:
        found = self.cluster.resource.list_resource_slice(field_selector=f"spec.nodeName={self.name}")
        return [self.cluster.json(item) for item in found.items]


def _create_node(cluster: Cluster, name: str) -> None:
    cluster.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name)))
    # The scheduler fits pods against allocatable; a hand-made Node has none until its status says so.
    # Its not-ready taint stays (nothing runs the node lifecycle controller): test pods tolerate it.
    allocatable = {"cpu": "64", "memory": "512Gi", "pods": "110"}
    cluster.core.patch_node_status(
        name,
        {
            "status": {
                "capacity": allocatable,
                "allocatable": allocatable,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            }
        },
    )


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
    _create_node(cluster, name)
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
