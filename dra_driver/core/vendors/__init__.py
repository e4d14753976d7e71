"""One profile per accelerator vendor, and the registry that maps a ``DeviceType`` to its profile.

Each vendor is a subpackage: ``nvidia`` (NVML) and ``ascend`` (DCMI, npu-smi). Its ``profile`` module
holds the vendor's facts behind the ``VendorProfile`` protocol (``vendors.profile``): device type,
discovery backend, device nodes, driver files and the container edits of its devices; its
``discovery`` module is the backend that finds its devices, loaded only when that backend is opened.
Code outside this package asks the registry (``profile_for``) instead of testing a device's type or
vendor name.
"""

from __future__ import annotations

from collections.abc import Mapping

from dra_driver.core.devices import DeviceType
from dra_driver.core.vendors import ascend, nvidia
from dra_driver.core.vendors.profile import (
    ClaimedDevice,
    ContainerEdits,
    VendorHost,
    VendorProfile,
    unanswered_device,
)

# In DeviceType order (npu, gpu); a CDI spec lists the vendors' shared edits in this order.
PROFILES: Mapping[DeviceType, VendorProfile] = {
    profile.device_type: profile for profile in (ascend.PROFILE, nvidia.PROFILE)
}
# The order in which the ``auto`` discovery backend tries the vendors' backends.
DETECTION_ORDER: tuple[VendorProfile, ...] = (nvidia.PROFILE, ascend.PROFILE)


def profile_for(device_type: DeviceType | str) -> VendorProfile:
    """The profile of a device type (``DeviceType.GPU`` or ``"gpu"``)."""
    return PROFILES[DeviceType(device_type)]


def profile_of_backend(backend: str) -> VendorProfile:
    """The profile whose discovery backend is called ``backend``; KeyError when none is."""
    return {p.backend: p for p in DETECTION_ORDER}[backend]


__all__ = [
    "DETECTION_ORDER",
    "PROFILES",
    "ClaimedDevice",
    "ContainerEdits",
    "VendorHost",
    "VendorProfile",
    "profile_for",
    "profile_of_backend",
    "unanswered_device",
]
