"""The Ascend backend through DCMI, run for real through cffi against the fake libdcmi.so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from api.errors import ConfigError, DiscoveryError
from dra_driver.core.devices import GIB, MIB, DeviceType, Health
from dra_driver.core.vendors.ascend.discovery import AscendBackend, health_from_dcmi
from tests.support.fakevendor import FakeNpu, dcmi_config

NPU0 = FakeNpu()
NPU1 = FakeNpu(
    card_id=1, logic_id=1, phy_id=1, bus="0xc2", vdie="1f7d3b82 c4e96a05 9b2de83a 5c17f4b0 00000002"
)


def open_dcmi(library: Path, tmp_path: Path, **options: str) -> AscendBackend:
    return AscendBackend(dcmi_library=str(library), sysfs_root=tmp_path / "sys", **options)


def test_enumerates_chips_with_dcmi_values(
    fake_dcmi_library: Path, dcmi_config_path: Path, tmp_path: Path
) -> None:
    dcmi_config([NPU0, NPU1]).write(dcmi_config_path)
    cann = tmp_path / "ascend_toolkit_install.info"
    cann.write_text("package_name=Ascend-cann-toolkit\nversion=8.0.RC2\narch=aarch64\n")
    numa = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:c2:00.0"
    numa.mkdir(parents=True)
    (numa / "numa_node").write_text("1\n")
    backend = open_dcmi(fake_dcmi_library, tmp_path, cann_info=str(cann))
    assert backend.source == "dcmi"
    first, second = backend.discover()
    assert (first.type, first.vendor, first.model, first.index) == (
        DeviceType.NPU,
        "huawei",
        "Ascend910B3",
        0,
    )
    assert first.uuid == "6C2A9F4E-31B70D58-A1E37F0C-4B9D2E61-00000001"
    assert (first.memory_bytes, first.cores) == (64 * GIB, 20)
    assert (first.device_node, first.minor, first.pci_bus_id) == ("/dev/davinci0", 0, "0000:c1:00.0")
    assert (first.driver_version, first.runtime_version) == ("24.1.rc2", "8.0.RC2")
    assert (first.health, first.shareable, first.numa_node) == (Health.HEALTHY, True, None)
    assert first.extra["sharing"] == "device-share enabled"
    assert (second.index, second.device_node, second.pci_bus_id, second.numa_node) == (
        1,
        "/dev/davinci1",
        "0000:c2:00.0",
        1,
    )


def test_device_node_follows_the_physical_id_and_index_the_logical_id(
    fake_dcmi_library: Path, dcmi_config_path: Path, tmp_path: Path
) -> None:
    dcmi_config([replace(NPU0, logic_id=0, phy_id=5), replace(NPU1, logic_id=1, phy_id=4)]).write(
        dcmi_config_path
    )
    devices = open_dcmi(fake_dcmi_library, tmp_path).discover()
    assert [(d.index, d.minor, d.device_node) for d in devices] == [
        (0, 5, "/dev/davinci5"),
        (1, 4, "/dev/davinci4"),
    ]


def test_chip_without_hbm_reports_ddr_memory_and_table_aicores(
    fake_dcmi_library: Path, dcmi_config_path: Path, tmp_path: Path
) -> None:
    chip = replace(NPU0, chip_name="310P3", hbm_mib=0, memory_mib=21527, aicore_cnt=0)
    dcmi_config([chip]).write(dcmi_config_path)
    (device,) = open_dcmi(fake_dcmi_library, tmp_path).discover()
    assert (device.model, device.memory_bytes, device.cores) == ("Ascend310P3", 21527 * MIB, 8)


def test_device_share_off_or_unknown_makes_the_chip_not_shareable(
    fake_dcmi_library: Path, dcmi_config_path: Path, tmp_path: Path
) -> None:
    dcmi_config([replace(NPU0, share=0), replace(NPU1, share_error=-8255)]).write(dcmi_config_path)
    off, unknown = open_dcmi(fake_dcmi_library, tmp_path).discover()
    assert (off.shareable, off.extra["sharing"]) == (False, "device-share disabled")
    assert not unknown.shareable
    assert unknown.extra["sharing"] == "unknown (dcmi_get_device_share_enable returned -8255 (not supported))"


@pytest.mark.parametrize(
    ("code", "health", "message"),
    [
        (0, Health.HEALTHY, ""),
        (1, Health.HEALTHY, "DCMI health: minor alarm"),
        (2, Health.UNHEALTHY, "DCMI health: major alarm"),
        (3, Health.UNHEALTHY, "DCMI health: critical alarm"),
        (0xFFFFFFFF, Health.UNHEALTHY, "DCMI health: device absent"),
        (7, Health.UNHEALTHY, "DCMI health: unknown health value 7"),
    ],
)
def test_dcmi_health_scale(code: int, health: Health, message: str) -> None:
    assert health_from_dcmi(code) == (health, message)


def test_chip_that_stops_answering_turns_unhealthy(
    fake_dcmi_library: Path, dcmi_config_path: Path, tmp_path: Path
) -> None:
    dcmi_config([NPU0, NPU1]).write(dcmi_config_path)
    backend = open_dcmi(fake_dcmi_library, tmp_path)
    devices = backend.discover()
    dcmi_config([NPU0, replace(NPU1, lost=1)]).write(dcmi_config_path)
    fine, lost = backend.check_health(devices)
    assert fine.health is Health.HEALTHY
    assert lost.health is Health.UNHEALTHY
    assert (
        lost.health_message
        == "DCMI: device stopped answering: dcmi_get_device_health returned -8006 (timed out)"
    )
    dcmi_config([replace(NPU0, health=3), NPU1]).write(dcmi_config_path)
    critical, back = backend.check_health(devices)
    assert (critical.health, critical.health_message) == (Health.UNHEALTHY, "DCMI health: critical alarm")
    assert back.health is Health.HEALTHY


def test_chip_silent_at_discovery_is_listed_unhealthy(
    fake_dcmi_library: Path, dcmi_config_path: Path, tmp_path: Path
) -> None:
    dcmi_config([NPU0, replace(NPU1, lost=1)]).write(dcmi_config_path)
    fine, lost = open_dcmi(fake_dcmi_library, tmp_path).discover()
    assert fine.health is Health.HEALTHY
    assert (lost.health, lost.index, lost.device_node) == (Health.UNHEALTHY, 1, "/dev/davinci1")
    assert "card 1 chip 0 does not answer: dcmi_get_device_chip_info returned -8006" in lost.health_message


def test_missing_library_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "libdcmi.so"
    with pytest.raises(DiscoveryError, match=rf"load DCMI library: {missing}: no such file"):
        AscendBackend(dcmi_library=str(missing), ascend_source="dcmi")


def test_init_failure_is_a_discovery_error(
    fake_dcmi_library: Path, dcmi_config_path: Path, tmp_path: Path
) -> None:
    dcmi_config(init_error=-8008).write(dcmi_config_path)
    with pytest.raises(
        DiscoveryError, match=r"libdcmi.so: dcmi_init returned -8008 \(device does not exist\)"
    ):
        open_dcmi(fake_dcmi_library, tmp_path, ascend_source="dcmi")


def test_no_dcmi_and_no_npu_smi_names_both(tmp_path: Path) -> None:
    with pytest.raises(
        DiscoveryError, match=r"no Ascend management interface: load DCMI library: .*; npu-smi: "
    ):
        AscendBackend(dcmi_library=str(tmp_path / "none.so"), npu_smi=str(tmp_path / "npu-smi"))


def test_unknown_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"ascend_source: 'smi' is not one of auto, dcmi, npu-smi"):
        AscendBackend(ascend_source="smi")
