"""The plain manifests and the install guide keep up with the chart's metrics settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
VALUES = ROOT / "deploy/helm/xpushare/values.yaml"
METRICS_KEYS = (
    "metrics.enabled",
    "metrics.scrapeAnnotations",
    "kubeletPlugin.metricsPort",
    "controller.metricsPort",
)


def _value(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def test_the_plain_controller_manifest_serves_metrics_on_the_charts_port() -> None:
    values = yaml.safe_load(VALUES.read_text())
    (deployment,) = list(yaml.safe_load_all((ROOT / "deploy/manifests/controller.yaml").read_text()))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == values["controller"]["metricsPort"]
    assert ports["metrics"] != ports["webhook"]
    assert f"--metrics-address=:{ports['metrics']}" in container["args"]


def test_the_install_guide_documents_the_metrics_values_with_their_defaults() -> None:
    values = yaml.safe_load(VALUES.read_text())
    text = (ROOT / "docs/install.md").read_text().split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    for key in METRICS_KEYS:
        row = re.search(rf"^\| `{re.escape(key)}` \| `([^`]*)` \|", text, re.MULTILINE)
        assert row is not None, f"docs/install.md values table lacks {key}"
        assert row.group(1) == str(_value(values, key)).lower(), key


def test_the_install_guide_states_the_claims_per_device_limit() -> None:
    text = (ROOT / "docs/install.md").read_text()
    assert "at most 64 claims" in text
    assert "1/64 of each device's memory" in text
