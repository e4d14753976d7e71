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


# Each vendor's menus (its profile's); keys are matched against the device model (longest
# case-insensitive prefix wins), then the device type.
DEFAULT_PARTITION_PROFILES: Final = MappingProxyType(
    {key: sizes for profile in PROFILES.values() for key, sizes in profile.partition_sizes.items()}
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
    partition_profiles: MappingProxyType[str, tuple[Fraction, ...]] = field(
        default_factory=lambda: DEFAULT_PARTITION_PROFILES
    )
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

    def profile_for(self, model: str, device_type: str) -> tuple[Fraction, ...]:
        """The partition sizes for a device: longest model prefix, then its type, then whole only."""
        lowered = model.lower()
        best = ""
        for key in self.partition_profiles:
            if lowered.startswith(key) and len(key) > len(best):
                best = key
        if best:
            return self.partition_profiles[best]
        return self.partition_profiles.get(device_type, (Fraction(1),))


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is out of range; allowed {low}..{high}")


def _check_profile(key: str, fractions: tuple[Fraction, ...]) -> None:
    if not fractions:
        raise ConfigError(f"partitionProfiles.{key}: empty; give at least one size such as 1/2")
    for size in fractions:
        if not 0 < size <= 1:
            raise ConfigError(f"partitionProfiles.{key}: size {size} is out of range; allowed (0, 1]")


def parse_partition_profiles(text: str) -> MappingProxyType[str, tuple[Fraction, ...]]:
    """Parse ``gpu=1/8,1/4,1/2,1;ascend310p=1/7,2/7,4/7`` (keys: model prefix or device type).

    Entries given replace the defaults of the same key; other defaults stay.
    """
    profiles = dict(DEFAULT_PARTITION_PROFILES)
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, sizes = entry.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"partitionProfiles: {entry!r} is not KEY=SIZE,SIZE (e.g. gpu=1/4,1/2,1)")
        try:
            fractions = tuple(Fraction(size.strip()) for size in sizes.split(",") if size.strip())
        except (ValueError, ZeroDivisionError) as err:
            raise ConfigError(
                f"partitionProfiles.{key.strip()}: {sizes!r} is not a list of fractions"
            ) from err
        _check_profile(key.strip(), fractions)
        profiles[key.strip().lower()] = fractions
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
