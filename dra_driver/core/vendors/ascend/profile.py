"""Huawei Ascend's profile: NPUs found through DCMI or npu-smi, published as ``npu`` devices of
vendor ``huawei``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dra_driver.core.devices import DeviceType

if TYPE_CHECKING:
    from dra_driver.core.discovery.base import DeviceBackend


class AscendProfile:
    """The facts about Ascend NPUs (see ``VendorProfile``)."""

    device_type = DeviceType.NPU
    vendor = "huawei"
    backend = "ascend"
    backend_options: Mapping[str, str] = {
        "dcmi_library": "XPUSHARE_DCMI_LIBRARY",
        "npu_smi": "XPUSHARE_NPU_SMI",
        "ascend_source": "XPUSHARE_ASCEND_SOURCE",
        "sysfs_root": "XPUSHARE_SYSFS_ROOT",
        "cann_info": "XPUSHARE_CANN_INFO",
    }

    def open_backend(self, **options: Any) -> DeviceBackend:
        # Imported here so that only a node that asks for Ascend's backend loads cffi and DCMI.
        from dra_driver.core.vendors.ascend.discovery import AscendBackend

        return AscendBackend(**options)

    def device_node(self, minor: int) -> str:
        # Named by the physical id (the minor); the device's index is the runtime's logical id.
        return f"/dev/davinci{minor}"


PROFILE = AscendProfile()
