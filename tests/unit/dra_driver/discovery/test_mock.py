"""The mock backend: the shipped inventory, strict validation, and health edited at runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from api.errors import ConfigError, DiscoveryError
from dra_driver.core.devices import GIB, DeviceType, Health, Scheduling
from dra_driver.core.discovery.mock import MockBackend, load_inventory, parse_memory

NPU = {
    "type": "npu",
    "vendor": "huawei",
    "model": "Ascend910B3",
    "uuid": "npu-a",
    "index": 0,
    "memory": "64Gi",
    "cores": 20,
    "deviceNode": "/dev/davinci0",
    "minor": 0,
}


def write_inventory(path: Path, devices: list[dict[str, object]]) -> Path:
    path.write_text(
        yaml.safe_dump({"apiVersion": "xpushare.io/v1alpha1", "kind": "DeviceInventory", "devices": devices})
    )
    return path


def test_default_inventory_has_two_910b3_and_one_h100() -> None:
    devices = MockBackend().discover()
    assert [(d.name, d.model, d.memory_bytes, d.cores) for d in devices] == [
        ("npu-0", "Ascend910B3", 64 * GIB, 20),
        ("npu-1", "Ascend910B3", 64 * GIB, 20),
        ("gpu-0", "H100-SXM5-80GB", 80 * GIB, 132),
    ]
    assert [d.device_node for d in devices] == ["/dev/davinci0", "/dev/davinci1", "/dev/nvidia0"]
    assert all(
        d.health is Health.HEALTHY and d.shareable and d.pci_bus_id and d.driver_version for d in devices
    )
    assert len({d.uuid for d in devices}) == 3
    assert (devices[2].type, devices[2].runtime_version) == (DeviceType.GPU, "12.4")


def test_fields_and_defaults_of_an_inventory_device(tmp_path: Path) -> None:
    path = write_inventory(tmp_path / "inv.yaml", [{**NPU, "health": "Unhealthy", "healthMessage": "ECC"}])
    (device,) = MockBackend(inventory=path).discover()
    assert (device.memory_bytes, device.health, device.health_message) == (64 * GIB, Health.UNHEALTHY, "ECC")
    assert (device.pci_bus_id, device.numa_node, device.shareable) == ("", None, True)
    assert device.scheduling is Scheduling.SERIAL  # the simulated devices run work in turns


def test_an_inventory_device_may_time_slice(tmp_path: Path) -> None:
    path = write_inventory(tmp_path / "inv.yaml", [{**NPU, "scheduling": "time-sliced"}])
    assert MockBackend(inventory=path).discover()[0].scheduling is Scheduling.TIME_SLICED


def test_json_inventory_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    path.write_text(json.dumps({"devices": [{**NPU, "memory": 1024}]}))
    assert MockBackend(inventory=path).discover()[0].memory_bytes == 1024


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"memory": "64GB"}, r"devices\[0\]\.memory: Value error, '64GB' is not a byte count"),
        ({"colour": "red"}, r"devices\[0\]\.colour: Extra inputs are not permitted"),
        ({"cores": -1}, r"devices\[0\]\.cores: Input should be greater than or equal to 0"),
        ({"deviceNode": "davinci0"}, r"devices\[0\]\.deviceNode: String should match pattern"),
        ({"health": "Sick"}, r"devices\[0\]\.health: Input should be 'Unknown', 'Healthy' or 'Unhealthy'"),
        ({"type": "fpga"}, r"devices\[0\]\.type: Input should be 'npu' or 'gpu'"),
    ],
)
def test_invalid_device_fields_are_named(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    path = write_inventory(tmp_path / "inv.yaml", [{**NPU, **change}])
    with pytest.raises(ConfigError, match=rf"{path}: {expected}"):
        MockBackend(inventory=path)


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    path = write_inventory(
        tmp_path / "inv.yaml", [{**NPU, "cores": -1}, {**NPU, "uuid": "b", "index": 1, "minor": "x"}]
    )
    with pytest.raises(ConfigError) as caught:
        load_inventory(path)
    assert "devices[0].cores" in str(caught.value)
    assert "devices[1].minor" in str(caught.value)


def test_duplicate_devices_are_rejected(tmp_path: Path) -> None:
    path = write_inventory(tmp_path / "inv.yaml", [NPU, {**NPU, "uuid": "npu-b"}])
    with pytest.raises(
        ConfigError, match=r"devices: Value error, \[1\]: a npu device with index 0 is listed twice"
    ):
        load_inventory(path)


def test_missing_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match=r"read inventory .*absent.yaml: No such file or directory"):
        MockBackend(inventory=tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML/JSON"):
        MockBackend(inventory=bad)


def test_health_edited_in_the_file_is_seen_by_the_next_check(tmp_path: Path) -> None:
    second = {**NPU, "uuid": "npu-b", "index": 1, "deviceNode": "/dev/davinci1", "minor": 1}
    path = write_inventory(tmp_path / "inv.yaml", [NPU, second])
    backend = MockBackend(inventory=path)
    devices = backend.discover()
    write_inventory(path, [{**NPU, "health": "Unhealthy", "healthMessage": "HBM ECC errors"}])
    sick, gone = backend.check_health(devices)
    assert (sick.health, sick.health_message) == (Health.UNHEALTHY, "HBM ECC errors")
    assert (gone.health, gone.health_message) == (Health.UNHEALTHY, "device is no longer in the inventory")
    assert devices[0].health is Health.HEALTHY


def test_unreadable_inventory_during_health_check_marks_devices_unhealthy(tmp_path: Path) -> None:
    path = write_inventory(tmp_path / "inv.yaml", [NPU])
    backend = MockBackend(inventory=path)
    devices = backend.discover()
    path.write_text("devices: 3\n")
    (device,) = backend.check_health(devices)
    assert device.health is Health.UNHEALTHY
    assert device.health_message.startswith("inventory unreadable: invalid inventory")


@pytest.mark.parametrize(
    ("text", "expected"), [("64Gi", 64 * GIB), ("512Mi", 512 << 20), ("7", 7), ("2Ti", 2 << 40)]
)
def test_memory_quantities(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


def test_an_inventory_whose_aliases_would_multiply_it_is_refused_before_expansion(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["lol"]']
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\n")
    with pytest.raises(ConfigError, match="once alias"):
        load_inventory(path)


def test_an_inventory_of_two_documents_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("devices: []\n---\ndevices: []\n")
    with pytest.raises(ConfigError, match="holds 2 YAML documents"):
        load_inventory(path)
