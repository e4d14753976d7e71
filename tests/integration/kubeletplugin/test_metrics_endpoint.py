"""The plugin's metrics endpoint as Prometheus sees it: a claim prepared through the kubelet's socket
shows up in /metrics with its limit and share, the prepare histogram counts it, and what the shims write
into the claim's ledger is read at scrape time."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from kubernetes import client

from dra_driver.core.discovery.base import open_backend
from dra_driver.core.metrics import Registry
from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from shim import library_path
from shim.ledger import ClaimLedger
from tests.integration.kubeletplugin.conftest import NS, NodeDirs, make_allocator, ref
from tests.support.apiserver import api_client
from tests.support.prometheus import Exposition, scrape

GIB = 1 << 30


@pytest.fixture
def metered(apiserver: ApiServer, node_dirs: NodeDirs) -> Iterator[Plugin]:
    """A plugin with its own registry, serving metrics on a free loopback port."""
    settings = node_dirs.settings(metrics_address="127.0.0.1:0")
    backend = open_backend("mock", inventory=settings.discovery_options["inventory"])
    plugin = Plugin(settings, backend=backend, client=api_client(apiserver), registry=Registry())
    plugin.start()
    yield plugin
    plugin.stop()


def _scrape(plugin: Plugin) -> Exposition:
    assert plugin.metrics_server is not None
    content_type, exposition = scrape(f"{plugin.metrics_server.url}/metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    return exposition


def test_prepared_claim_appears_in_metrics_with_its_limit_share_and_latency(
    metered: Plugin, kube_client: client.ApiClient
) -> None:
    before = _scrape(metered)
    assert before.value("xpushare_prepared_claims") == 0
    assert before.find("xpushare_prepare_seconds_count") == []
    claim = make_allocator(kube_client)("scraped", memory="16Gi", cores="25")
    uid, device = claim["metadata"]["uid"], claim["status"]["allocation"]["devices"]["results"][0]["device"]
    with KubeletClient(metered.settings.registration_socket) as kubelet:
        kubelet.register()
        assert kubelet.prepare([ref(claim)]).claims[uid].error == ""

    after = _scrape(metered)
    labels = {"claim_uid": uid, "namespace": NS, "name": "scraped", "device": device}
    assert after.value("xpushare_claim_memory_limit_bytes", **labels) == 16 * GIB
    assert after.value("xpushare_claim_core_share_percent", **labels) == 25
    assert after.value("xpushare_prepare_seconds_count", operation="prepare", outcome="ok") == 1
    assert after.value("xpushare_prepare_seconds_bucket", operation="prepare", outcome="ok", le="+Inf") == 1
    assert after.value("xpushare_prepared_claims") == 1
    uuid = next(s.labels["uuid"] for s in after.find("xpushare_device_memory_allocated_bytes", device=device))
    assert after.value("xpushare_device_memory_allocated_bytes", device=device, uuid=uuid) == 16 * GIB
    assert after.value("xpushare_device_cores_allocated_percent", device=device, uuid=uuid) == 25


def test_ledger_usage_is_read_when_scraped(metered: Plugin, kube_client: client.ApiClient) -> None:
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no device ledgers to read")
    claim = make_allocator(kube_client)("busy", memory="8Gi", cores="50")
    uid = claim["metadata"]["uid"]
    with KubeletClient(metered.settings.registration_socket) as kubelet:
        kubelet.register()
        assert kubelet.prepare([ref(claim)]).claims[uid].error == ""
    (held,) = _scrape(metered).find("xpushare_claim_memory_used_bytes", claim_uid=uid)
    assert held.value == 0
    uuid = next(d.uuid for d in metered.devices if d.name == held.labels["device"])
    with ClaimLedger.open(metered.settings.paths.claim_ledger(uuid, uid)) as ledger:
        slot = ledger.attach_process()  # what a shim of the claim does at its first allocation
        try:
            assert ledger.reserve(slot, 3 * GIB, 8 * GIB)
            ledger.charge(slot, 1_500_000_000)
            exposition = _scrape(metered)
        finally:
            ledger.release(slot, 3 * GIB)
            ledger.detach_process(slot)
    labels = held.labels
    assert exposition.value("xpushare_claim_memory_used_bytes", **labels) == 3 * GIB
    assert exposition.value("xpushare_claim_processes", **labels) == 1
    assert exposition.value("xpushare_claim_compute_seconds_total", **labels) == pytest.approx(1.5)
    assert exposition.value("xpushare_claim_throttled_seconds_total", **labels) == 0
    device = {"device": labels["device"], "uuid": uuid}
    assert exposition.value("xpushare_device_memory_used_bytes", **device) == 3 * GIB


def test_readiness_and_liveness_of_the_running_plugin(metered: Plugin) -> None:
    assert metered.metrics_server is not None
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(f"{metered.metrics_server.url}{path}", timeout=5) as response:  # noqa: S310
            assert (response.status, response.read()) == (200, b"ok\n")
    assert metered.ready()
    metered.stop()
    assert not metered.ready()
