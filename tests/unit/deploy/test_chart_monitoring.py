"""The chart's Grafana dashboard and Prometheus alerts: off by default, and when on, every metric they
query is one the plugin or the controller exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.unit.deploy.chart import find, one, render

ROOT = Path(__file__).resolve().parents[3]
EXPOSING = [ROOT / "kubeletplugin/metrics.py", ROOT / "controller/cluster.py",
            ROOT / "controller/publisher/publisher.py"]
_NAME = re.compile(r"\bxpushare_[a-z_]+\b")
_SUFFIXES = ("_bucket", "_sum", "_count")


def _exposed() -> set[str]:
    """Metric names the components' code defines."""
    return {name for path in EXPOSING for name in _NAME.findall(path.read_text())}


def _queried(expr: str) -> set[str]:
    """The metric names an expression reads (a histogram's series by the histogram's name)."""
    exposed = _exposed()
    names = set()
    for found in _NAME.findall(expr):
        stripped = next((found.removesuffix(s) for s in _SUFFIXES if found.endswith(s)), found)
        names.add(found if found in exposed or stripped not in exposed else stripped)
    return names


ENABLED = {"monitoring": {"dashboard": {"enabled": True}, "prometheusRule": {"enabled": True}}}


def test_monitoring_objects_are_off_by_default() -> None:
    objects = render()
    assert not find(objects, "PrometheusRule")
    assert not [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]


def test_the_dashboard_queries_only_exposed_metrics() -> None:
    configmaps = find(render(ENABLED), "ConfigMap")
    configmap = next(o for o in configmaps if o["metadata"]["name"].endswith("-dashboard"))
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["xpushare-dashboard.json"])
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    queried = set().union(*map(_queried, exprs))
    assert queried <= _exposed(), sorted(queried - _exposed())
    assert {"xpushare_claim_throttled_seconds_total", "xpushare_device_health",
            "xpushare_claim_memory_refusals_total", "xpushare_prepare_seconds"} <= queried


def test_the_alerts_cover_memory_throttling_health_and_prepare_errors() -> None:
    values = {"monitoring": {"prometheusRule": {"enabled": True, "labels": {"release": "kps"},
                                                "memoryFullRatio": 0.8}}}
    rule = one(render(values), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kps"
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {"XPUShareDeviceMemoryNearlyFull", "XPUShareTenantThrottled",
                           "XPUShareDeviceUnhealthy", "XPUSharePrepareErrors"}
    for alert in alerts.values():
        assert _queried(alert["expr"]) <= _exposed(), alert["expr"]
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}
        assert "{{ $labels." in alert["annotations"]["summary"]  # Prometheus's templating, not Helm's
    assert "> 0.8" in alerts["XPUShareDeviceMemoryNearlyFull"]["expr"]
