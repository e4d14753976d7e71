"""The README's main command, ``xpushare demo``, run as a user runs it: a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

DEMO_TIMEOUT_S = 240


def run_demo(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dra_driver", "demo", *args],
        capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False,
    )
    assert result.returncode == 0, f"demo failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def published_slices(output: str) -> list[dict[str, object]]:
    """The YAML documents the demo prints after its slices heading."""
    section = output.split("=== ResourceSlices", 1)[1].split("\n", 1)[1].split("\n=== ", 1)[0]
    return [doc for doc in yaml.safe_load_all(section) if doc]


def test_demo_discovers_the_default_inventory() -> None:
    output = run_demo()
    assert "discovered 3 devices" in output
    assert output.count("Ascend910B3") >= 2
    assert "H100-SXM5-80GB" in output


@pytest.mark.parametrize("mode", ["consumable", "partitioned", "exclusive"])
def test_demo_shows_slices_of_every_device_in_each_mode(mode: str) -> None:
    slices = published_slices(run_demo("--mode", mode))
    names = {
        device["name"]  # type: ignore[index]
        for item in slices
        for device in item["spec"].get("devices", [])  # type: ignore[union-attr,attr-defined]
    }
    assert all(item["kind"] == "ResourceSlice" for item in slices)
    # Every mode offers each whole device under its own name (partitioned mode adds partitions).
    assert {"npu-0", "npu-1", "gpu-0"} <= names
