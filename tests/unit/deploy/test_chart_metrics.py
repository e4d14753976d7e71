"""The metrics endpoints in the chart: a container port named ``metrics`` on both workloads, the node
plugin's readiness on ``/readyz``, optional prometheus.io annotations, and one switch that turns it all
off."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.deploy.chart import Obj, container, one, render


def _workloads(values: dict[str, Any]) -> tuple[Obj, Obj]:
    objects = render(values)
    return one(objects, "DaemonSet"), one(objects, "Deployment")


def _annotations(workload: Obj) -> dict[str, str]:
    found: dict[str, str] = workload["spec"]["template"]["metadata"].get("annotations", {})
    return found


def test_plugin_is_ready_when_its_metrics_endpoint_says_so() -> None:
    daemonset, _ = _workloads({})
    plugin = container(daemonset, "plugin")
    assert plugin["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    assert plugin["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_controller_serves_metrics_beside_the_webhook() -> None:
    _, deployment = _workloads({"controller": {"metricsPort": 9100}})
    ports = {p["name"]: p["containerPort"] for p in container(deployment, "controller")["ports"]}
    assert ports == {"webhook": 8443, "metrics": 9100}


def test_scrape_annotations_are_off_by_default_and_name_each_pods_port_when_on() -> None:
    assert [_annotations(w) for w in _workloads({})] == [{}, {}]
    values = {"metrics": {"scrapeAnnotations": True}, "kubeletPlugin": {"podAnnotations": {"team": "ml"}}}
    daemonset, deployment = _workloads(values)
    assert _annotations(daemonset) == {
        "team": "ml",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9464",
        "prometheus.io/path": "/metrics",
    }
    assert _annotations(deployment)["prometheus.io/port"] == "9465"


def test_pod_annotations_override_the_scrape_annotations() -> None:
    values = {
        "metrics": {"scrapeAnnotations": True},
        "controller": {"podAnnotations": {"prometheus.io/scrape": "false"}},
    }
    _, deployment = _workloads(values)
    assert _annotations(deployment)["prometheus.io/scrape"] == "false"


def test_metrics_off_removes_ports_probe_and_annotations() -> None:
    daemonset, deployment = _workloads({"metrics": {"enabled": False, "scrapeAnnotations": True}})
    plugin, controller = container(daemonset, "plugin"), container(deployment, "controller")
    assert "ports" not in plugin
    assert "readinessProbe" not in plugin
    assert [p["name"] for p in controller["ports"]] == ["webhook"]
    assert [_annotations(w) for w in (daemonset, deployment)] == [{}, {}]


def test_metrics_port_equal_to_the_webhook_port_is_refused_with_both_names() -> None:
    with pytest.raises(Exception, match=r"controller\.metricsPort and webhook\.port are both 9465"):
        render({"webhook": {"port": 9465}})


@pytest.mark.parametrize(
    "values", [{"controller": {"metricsPort": 80}}, {"kubeletPlugin": {"metricsPort": 0}}]
)
def test_schema_refuses_ports_the_component_cannot_bind(values: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="metricsPort"):
        render(values)
