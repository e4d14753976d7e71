"""What an NVIDIA container gets without the toolkit's spec: the toolkit's compute and utility set."""

from __future__ import annotations

from pathlib import Path

from dra_driver.core.vendors.nvidia.profile import PROFILE, VendorHost
from dra_driver.core.vendors.profile import ClaimedDevice

VERSION = "580.65.06"
LIBDIR = "usr/lib/x86_64-linux-gnu"


def _driver(root: Path) -> None:
    libs = root / LIBDIR
    libs.mkdir(parents=True)
    for name in ("libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so",
                 "libnvidia-gpucomp.so", "libcudadebugger.so"):
        (libs / f"{name}.{VERSION}").write_text("lib")
        (libs / f"{name}.1").symlink_to(f"{name}.{VERSION}")
    (libs / "libcuda.so").symlink_to("libcuda.so.1")
    (libs / "libnvidia-glcore.so.1").write_text("graphics, not compute")
    (libs / "libc.so.6").write_text("not the driver's")
    (root / "usr/bin").mkdir(parents=True)
    for binary in ("nvidia-smi", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"):
        (root / "usr/bin" / binary).write_text("bin")
    firmware = root / "lib/firmware/nvidia" / VERSION
    firmware.mkdir(parents=True)
    (firmware / "gsp_ga10x.bin").write_text("fw")
    (firmware / "other.bin").write_text("not gsp")


def test_the_compute_libraries_binaries_and_firmware_on_the_host_are_mounted(tmp_path: Path) -> None:
    _driver(tmp_path)
    host = PROFILE.locate(tmp_path)
    mounts = set(host.mounts)
    for name in ("libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so",
                 "libnvidia-gpucomp.so", "libcudadebugger.so"):
        assert {f"/{LIBDIR}/{name}.{VERSION}", f"/{LIBDIR}/{name}.1"} <= mounts, name
    assert f"/{LIBDIR}/libcuda.so" in mounts  # the development link some JITs open
    assert f"/{LIBDIR}/libnvidia-glcore.so.1" not in mounts
    assert f"/{LIBDIR}/libc.so.6" not in mounts
    binaries = ("nvidia-smi", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server")
    assert {f"/usr/bin/{b}" for b in binaries} <= mounts
    assert "/usr/bin/nvidia-debugdump" not in mounts  # absent here
    assert f"/lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin" in mounts
    assert f"/lib/firmware/nvidia/{VERSION}/other.bin" not in mounts
    assert host.library_dirs == (f"/{LIBDIR}",)
    assert host.host_prefix == ""


def test_the_gpu_operator_s_driver_container_root_is_found(tmp_path: Path) -> None:
    _driver(tmp_path / "run/nvidia/driver")
    host = PROFILE.locate(tmp_path)
    assert host.host_prefix == "run/nvidia/driver"
    assert f"/{LIBDIR}/libcuda.so.1" in host.mounts  # a container path; the host path adds the prefix


def test_a_device_nvidia_s_own_spec_names_is_left_to_it_and_one_it_does_not_name_is_ours() -> None:
    device = ClaimedDevice(index=0, minor=0, uuid="GPU-a")
    other = ClaimedDevice(index=1, minor=1, uuid="GPU-b")
    host = VendorHost(mounts=("/usr/bin/nvidia-smi",), cdi_kind="nvidia.com/gpu",
                      cdi_devices=frozenset({"GPU-a", "0"}), library_dirs=("/usr/lib64",))
    assert PROFILE.cdi_device_ids("GPU-a", host) == ("nvidia.com/gpu=GPU-a",)
    assert PROFILE.cdi_device_ids("GPU-b", host) == ()
    assert PROFILE.device_edits(device, host).device_nodes == ()
    assert PROFILE.device_edits(other, host).device_nodes == ("/dev/nvidia1",)
    assert PROFILE.shared_edits([device], host).mounts == ()
    assert PROFILE.shared_edits([device, other], host).library_dirs == ("/usr/lib64",)
    for edits in (PROFILE.shared_edits([device], host), PROFILE.shared_edits([other], VendorHost())):
        assert "NVIDIA_VISIBLE_DEVICES=void" in edits.env
