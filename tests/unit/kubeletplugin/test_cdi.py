"""CDI specs give the container what DESIGN.md section 6 lists, validate upstream, use the lowest version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dra_driver.core.devices import DeviceType
from dra_driver.core.vendors.ascend.profile import CONTROL_NODES as ASCEND_CONTROL_NODES
from dra_driver.core.vendors.nvidia.profile import CONTROL_NODES as NVIDIA_CONTROL_NODES
from kubeletplugin import cdi
from tests.support.cdi_schema import validate_cdi_spec

UID = "0b4f6c1e-7d2a-4c55-9e0f-3a1b2c3d4e5f"


def _nodes(root: Path, *paths: str) -> None:
    """Device nodes on a fake host root (regular files: only their existence is looked at)."""
    (root / "dev").mkdir(exist_ok=True)
    for path in paths:
        (root / path.lstrip("/")).write_text("")


def _ascend_root(root: Path) -> Path:
    _nodes(root, *ASCEND_CONTROL_NODES)
    for path in ("usr/local/Ascend/driver/lib64", "usr/local/dcmi"):
        (root / path).mkdir(parents=True)
    (root / "usr/local/Ascend/driver/version.info").write_text("Version=24.1.rc2\n")
    (root / "etc").mkdir()
    (root / "etc/ascend_install.info").write_text("Driver_Install_Path_Param=/usr/local/Ascend\n")
    return root


def _layout(root: Path, shim: bool = True, nvidia_kind: str | None = None) -> cdi.HostLayout:
    shim_path = root / "libxpushare.so" if shim else None
    own_kinds = {DeviceType.GPU: nvidia_kind} if nvidia_kind else None
    return cdi.HostLayout.discover(root, root, shim_path, root / "devices", vendor_cdi_kinds=own_kinds)


def _spec_of(layout: cdi.HostLayout, devices: tuple[cdi.SpecDevice, ...], uid: str = UID) -> dict[str, Any]:
    return cdi.build_spec(layout, cdi.ClaimSpec(uid, devices, Path(f"/run/xpushare/limits/{uid}.json")))


def _env(spec: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in spec["containerEdits"]["env"])


# Logical ids (index) differ from physical ids (minor), as on a node where the runtime renumbers.
NPU3 = cdi.SpecDevice(name=f"{UID}-npu-3", device_type="npu", index=0, minor=3, uuid="NPU-3")
NPU5 = cdi.SpecDevice(name=f"{UID}-npu-5", device_type="npu", index=1, minor=5, uuid="NPU-5")
GPU1 = cdi.SpecDevice(name=f"{UID}-gpu-1", device_type="gpu", index=1, minor=1, uuid="GPU-1")


def test_ascend_spec_has_nodes_driver_mounts_shim_limits_and_no_physical_runtime_id(
    tmp_path: Path, schemas_dir: Path
) -> None:
    layout = _layout(_ascend_root(tmp_path))
    spec = _spec_of(layout, (NPU3, NPU5))
    validate_cdi_spec(spec, schemas_dir)
    assert spec["devices"][0]["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/davinci3", "hostPath": f"{tmp_path}/dev/davinci3"}
    ]
    shared = spec["containerEdits"]
    assert [n["path"] for n in shared["deviceNodes"]] == [
        "/dev/davinci_manager",
        "/dev/devmm_svm",
        "/dev/hisi_hdc",
    ]
    mounts = {m["containerPath"]: m for m in shared["mounts"]}
    for path in (
        "/usr/local/Ascend/driver/lib64",
        "/usr/local/Ascend/driver/version.info",
        "/etc/ascend_install.info",
        "/usr/local/dcmi",
        cdi.CONTAINER_SHIM_PATH,
        cdi.container_limits_path(UID),
    ):
        assert "ro" in mounts[path]["options"], path
    assert "/usr/local/bin/npu-smi" not in mounts  # absent on this host, so not mounted
    env = _env(spec)
    assert env["ASCEND_VISIBLE_DEVICES"] == "3,5"
    assert "ASCEND_RT_VISIBLE_DEVICES" not in env
    assert env["LD_PRELOAD"] == cdi.CONTAINER_SHIM_PATH
    assert env["XPUSHARE_LIMITS_FILE"] == cdi.CONTAINER_LIMITS_DIR  # the same in every claim's spec
    assert mounts[f"/etc/xpushare/limits.d/{UID}"]["hostPath"] == f"/run/xpushare/limits/{UID}.json"
    assert "XPUSHARE_CLAIM_UID" not in env  # two claims of a container would set it twice


def test_the_claimed_devices_are_mounted_read_only_and_only_the_claims_own_ledgers_read_write(
    tmp_path: Path,
) -> None:
    spec = _spec_of(_layout(_ascend_root(tmp_path)), (NPU3,))
    mounts = spec["containerEdits"]["mounts"]
    shared = [m for m in mounts if m["containerPath"].startswith(("/var/run/xpushare", "/etc/xpushare"))]
    assert shared == [
        {"hostPath": f"/run/xpushare/limits/{UID}.json", "containerPath": f"/etc/xpushare/limits.d/{UID}",
         "options": list(cdi.READ_ONLY)},
        {"hostPath": f"{tmp_path}/devices/NPU-3", "containerPath": f"{cdi.CONTAINER_DEVICES_DIR}/NPU-3",
         "options": list(cdi.READ_ONLY)},  # the board and every claim's ledger: read, never written
        {"hostPath": f"{tmp_path}/devices/NPU-3/claims/{UID}",  # its own ledger: the one writable file
         "containerPath": f"{cdi.CONTAINER_CLAIMS_DIR}/{UID}/NPU-3", "options": list(cdi.READ_WRITE)},
    ]
    writable = [m for m in mounts if "rw" in m["options"]]
    assert [m["containerPath"] for m in writable] == [f"{cdi.CONTAINER_CLAIMS_DIR}/{UID}/NPU-3"]
    assert cdi.container_files(UID, "NPU-3") == (f"{cdi.CONTAINER_CLAIMS_DIR}/{UID}/NPU-3",
                                                f"{cdi.CONTAINER_DEVICES_DIR}/NPU-3/board")


def test_each_claimed_device_gets_its_directory_read_only_and_the_claims_ledger_of_it_read_write(
    tmp_path: Path,
) -> None:
    """Two devices: two read-only directories, two writable files, each the claim's own ledger of its
    device; nothing above a device's directory (other devices, the limits of other claims) is mounted."""
    layout = _layout(_ascend_root(tmp_path))
    mounts = _spec_of(layout, (NPU3, NPU5))["containerEdits"]["mounts"]
    ours = {m["containerPath"]: (m["hostPath"], m["options"]) for m in mounts
            if m["containerPath"].startswith("/var/run/xpushare")}
    assert ours == {
        f"{cdi.CONTAINER_DEVICES_DIR}/NPU-3": (f"{tmp_path}/devices/NPU-3", list(cdi.READ_ONLY)),
        f"{cdi.CONTAINER_CLAIMS_DIR}/{UID}/NPU-3": (f"{tmp_path}/devices/NPU-3/claims/{UID}",
                                                    list(cdi.READ_WRITE)),
        f"{cdi.CONTAINER_DEVICES_DIR}/NPU-5": (f"{tmp_path}/devices/NPU-5", list(cdi.READ_ONLY)),
        f"{cdi.CONTAINER_CLAIMS_DIR}/{UID}/NPU-5": (f"{tmp_path}/devices/NPU-5/claims/{UID}",
                                                    list(cdi.READ_WRITE)),
    }
    writable = sorted(m["hostPath"] for m in mounts if "rw" in m["options"])
    assert writable == [f"{tmp_path}/devices/NPU-3/claims/{UID}", f"{tmp_path}/devices/NPU-5/claims/{UID}"]
    assert _env(_spec_of(layout, (NPU3,)))["XPUSHARE_DEVICES_DIR"] == cdi.CONTAINER_DEVICES_DIR


@pytest.mark.parametrize(("uuid", "uid"), [("../NPU-3", UID), ("NPU-3", "../../board"), ("a/b", UID)])
def test_a_name_that_would_leave_the_devices_directory_never_becomes_a_mount(
    tmp_path: Path, uuid: str, uid: str
) -> None:
    device = cdi.SpecDevice(name="x-npu-3", device_type="npu", index=0, minor=3, uuid=uuid)
    with pytest.raises(ValueError, match="cannot be part of a file name"):
        _spec_of(_layout(_ascend_root(tmp_path)), (device,), uid=uid)


def test_nvidia_spec_mounts_only_the_driver_files_present(tmp_path: Path, schemas_dir: Path) -> None:
    _nodes(tmp_path, *NVIDIA_CONTROL_NODES)
    libdir = tmp_path / "usr/lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    (libdir / "libcuda.so.1").write_text("")
    (tmp_path / "usr/bin").mkdir()
    (tmp_path / "usr/bin/nvidia-smi").write_text("")
    spec = _spec_of(_layout(tmp_path), (GPU1,))
    validate_cdi_spec(spec, schemas_dir)
    assert spec["devices"][0]["containerEdits"]["deviceNodes"][0]["path"] == "/dev/nvidia1"
    shared = spec["containerEdits"]
    assert [n["path"] for n in shared["deviceNodes"]] == list(NVIDIA_CONTROL_NODES)
    paths = [m["containerPath"] for m in shared["mounts"]]
    assert "/usr/lib/x86_64-linux-gnu/libcuda.so.1" in paths
    assert "/usr/bin/nvidia-smi" in paths
    assert "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1" not in paths
    assert "ASCEND_VISIBLE_DEVICES" not in _env(spec)
    assert _env(spec)["NVIDIA_VISIBLE_DEVICES"] == "void"  # the NVIDIA runtime's hook adds no GPU


def test_on_a_gpu_operator_node_the_driver_container_s_files_are_mounted_and_cached(
    tmp_path: Path, schemas_dir: Path
) -> None:
    """The GPU Operator's driver container keeps the driver in /run/nvidia/driver on the host: the spec's
    host paths are there, the container paths are the usual ones, and the loader-cache hook lists them."""
    driver = tmp_path / "run/nvidia/driver"
    (driver / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (driver / "usr/lib/x86_64-linux-gnu/libcuda.so.1").write_text("")
    (driver / "usr/bin").mkdir()
    (driver / "usr/bin/nvidia-smi").write_text("")
    spec = _spec_of(_layout(tmp_path), (GPU1,))
    validate_cdi_spec(spec, schemas_dir)
    mounts = {m["containerPath"]: m["hostPath"] for m in spec["containerEdits"]["mounts"]}
    libcuda = "/usr/lib/x86_64-linux-gnu/libcuda.so.1"
    assert mounts[libcuda] == f"{driver}{libcuda}"
    assert mounts["/usr/bin/nvidia-smi"] == f"{driver}/usr/bin/nvidia-smi"
    (hook,) = spec["containerEdits"]["hooks"]
    assert hook["args"][4:] == ["/usr/lib/x86_64-linux-gnu"]


def test_a_control_node_missing_on_the_host_is_left_out_and_logged(
    tmp_path: Path, schemas_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _nodes(tmp_path, "/dev/nvidiactl")  # no UVM module loaded: no /dev/nvidia-uvm(-tools)
    spec = _spec_of(_layout(tmp_path), (GPU1,))
    validate_cdi_spec(spec, schemas_dir)
    assert [n["path"] for n in spec["containerEdits"]["deviceNodes"]] == ["/dev/nvidiactl"]
    (record,) = [r for r in caplog.records if "control device nodes missing" in r.getMessage()]
    assert record.missing == ["/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]  # type: ignore[attr-defined]
    _nodes(tmp_path, "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")  # loaded later: the next spec has them
    assert len(_spec_of(_layout(tmp_path), (GPU1,))["containerEdits"]["deviceNodes"]) == 3


def test_with_nvidias_own_spec_the_runtime_hook_still_adds_no_gpu(tmp_path: Path) -> None:
    spec = _spec_of(_layout(tmp_path, nvidia_kind="nvidia.com/gpu"), (GPU1,))
    assert _env(spec)["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_with_nvidia_own_spec_ours_adds_only_shim_and_limits(tmp_path: Path, schemas_dir: Path) -> None:
    layout = _layout(tmp_path, nvidia_kind="nvidia.com/gpu")
    spec = _spec_of(layout, (GPU1,))
    validate_cdi_spec(spec, schemas_dir)
    assert "deviceNodes" not in spec["devices"][0]["containerEdits"]
    assert spec["devices"][0]["containerEdits"]["env"]  # CDI refuses devices with empty edits
    assert "deviceNodes" not in spec["containerEdits"]
    assert cdi.vendor_device_ids(layout, "gpu", "GPU-1") == ("nvidia.com/gpu=GPU-1",)
    assert cdi.vendor_device_ids(layout, "npu", "NPU-3") == ()


def test_spec_on_a_real_node_layout_needs_only_cdi_0_3_0(tmp_path: Path) -> None:
    layout = cdi.HostLayout(Path("/"), Path("/"), None, tmp_path)
    device = cdi.SpecDevice(name="a1b2-npu-0", device_type="npu", index=0, minor=0, uuid="X")
    spec = _spec_of(layout, (device,), uid="a1b2")
    assert spec["cdiVersion"] == "0.3.0"
    assert spec["devices"][0]["containerEdits"]["deviceNodes"] == [{"path": "/dev/davinci0"}]


def test_device_name_starting_with_a_digit_needs_0_5_0(tmp_path: Path) -> None:
    layout = cdi.HostLayout(Path("/"), Path("/"), None, tmp_path)
    device = cdi.SpecDevice(name="0b4f-npu-0", device_type="npu", index=0, minor=0, uuid="X")
    assert _spec_of(layout, (device,), uid="0b4f")["cdiVersion"] == "0.5.0"


@pytest.mark.parametrize(
    ("feature", "version"),
    [
        ({}, "0.3.0"),
        (
            {"containerEdits": {"mounts": [{"hostPath": "/a", "containerPath": "/a", "type": "bind"}]}},
            "0.4.0",
        ),
        ({"containerEdits": {"deviceNodes": [{"path": "/dev/x", "hostPath": "/h/dev/x"}]}}, "0.5.0"),
        ({"annotations": {"a": "b"}}, "0.6.0"),
        ({"kind": "xpushare.io/claim.v2"}, "0.6.0"),
        ({"containerEdits": {"additionalGids": [5]}}, "0.7.0"),
        ({"containerEdits": {"intelRdt": {"closID": "c"}}}, "0.7.0"),
        ({"containerEdits": {"netDevices": [{"hostInterfaceName": "eth1", "name": "net1"}]}}, "1.1.0"),
    ],
    ids=["plain", "mount type", "host path", "annotations", "dot in class", "gids", "rdt", "net devices"],
)
def test_minimum_version_follows_the_features_used(feature: dict[str, Any], version: str) -> None:
    spec: dict[str, Any] = {
        "kind": cdi.CDI_KIND,
        "devices": [{"name": "a", "containerEdits": {"env": ["A=1"]}}],
    }
    spec.update(feature)
    assert cdi.minimum_version(spec) == version


def test_write_is_atomic_and_remove_is_idempotent(tmp_path: Path) -> None:
    spec = _spec_of(_layout(tmp_path), (NPU3,))
    cdi_dir = tmp_path / "cdi"
    path = cdi.write_spec(cdi_dir, UID, spec)
    assert path == cdi_dir / f"xpushare.io-claim_{UID}.json"
    assert json.loads(path.read_text()) == spec
    assert [p.name for p in cdi_dir.iterdir()] == [path.name]  # no temp file left behind
    assert cdi.listed_claims(cdi_dir) == {UID}
    cdi.remove_spec(cdi_dir, UID)
    cdi.remove_spec(cdi_dir, UID)
    assert cdi.listed_claims(cdi_dir) == set()


def test_write_into_an_unwritable_place_raises_cdi_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(cdi.CdiError, match="write CDI spec"):
        cdi.write_spec(blocker / "cdi", UID, {"cdiVersion": "0.3.0"})


def test_device_names_are_valid_cdi_names_and_unique_per_share() -> None:
    assert cdi.spec_device_name(UID, "npu-0") == f"{UID}-npu-0"
    assert cdi.spec_device_name(UID, "npu-0", 1) == f"{UID}-npu-0-1"
    assert cdi.qualified_name("x") == "xpushare.io/claim=x"


def test_the_schema_check_itself_rejects_a_broken_spec(tmp_path: Path, schemas_dir: Path) -> None:
    """Guards the validator: a spec whose mount lacks containerPath must fail it."""
    import jsonschema

    spec = _spec_of(_layout(tmp_path), (NPU3,))
    del spec["containerEdits"]["mounts"][0]["containerPath"]
    with pytest.raises(jsonschema.ValidationError):
        validate_cdi_spec(spec, schemas_dir)
