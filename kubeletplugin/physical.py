"""A claim's hold on each physical device: its prepared devices summed per device UUID.

One claim may hold two partitions of one physical device (partitioned mode) or two shares of it (two
requests in consumable mode). The container sees that device once, and the shim keeps one ledger per
claim and device and one board entry per claim on the device, and reads one limit per device ordinal, so
every writer of limits (the board entry, the claim's ledger at creation, the limits file, live quota
changes) works on these sums, never on the parts.

``claim_limits`` turns the shares and the claim's live quota into what each writer receives: computed
once per write of a claim's files, so the limits file and the boards can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import DeviceType
from kubeletplugin.checkpoint import ClaimState, PreparedClaim, PreparedDevice


class LiveQuota(NamedTuple):
    """A claim's live quota on one device (``xpushare quota``, the claim's annotation): its memory limit and
    share, and its priority and policy where they were changed too (``None``: as allocated)."""

    memory_bytes: int
    core_percent: int
    priority: Priority | None = None
    policy: ComputePolicy | None = None


Quota = Mapping[str, LiveQuota]  # per device UUID


@dataclass(frozen=True, slots=True)
class PhysicalShare:
    """What one claim holds of one physical device: the sum of its parts on it."""

    uuid: str
    names: tuple[str, ...]  # the published device names of the parts (partitions or the device)
    device_type: DeviceType
    index: int
    memory_bytes: int
    core_percent: int
    priority: Priority
    policy: ComputePolicy
    physical: int | None = None  # its number on the node (the minor of its device node)

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
        fixed = any(p.policy is ComputePolicy.FIXED for p in parts)
        shares.append(
            PhysicalShare(
                uuid=uuid,
                names=tuple(dict.fromkeys(p.device for p in parts)),
                device_type=first.device_type,
                index=first.index,
                memory_bytes=sum(p.memory_bytes for p in parts),
                core_percent=min(100, sum(p.core_percent for p in parts)),
                priority=max((p.priority for p in parts), key=lambda p: p.rank),
                policy=ComputePolicy.FIXED if fixed else first.policy,
                physical=first.minor,
            )
        )
    return shares


def within_allocation(share: PhysicalShare, stored: LiveQuota | None) -> LiveQuota:
    """A stored quota bounded by the share's allocation (the allocation itself when nothing is stored):
    memory and share at most the allocated, priority at most the allocated, and ``guaranteed`` only where
    it was allocated (a claim may be made stricter live, never looser than it was given)."""
    if stored is None:
        return LiveQuota(share.memory_bytes, share.core_percent, share.priority, share.policy)
    priority = stored.priority if stored.priority is not None else share.priority
    if priority.rank > share.priority.rank:
        priority = share.priority
    policy = ComputePolicy.FIXED if ComputePolicy.FIXED in (stored.policy, share.policy) else share.policy
    return LiveQuota(max(1, min(stored.memory_bytes, share.memory_bytes)),
                     max(0, min(stored.core_percent, share.core_percent)), priority, policy)


@dataclass(frozen=True, slots=True)
class ClaimLimit:
    """What one claim may use of one physical device now: its share, bounded by its live quota."""

    uuid: str
    device: str  # the parts' names, joined (for messages)
    position: int  # the device's ordinal inside the container
    memory_bytes: int
    core_percent: int
    priority: Priority
    policy: ComputePolicy
    memory_max_bytes: int | None = None  # the allocation, when a live quota is applied
    core_max_percent: int | None = None
    physical: int | None = None  # its number on the node: how the shim finds an Ascend chip


def claim_limits(devices: Iterable[PreparedDevice], quota: Quota | None = None) -> list[ClaimLimit]:
    """One limit per physical device, ordered (and numbered) as the container sees the devices.

    ``quota`` (per UUID), a live quota change that must survive this write, replaces the sums (and the
    priority and policy) where given, bounded by them; the allocation is then kept as the maximum.
    """
    shares = sorted(by_physical(devices), key=lambda s: (s.device_type, s.index))
    limits = []
    for position, share in enumerate(shares):
        stored = (quota or {}).get(share.uuid)
        live = within_allocation(share, stored)
        tuned = stored is not None
        limits.append(
            ClaimLimit(
                uuid=share.uuid,
                device=share.device,
                position=position,
                memory_bytes=live.memory_bytes,
                core_percent=live.core_percent,
                priority=live.priority or share.priority,
                policy=live.policy or share.policy,
                memory_max_bytes=share.memory_bytes if tuned else None,
                core_max_percent=share.core_percent if tuned else None,
                physical=share.physical,
            )
        )
    return limits


def prepared_by_device(claims: Mapping[str, PreparedClaim]) -> dict[str, list[str]]:
    """Each physical device's prepared claims (uids in order), as ``Ledgers.usage`` reads them."""
    by_device: dict[str, list[str]] = {}
    for uid in sorted(claims):
        claim = claims[uid]
        if claim.state is ClaimState.PREPARE_COMPLETED:
            for uuid in sorted({device.uuid for device in claim.devices}):
                by_device.setdefault(uuid, []).append(uid)
    return by_device
