"""The node plugin's metrics: prepare latency and errors recorded as claims go through, and the devices'
and claims' memory and compute read from the claims' ledgers at scrape time.

Ledger values change on every allocation and kernel launch in every container, so they are never copied
into the registry: ``NodeCollector`` reads each prepared claim's ledger of each device when Prometheus
scrapes (one bounded pread of its head: nothing mapped or locked) and joins it with the checkpoint,
which names each claim. Limits and shares come from the plugin's own records (the checkpoint and the live
quota), never from a ledger its tenant can write; usage is what the claim's processes report. Without
ledgers (no shim library) the usage lines are left out.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from api.errors import ConfigError, XPUShareError
from dra_driver.core.devices import Device, Health
from dra_driver.core.kube import ApiError
from dra_driver.core.metrics import Family, Registry, Sample
from kubeletplugin.accounting import ClaimLimitError, OvercommitError
from kubeletplugin.cdi import CdiError
from kubeletplugin.checkpoint import (
    CheckpointError,
    CheckpointLockTimeoutError,
    ClaimState,
    PreparedClaim,
    PreparedDevice,
)
from kubeletplugin.claims import ClaimError
from kubeletplugin.ledgers import DeviceUsage, LedgerWriteError
from kubeletplugin.physical import Quota, claim_limits, prepared_by_device
from kubeletplugin.state import ClaimPreparer
from kubeletplugin.usage_history import WINDOWS_SECONDS, Key, Point
from kubeletplugin.usage_history import share as share_over
from shim.ledger import ClaimUsage
from shim.limits import LimitsFileError

# Prepare takes a few milliseconds (two disk flushes) and an API read; the tail is retries and locks.
PREPARE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# First match wins, so subclasses come before their bases.
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ClaimLimitError, "claim_limit"),
    (OvercommitError, "overcommit"),
    (ClaimError, "invalid_claim"),
    (CheckpointLockTimeoutError, "checkpoint_lock"),
    (CheckpointError, "checkpoint"),
    (CdiError, "cdi"),
    (LedgerWriteError, "ledger"),
    (LimitsFileError, "limits_file"),
    (ApiError, "api"),
    (ConfigError, "config"),
    (XPUShareError, "other"),
)


def error_reason(err: BaseException) -> str:
    """A short, bounded label for why a claim failed (``internal``: a bug, not a refusal)."""
    return next((reason for kind, reason in _REASONS if isinstance(err, kind)), "internal")


class NodeMetrics:
    """What the DRA service records per claim operation."""

    def __init__(self, registry: Registry) -> None:
        self.seconds = registry.histogram(
            "xpushare_prepare_seconds",
            "Time to prepare or unprepare one claim, by operation and outcome (ok, error)",
            PREPARE_BUCKETS,
            labels=("operation", "outcome"),
        )
        self.errors = registry.counter(
            "xpushare_claim_errors_total", "Claims that failed to prepare or unprepare, by reason",
            labels=("operation", "reason"),
        )
        self.in_flight = registry.gauge(
            "xpushare_claim_operations_in_flight", "Claim prepares and unprepares running now, by operation",
            labels=("operation",),
        )

    @contextmanager
    def timed(self, operation: str) -> Iterator[Attempt]:
        """Time the block as one claim operation; the block sets ``error`` when the claim failed."""
        attempt = Attempt()
        self.in_flight.inc(operation=operation)
        start = time.perf_counter()
        try:
            yield attempt
        finally:
            self.in_flight.dec(operation=operation)
            outcome = "ok" if attempt.error is None else "error"
            self.seconds.observe(time.perf_counter() - start, operation=operation, outcome=outcome)
            if attempt.error is not None:
                self.errors.inc(operation=operation, reason=error_reason(attempt.error))


@dataclass(slots=True)
class Attempt:
    """One timed claim operation; ``error`` is what failed it (returned to the kubelet, not raised)."""

    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _Share:
    """A claim's hold on one physical device (two partitions of one device are one share here)."""

    claim: PreparedClaim
    uuid: str
    devices: tuple[PreparedDevice, ...]


def _shares(claims: Mapping[str, PreparedClaim]) -> list[_Share]:
    found = []
    for uid in sorted(claims):
        claim = claims[uid]
        if claim.state is not ClaimState.PREPARE_COMPLETED:
            continue
        by_uuid: dict[str, list[PreparedDevice]] = defaultdict(list)
        for device in claim.devices:
            by_uuid[device.uuid].append(device)
        found += [_Share(claim, uuid, tuple(devices)) for uuid, devices in sorted(by_uuid.items())]
    return found


class NodeCollector:
    """Devices' and prepared claims' memory and compute, read at scrape time (a ``Collector``), and the
    devices' health as the health monitor last saw it (``health``: its devices; None before it runs)."""

    def __init__(self, preparer: ClaimPreparer, health: Callable[[], Sequence[Device]] | None = None,
                 recent: Callable[[], Mapping[Key, Sequence[Point]]] | None = None) -> None:
        """``recent``: the usage sampler's latest points per (claim, device), for the shares over the last
        10 s and 60 s (``xpushare_claim_*_recent_percent``): one scrape then tells what each claim got."""
        self.preparer = preparer
        self.health = health
        self.recent = recent

    def __call__(self) -> list[Family]:
        p = self.preparer
        claims = p.store.claims()
        shares = _shares(claims)
        usage = p.ledgers.usage(prepared_by_device(claims)) if p.ledgers is not None else {}
        prepared = sum(c.state is ClaimState.PREPARE_COMPLETED for c in claims.values())
        families = [Family("xpushare_prepared_claims", "Claims prepared on this node", "gauge",
                           (Sample.of(prepared),))]
        families += self._devices(usage)
        families += self._claims(shares, usage)
        if self.health is not None:
            families.append(_health(self.health()))
        return families

    def _devices(self, usage: Mapping[str, DeviceUsage]) -> list[Family]:
        p = self.preparer
        total, used, allocated, cores = [], [], [], []
        for device in sorted(p.catalog.physical.values(), key=lambda d: d.name):
            uuid = device.uuid
            labels = {"device": device.name, "uuid": uuid}
            held_bytes, held_cores = p.accounting.used(uuid)
            total.append(Sample.of(device.memory_bytes, **labels))
            allocated.append(Sample.of(held_bytes, **labels))
            cores.append(Sample.of(held_cores, **labels))
            device_usage = usage.get(uuid)
            if device_usage is not None:
                used.append(Sample.of(device_usage.used_bytes, **labels))
        return [
            Family("xpushare_device_memory_total_bytes", "Device memory", "gauge", total),
            Family("xpushare_device_memory_used_bytes",
                   "Device memory held by processes of prepared claims (their ledgers)", "gauge", used),
            Family("xpushare_device_memory_allocated_bytes",
                   "Sum of the memory limits of the claims prepared on the device", "gauge", allocated),
            Family("xpushare_device_cores_allocated_percent",
                   "Sum of the compute shares of the claims prepared on the device (100 = one device)",
                   "gauge", cores),
        ]

    def _claims(self, shares: list[_Share], usage: Mapping[str, DeviceUsage]) -> list[Family]:
        physical = self.preparer.catalog.physical
        columns: dict[str, list[Sample]] = defaultdict(list)
        recent = self.recent() if self.recent is not None else {}
        for share in shares:
            device = physical.get(share.uuid)
            labels = {
                "claim_uid": share.claim.uid,
                "namespace": share.claim.namespace,
                "name": share.claim.name,
                "device": device.name if device is not None else share.uuid,
            }
            device_usage = usage.get(share.uuid)
            record = device_usage.claims.get(share.claim.uid) if device_usage is not None else None
            quota = self.preparer.quota(share.claim.uid)
            for metric, value in _claim_values(share, quota, record).items():
                columns[metric].append(Sample.of(value, **labels))
            for window in WINDOWS_SECONDS:
                got = share_over(recent.get((share.claim.uid, share.uuid), ()), window)
                if got is not None:
                    span = {**labels, "window": f"{window}s"}
                    columns[RECENT_COMPUTE].append(Sample.of(got.measured_percent, **span))
                    columns[RECENT_THROTTLED].append(Sample.of(got.throttled_percent, **span))
        return [Family(name, text, kind, columns[name]) for name, (kind, text) in CLAIM_FAMILIES.items()]


CLAIM_FAMILIES: dict[str, tuple[str, str]] = {
    "xpushare_claim_memory_limit_bytes": ("gauge", "Memory limit of the claim on the device (live quota)"),
    "xpushare_claim_memory_used_bytes": ("gauge", "Memory the claim's processes hold on the device"),
    "xpushare_claim_memory_peak_bytes": ("gauge", "Highest memory the claim's processes held on the device"),
    "xpushare_claim_core_share_percent": ("gauge", "Compute share of the claim (percent of the device)"),
    "xpushare_claim_processes": ("gauge", "Processes of the claim attached to the device"),
    "xpushare_claim_compute_seconds_total": ("counter", "Device time charged to the claim"),
    "xpushare_claim_throttled_seconds_total": (
        "counter", "Time the claim's launches waited because it was over its compute share"),
    "xpushare_claim_memory_refusals_total": (
        "counter", "Device allocations of the claim refused at its memory limit"),
    "xpushare_claim_compute_recent_percent": (
        "gauge", "Device time charged to the claim over the last `window` (10s, 60s; shorter while its "
                 "history is younger), percent of the device: what it got, from the plugin's usage history"),
    "xpushare_claim_throttled_recent_percent": (
        "gauge", "Time the claim's launches waited over the last `window`, percent of that time"),
}
RECENT_COMPUTE = "xpushare_claim_compute_recent_percent"
RECENT_THROTTLED = "xpushare_claim_throttled_recent_percent"


def _health(devices: Sequence[Device]) -> Family:
    """One sample per device and health state, 1 for the state it is in (alerts select the state)."""
    samples = [Sample.of(1.0 if device.health is state else 0.0, device=device.name, uuid=device.uuid,
                         state=state.value)
               for device in sorted(devices, key=lambda d: d.name) for state in Health]
    return Family("xpushare_device_health", "Device health as the driver reports it (1: in this state)",
                  "gauge", samples)


def _claim_values(
    share: _Share, quota: Quota, record: ClaimUsage | None
) -> dict[str, float]:
    """Limit and share from the plugin's records (live quota applied); usage from the claim's ledger."""
    (limit,) = claim_limits(share.devices, quota)
    values: dict[str, float] = {
        "xpushare_claim_memory_limit_bytes": limit.memory_bytes,
        "xpushare_claim_core_share_percent": limit.core_percent,
    }
    if record is None:
        return values
    return {
        **values,
        "xpushare_claim_memory_used_bytes": record.used_bytes,
        "xpushare_claim_memory_peak_bytes": record.peak_bytes,
        "xpushare_claim_processes": record.nprocs,
        "xpushare_claim_compute_seconds_total": record.used_ns / 1e9,
        "xpushare_claim_throttled_seconds_total": record.throttled_ns / 1e9,
        "xpushare_claim_memory_refusals_total": record.refused_allocs,
    }
