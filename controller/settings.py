"""Settings of slice publishing and of the cluster controller, validated once at the edge.

Every knob that shapes a ResourceSlice (mode, request-policy defaults and steps, partition profiles,
per-slice limits) lives in ``SliceSettings`` so that the pure slice builder depends on nothing but its
arguments. Values come from CLI flags or Helm values; bad ones raise ``ConfigError`` naming the field and
the allowed range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from api.errors import ConfigError
from dra_driver.core.devices import MIB
from dra_driver.core.kube import Backoff
from dra_driver.core.vendors import PROFILES

# The most claims one physical device can hold at once: the shim's ledger has this many claim records.
# The scheduler does not know it, so consumable slices keep it with their memory minimum
# (``SliceSettings.memory_min_for``).
from shim import MAX_CLAIMS_PER_DEVICE

DRIVER_NAME: Final = "xpushare.io"
ATTRIBUTE_DOMAIN: Final = "xpushare.io"
UNHEALTHY_TAINT_KEY: Final = "xpushare.io/unhealthy"


class SliceMode(StrEnum):
    """How devices are offered to the scheduler (DESIGN.md section 3)."""

    AUTO = "auto"
    CONSUMABLE = "consumable"
    PARTITIONED = "partitioned"
    EXCLUSIVE = "exclusive"


# ``auto`` tries these in order and falls back when the API server drops the gated fields of one.
FALLBACK_ORDER: Final = (SliceMode.CONSUMABLE, SliceMode.PARTITIONED, SliceMode.EXCLUSIVE)


class PartitionLayout(StrEnum):
    """How partitioned mode cuts a device (docs/controller.md, "Partition layouts").

    ``fixed``: each device is cut once into disjoint pieces, published as plain devices; no gate needed
    and kube-scheduler places them as fast as consumable shares. ``menu``: every placement of every size,
    overlapping, consuming the device's shared counters (``DRAPartitionableDevices``); any size fits any
    free room, but the scheduler's search grows so fast with overlapping partitions that it suits small
    clusters only (about 50x slower than consumable at 200 nodes).
    """

    FIXED = "fixed"
    MENU = "menu"


Profiles = MappingProxyType[str, tuple[Fraction, ...]]

# Each vendor's sizes (its profile's); keys are matched against the device model (longest
# case-insensitive prefix wins), then the device type.
DEFAULT_PARTITION_PROFILES: Final = MappingProxyType(
    {key: sizes for profile in PROFILES.values() for key, sizes in profile.partition_sizes.items()}
)
DEFAULT_FIXED_PARTITIONS: Final = MappingProxyType(
    {key: pieces for profile in PROFILES.values() for key, pieces in profile.fixed_partitions.items()}
)


@dataclass(frozen=True, slots=True)
class SliceSettings:
    """Everything the pure slice builder needs besides the node and its devices."""

    driver_name: str = DRIVER_NAME
    mode: SliceMode = SliceMode.AUTO
    memory_step_bytes: int = 256 * MIB
    # None: 1/64 of the device's memory rounded up to the step (at least one step), so a device never
    # holds more claims than its ledger tracks (MAX_CLAIMS_PER_DEVICE).
    memory_min_bytes: int | None = None
    # None: the whole memory (a claim that asks for nothing gets the whole device).
    memory_default_bytes: int | None = None
    cores_step: int = 1
    cores_default: int = 0
    partition_layout: PartitionLayout = PartitionLayout.FIXED
    # The menu layout's sizes, and the fixed layout's pieces (per key; see ``parse_partitions``).
    partition_profiles: Profiles = field(default_factory=lambda: DEFAULT_PARTITION_PROFILES)
    fixed_partitions: Profiles = field(default_factory=lambda: DEFAULT_FIXED_PARTITIONS)
    device_taints: bool = True
    max_devices_per_slice: int = 128
    max_devices_per_slice_with_taints_or_counters: int = 64
    max_counter_sets_per_slice: int = 8

    def __post_init__(self) -> None:
        _check_range("memoryStepBytes", self.memory_step_bytes, 1, 1 << 50)
        if self.memory_min_bytes is not None:
            _check_range("memoryMinBytes", self.memory_min_bytes, 0, 1 << 50)
        if self.memory_default_bytes is not None:
            _check_range("memoryDefaultBytes", self.memory_default_bytes, 0, 1 << 50)
        _check_range("coresStep", self.cores_step, 1, 100)
        _check_range("coresDefault", self.cores_default, 0, 100)
        if self.cores_default % self.cores_step:
            raise ConfigError(f"coresDefault: {self.cores_default} must be a multiple of coresStep")
        _check_range("maxDevicesPerSlice", self.max_devices_per_slice, 1, 128)
        _check_range(
            "maxDevicesPerSliceWithTaintsOrCounters",
            self.max_devices_per_slice_with_taints_or_counters,
            1,
            64,
        )
        _check_range("maxCounterSetsPerSlice", self.max_counter_sets_per_slice, 1, 8)
        for key, fractions in self.partition_profiles.items():
            _check_profile(key, fractions)
        for key, fractions in self.fixed_partitions.items():
            _check_pieces(key, fractions)

    def memory_min_for(self, memory_bytes: int) -> int:
        """The least memory a claim gets on a device of ``memory_bytes`` (its requestPolicy minimum).

        By default large enough that at most ``MAX_CLAIMS_PER_DEVICE`` claims fit: a 65th claim would
        otherwise be scheduled and then refused by the node at prepare time.
        """
        if self.memory_min_bytes is not None:
            return self.memory_min_bytes
        step = self.memory_step_bytes
        per_claim = -(-memory_bytes // MAX_CLAIMS_PER_DEVICE)
        return max(step, -(-per_claim // step) * step)

    def profile_for(
        self, model: str, device_type: str, layout: PartitionLayout | None = None
    ) -> tuple[Fraction, ...]:
        """A device's sizes (menu) or pieces (fixed) in ``layout`` (default: the configured one):
        longest model prefix, then its type, then the whole device only."""
        chosen = self.partition_layout if layout is None else layout
        profiles = self.fixed_partitions if chosen is PartitionLayout.FIXED else self.partition_profiles
        lowered = model.lower()
        best = ""
        for key in profiles:
            if lowered.startswith(key) and len(key) > len(best):
                best = key
        if best:
            return profiles[best]
        return profiles.get(device_type, (Fraction(1),))


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is out of range; allowed {low}..{high}")


def _check_profile(key: str, fractions: tuple[Fraction, ...]) -> None:
    if not fractions:
        raise ConfigError(f"partitions.{key}: empty; give at least one size such as 1/2")
    for size in fractions:
        if not 0 < size <= 1:
            raise ConfigError(f"partitions.{key}: size {size} is out of range; allowed (0, 1]")


def _check_pieces(key: str, pieces: tuple[Fraction, ...]) -> None:
    """A fixed layout's pieces must fit the device side by side."""
    _check_profile(key, pieces)
    total = sum(pieces, Fraction(0))
    if total > 1:
        raise ConfigError(
            f"partitions.{key}: the fixed layout's pieces add up to {total} of the device; allowed at most 1"
        )


def _sizes(key: str, text: str) -> tuple[Fraction, ...]:
    """``1/4,1/2`` or with counts ``4x1/4`` (four quarters)."""
    sizes: list[Fraction] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        count_text, times, size_text = item.rpartition("x")
        try:
            count = int(count_text) if times else 1
            size = Fraction(size_text.strip())
        except (ValueError, ZeroDivisionError) as err:
            raise ConfigError(
                f"partitions.{key}: {item!r} is not a size (1/4) or a count and a size (4x1/4)"
            ) from err
        if not 1 <= count <= 64:
            raise ConfigError(f"partitions.{key}: count {count} in {item!r} is out of range; allowed 1..64")
        sizes.extend([size] * count)
    return tuple(sizes)


def parse_partitions(text: str, layout: PartitionLayout) -> Profiles:
    """Parse ``gpu=4x1/4;ascend310p=4/7,2/7,1/7`` for ``layout`` (keys: model prefix or device type).

    In the fixed layout the list is the pieces each device is cut into (at most the whole device); in
    the menu layout it is the sizes offered, each at every place it fits. Entries given replace the
    defaults of the same key; other defaults stay.
    """
    fixed = layout is PartitionLayout.FIXED
    profiles = dict(DEFAULT_FIXED_PARTITIONS if fixed else DEFAULT_PARTITION_PROFILES)
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, sizes = entry.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ConfigError(f"partitions: {entry!r} is not KEY=SIZE,SIZE (e.g. gpu=4x1/4 or gpu=1/4,1/2,1)")
        fractions = _sizes(key, sizes)
        if not fixed:
            fractions = tuple(sorted(set(fractions)))
        (_check_pieces if fixed else _check_profile)(key, fractions)
        profiles[key] = fractions
    return MappingProxyType(profiles)


# Backoff for API conflicts and server errors (``base * 2**attempt`` capped at ``cap`` seconds, jittered).
RetrySettings = Backoff


@dataclass(frozen=True, slots=True)
class LeaderSettings:
    """Lease timing; the defaults follow client-go (15 s lease, 10 s renew deadline, 2 s retry)."""

    namespace: str = "xpushare-system"
    lease_name: str = "xpushare-controller"
    lease_duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period_seconds < self.renew_deadline_seconds < self.lease_duration_seconds:
            raise ConfigError(
                "leaderElection: need retryPeriod < renewDeadline < leaseDuration, got "
                f"{self.retry_period_seconds} / {self.renew_deadline_seconds} / {self.lease_duration_seconds}"
            )
