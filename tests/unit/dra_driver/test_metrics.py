"""The in-process metrics registry and its Prometheus text rendering."""

from __future__ import annotations

import pytest

from dra_driver.core.metrics import Registry


def test_counters_and_gauges_render_in_prometheus_text_format() -> None:
    registry = Registry()
    fallbacks = registry.counter("xpushare_slice_mode_fallbacks_total", "Slice mode fallbacks",
                                 labels=("node", "from_mode", "to_mode"))
    fallbacks.inc(node="a", from_mode="consumable", to_mode="partitioned")
    fallbacks.inc(2, node="a", from_mode="consumable", to_mode="partitioned")
    registry.gauge("xpushare_devices", "Devices seen", labels=("node",)).set(3, node='b"1')
    text = registry.render()
    assert text.splitlines() == [
        "# HELP xpushare_slice_mode_fallbacks_total Slice mode fallbacks",
        "# TYPE xpushare_slice_mode_fallbacks_total counter",
        'xpushare_slice_mode_fallbacks_total{from_mode="consumable",node="a",to_mode="partitioned"} 3.0',
        "# HELP xpushare_devices Devices seen",
        "# TYPE xpushare_devices gauge",
        'xpushare_devices{node="b\\"1"} 3.0',
    ]
    assert fallbacks.value(to_mode="partitioned", node="a", from_mode="consumable") == 3
    assert fallbacks.value(node="other", from_mode="x", to_mode="y") == 0
    with pytest.raises(ValueError, match="expected"):
        fallbacks.value(node="other")
    with pytest.raises(ValueError, match="exists with labels"):
        registry.counter("xpushare_slice_mode_fallbacks_total", "Slice mode fallbacks", labels=("node",))
    assert registry.counter("xpushare_slice_mode_fallbacks_total", "") is fallbacks  # looked up as made


def test_asking_twice_returns_the_same_metric_and_kinds_do_not_mix() -> None:
    registry = Registry()
    assert registry.counter("x_total", "x") is registry.counter("x_total", "x")
    with pytest.raises(TypeError, match="x_total is a counter, not a gauge"):
        registry.gauge("x_total", "x")


def test_counters_only_go_up() -> None:
    with pytest.raises(ValueError, match="negative"):
        Registry().counter("x_total", "x").inc(-1)
