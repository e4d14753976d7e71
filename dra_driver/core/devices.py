"""The typed device model shared by discovery, slice publishing and claim preparation.

Discovery backends turn vendor answers into ``Device`` values once, at the edge; everything above them
works with these frozen values and never with a vendor library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

MIB = 1024 * 1024
GIB = 1024 * MIB


class DeviceType(StrEnum):
    """Kind of accelerator; also the ``type`` attribute that DeviceClasses select on."""

    NPU = "npu"
    GPU = "gpu"


class Scheduling(StrEnum):
    """How a device divides its time between the processes (contexts) that have work on it.

    It decides how the shim measures each claim's device time. ``serial``: work runs in turns, so each
    stretch between two completions belongs to the one whose work completed. ``time-sliced``: the
    device preempts a context's work at its time slice and runs the others', so every context with work
    queued gets an equal part of the time (NVIDIA GPUs without MPS).
    """

    SERIAL = "serial"
    TIME_SLICED = "time-sliced"


class Health(StrEnum):
    """Health as the kubelet's health stream models it."""

    UNKNOWN = "Unknown"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"


_DNS_LABEL_INVALID = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class Device:
    """One physical accelerator as discovery saw it.

    ``cores`` is the number of compute units (AI Cores on Ascend, SMs on NVIDIA); the compute share that
    claims request is a percentage of the whole device, not of this number.
    """

    type: DeviceType
    vendor: str
    model: str
    uuid: str
    index: int
    memory_bytes: int
    cores: int
    device_node: str
    minor: int
    pci_bus_id: str = ""
    numa_node: int | None = None
    driver_version: str = ""
    runtime_version: str = ""
    health: Health = Health.HEALTHY
    health_message: str = ""
    shareable: bool = True
    scheduling: Scheduling = Scheduling.SERIAL
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        """The device's name in ResourceSlices: a DNS label that is stable across restarts."""
        return f"{self.type.value}-{self.index}"

    @property
    def memory_mib(self) -> int:
        return self.memory_bytes // MIB

    def with_health(self, health: Health, message: str = "") -> Device:
        return replace(self, health=health, health_message=message)


def dns_label(text: str, max_length: int = 63) -> str:
    """Lower-case ``text`` into a DNS label (used for names derived from models or node names)."""
    label = _DNS_LABEL_INVALID.sub("-", text.lower()).strip("-")
    return label[:max_length].rstrip("-") or "x"
