"""Choosing and opening backends: names, options, environment defaults and auto-detection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from api.errors import ConfigError, DiscoveryError
from dra_driver.core.discovery import DeviceBackend, backend_from_settings, open_backend
from dra_driver.core.discovery.mock import MockBackend
from dra_driver.core.vendors.ascend.discovery import AscendBackend
from dra_driver.core.vendors.nvidia.discovery import NvidiaBackend
from tests.support.fakevendor import dcmi_config, nvml_config


def test_mock_backend_implements_the_protocol() -> None:
    backend = open_backend("mock", environ={})
    assert isinstance(backend, DeviceBackend)
    assert backend.name == "mock"
    backend.close()


def test_unknown_kind_and_option_are_config_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"discovery backend: 'tpu' is not one of mock, nvidia, ascend, auto"
    ):
        open_backend("tpu", environ={})
    with pytest.raises(ConfigError, match=r"discovery options: unknown nvml_path \(allowed: .*nvml_library"):
        open_backend("mock", environ={}, nvml_path="/x")


def test_options_default_to_environment_variables(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text("devices: []\n")
    backend = open_backend("mock", environ={"XPUSHARE_INVENTORY": str(inventory)})
    assert isinstance(backend, MockBackend)
    assert backend.inventory_path == inventory
    assert backend.discover() == []


def test_auto_prefers_nvidia_when_nvml_loads(fake_nvml_library: Path, nvml_config_path: Path) -> None:
    nvml_config().write(nvml_config_path)
    backend = open_backend("auto", environ={"XPUSHARE_NVML_LIBRARY": str(fake_nvml_library)})
    try:
        assert isinstance(backend, NvidiaBackend)
    finally:
        backend.close()


def test_auto_falls_back_to_ascend(
    fake_dcmi_library: Path, dcmi_config_path: Path, nvml_config_path: Path, tmp_path: Path
) -> None:
    dcmi_config().write(dcmi_config_path)
    environ = {
        "XPUSHARE_NVML_LIBRARY": str(tmp_path / "none.so"),
        "XPUSHARE_DCMI_LIBRARY": str(fake_dcmi_library),
    }
    backend = open_backend("auto", environ=environ)
    assert isinstance(backend, AscendBackend)
    assert backend.source == "dcmi"


def test_auto_without_any_library_names_what_was_tried(tmp_path: Path) -> None:
    environ = {
        "XPUSHARE_NVML_LIBRARY": str(tmp_path / "libnvidia-ml.so.1"),
        "XPUSHARE_DCMI_LIBRARY": str(tmp_path / "libdcmi.so"),
        "XPUSHARE_NPU_SMI": str(tmp_path / "npu-smi"),
    }
    with pytest.raises(DiscoveryError) as caught:
        open_backend("auto", environ=environ)
    message = str(caught.value)
    assert message.startswith("no accelerator backend found (tried nvidia: NVML library ")
    assert "libnvidia-ml.so.1: no such file" in message
    assert "ascend: no Ascend management interface: load DCMI library: " in message
    assert "npu-smi: " in message


@dataclass
class Settings:
    discovery_backend: str
    inventory: str | None = None


def test_backend_from_settings_reads_attributes_or_keys(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text("devices: []\n")
    from_object = backend_from_settings(Settings("mock", str(inventory)), environ={})
    from_mapping = backend_from_settings({"backend": "mock", "inventory": str(inventory)}, environ={})
    assert isinstance(from_object, MockBackend)
    assert isinstance(from_mapping, MockBackend)
    assert from_object.inventory_path == from_mapping.inventory_path == inventory


def test_backend_from_settings_defaults_to_the_environment() -> None:
    backend = backend_from_settings({}, environ={"XPUSHARE_DISCOVERY_BACKEND": "mock"})
    assert isinstance(backend, MockBackend)
    assert len(backend.discover()) == 3
