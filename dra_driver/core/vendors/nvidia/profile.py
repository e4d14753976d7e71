"""NVIDIA's profile: GPUs found through NVML, published as ``gpu`` devices of vendor ``nvidia``.

A container gets its GPUs' nodes, the control nodes and the driver's user-space libraries and
``nvidia-smi`` (those that exist on the host). Where the node has NVIDIA's own CDI spec (nvidia-ctk's,
kind ``nvidia.com/gpu``), that spec adds the nodes and the driver, and ours names the device in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from dra_driver.core.devices import DeviceType, Scheduling
from dra_driver.core.vendors.profile import (
    SYSFS_ROOT_OPTION,
    BaseProfile,
    ClaimedDevice,
    ContainerEdits,
    VendorHost,
    identity_env,
)

if TYPE_CHECKING:
    from dra_driver.core.discovery.base import DeviceBackend

CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
NO_RUNTIME_DEVICES = "NVIDIA_VISIBLE_DEVICES=void"
LIBRARIES = (
    "libcuda.so.1",
    "libnvidia-ml.so.1",
    "libnvidia-ptxjitcompiler.so.1",
    "libnvidia-nvvm.so.4",
    "libcudadebugger.so.1",
)
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
BINARIES = ("/usr/bin/nvidia-smi",)
DRIVER_FILES = (*(f"{d}/{lib}" for d in LIBRARY_DIRS for lib in LIBRARIES), *BINARIES)


class NvidiaProfile(BaseProfile):
    """The facts about NVIDIA GPUs (see ``VendorProfile``)."""

    device_type = DeviceType.GPU
    vendor = "nvidia"
    backend = "nvidia"
    backend_options: Mapping[str, str] = {"nvml_library": "XPUSHARE_NVML_LIBRARY", **SYSFS_ROOT_OPTION}
    node_prefix = "/dev/nvidia"
    driver_files = DRIVER_FILES
    cores_attribute = "smCount"
    # Without MPS, contexts take turns by preemptive time slices, even in the middle of a batch.
    scheduling = Scheduling.TIME_SLICED
    # Time-sliced shares of any GPU; MIG-style hard partitions are not what this menu offers.
    partition_sizes: ClassVar[Mapping[str, tuple[Fraction, ...]]] = {
        "gpu": tuple(Fraction(eighths, 8) for eighths in (1, 2, 4, 8)),
    }

    def open_backend(self, **options: Any) -> DeviceBackend:
        # Imported here so that only a node that asks for NVIDIA's backend loads pynvml.
        from dra_driver.core.vendors.nvidia.discovery import NvidiaBackend

        return NvidiaBackend(**options)

    def cdi_device_ids(self, uuid: str, host: VendorHost) -> tuple[str, ...]:
        return (f"{host.cdi_kind}={uuid}",) if host.cdi_kind else ()

    def device_edits(self, device: ClaimedDevice, host: VendorHost) -> ContainerEdits:
        if host.cdi_kind:  # NVIDIA's spec adds the node and the driver
            return ContainerEdits(env=(identity_env(self.device_type, device),))
        return super().device_edits(device, host)

    def shared_edits(self, devices: Sequence[ClaimedDevice], host: VendorHost) -> ContainerEdits:
        # Where nvidia-container-runtime is the default runtime (the GPU Operator's nodes), its hook would
        # give an image that says NVIDIA_VISIBLE_DEVICES=all every GPU of the node: "void" stops it.
        if host.cdi_kind:
            return ContainerEdits(env=(NO_RUNTIME_DEVICES,))
        return ContainerEdits(env=(NO_RUNTIME_DEVICES,), device_nodes=CONTROL_NODES, mounts=host.mounts)


PROFILE = NvidiaProfile()
