"""Device health on a real cluster: an unhealthy device is published with a NoSchedule device taint, the
real scheduler keeps claims off it (a pod that fits only there stays Pending), and once the device
recovers the taint goes and the pod is placed on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.settings import UNHEALTHY_TAINT_KEY, SliceMode
from dra_driver.core.discovery.base import open_backend
from kubeletplugin.plugin import Plugin
from tests.realk8s.conftest import TestNode, create_pod, install_device_classes, wait_for
from tests.realk8s.test_allocation import bound_claim, create_template, read_pod
from tests.support.plugin_node import INVENTORY, node_settings

SICK = 1  # the second NPU


def _inventory(path: Path, *, sick: bool) -> Path:
    data = yaml.safe_load(INVENTORY.read_text())
    npus = [d for d in data["devices"] if d["type"] == "npu"]
    npus[SICK]["health"] = "Unhealthy" if sick else "Healthy"
    npus[SICK]["healthMessage"] = "HBM ECC errors" if sick else ""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(yaml.safe_dump(data))
    temporary.replace(path)  # the mock backend re-reads it at every health check
    return path


@pytest.fixture
def sick_node_plugin(node: TestNode, tmp_path: Path) -> Iterator[tuple[Plugin, Path]]:
    install_device_classes(node.cluster)
    inventory = _inventory(tmp_path / "inventory.yaml", sick=True)
    settings = node_settings(node.root, node.sockets, node.name, inventory, health_interval_s=0.5,
                             slice_mode=SliceMode.CONSUMABLE)
    plugin = Plugin(settings, backend=open_backend("mock", inventory=str(inventory)), client=node.cluster.api)
    plugin.start()
    yield plugin, inventory
    plugin.stop()


def _taints(node: TestNode) -> dict[str, list[dict[str, Any]]]:
    return {device["name"]: device.get("taints", []) for s in node.slices()
            for device in s["spec"].get("devices") or []}


def test_an_unhealthy_device_is_tainted_and_kept_free_until_it_recovers(
        node: TestNode, sick_node_plugin: tuple[Plugin, Path]) -> None:
    _plugin, inventory = sick_node_plugin
    taints = wait_for("the sick NPU's taint", lambda: (t := _taints(node)).get(f"npu-{SICK}") and t)
    (taint,) = taints[f"npu-{SICK}"]
    assert (taint["key"], taint["effect"]) == (UNHEALTHY_TAINT_KEY, "NoSchedule")
    assert taints["npu-0"] == []

    create_template(node, "big-npu", "npu.xpushare.io", "40Gi", "50")  # two do not fit on one 64Gi NPU
    create_pod(node, "first", "big-npu")
    first = bound_claim(node, "first")
    assert [r["device"] for r in first["status"]["allocation"]["devices"]["results"]] == ["npu-0"]
    create_pod(node, "second", "big-npu")

    def unschedulable() -> dict[str, Any] | None:
        conditions = read_pod(node, "second")["status"].get("conditions") or []
        return next((c for c in conditions if c["type"] == "PodScheduled" and c["status"] == "False"), None)

    condition = wait_for("the second pod Unschedulable", unschedulable)
    assert condition["reason"] == "Unschedulable"
    assert not read_pod(node, "second")["spec"].get("nodeName")  # not on the tainted NPU

    _inventory(inventory, sick=False)
    wait_for("the taint gone", lambda: _taints(node).get(f"npu-{SICK}") == [])
    second = bound_claim(node, "second", timeout_s=60)
    assert [r["device"] for r in second["status"]["allocation"]["devices"]["results"]] == [f"npu-{SICK}"]
