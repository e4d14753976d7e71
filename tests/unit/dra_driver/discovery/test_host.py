"""Node facts: PCI address forms and sysfs NUMA nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dra_driver.core.discovery import host


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00000000:18:00.0", "0000:18:00.0"),
        ("0000:C1:00.0", "0000:c1:00.0"),
        ("18:00.0", "0000:18:00.0"),
        ("0001:0a:1f.7", "0001:0a:1f.7"),
        ("not-a-bus-id", ""),
        ("0000:18:00.9", ""),
    ],
)
def test_bus_ids_are_normalized_to_the_sysfs_form(raw: str, expected: str) -> None:
    assert host.normalize_bus_id(raw) == expected


def test_numa_node_from_sysfs(tmp_path: Path) -> None:
    for bus_id, value in (("0000:18:00.0", "1"), ("0000:19:00.0", "-1"), ("0000:1a:00.0", "x")):
        directory = tmp_path / "bus" / "pci" / "devices" / bus_id
        directory.mkdir(parents=True)
        (directory / "numa_node").write_text(value + "\n")
    assert host.numa_node("0000:18:00.0", tmp_path) == 1
    assert host.numa_node("0000:19:00.0", tmp_path) is None
    assert host.numa_node("0000:1a:00.0", tmp_path) is None
    assert host.numa_node("0000:1b:00.0", tmp_path) is None
    assert host.numa_node("", tmp_path) is None
