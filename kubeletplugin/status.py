"""What each tenant uses on this node right now, from the node's own files: no API server needed.

The plugin's checkpoint names the prepared claims and what each was allocated, their quota records the
live limits, and each claim's ledger of each device what its processes hold and the device time they
were charged. Two reads of the ledgers ``window`` seconds apart give the share each claim actually got
over that window beside the share it asked for. Ledgers are read the plugin's way (one bounded pread of
the head, never a lock), so ``xpushare status`` can run beside a busy node at any time; a record or a
ledger that cannot be read becomes a row saying so, never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from dra_driver.core.fileio import read_regular_file
from kubeletplugin.checkpoint import CheckpointError, ClaimState, PreparedClaim, decode
from kubeletplugin.checkpoint_store import MAX_RECORD_BYTES
from kubeletplugin.paths import RECORD_SUFFIX, NodePaths
from kubeletplugin.physical import claim_limits
from kubeletplugin.quota import read_quota_record
from shim.ledger import ClaimUsage, LedgerError, read_claim_usage

Sample = dict[tuple[str, str], ClaimUsage | None]  # (claim uid, device uuid) -> its ledger's head


@dataclass(frozen=True, slots=True)
class ClaimStatus:
    """One claim on one physical device."""

    namespace: str
    name: str
    uid: str
    device: str  # the published name(s) of the claim's parts on it
    memory_limit_bytes: int
    core_percent: int
    priority: str
    policy: str
    memory_used_bytes: int | None = None  # None: its ledger could not be read
    memory_peak_bytes: int | None = None
    processes: int | None = None
    refused: int | None = None  # allocations refused at the memory limit so far
    measured_percent: float | None = None  # device time charged over the window, percent of the window
    throttled_percent: float | None = None  # time its launches waited over the window, percent
    pods: tuple[str, ...] = ()  # the pods it was reserved for when prepared


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    uuid: str
    claims: tuple[ClaimStatus, ...] = field(default_factory=tuple)

    @property
    def memory_used_bytes(self) -> int:
        return sum(c.memory_used_bytes or 0 for c in self.claims)

    @property
    def memory_limit_bytes(self) -> int:
        return sum(c.memory_limit_bytes for c in self.claims)

    @property
    def core_percent(self) -> int:
        return sum(c.core_percent for c in self.claims)


def prepared_claims(paths: NodePaths) -> dict[str, PreparedClaim]:
    """The checkpoint's completed claims; damaged records are skipped (the plugin reports them)."""
    found: dict[str, PreparedClaim] = {}
    directory = paths.checkpoint_dir
    if not directory.is_dir():
        return found
    for record in sorted(directory.glob(f"*{RECORD_SUFFIX}")):
        try:
            claim, _boot_id = decode(read_regular_file(record, MAX_RECORD_BYTES))
        except (OSError, CheckpointError, ValueError, RecursionError):
            continue
        if claim.state is ClaimState.PREPARE_COMPLETED:
            found[claim.uid] = claim
    return found


def sample(paths: NodePaths, claims: Mapping[str, PreparedClaim]) -> Sample:
    """Every claim's ledger head on every device it holds (None where unreadable)."""
    heads: Sample = {}
    for uid, claim in claims.items():
        for uuid in sorted({d.uuid for d in claim.devices}):
            try:
                usage = read_claim_usage(paths.claim_ledger(uuid, uid))
            except (LedgerError, ValueError):
                usage = None
            heads[(uid, uuid)] = usage if usage is not None and usage.key == uid else None
    return heads


def _percent(before: ClaimUsage | None, after: ClaimUsage | None, attr: str, seconds: float) -> float | None:
    if before is None or after is None or seconds <= 0:
        return None
    delta: int = getattr(after, attr) - getattr(before, attr)
    return round(100.0 * max(0, delta) / (seconds * 1e9), 1)


def node_status(
    paths: NodePaths,
    window: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[DeviceStatus]:
    """Devices and their claims, with the shares measured over ``window`` seconds (0: not measured)."""
    claims = prepared_claims(paths)
    start = clock()
    first = sample(paths, claims)
    if window > 0:
        sleep(window)
    second = sample(paths, claims) if window > 0 else first
    seconds = clock() - start
    rows: dict[str, list[ClaimStatus]] = {}
    for uid, claim in sorted(claims.items(), key=lambda kv: (kv[1].namespace, kv[1].name, kv[0])):
        for limit in claim_limits(claim.devices, read_quota_record(paths.quota_dir, uid)):
            now = second.get((uid, limit.uuid))
            rows.setdefault(limit.uuid, []).append(ClaimStatus(
                namespace=claim.namespace, name=claim.name, uid=uid, device=limit.device,
                memory_limit_bytes=limit.memory_bytes, core_percent=limit.core_percent,
                priority=str(limit.priority), policy=str(limit.policy),
                memory_used_bytes=now.used_bytes if now else None,
                memory_peak_bytes=now.peak_bytes if now else None,
                processes=now.nprocs if now else None,
                refused=now.refused_allocs if now else None,
                measured_percent=_percent(first.get((uid, limit.uuid)), now, "used_ns", seconds)
                if window > 0 else None,
                throttled_percent=_percent(first.get((uid, limit.uuid)), now, "throttled_ns", seconds)
                if window > 0 else None,
                pods=claim.pods,
            ))
    return [DeviceStatus(uuid, tuple(claims_on)) for uuid, claims_on in sorted(rows.items())]


def as_json(devices: Iterable[DeviceStatus], window: float) -> dict[str, Any]:
    return {
        "windowSeconds": window,
        "devices": [
            {
                "uuid": d.uuid,
                "memoryUsedBytes": d.memory_used_bytes,
                "memoryLimitBytes": d.memory_limit_bytes,
                "corePercent": d.core_percent,
                "claims": [_camel(asdict(c)) for c in d.claims],
            }
            for d in devices
        ],
    }


def _camel(values: dict[str, Any]) -> dict[str, Any]:
    def convert(key: str) -> str:
        head, *rest = key.split("_")
        return head + "".join(part.title() for part in rest)

    return {convert(k): v for k, v in values.items()}


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / (1 << 20):.0f}Mi"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


COLUMNS = ("CLAIM", "DEVICE", "USED", "LIMIT", "PEAK", "REFUSED", "SHARE", "MEASURED", "THROTTLED",
           "PRIORITY", "PROCS", "PODS")


def _pods(pods: tuple[str, ...], shown: int = 2) -> str:
    if not pods:
        return "-"
    more = f",+{len(pods) - shown}" if len(pods) > shown else ""
    return ",".join(pods[:shown]) + more


def _row(c: ClaimStatus) -> tuple[str, ...]:
    return (f"{c.namespace}/{c.name}", c.device, _mib(c.memory_used_bytes), _mib(c.memory_limit_bytes),
            _mib(c.memory_peak_bytes), "-" if c.refused is None else str(c.refused), f"{c.core_percent}%",
            _pct(c.measured_percent),
            _pct(c.throttled_percent), f"{c.priority}/{c.policy}",
            "-" if c.processes is None else str(c.processes), _pods(c.pods))


def render_table(devices: Iterable[DeviceStatus]) -> str:
    """One block per device: a line with its totals, then a row per claim (``-``: not readable)."""
    lines = []
    for device in devices:
        used, allocated = _mib(device.memory_used_bytes), _mib(device.memory_limit_bytes)
        lines.append(f"{device.uuid}: {len(device.claims)} claims, {used} used of {allocated} allocated, "
                     f"{device.core_percent}% of cores allocated")
        rows = [COLUMNS] + [_row(c) for c in device.claims]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                  for row in rows]
    return "\n".join(lines) if lines else "no claims prepared on this node"
