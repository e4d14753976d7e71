"""NVIDIA's profile: GPUs found through NVML, published as ``gpu`` devices of vendor ``nvidia``.

A container gets what the NVIDIA Container Toolkit would give it for the compute and utility
capabilities: its GPUs' nodes, the control nodes, the driver's compute and utility libraries (every
file of those names in the driver's library directories: the versioned file and its links), its
binaries (nvidia-smi, the MPS control and server, ...), the GSP firmware and the persistenced socket,
those that exist on the host; and a hook that makes the container's loader cache list the libraries.
The library names are the toolkit's own lists (libnvidia-container ``nvc_info.c``: ``compute_libs``
and ``utility_libs``). The driver is looked for at the driver root, else where the GPU Operator's
driver container keeps it (``/run/nvidia/driver``). Where the node has NVIDIA's own CDI spec
(nvidia-ctk's, kind ``nvidia.com/gpu``) naming a device by its UUID, that spec adds the device's nodes
and the driver, and ours names the device in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dra_driver.core.devices import DeviceType, Scheduling
from dra_driver.core.vendors.profile import (
    SYSFS_ROOT_OPTION,
    BaseProfile,
    ClaimedDevice,
    ContainerEdits,
    VendorHost,
    identity_env,
    matching,
    present,
)

if TYPE_CHECKING:
    from dra_driver.core.discovery.base import DeviceBackend

CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
# XIDs caused by applications (illegal address, MMU fault in user code, ...), not by the GPU.
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})
NO_RUNTIME_DEVICES = "NVIDIA_VISIBLE_DEVICES=void"
COMPUTE_LIBRARIES = (
    "libcuda.so", "libcudadebugger.so", "libnvidia-opencl.so", "libnvidia-gpucomp.so",
    "libnvidia-ptxjitcompiler.so", "libnvidia-fatbinaryloader.so", "libnvidia-allocator.so",
    "libnvidia-compiler.so", "libnvidia-pkcs11.so", "libnvidia-pkcs11-openssl3.so", "libnvidia-nvvm.so",
    "libnvidia-tileiras.so",
)
UTILITY_LIBRARIES = ("libnvidia-ml.so", "libnvidia-cfg.so", "libnvidia-nscq.so")
LIBRARY_PATTERNS = tuple(p for name in (*COMPUTE_LIBRARIES, *UTILITY_LIBRARIES) for p in (name, f"{name}.*"))
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
BINARIES = tuple(f"/usr/bin/{name}" for name in (
    "nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
))
OTHER_FILES = ("/run/nvidia-persistenced/socket",)
FIRMWARE_DIR = "/lib/firmware/nvidia"
# Where the GPU Operator's driver container keeps the driver on the host, below the driver root.
OPERATOR_DRIVER_ROOT = "run/nvidia/driver"


def _driver_prefix(driver_root: Path) -> str:
    """Below the driver root, where the driver is: there itself, or in the GPU Operator's directory."""
    if (driver_root / "usr/bin/nvidia-smi").exists() or not (
            driver_root / OPERATOR_DRIVER_ROOT / "usr/bin/nvidia-smi").exists():
        return ""
    return OPERATOR_DRIVER_ROOT


def nvml_library(driver_root: Path) -> Path | None:
    """NVML below a driver root (the driver's own place or the GPU Operator's), for discovery."""
    prefix = _driver_prefix(driver_root)
    root = driver_root / prefix if prefix else driver_root
    found = (root / d.lstrip("/") / "libnvidia-ml.so.1" for d in LIBRARY_DIRS)
    return next((path for path in found if path.exists()), None)


def _firmware(root: Path) -> tuple[str, ...]:
    versions = matching(root, FIRMWARE_DIR, ("*",))
    return tuple(f for version in versions for f in matching(root, version, ("gsp*.bin",)))


class NvidiaProfile(BaseProfile):
    """The facts about NVIDIA GPUs (see ``VendorProfile``)."""

    device_type = DeviceType.GPU
    vendor = "nvidia"
    backend = "nvidia"
    backend_options: Mapping[str, str] = {"nvml_library": "XPUSHARE_NVML_LIBRARY", **SYSFS_ROOT_OPTION}
    node_prefix = "/dev/nvidia"
    driver_files = BINARIES  # with the libraries, firmware and socket: see locate
    cores_attribute = "smCount"
    # Without MPS, contexts take turns by preemptive time slices, even in the middle of a batch.
    scheduling = Scheduling.TIME_SLICED
    # Time-sliced shares of any GPU; MIG-style hard partitions are not what this menu offers.
    partition_sizes: ClassVar[Mapping[str, tuple[Fraction, ...]]] = {
        "gpu": tuple(Fraction(eighths, 8) for eighths in (1, 2, 4, 8)),
    }
    # Quarters: 20Gi and 25 % of an 80 GB H100, the size most shared inference pods ask for.
    fixed_partitions: ClassVar[Mapping[str, tuple[Fraction, ...]]] = {"gpu": (Fraction(1, 4),) * 4}

    def open_backend(self, **options: Any) -> DeviceBackend:
        # Imported here so that only a node that asks for NVIDIA's backend loads pynvml.
        from dra_driver.core.vendors.nvidia.discovery import NvidiaBackend

        return NvidiaBackend(**options)

    def locate(self, driver_root: Path, cdi_kind: str | None = None) -> VendorHost:
        prefix = _driver_prefix(driver_root)
        root = driver_root / prefix if prefix else driver_root
        libraries = {d: matching(root, d, LIBRARY_PATTERNS) for d in LIBRARY_DIRS}
        mounts = (*(lib for found in libraries.values() for lib in found), *present(root, BINARIES),
                  *present(root, OTHER_FILES), *_firmware(root))
        return VendorHost(mounts=mounts, cdi_kind=cdi_kind, host_prefix=prefix,
                          library_dirs=tuple(d for d, found in libraries.items() if found))

    def cdi_device_ids(self, uuid: str, host: VendorHost) -> tuple[str, ...]:
        return (f"{host.cdi_kind}={uuid}",) if _in_vendor_spec(uuid, host) else ()

    def device_edits(self, device: ClaimedDevice, host: VendorHost) -> ContainerEdits:
        if _in_vendor_spec(device.uuid, host):  # NVIDIA's spec adds the node and the driver
            return ContainerEdits(env=(identity_env(self.device_type, device),))
        return super().device_edits(device, host)

    def shared_edits(self, devices: Sequence[ClaimedDevice], host: VendorHost) -> ContainerEdits:
        # Where nvidia-container-runtime is the default runtime (the GPU Operator's nodes), its hook would
        # give an image that says NVIDIA_VISIBLE_DEVICES=all every GPU of the node: "void" stops it.
        if all(_in_vendor_spec(d.uuid, host) for d in devices):
            return ContainerEdits(env=(NO_RUNTIME_DEVICES,))
        return ContainerEdits(env=(NO_RUNTIME_DEVICES,), device_nodes=CONTROL_NODES, mounts=host.mounts,
                              library_dirs=host.library_dirs)


def _in_vendor_spec(uuid: str, host: VendorHost) -> bool:
    """Whether NVIDIA's own spec names the device (a kind given without a device list: trusted)."""
    return bool(host.cdi_kind) and (not host.cdi_devices or uuid in host.cdi_devices)


PROFILE = NvidiaProfile()
