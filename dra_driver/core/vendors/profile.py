"""The one interface every vendor implements: ``VendorProfile``, and the values it hands out.

A profile holds what the rest of the driver must know about one vendor's accelerators: the
``DeviceType`` they are published as, the ``vendor`` attribute, the discovery backend that finds them
(opened lazily, so choosing another backend never loads this vendor's library) and the device node a
minor number names. Everything else stays behind the profile: discovery and the claim code above it see
only ``Device`` values and profiles, never a vendor name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from dra_driver.core.devices import Device, DeviceType

if TYPE_CHECKING:  # the discovery package imports the registry, so only the type is needed here
    from dra_driver.core.discovery.base import DeviceBackend


class VendorProfile(Protocol):
    """One vendor's facts; the registry in ``dra_driver.core.vendors`` holds one per ``DeviceType``."""

    @property
    def device_type(self) -> DeviceType:
        """The type its devices are published as (one profile per type)."""

    @property
    def vendor(self) -> str:
        """The ``vendor`` attribute of its devices (``nvidia``, ``huawei``)."""

    @property
    def backend(self) -> str:
        """The name its discovery backend is chosen by (``--discovery-backend``)."""

    @property
    def backend_options(self) -> Mapping[str, str]:
        """Options its backend accepts, each with the environment variable that gives its default."""

    def open_backend(self, **options: Any) -> DeviceBackend:
        """Open its discovery backend; raises ``DiscoveryError`` when the vendor library cannot work."""

    def device_node(self, minor: int) -> str:
        """The device node of the device with this minor number (``/dev/nvidia0``, ``/dev/davinci0``)."""


def unanswered_device(
    profile: VendorProfile,
    *,
    uuid: str,
    index: int,
    minor: int,
    versions: tuple[str, str],
    extra: Mapping[str, str] | None = None,
) -> Device:
    """A device whose model, memory and cores are not known (yet): its library did not answer for it.

    ``versions`` is the (driver, runtime) pair that the whole node shares.
    """
    driver, runtime = versions
    return Device(
        type=profile.device_type,
        vendor=profile.vendor,
        model="unknown",
        uuid=uuid,
        index=index,
        memory_bytes=0,
        cores=0,
        device_node=profile.device_node(minor),
        minor=minor,
        driver_version=driver,
        runtime_version=runtime,
        extra=dict(extra or {}),
    )
