"""The registry: one profile per device type, found by type or by backend name, loading no library."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from dra_driver.core.devices import DeviceType
from dra_driver.core.discovery import BACKEND_KINDS, OPTION_ENV
from dra_driver.core.vendors import DETECTION_ORDER, PROFILES, profile_for, profile_of_backend
from dra_driver.core.vendors.profile import ClaimedDevice, VendorHost


def test_every_device_type_has_one_profile_of_that_type() -> None:
    assert list(PROFILES) == list(DeviceType)
    for device_type, profile in PROFILES.items():
        assert profile.device_type is device_type
        assert profile_for(device_type.value) is profile
        assert profile_of_backend(profile.backend) is profile
    assert {p.backend for p in DETECTION_ORDER} == {p.backend for p in PROFILES.values()}


def test_backend_names_and_options_come_from_the_profiles() -> None:
    assert BACKEND_KINDS == ("mock", "nvidia", "ascend", "auto")
    for profile in PROFILES.values():
        assert dict(profile.backend_options).items() <= dict(OPTION_ENV).items()


@pytest.mark.parametrize(
    ("device_type", "node"), [(DeviceType.NPU, "/dev/davinci5"), (DeviceType.GPU, "/dev/nvidia5")]
)
def test_a_device_s_edits_are_its_node_by_minor_and_its_identity(device_type: DeviceType, node: str) -> None:
    profile = profile_for(device_type)
    edits = profile.device_edits(ClaimedDevice(index=1, minor=5, uuid="U"), VendorHost())
    assert edits.device_nodes == (node,) == (profile.device_node(5),)
    assert edits.env == (f"XPUSHARE_DEVICE_{device_type.value.upper()}5=U",)  # by minor: unique on the node


def test_locate_finds_only_the_driver_files_present(tmp_path: Path) -> None:
    (tmp_path / "usr/local/dcmi").mkdir(parents=True)
    found = profile_for(DeviceType.NPU).locate(tmp_path, "vendor.example/npu")
    assert found == VendorHost(mounts=("/usr/local/dcmi",), cdi_kind="vendor.example/npu")
    assert profile_for(DeviceType.GPU).locate(tmp_path) == VendorHost()


def test_the_registry_and_the_mock_backend_load_no_vendor_library() -> None:
    code = (
        "import sys\n"
        "from dra_driver.core.discovery import open_backend\n"
        "open_backend('mock', environ={}).discover()\n"
        "print(sorted(m for m in ('pynvml', 'cffi') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("device_type", "attribute"), [(DeviceType.GPU, "smCount"), (DeviceType.NPU, "aicoreCount")]
)
def test_each_vendor_names_its_compute_unit_attribute(device_type: DeviceType, attribute: str) -> None:
    assert profile_for(device_type).cores_attribute == attribute


def test_the_default_partition_menus_are_the_vendors_own() -> None:
    from controller.settings import DEFAULT_PARTITION_PROFILES

    expected = {key: sizes for p in PROFILES.values() for key, sizes in p.partition_sizes.items()}
    assert dict(DEFAULT_PARTITION_PROFILES) == expected
    assert DEFAULT_PARTITION_PROFILES["ascend310p"] == (Fraction(1, 7), Fraction(2, 7), Fraction(4, 7))
    assert DEFAULT_PARTITION_PROFILES["gpu"][0] == Fraction(1, 8)
    for sizes in expected.values():
        assert all(0 < size <= 1 for size in sizes)


def test_the_default_fixed_layouts_are_the_vendors_own_and_fit_their_devices() -> None:
    from controller.settings import DEFAULT_FIXED_PARTITIONS

    expected = {key: pieces for p in PROFILES.values() for key, pieces in p.fixed_partitions.items()}
    assert dict(DEFAULT_FIXED_PARTITIONS) == expected
    assert DEFAULT_FIXED_PARTITIONS["gpu"] == (Fraction(1, 4),) * 4
    for pieces in expected.values():
        assert sum(pieces) <= 1
