"""docs/install.md and the examples' READMEs stay true to the chart: every value they name exists, and
every `--set` they show renders (values.schema.json refuses unknown keys and bad values)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.unit.deploy.chart import CHART_DIR, EXAMPLES_DIR, PROJECT_ROOT, render

INSTALL = PROJECT_ROOT / "docs" / "install.md"
DOCUMENTS = [INSTALL, *sorted(EXAMPLES_DIR.glob("*/README.md"))]
_SET = re.compile(r"--set ([A-Za-z0-9_.]+)=([^\s`]+)")
_TABLE_KEY = re.compile(r"^\| `([A-Za-z][A-Za-z0-9.]*)`", re.MULTILINE)


def _values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return values


def _has(values: dict[str, Any], dotted: str) -> bool:
    """Whether ``dotted`` names a value; below a free-form map (nodeSelector, resources) any key does."""
    node: Any = values
    for part in dotted.split("."):
        if node == {}:
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _nested(dotted: str, raw: str) -> dict[str, Any]:
    value: Any = yaml.safe_load(raw)
    for part in reversed(dotted.split(".")):
        value = {part: value}
    result: dict[str, Any] = value
    return result


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_every_set_flag_renders(document: Any) -> None:
    for key, raw in _SET.findall(document.read_text()):
        assert _has(_values(), key), f"{document.name}: --set {key} is not a chart value"
        render(_nested(key, raw))


def test_values_table_names_existing_values() -> None:
    text = INSTALL.read_text().split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    keys = _TABLE_KEY.findall(text)
    assert len(keys) >= 20
    for key in keys:
        assert _has(_values(), key), f"docs/install.md names {key}, which values.yaml lacks"


def test_install_guide_covers_gates_cdi_and_lifecycle() -> None:
    text = INSTALL.read_text()
    for needed in (
        "Kubernetes 1.34",
        "DRAConsumableCapacity",
        "DRAPartitionableDevices",
        "DRADeviceTaints",
        "enable_cdi = true",
        "npu-smi set -t device-share",
        "helm install xpushare deploy/helm/xpushare",
        "helm upgrade",
        "helm uninstall",
        "kubectl get resourceslices",
    ):
        assert needed in text, needed
    assert (PROJECT_ROOT / "deploy" / "helm" / "xpushare" / "Chart.yaml").is_file()
