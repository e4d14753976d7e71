"""A claim's hold on each physical device: its prepared devices summed per device UUID.

One claim may hold two partitions of one physical device (partitioned mode) or two shares of it (two
requests in consumable mode). The container sees that device once, and the shim keeps one record per
claim in the device's ledger and reads one limit per device ordinal, so every writer of limits (the
ledger record, the limits file, live quota changes) works on these sums, never on the parts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubeletplugin.checkpoint import PreparedDevice

_PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2}


@dataclass(frozen=True, slots=True)
class PhysicalShare:
    """What one claim holds of one physical device: the sum of its parts on it."""

    uuid: str
    names: tuple[str, ...]  # the published device names of the parts (partitions or the device)
    device_type: str
    index: int
    memory_bytes: int
    core_percent: int
    priority: str
    policy: str

    @property
    def device(self) -> str:
        """The parts' names, joined (``npu-0-1of4-0+npu-0-1of4-1``), as messages and tables show them."""
        return "+".join(self.names)

    def named(self, selector: str) -> bool:
        """Whether ``selector`` names this device: its UUID, a part's name or the joined name."""
        return selector in (self.uuid, self.device, *self.names)


def by_physical(devices: Iterable[PreparedDevice]) -> list[PhysicalShare]:
    """One share per physical device, in the order the devices first appear.

    Memory and cores add up. Parts configured differently resolve to the highest priority and to
    ``fixed`` when any part asked for a hard cap (the stricter reading of the claim's configs).
    """
    grouped: dict[str, list[PreparedDevice]] = {}
    for device in devices:
        grouped.setdefault(device.uuid, []).append(device)
    shares = []
    for uuid, parts in grouped.items():
        first = parts[0]
        shares.append(
            PhysicalShare(
                uuid=uuid,
                names=tuple(dict.fromkeys(p.device for p in parts)),
                device_type=first.device_type,
                index=first.index,
                memory_bytes=sum(p.memory_bytes for p in parts),
                core_percent=min(100, sum(p.core_percent for p in parts)),
                priority=max((p.priority for p in parts), key=lambda p: _PRIORITY_RANK.get(p, 1)),
                policy="fixed" if any(p.policy == "fixed" for p in parts) else first.policy,
            )
        )
    return shares
