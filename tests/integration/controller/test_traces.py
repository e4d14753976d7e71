"""Each publish and each controller pass is one span carrying what it acted on and how it ended."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from controller.cluster import ClusterController, ControllerSettings
from controller.publisher import KubeApi, SlicePublisher
from controller.settings import SliceMode, SliceSettings
from dra_driver.core.metrics import Registry
from dra_driver.core.telemetry import setup_tracing
from tests.unit.controller.slices.inventory import npu

Obj = dict[str, Any]


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[dict[str, Any]]:
    return [dict(span.attributes or {}) for span in exporter.get_finished_spans() if span.name == name]


def test_publish_and_reconcile_spans_carry_counts_and_outcome(
    api: KubeApi, make_node: Callable[[str], Obj]
) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing("xpushare-test", env={}, extra_processor=SimpleSpanProcessor(exporter))
    node = make_node("traced")
    publisher = SlicePublisher(api, "traced", SliceSettings(mode=SliceMode.CONSUMABLE), registry=Registry())
    publisher.publish([npu(i) for i in range(130)])
    publisher.publish([npu(i) for i in range(130)])
    publishes = [
        s for s in spans_named(exporter, "xpushare.publish_slices") if s["xpushare.node"] == "traced"
    ]
    common = {
        "xpushare.node": "traced",
        "xpushare.devices": 130,
        "xpushare.mode": "consumable",
        "xpushare.slices": 2,
    }
    assert publishes == [
        {**common, "xpushare.outcome": "written", "xpushare.writes": 2},
        {**common, "xpushare.outcome": "unchanged", "xpushare.writes": 0},
    ]
    api.delete(f"/api/v1/nodes/{node['metadata']['name']}")
    ClusterController(api, ControllerSettings(), Registry()).reconcile()
    (reconcile,) = spans_named(exporter, "xpushare.controller_reconcile")[-1:]
    assert reconcile == {
        "xpushare.classes_written": 2,
        "xpushare.slices_deleted": 2,
        "xpushare.outcome": "ok",
    }
