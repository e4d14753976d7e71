"""``kubectl xpushare status NODE`` on the real control plane: the node plugin's metrics read through the
API server's pod proxy. No kubelet runs pods here, so the plugin's pod is an object bound to the node whose
status gives this machine's address, where the plugin's metrics server listens; the API server's proxy
connects there as it would to the pod."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.settings import SliceMode
from dra_driver.core.discovery.base import open_backend
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from kubeletplugin.remote_status import PLUGIN_SELECTOR, node_rows, render
from tests.realk8s.conftest import TestNode, create_pod, install_device_classes
from tests.realk8s.test_allocation import bound_claim, claim_ref, create_template
from tests.support.plugin_node import INVENTORY

GIB = 1 << 30


def _routable_address() -> str | None:
    """This machine's address on its default route (the API server refuses to proxy to loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # no packet is sent: this only picks the outgoing address
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else str(address)


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def plugin_with_metrics(node: TestNode) -> Iterator[tuple[Plugin, int]]:
    address = _routable_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine for the API server to proxy to")
    install_device_classes(node.cluster)
    port = _free_port(address)
    settings = node.settings(slice_mode=SliceMode.CONSUMABLE, metrics_address=f"{address}:{port}")
    plugin = Plugin(settings, backend=open_backend("mock", inventory=str(INVENTORY)), client=node.cluster.api)
    plugin.start()
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "xpushare-kubelet-plugin-abcde",
                        "labels": dict([PLUGIN_SELECTOR.split("=")])},
           "spec": {"nodeName": node.name, "containers": [{"name": "plugin", "image": "xpushare",
                                                            "ports": [{"containerPort": port}]}]}}
    node.cluster.core.create_namespaced_pod(node.namespace, pod)
    status = {"status": {"phase": "Running", "podIP": address, "podIPs": [{"ip": address}]}}
    node.cluster.core.patch_namespaced_pod_status("xpushare-kubelet-plugin-abcde", node.namespace, status)
    yield plugin, port
    plugin.stop()


def _prepared_claim(node: TestNode, plugin: Plugin) -> dict[str, Any]:
    """A pod's claim of 20Gi and 50 %, allocated by the real scheduler and prepared as the kubelet does."""
    create_template(node, "gpu-20gi", "gpu.xpushare.io", "20Gi", "50")
    create_pod(node, "infer", "gpu-20gi")
    claim = bound_claim(node, "infer")
    with KubeletClient(plugin.settings.registration_socket) as kubelet:
        kubelet.register()
        assert kubelet.prepare([claim_ref(claim)], version="v1").claims[claim["metadata"]["uid"]].error == ""
    return claim


def test_a_node_s_claims_are_read_through_the_api_server_proxy(
        node: TestNode, plugin_with_metrics: tuple[Plugin, int]) -> None:
    plugin, port = plugin_with_metrics
    claim = _prepared_claim(node, plugin)
    rows, window = node_rows(node.cluster.api, node.name, node.namespace, port=port, window_s=0.5)
    (row,) = rows
    assert window == 0.5
    assert (row.namespace, row.name, row.uid) == (node.namespace, claim["metadata"]["name"],
                                                  claim["metadata"]["uid"])
    assert (row.device, row.limit_bytes, row.share_percent) == ("gpu-0", 20 * GIB, 50)
    assert row.measured_percent == 0  # nothing ran on the device in the window
    table = render(rows)
    assert table.splitlines()[0].split() == ["CLAIM", "DEVICE", "USED", "LIMIT", "PEAK", "SHARE", "MEASURED",
                                             "THROTTLED", "PROCS", "REFUSED"]
    cells = table.splitlines()[1].split()
    name = f"{node.namespace}/{claim['metadata']['name']}"
    assert cells == [name, "gpu-0", "0.0Gi", "20.0Gi", "0.0Gi", "50%", "0.0%", "0.0%", "0", "0"]


def test_one_read_shows_the_plugin_s_last_10_s_from_its_usage_history(
        node: TestNode, plugin_with_metrics: tuple[Plugin, int]) -> None:
    plugin, port = plugin_with_metrics
    if plugin.preparer is None or plugin.preparer.ledgers is None or not plugin.preparer.ledgers.enabled():
        pytest.skip("no claim ledgers (shim library not built): the plugin keeps no usage history")
    claim = _prepared_claim(node, plugin)
    deadline = time.monotonic() + 10  # the sampler's second pass after the prepare gives the first share
    while True:
        rows, window = node_rows(node.cluster.api, node.name, node.namespace, port=port, window_s=0)
        if (rows and rows[0].recent_percent) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (row,) = rows
    assert row.uid == claim["metadata"]["uid"]
    assert window == 0
    assert row.recent_percent.get("10s") == 0.0, row  # nothing ran on the device
    assert row.measured_percent == 0.0
    rows, window = node_rows(node.cluster.api, node.name, node.namespace, port=port)  # the default: one read
    assert window == 0
    assert rows[0].recent_percent
