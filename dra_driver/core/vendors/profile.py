"""The one interface every vendor implements: ``VendorProfile``, and the values it hands out.

A profile holds what the rest of the driver must know about one vendor's accelerators: the
``DeviceType`` they are published as, the ``vendor`` attribute, the discovery backend that finds them
(opened lazily, so choosing another backend never loads this vendor's library), the device node a
minor number names, and what a container that uses its devices gets: the driver files it mounts
(looked up on the host once, at start: ``locate``), the edits of one device and the edits that a
claim's devices of this vendor share. Edits are given in container paths (``ContainerEdits``); the
node plugin's CDI writer maps them to host paths and adds what every claim gets (shim, limits, ledgers).
Discovery and the claim code see only ``Device`` values and profiles, never a vendor name.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from dra_driver.core.devices import Device, DeviceType, Scheduling

if TYPE_CHECKING:  # the discovery package imports the registry, so only the type is needed here
    from dra_driver.core.discovery.base import DeviceBackend


@dataclass(frozen=True, slots=True)
class VendorHost:
    """What one vendor has on this node, found by its profile's ``locate`` once when the plugin starts.

    ``mounts`` are the vendor's driver files that exist on the host (container paths; on the host they
    sit below the driver root, under ``host_prefix`` where the driver lives in a directory of its own,
    as the GPU Operator's driver container keeps it in ``/run/nvidia/driver``), so a missing file is
    never mounted. ``library_dirs`` are the container directories of its libraries, which the container's
    loader cache must list. ``cdi_kind`` is the kind of the vendor's own CDI spec when the node has one
    (``nvidia.com/gpu``) and ``cdi_devices`` the device names it holds; a profile that can leave a
    device's nodes and driver files to that spec does so, and one that cannot ignores it.
    """

    mounts: tuple[str, ...] = ()
    cdi_kind: str | None = None
    library_dirs: tuple[str, ...] = ()
    host_prefix: str = ""
    cdi_devices: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ContainerEdits:
    """What a vendor adds to a container, in container paths.

    ``device_nodes`` sit below the device root on the host; ``mounts`` are read-only binds of driver
    files from below the driver root; ``library_dirs`` are directories whose libraries the container's
    loader cache must list (``ldconfig -p``), which a hook adds at container creation.
    """

    env: tuple[str, ...] = ()
    device_nodes: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()
    library_dirs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedDevice:
    """A device of a prepared claim, as its vendor's edits need it: ``minor`` names its node, ``index``
    and ``uuid`` the variable that names it inside the container."""

    index: int
    minor: int
    uuid: str


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

    @property
    def cores_attribute(self) -> str:
        """The attribute that publishes its devices' compute units (``smCount``, ``aicoreCount``)."""

    @property
    def driver_files(self) -> tuple[str, ...]:
        """The files a container usually gets from the host (container paths), where they exist."""

    @property
    def scheduling(self) -> Scheduling:
        """How its devices divide their time between processes (how the shim measures device time)."""

    @property
    def partition_sizes(self) -> Mapping[str, tuple[Fraction, ...]]:
        """The menu layout's default sizes: keyed by a lower-case model prefix, or by the device type."""

    @property
    def fixed_partitions(self) -> Mapping[str, tuple[Fraction, ...]]:
        """The fixed layout's default pieces (disjoint, summing to at most 1), keyed as the menus."""

    def open_backend(self, **options: Any) -> DeviceBackend:
        """Open its discovery backend; raises ``DiscoveryError`` when the vendor library cannot work."""

    def device_node(self, minor: int) -> str:
        """The device node of the device with this minor number (``/dev/nvidia0``, ``/dev/davinci0``)."""

    def locate(self, driver_root: Path, cdi_kind: str | None = None) -> VendorHost:
        """Look up which of its driver files exist below ``driver_root``; ``cdi_kind`` is its own spec's."""

    def cdi_device_ids(self, uuid: str, host: VendorHost) -> tuple[str, ...]:
        """CDI ids of the device in the vendor's own spec, to name beside ours (empty without one)."""

    def device_edits(self, device: ClaimedDevice, host: VendorHost) -> ContainerEdits:
        """The edits of one device: its node and the variable naming it (never empty: CDI needs some)."""

    def shared_edits(self, devices: Sequence[ClaimedDevice], host: VendorHost) -> ContainerEdits:
        """The edits that a claim's devices of this vendor share: control nodes, driver files, env."""


class BaseProfile:
    """What most profiles do alike; a profile sets the class attributes and overrides what differs.

    The device node is ``node_prefix`` followed by the minor; the driver files to mount are those of
    ``driver_files`` that exist below the driver root (and of ``library_dirs``, those there, for the
    loader cache); a device's edits are its node and its identity
    variable; there is no vendor CDI spec to name.
    """

    device_type: ClassVar[DeviceType]
    node_prefix: ClassVar[str]
    driver_files: ClassVar[tuple[str, ...]]
    library_dirs: ClassVar[tuple[str, ...]] = ()
    cores_attribute: ClassVar[str]
    scheduling: ClassVar[Scheduling] = Scheduling.SERIAL
    partition_sizes: ClassVar[Mapping[str, tuple[Fraction, ...]]]
    fixed_partitions: ClassVar[Mapping[str, tuple[Fraction, ...]]]

    def device_node(self, minor: int) -> str:
        return f"{self.node_prefix}{minor}"

    def locate(self, driver_root: Path, cdi_kind: str | None = None) -> VendorHost:
        return VendorHost(mounts=present(driver_root, self.driver_files), cdi_kind=cdi_kind,
                          library_dirs=present_dirs(driver_root, self.library_dirs))

    def cdi_device_ids(self, uuid: str, host: VendorHost) -> tuple[str, ...]:
        return ()

    def device_edits(self, device: ClaimedDevice, host: VendorHost) -> ContainerEdits:
        node = self.device_node(device.minor)
        return ContainerEdits(env=(identity_env(self.device_type, device),), device_nodes=(node,))


# Both vendors' backends read the NUMA node of a PCI device from sysfs where their library lacks it.
SYSFS_ROOT_OPTION: Mapping[str, str] = {"sysfs_root": "XPUSHARE_SYSFS_ROOT"}


def fractions(*texts: str) -> tuple[Fraction, ...]:
    """``fractions("1/4", "1/2", "1")``: partition sizes as written in profiles and flags."""
    return tuple(Fraction(text) for text in texts)


def present(root: Path, paths: Iterable[str]) -> tuple[str, ...]:
    """The container ``paths`` that exist below ``root`` on the host (a link counts, even dangling)."""
    return tuple(path for path in paths if os.path.lexists(root / path.lstrip("/")))


def present_dirs(root: Path, paths: Iterable[str]) -> tuple[str, ...]:
    """The container ``paths`` that are directories below ``root`` on the host."""
    return tuple(path for path in paths if (root / path.lstrip("/")).is_dir())


def matching(root: Path, directory: str, patterns: Iterable[str]) -> tuple[str, ...]:
    """Container paths of the entries of ``directory`` (below ``root`` on the host) that match any of
    ``patterns`` (fnmatch), sorted; none where the directory does not exist."""
    host = root / directory.lstrip("/")
    try:
        names = sorted(os.listdir(host))
    except OSError:
        return ()
    return tuple(f"{directory.rstrip('/')}/{name}" for name in names
                 if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns))


def identity_env(device_type: DeviceType, device: ClaimedDevice) -> str:
    """``XPUSHARE_DEVICE_NPU5=<uuid>``: the device's uuid, named by its type and the minor of its node, so
    two claims of a container never set the same variable to different devices."""
    return f"XPUSHARE_DEVICE_{device_type.upper()}{device.minor}={device.uuid}"


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
        scheduling=profile.scheduling,
        extra=dict(extra or {}),
    )
