"""The last line of defence: this node never gives a device out beyond its capacity.

The scheduler should never over-commit, but a stale allocation, a second scheduler or a bug would put
two claims' memory on one device, and the shim would then enforce limits that cannot all hold. So every
prepare reserves its devices here first, atomically across concurrently preparing claims, and is refused
(that claim alone) when the sum over this node's prepared claims would exceed the physical device:

- memory: the sum of memory limits on a physical device is at most its memory;
- cores: the sum of guaranteed shares on a physical device is at most 100 percent;
- a device name given without a share id belongs to one claim only;
- at most ``MAX_CLAIMS_PER_DEVICE`` (64) claims share a physical device: the device's board has that many
  entries, and the scheduler does not know the limit (in consumable mode the slices' default
  memory minimum keeps it; partition menus and ``exclusive`` sharing stay far below it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from api.errors import XPUShareError
from kubeletplugin.checkpoint import PreparedClaim
from shim import MAX_CLAIMS_PER_DEVICE


class OvercommitError(XPUShareError):
    """Preparing the claim would give out more of a device than it has."""


class ClaimLimitError(OvercommitError):
    """The physical device already holds as many claims as its board can hold."""


@dataclass(frozen=True, slots=True)
class Holding:
    """What one claim holds of one device (as the accounting needs it)."""

    device: str
    share_id: str | None
    uuid: str
    memory_bytes: int
    core_percent: int


def holdings_of(claim: PreparedClaim) -> list[Holding]:
    return [Holding(d.device, d.share_id, d.uuid, d.memory_bytes, d.core_percent) for d in claim.devices]


class Accounting:
    """Reservations of every claim prepared (or being prepared) on this node. Thread-safe."""

    def __init__(self, capacity_bytes: Mapping[str, int]) -> None:
        """``capacity_bytes`` maps a physical device's UUID to its memory."""
        self._capacity = dict(capacity_bytes)
        self._held: dict[str, tuple[Holding, ...]] = {}
        self._lock = threading.Lock()

    def reserve(
        self, uid: str, ref: str, holdings: Iterable[Holding], owners: Callable[[], Mapping[str, str]]
    ) -> None:
        """Record ``uid``'s holdings, replacing earlier ones, or raise ``OvercommitError``.

        ``ref`` names the claim in messages; ``owners`` gives other claims' names by UID (called only to
        word a refusal).
        """
        wanted = tuple(holdings)
        with self._lock:
            others = {k: v for k, v in self._held.items() if k != uid}
            for holding in wanted:
                self._check_name(ref, holding, others, owners)
            self._check_sums(ref, wanted, others)
            self._held[uid] = wanted

    def restore(self, uid: str, holdings: Iterable[Holding]) -> None:
        """Record holdings from the checkpoint without checks: what was given out is given out."""
        with self._lock:
            self._held[uid] = tuple(holdings)

    def release(self, uid: str) -> None:
        with self._lock:
            self._held.pop(uid, None)

    def used(self, uuid: str) -> tuple[int, int]:
        """(memory bytes, core percent) held on a physical device."""
        with self._lock:
            held = [h for hs in self._held.values() for h in hs if h.uuid == uuid]
        return sum(h.memory_bytes for h in held), sum(h.core_percent for h in held)

    @staticmethod
    def _check_name(
        ref: str,
        holding: Holding,
        others: Mapping[str, tuple[Holding, ...]],
        owners: Callable[[], Mapping[str, str]],
    ) -> None:
        for other_uid, held in others.items():
            for other in held:
                if other.device != holding.device:
                    continue
                if holding.share_id is None or other.share_id is None or other.share_id == holding.share_id:
                    owner = owners().get(other_uid, f"claim uid {other_uid}")
                    raise OvercommitError(
                        f"{ref}: device {holding.device} is already prepared for {owner} "
                        "and cannot be shared with it"
                    )

    def _check_sums(
        self, ref: str, wanted: tuple[Holding, ...], others: Mapping[str, tuple[Holding, ...]]
    ) -> None:
        for uuid in {h.uuid for h in wanted}:
            mine = [h for h in wanted if h.uuid == uuid]
            theirs = [h for hs in others.values() for h in hs if h.uuid == uuid]
            memory = sum(h.memory_bytes for h in (*mine, *theirs))
            cores = sum(h.core_percent for h in (*mine, *theirs))
            capacity = self._capacity.get(uuid)
            name = mine[0].device
            holders = {k for k, hs in others.items() if any(h.uuid == uuid for h in hs)}
            if len(holders) >= MAX_CLAIMS_PER_DEVICE:
                raise ClaimLimitError(
                    f"{ref}: device {name} ({uuid}) already holds {len(holders)} prepared claims, the most "
                    f"one device can hold ({MAX_CLAIMS_PER_DEVICE}, the entries of its board); the "
                    "scheduler does not count claims, so the kubelet retries until one is released. Give "
                    "each claim a larger share (in consumable mode a memory request of at least 1/64 of "
                    "the device, the slices' default minimum), or spread the pods over more devices"
                )
            if capacity is not None and memory > capacity:
                raise OvercommitError(
                    f"{ref}: device {name} would be over-committed: memory {memory} bytes prepared "
                    f"in total, capacity {capacity} bytes"
                )
            if cores > 100:
                raise OvercommitError(
                    f"{ref}: device {name} would be over-committed: {cores}% of compute guaranteed "
                    "in total, capacity 100%"
                )
