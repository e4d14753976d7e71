"""NVIDIA's profile: GPUs found through NVML, published as ``gpu`` devices of vendor ``nvidia``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dra_driver.core.devices import DeviceType

if TYPE_CHECKING:
    from dra_driver.core.discovery.base import DeviceBackend


class NvidiaProfile:
    """The facts about NVIDIA GPUs (see ``VendorProfile``)."""

    device_type = DeviceType.GPU
    vendor = "nvidia"
    backend = "nvidia"
    backend_options: Mapping[str, str] = {
        "nvml_library": "XPUSHARE_NVML_LIBRARY",
        "sysfs_root": "XPUSHARE_SYSFS_ROOT",
    }

    def open_backend(self, **options: Any) -> DeviceBackend:
        # Imported here so that only a node that asks for NVIDIA's backend loads pynvml.
        from dra_driver.core.vendors.nvidia.discovery import NvidiaBackend

        return NvidiaBackend(**options)

    def device_node(self, minor: int) -> str:
        return f"/dev/nvidia{minor}"


PROFILE = NvidiaProfile()
