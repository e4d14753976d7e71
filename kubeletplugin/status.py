"""What each tenant uses on this node right now, from the node's own files: no API server needed.

The plugin's checkpoint names the prepared claims and what each was allocated, their quota records the
live limits, and each claim's ledger of each device what its processes hold and the device time they
were charged. The share each claim actually got, beside the share it asked for, comes from the plugin's
usage history (the last 10 s and 60 s, at once: ``usage_file``) and, when asked or when that history
cannot be used, from two reads of the ledgers ``window`` seconds apart. Ledgers are read the plugin's way
(one bounded pread of the head, never a lock), so ``xpushare status`` can run beside a busy node at any
time; a record or a ledger that cannot be read becomes a row saying so, never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dra_driver.core.fileio import read_regular_file
from kubeletplugin.checkpoint import CheckpointError, ClaimState, PreparedClaim, decode
from kubeletplugin.checkpoint_store import MAX_RECORD_BYTES
from kubeletplugin.paths import RECORD_SUFFIX, NodePaths
from kubeletplugin.physical import claim_limits
from kubeletplugin.quota import read_quota_record
from kubeletplugin.usage_file import UsageFile, UsageFileError, read_usage_file
from kubeletplugin.usage_history import NS_PER_S, WINDOWS_SECONDS, Point, Share, between
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
    measured_percent: float | None = None  # device time charged, percent (``window``, else ``last_10s``)
    throttled_percent: float | None = None  # time its launches waited, percent (the same span)
    pods: tuple[str, ...] = ()  # the pods it was reserved for when prepared
    last_10s: Share | None = None  # from the plugin's usage history
    last_60s: Share | None = None
    window: Share | None = None  # two reads by this run, ``window`` seconds apart


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


def _window(before: ClaimUsage | None, after: ClaimUsage | None, seconds: float) -> Share | None:
    """The share between this run's two reads of a ledger, ``seconds`` apart."""
    if before is None or after is None:
        return None
    return between(Point(0, before.used_ns, before.throttled_ns),
                   Point(round(seconds * NS_PER_S), after.used_ns, after.throttled_ns))


def node_status(
    paths: NodePaths,
    window: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    history: UsageFile | None = None,
) -> list[DeviceStatus]:
    """Devices and their claims, with the shares measured over ``window`` seconds (0: not measured) and
    over the last 10 s and 60 s of the plugin's ``history``; MEASURED shows the window, else the 10 s."""
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
            key = (uid, limit.uuid)
            live = _window(first.get(key), second.get(key), seconds) if window > 0 else None
            recent = tuple(None if history is None else history.share(key, w) for w in WINDOWS_SECONDS)
            shown = live if window > 0 else recent[0]
            now = second.get(key)
            rows.setdefault(limit.uuid, []).append(ClaimStatus(
                namespace=claim.namespace, name=claim.name, uid=uid, device=limit.device,
                memory_limit_bytes=limit.memory_bytes, core_percent=limit.core_percent,
                priority=str(limit.priority), policy=str(limit.policy),
                memory_used_bytes=now.used_bytes if now else None,
                memory_peak_bytes=now.peak_bytes if now else None,
                processes=now.nprocs if now else None,
                refused=now.refused_allocs if now else None,
                measured_percent=shown.measured_percent if shown else None,
                throttled_percent=shown.throttled_percent if shown else None,
                pods=claim.pods, last_10s=recent[0], last_60s=recent[1], window=live,
            ))
    return [DeviceStatus(uuid, tuple(claims_on)) for uuid, claims_on in sorted(rows.items())]


DEFAULT_WINDOW_S = 2.0  # the two reads' distance when the plugin's history cannot be used


@dataclass(frozen=True, slots=True)
class Measurement:
    """Where one refresh's MEASURED and THROTTLED come from, and why the plugin's history was not used."""

    window_s: float  # this run's two reads apart (0: none)
    history_file: Path
    history_age_s: float | None  # None: the history was not usable
    note: str | None = None  # why not

    @property
    def source(self) -> str:
        return "window" if self.window_s > 0 else "history" if self.history_age_s is not None else "none"


def read_history(paths: NodePaths, clock_ns: Callable[[], int] = time.monotonic_ns,
                 wall: Callable[[], float] = time.time) -> tuple[UsageFile | None, str | None]:
    """The plugin's usage history if it is sound and current, else None and why."""
    try:
        return read_usage_file(paths.usage_history, clock_ns(), wall()), None
    except UsageFileError as err:
        return None, str(err)


def refresh(
    paths: NodePaths,
    window: float | None,
    sleep: Callable[[float], None] = time.sleep,
    clock_ns: Callable[[], int] = time.monotonic_ns,
    wall: Callable[[], float] = time.time,
) -> tuple[list[DeviceStatus], Measurement]:
    """One view of the node: ``window`` None measures over the plugin's last 10 s when its history is
    usable, else over ``DEFAULT_WINDOW_S`` now; a number measures over that many seconds now (0: not)."""
    history, note = read_history(paths, clock_ns, wall)
    if window is None:
        window = 0.0 if history is not None else DEFAULT_WINDOW_S
    age = None if history is None else round(history.age_s(clock_ns()), 3)
    devices = node_status(paths, window, sleep, lambda: clock_ns() / NS_PER_S, history)
    return devices, Measurement(window, paths.usage_history, age, note)


def measurement_line(measurement: Measurement) -> str:
    """What MEASURED and THROTTLED mean in this table, and why the history was not used."""
    m = measurement
    text = {
        "window": f"MEASURED, THROTTLED: over {m.window_s:g} s measured now",
        "history": f"MEASURED, THROTTLED: the last {WINDOWS_SECONDS[0]} s, from the plugin's usage history "
                   f"({m.history_age_s or 0:.1f} s old)",
        "none": "MEASURED, THROTTLED: not measured",
    }[m.source]
    return text if m.note is None else f"{text}; {m.note}"


def as_json(devices: Iterable[DeviceStatus], measurement: Measurement) -> dict[str, Any]:
    m = measurement
    return {
        "windowSeconds": m.window_s,
        "measured": {"source": m.source, "historyFile": str(m.history_file),
                     "historyAgeSeconds": m.history_age_s, "historyWindowsSeconds": list(WINDOWS_SECONDS),
                     "note": m.note},
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
    """camelCase keys, nested objects too (``last_10s`` -> ``last10s``)."""
    def convert(key: str) -> str:
        head, *rest = key.split("_")
        return head + "".join(part[:1].upper() + part[1:] for part in rest)

    return {convert(k): _camel(v) if isinstance(v, dict) else v for k, v in values.items()}


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
