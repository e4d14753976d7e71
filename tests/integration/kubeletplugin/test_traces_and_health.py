"""Spans per call and per claim, parented by the kubelet's trace context; health streamed from discovery."""

from __future__ import annotations

import time

import yaml
from kubernetes import client
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.kubelet import health_v1alpha1_pb2
from dra_driver.core.telemetry import setup_tracing
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from tests.integration.kubeletplugin.conftest import NODE, Allocate, NodeDirs, ref

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def test_prepare_spans_continue_the_kubelet_trace_with_a_child_per_claim(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate
) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing("xpushare-test", env={}, extra_processor=SimpleSpanProcessor(exporter))
    claim = allocate("traced", memory="2Gi", cores="5")
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN}-01"

    response = kubelet.prepare([ref(claim)], metadata=[("traceparent", traceparent)])

    assert response.claims[claim["metadata"]["uid"]].error == ""
    spans = [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID]
    by_name = {s.name: s for s in spans}
    call = by_name["NodePrepareResources"]
    assert call.parent is not None
    assert f"{call.parent.span_id:016x}" == PARENT_SPAN
    per_claim = by_name["prepare_claim"]
    assert per_claim.parent is not None
    assert per_claim.parent.span_id == call.context.span_id
    attributes = dict(per_claim.attributes or {})
    assert attributes["xpushare.claim.uid"] == claim["metadata"]["uid"]
    assert attributes["xpushare.claim.name"] == "traced"
    assert attributes["xpushare.outcome"] == "ok"
    assert list(attributes["xpushare.memory_bytes"]) == [2 << 30]  # type: ignore[arg-type]
    assert {"api.get_resource_claim", "cdi.write_spec"} <= set(by_name)
    exporter.shutdown()


def test_health_stream_reports_every_device_and_then_a_change_that_taints_the_slice(
    plugin: Plugin, kubelet: KubeletClient, node_dirs: NodeDirs, kube_client: client.ApiClient
) -> None:
    stream = kubelet.watch_health(timeout_s=15)
    first = next(stream)
    health = {d.device.device_name: d.health for d in first.devices}
    assert {"npu-0", "npu-1", "gpu-0"} <= set(health)
    assert set(health.values()) == {health_v1alpha1_pb2.HEALTHY}
    assert {d.device.pool_name for d in first.devices} == {NODE}

    inventory = yaml.safe_load(node_dirs.inventory.read_text())
    inventory["devices"][1]["health"] = "Unhealthy"
    inventory["devices"][1]["healthMessage"] = "HBM ECC error"
    node_dirs.inventory.write_text(yaml.safe_dump(inventory))

    second = next(stream)
    changed = {d.device.device_name: (d.health, d.message) for d in second.devices}
    assert changed["npu-1"] == (health_v1alpha1_pb2.UNHEALTHY, "HBM ECC error")
    assert changed["npu-0"][0] == health_v1alpha1_pb2.HEALTHY
    stream.cancel()  # type: ignore[attr-defined]
    assert _tainted_devices(kube_client, timeout_s=10) == {"npu-1"}


def _tainted_devices(kube_client: client.ApiClient, timeout_s: float) -> set[str]:
    """The devices of this node's slices that carry a taint, once any does (the publisher runs async)."""
    deadline = time.monotonic() + timeout_s
    while True:
        slices = client.ResourceV1Api(kube_client).list_resource_slice(field_selector=f"spec.nodeName={NODE}")
        tainted = {d.name for s in slices.items for d in (s.spec.devices or []) if d.taints}
        if tainted or time.monotonic() > deadline:
            return tainted
        time.sleep(0.05)
