"""Per-device limits of a claim: how much memory and which compute share each container gets.

Where the numbers come from depends on how the device was offered (DESIGN.md sections 3 and 4):

- consumable: the scheduler's ``consumedCapacity`` (memory bytes, cores in percent of the device);
- partitioned: the partition's own size (what it consumes of the device's counters);
- exclusive (a whole device, no capacity consumed): the opaque ``SharingConfig``'s ``memoryMiB`` and
  ``corePercent``, defaulting to the whole device.

Priority and compute policy always come from ``SharingConfig`` (class configs first, then claim configs).
Pure and deterministic: ``resolve_limits`` may run more than once for one claim (idempotent prepare
recomputes it), so it has no side effects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from api.errors import ConfigValidationError
from api.v1alpha1.decode import decode_sharing_config, merge_sharing_configs
from api.v1alpha1.sharing import ComputePolicy, Priority, SharingConfig
from controller.settings import PartitionLayout, SliceSettings
from controller.slices.modes import partitions
from dra_driver.core.devices import MIB, Device
from kubeletplugin.claims import AllocatedClaim, ClaimError, OpaqueConfig, Result

WHOLE_DEVICE_PERCENT = 100


@dataclass(frozen=True, slots=True)
class Offer:
    """A device name as published in this node's slices, and what it stands for."""

    name: str
    physical: Device
    memory_bytes: int
    core_percent: int
    partition: bool


class Catalog:
    """Every device name this node may have published, in any slice mode.

    Whole devices are named after the physical device; partitions are built with the same pure function
    the slice publisher uses, so both always agree on names and sizes.
    """

    def __init__(self, devices: Iterable[Device], settings: SliceSettings | None = None) -> None:
        slice_settings = settings or SliceSettings()
        self._offers: dict[str, Offer] = {}
        for device in devices:
            # Both layouts: claims prepared before a layout change keep their names, and a name's size
            # is the same in either.
            parts = [p for layout in PartitionLayout for p in partitions(device, slice_settings, layout)]
            for part in parts:
                if part.name == device.name:
                    continue  # the size-1 partition is the whole device, listed below
                self._offers[part.name] = Offer(
                    part.name, device, part.memory_bytes, part.core_percent, partition=True
                )
            self._offers[device.name] = Offer(
                device.name, device, device.memory_bytes, WHOLE_DEVICE_PERCENT, partition=False
            )
        self.physical: dict[str, Device] = {d.uuid: d for d in devices}

    def get(self, name: str) -> Offer | None:
        return self._offers.get(name)

    def offers(self) -> list[Offer]:
        return list(self._offers.values())


@dataclass(frozen=True, slots=True)
class Grant:
    """The limits of one prepared device (one allocation result, or several sharing one share)."""

    pool: str
    device: str
    share_id: str | None
    request_names: tuple[str, ...]
    offer: Offer
    memory_bytes: int
    core_percent: int
    priority: Priority
    policy: ComputePolicy

    @property
    def exclusive(self) -> bool:
        """Without a share id the scheduler gave the whole device name to this claim alone."""
        return self.share_id is None


def effective_config(claim: AllocatedClaim, requests: Sequence[str]) -> SharingConfig:
    """Merge the claim's configs that apply to any of ``requests``; raises ``ClaimError`` on a bad one."""
    class_configs: list[SharingConfig] = []
    claim_configs: list[SharingConfig] = []
    for config in claim.configs:
        if any(config.applies_to(r) for r in requests):
            target = class_configs if config.from_class else claim_configs
            target.append(_decode(claim, config))
    return merge_sharing_configs(class_configs, claim_configs)


def _decode(claim: AllocatedClaim, config: OpaqueConfig) -> SharingConfig:
    try:
        return decode_sharing_config(config.parameters, config.path)
    except ConfigValidationError as err:
        issues = "; ".join(str(issue) for issue in err.issues)
        raise ClaimError(f"{claim.ref}: invalid SharingConfig: {issues}") from err


def _amounts(claim: AllocatedClaim, result: Result, offer: Offer, config: SharingConfig) -> tuple[int, int]:
    if result.consumed is not None:
        memory = result.consumed.memory_bytes
        cores = result.consumed.core_percent
        # What the scheduler left unset is the request policy's default: whole memory, best-effort cores.
        return (offer.memory_bytes if memory is None else memory, 0 if cores is None else cores)
    if offer.partition:
        return offer.memory_bytes, offer.core_percent
    memory = offer.memory_bytes if config.memoryMiB is None else config.memoryMiB * MIB
    cores = WHOLE_DEVICE_PERCENT if config.corePercent is None else config.corePercent
    return memory, cores


def _grant(claim: AllocatedClaim, results: Sequence[Result], catalog: Catalog) -> Grant:
    first = results[0]
    offer = catalog.get(first.device)
    if offer is None:
        raise ClaimError(f"{claim.ref}: device {first.device} is not a device of this node")
    config = effective_config(claim, [r.request for r in results])
    memory = cores = 0
    for result in results:
        m, c = _amounts(claim, result, offer, config)
        memory, cores = memory + m, cores + c
    if memory > offer.physical.memory_bytes or memory <= 0:
        raise ClaimError(
            f"{claim.ref}: memory limit {memory} bytes on device {first.device} is outside "
            f"1..{offer.physical.memory_bytes} bytes"
        )
    if not 0 <= cores <= WHOLE_DEVICE_PERCENT:
        raise ClaimError(f"{claim.ref}: core share {cores}% on device {first.device} is outside 0..100%")
    names = tuple(dict.fromkeys(r.request_name for r in results))
    return Grant(
        first.pool,
        first.device,
        first.share_id,
        names,
        offer,
        memory,
        cores,
        config.priority,
        config.computePolicy,
    )


def resolve_limits(claim: AllocatedClaim, catalog: Catalog) -> list[Grant]:
    """One grant per (pool, device, share id) of the claim, in the order the allocation lists them."""
    groups: dict[tuple[str, str, str | None], list[Result]] = {}
    for result in claim.results:
        groups.setdefault((result.pool, result.device, result.share_id), []).append(result)
    return [_grant(claim, results, catalog) for results in groups.values()]
