"""Finding the NVIDIA Container Toolkit's CDI spec, and what the plugin refers to because of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dra_driver.core.devices import DeviceType
from dra_driver.core.vendors.nvidia.toolkit import TOOLKIT_KIND, find_toolkit_spec, referred_spec
from kubeletplugin import cdi

UUID = "GPU-8d3c1f2a-0000-4000-8000-000000000001"


def _toolkit_spec(directory: Path, kind: str = TOOLKIT_KIND, names: tuple[str, ...] = ("0", UUID, "all"),
                  name: str = "nvidia.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    edits = {"deviceNodes": [{"path": "/dev/nvidia0"}]}
    devices = [{"name": n, "containerEdits": edits} for n in names]
    spec = {"cdiVersion": "0.5.0", "kind": kind, "devices": devices,
            "containerEdits": {"env": ["NVIDIA_VISIBLE_DEVICES=void"]}}
    path = directory / name
    path.write_text(yaml.safe_dump(spec) if path.suffix != ".json" else json.dumps(spec))
    return path


def test_the_toolkit_s_spec_is_found_with_its_device_names(tmp_path: Path) -> None:
    etc, run = tmp_path / "etc-cdi", tmp_path / "run-cdi"
    path = _toolkit_spec(etc)
    _toolkit_spec(run, kind="xpushare.io/claim", names=("x",), name="ours.json")
    found = find_toolkit_spec([etc, run, tmp_path / "missing"])
    assert found is not None
    assert (found.kind, found.devices, found.files) == (TOOLKIT_KIND, frozenset({"0", UUID, "all"}), (path,))


def test_the_gpu_operator_s_management_spec_is_not_the_toolkit_s(tmp_path: Path) -> None:
    _toolkit_spec(tmp_path, kind="management.nvidia.com/gpu", names=("all",))
    assert find_toolkit_spec([tmp_path]) is None


def test_an_unreadable_spec_is_skipped_with_a_warning(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [unclosed\n")
    _toolkit_spec(tmp_path, name="nvidia.json")
    found = find_toolkit_spec([tmp_path])
    assert found is not None
    assert UUID in found.devices
    assert any("CDI spec unreadable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("setting", "with_spec", "expected"), [
    ("auto", True, (TOOLKIT_KIND, frozenset({"0", UUID, "all"}))),
    ("auto", False, (None, frozenset())),
    ("none", True, (None, frozenset())),
    (None, True, (None, frozenset())),
    ("example.com/gpu", False, (None, frozenset())),  # a kind with no spec on the node: logged, not used
])
def test_the_plugin_refers_to_nvidia_s_spec_as_configured(
        tmp_path: Path, setting: str | None, with_spec: bool, expected: tuple[object, ...]) -> None:
    cdi_dir = tmp_path / "cdi"
    cdi_dir.mkdir()
    if with_spec:
        _toolkit_spec(cdi_dir)
    assert referred_spec(setting, [cdi_dir]) == expected


def test_a_configured_kind_is_found_by_its_own_spec(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _toolkit_spec(tmp_path, kind="example.com/gpu", names=(UUID,))
    assert referred_spec("example.com/gpu", [tmp_path]) == ("example.com/gpu", frozenset({UUID}))
    assert referred_spec("other.example.com/gpu", [tmp_path]) == (None, frozenset())
    assert any("no CDI spec of the configured NVIDIA kind" in r.getMessage() for r in caplog.records)


def test_the_layout_looks_below_the_lookup_root_and_names_host_paths(tmp_path: Path) -> None:
    host = tmp_path / "host"  # the host's root as a read-only mount in the plugin's pod
    (host / "usr/local/Ascend/driver/tools").mkdir(parents=True)
    (host / "etc").mkdir()
    (host / "etc/hccn.conf").write_text("")
    layout = cdi.HostLayout.discover(Path("/"), Path("/"), None, tmp_path / "devices",
                                     driver_lookup_root=host)
    assert {"/usr/local/Ascend/driver/tools", "/etc/hccn.conf"} <= set(layout.vendor(DeviceType.NPU).mounts)
    device = cdi.SpecDevice(name="u-npu-0", device_type="npu", index=0, minor=0, uuid="NPU-0")
    spec = cdi.build_spec(layout, cdi.ClaimSpec("u", (device,), Path("/run/x/limits/u")))
    mounts = {m["containerPath"]: m["hostPath"] for m in spec["containerEdits"]["mounts"]}
    assert mounts["/etc/hccn.conf"] == "/etc/hccn.conf"  # the host's path, not the plugin's view of it


def test_driver_files_a_node_lacks_are_named_once_at_start(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    from kubeletplugin.plugin import _log_driver_files

    (tmp_path / "usr/local/Ascend/driver/lib64").mkdir(parents=True)
    layout = cdi.HostLayout.discover(tmp_path, tmp_path, None, tmp_path / "devices")
    _log_driver_files(layout, {DeviceType.NPU})
    message = "driver files missing on this host: left out of containers"
    (warning,) = [r for r in caplog.records if r.getMessage() == message]
    assert "/usr/local/bin/npu-smi" in warning.missing  # type: ignore[attr-defined]
    assert "/usr/local/Ascend/driver/lib64" not in warning.missing  # type: ignore[attr-defined]
    assert all(getattr(r, "vendor", "huawei") == "huawei" for r in caplog.records)  # no NVIDIA on this node
