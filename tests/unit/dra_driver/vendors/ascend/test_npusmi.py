"""The npu-smi fallback: the parser on real-format tables and the backend running a fake npu-smi."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.errors import ConfigError, DiscoveryError
from dra_driver.core.devices import GIB, MIB, Health
from dra_driver.core.vendors.ascend import npusmi
from dra_driver.core.vendors.ascend.discovery import AscendBackend
from tests.support.fakevendor import NPU_SMI_FIXTURES, fake_npu_smi
from tests.support.plugin_claims import npu


@pytest.fixture
def npu_smi_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "npu-smi"
    monkeypatch.setenv("FAKE_NPU_SMI_DIR", str(directory))
    return directory


def open_npu_smi(tool: Path, tmp_path: Path) -> AscendBackend:
    return AscendBackend(
        dcmi_library=str(tmp_path / "absent" / "libdcmi.so"),
        npu_smi=str(tool),
        sysfs_root=tmp_path / "sys",
        cann_info=str(tmp_path / "no-cann.info"),
    )


def test_parses_the_910b_table_with_hbm_column() -> None:
    info = npusmi.parse_info((NPU_SMI_FIXTURES / "info-910b3x2.txt").read_text())
    assert info.version == "24.1.rc2"
    assert [
        (c.npu_id, c.chip_id, c.physical_id, c.name, c.health, c.bus_id, c.memory_mib) for c in info.chips
    ] == [
        (0, 0, 0, "910B3", "OK", "0000:C1:00.0", 65536),
        (1, 0, 1, "910B3", "Warning", "0000:01:00.0", 65536),
    ]


def test_parses_the_310p_table_with_device_column_and_ddr_memory() -> None:
    info = npusmi.parse_info((NPU_SMI_FIXTURES / "info-310p3.txt").read_text())
    (chip,) = info.chips
    assert (chip.npu_id, chip.chip_id, chip.physical_id, chip.memory_mib) == (4, 0, 2, 21527)


def test_garbage_names_the_command_and_the_line() -> None:
    text = (NPU_SMI_FIXTURES / "info-garbage.txt").read_text()
    with pytest.raises(DiscoveryError, match=r"^npu-smi info: line 7: expected '<NPU id> <name>'"):
        npusmi.parse_info(text)


def test_unreadable_memory_figures_are_an_error() -> None:
    text = (NPU_SMI_FIXTURES / "info-910b3x2.txt").read_text().replace("3395 / 65536", "n/a")
    with pytest.raises(DiscoveryError, match=r"line 8: expected used / total memory figures"):
        npusmi.parse_info(text)


def test_output_without_a_device_table_is_an_error() -> None:
    with pytest.raises(DiscoveryError, match=r"npu-smi info: no device table in the output \(2 lines\)"):
        npusmi.parse_info("dcmi module initialize failed. ret is -8005\nsomething else\n")


def test_backend_falls_back_to_npu_smi_and_reads_share_mode(tmp_path: Path, npu_smi_dir: Path) -> None:
    tool = fake_npu_smi(npu_smi_dir, "info-910b3x2.txt", share={(0, 0): True, (1, 0): False})
    backend = open_npu_smi(tool, tmp_path)
    assert backend.source == "npu-smi"
    first, second = backend.discover()
    assert (first.model, first.index, first.device_node, first.memory_bytes) == (
        "Ascend910B3",
        0,
        "/dev/davinci0",
        64 * GIB,
    )
    assert (first.uuid, first.pci_bus_id, first.cores, first.driver_version) == (
        "npu-0000:c1:00.0",
        "0000:c1:00.0",
        20,
        "24.1.rc2",
    )
    assert (first.shareable, second.shareable) == (True, False)
    assert (second.health, second.health_message) == (Health.HEALTHY, "npu-smi health: Warning")


def test_share_mode_unknown_when_npu_smi_cannot_tell(tmp_path: Path, npu_smi_dir: Path) -> None:
    tool = fake_npu_smi(npu_smi_dir, "info-310p3.txt")
    (device,) = open_npu_smi(tool, tmp_path).discover()
    assert (device.shareable, device.minor, device.memory_bytes) == (False, 2, 21527 * MIB)
    assert device.extra["sharing"].startswith("unknown")


def test_health_follows_later_npu_smi_output(tmp_path: Path, npu_smi_dir: Path) -> None:
    tool = fake_npu_smi(npu_smi_dir, "info-910b3x2.txt")
    backend = open_npu_smi(tool, tmp_path)
    devices = backend.discover()
    table = (npu_smi_dir / "info.txt").read_text()
    (npu_smi_dir / "info.txt").write_text(table.replace("| OK            |", "| Critical      |"))
    critical, warning = backend.check_health(devices)
    assert (critical.health, critical.health_message) == (Health.UNHEALTHY, "npu-smi health: Critical")
    assert warning.health is Health.HEALTHY
    (npu_smi_dir / "info.txt").write_text("garbage\n")
    assert all(d.health is Health.UNHEALTHY for d in backend.check_health(devices))


def test_failing_npu_smi_is_a_discovery_error_with_its_message(tmp_path: Path, npu_smi_dir: Path) -> None:
    tool = fake_npu_smi(npu_smi_dir, "info-910b3x2.txt")
    (npu_smi_dir / "info.txt").write_text("dcmi module initialize failed. ret is -8005\n")
    (npu_smi_dir / "info.exit").write_text("1\n")
    with pytest.raises(DiscoveryError, match=r"npu-smi info: exit status 1: dcmi module initialize failed"):
        open_npu_smi(tool, tmp_path).discover()


def test_garbage_from_the_tool_is_a_discovery_error(tmp_path: Path, npu_smi_dir: Path) -> None:
    tool = fake_npu_smi(npu_smi_dir, "info-garbage.txt")
    with pytest.raises(DiscoveryError, match=r"npu-smi info: line 7"):
        open_npu_smi(tool, tmp_path).discover()


@pytest.mark.parametrize("value", ["soon", "0", "-1", "601"])
def test_the_npu_smi_timeout_option_is_a_number_of_seconds_in_range(
    tmp_path: Path, npu_smi_dir: Path, value: str
) -> None:
    tool = fake_npu_smi(npu_smi_dir, "info-910b3x2.txt")
    with pytest.raises(ConfigError, match=r"^npu_smi_timeout: "):
        AscendBackend(dcmi_library=str(tmp_path / "absent.so"), npu_smi=str(tool), npu_smi_timeout=value)


def test_a_hanging_npu_smi_is_killed_after_the_timeout(tmp_path: Path, npu_smi_dir: Path) -> None:
    tool = fake_npu_smi(npu_smi_dir, "info-910b3x2.txt")
    (npu_smi_dir / "hang").write_text("info\n")
    backend = AscendBackend(
        dcmi_library=str(tmp_path / "absent.so"), npu_smi=str(tool), npu_smi_timeout="0.5"
    )
    with pytest.raises(npusmi.NpuSmiTimeoutError, match=r"info: no answer within 0.5 s$"):
        backend.discover()
    checked = backend.check_health([npu(0), npu(1)])  # health checks are bounded the same way
    assert {(d.health, d.health_message.split(": ", 1)[1]) for d in checked} == {
        (Health.UNHEALTHY, "no answer within 0.5 s")
    }
