"""Live quota changes: a prepared claim's memory limit and compute share, changed while it runs.

What the claim was allocated (the plugin's checkpoint record) bounds every change: a quota may move
anywhere from 1 byte (0 % for cores) up to the allocation and back, never past it. A change is applied in
this order, each step atomic:

Limits are per physical device: a claim holding two partitions (or two shares) of one device has one
limit there, their sum (``kubeletplugin.physical``).

1. the claim's entry on each device's board (the shim in every running process notices the board's
   generation and copies its entry: memory at the next allocation, the share at the next launch check,
   well within a second);
2. the claim's read-only limits file, rewritten (temp file, fsync, rename) with the new values and the
   allocation as ``memory-max``/``cores-max``, so containers started later begin with the new quota and a
   running shim knows how far the board may raise it again;
3. a small record under ``<state-dir>/quota/<uid>.json`` that the plugin re-applies after re-preparing.

Lowering memory below what the claim holds refuses new allocations until usage drops; nothing is killed.
Used by ``xpushare quota`` on the node and by the plugin for the ``xpushare.io/quota`` claim annotation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from api.errors import ConfigError, XPUShareError
from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.fileio import ensure_directory, read_regular_file, remove_file, write_atomically
from dra_driver.core.quantity import QuantityError, parse_quantity
from kubeletplugin.checkpoint import CheckpointError, ClaimState, PreparedClaim, decode
from kubeletplugin.checkpoint_store import MAX_RECORD_BYTES
from kubeletplugin.ledgers import Ledgers, LedgerWriteError
from kubeletplugin.paths import RECORD_SUFFIX, NodePaths, quota_record_path
from kubeletplugin.physical import LiveQuota, PhysicalShare, Quota, by_physical, within_allocation
from shim.limits import DeviceLimits, LimitsFile, read_limits_file, write_limits_file

log = logging.getLogger(__name__)
_Value = TypeVar("_Value")

ANNOTATION = "xpushare.io/quota"
# A quota record holds two numbers per device; anything far larger is damage, not a record.
MAX_QUOTA_RECORD_BYTES = 64 << 10


class QuotaError(XPUShareError):
    """A quota change could not be validated or applied."""


class InvalidQuotaError(QuotaError, ConfigError):
    """The request names something the claim does not have (bad input, not a failure to apply)."""


@dataclass(frozen=True, slots=True)
class QuotaRequest:
    """New limits for a claim; ``None`` keeps the current value. ``device`` limits it to one device."""

    memory_bytes: int | None = None
    core_percent: int | None = None
    device: str | None = None
    priority: Priority | None = None
    policy: ComputePolicy | None = None

    def empty(self) -> bool:
        return all(v is None for v in (self.memory_bytes, self.core_percent, self.priority, self.policy))


@dataclass(frozen=True, slots=True)
class DeviceQuota:
    """One device's quota after a change, beside what was allocated."""

    device: str
    uuid: str
    memory_bytes: int
    core_percent: int
    allocated_memory_bytes: int
    allocated_core_percent: int
    used_bytes: int
    priority: Priority
    policy: ComputePolicy


QuotaChange = tuple[PhysicalShare, LiveQuota]  # a device of the claim and its new quota


def parse_memory(text: str) -> int:
    """A memory quantity (``8Gi``, ``512Mi``, bytes) as bytes; raises ConfigError naming the field."""
    try:
        value = parse_quantity(text, "memory").value
    except QuantityError as err:
        raise ConfigError(f"memory: {text!r} is not a quantity (e.g. 8Gi, 512Mi)") from err
    if value.denominator != 1 or value <= 0:
        raise ConfigError(f"memory: {text!r} must be a positive whole number of bytes")
    return int(value)


def parse_priority(text: str, field: str = "priority") -> Priority:
    for priority in Priority.ranked():
        if text == priority.value:
            return priority
    raise ConfigError(f"{field}: {text!r} must be one of {', '.join(p.value for p in Priority.ranked())}")


def parse_policy(text: str, field: str = "policy") -> ComputePolicy:
    for policy in ComputePolicy:
        if text == policy.value:
            return policy
    raise ConfigError(f"{field}: {text!r} must be one of {', '.join(p.value for p in ComputePolicy)}")


def _optional(fields: dict[str, str], key: str, parse: Callable[[str, str], _Value]) -> _Value | None:
    return parse(fields[key], f"{ANNOTATION}: {key}") if key in fields else None


def parse_annotation(text: str) -> QuotaRequest:
    """The claim annotation's value, e.g. ``memory=8Gi,cores=30`` or ``priority=low,policy=fixed``."""
    fields: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in ("memory", "cores", "device", "priority", "policy"):
            raise ConfigError(
                f"{ANNOTATION}: {item!r} must be memory=<quantity>, cores=<0-100>, "
                "priority=<low|normal|high>, policy=<guaranteed|fixed> or device=<name>"
            )
        fields[key] = value.strip()
    cores = fields.get("cores")
    if cores is not None and not cores.isdigit():
        raise ConfigError(f"{ANNOTATION}: cores {cores!r} must be an integer in [0, 100]")
    return QuotaRequest(
        memory_bytes=parse_memory(fields["memory"]) if "memory" in fields else None,
        core_percent=int(cores) if cores is not None else None,
        device=fields.get("device"),
        priority=_optional(fields, "priority", parse_priority),
        policy=_optional(fields, "policy", parse_policy),
    )


def read_prepared(paths: NodePaths, uid: str) -> PreparedClaim:
    """The claim's checkpoint record: what the plugin prepared, hence what may be changed and how far."""
    record = paths.checkpoint_record(uid)
    try:
        claim, _boot_id = decode(read_regular_file(record, MAX_RECORD_BYTES))
    except FileNotFoundError as err:
        raise QuotaError(f"claim {uid}: not prepared on this node (no record {record})") from err
    except (OSError, CheckpointError) as err:
        raise QuotaError(f"claim {uid}: cannot read its checkpoint record {record}: {err}") from err
    if claim.state is not ClaimState.PREPARE_COMPLETED:
        raise QuotaError(f"claim {uid}: preparation is not complete (state {claim.state.value})")
    return claim


def _selected(claim: PreparedClaim, device: str | None) -> list[PhysicalShare]:
    every = by_physical(claim.devices)
    shares = [s for s in every if device is None or s.named(device)]
    if not shares:
        names = ", ".join(f"{s.device} ({s.uuid})" for s in every) or "none"
        raise InvalidQuotaError(
            f"device: {device!r} is not a device of claim {claim.uid}; its devices: {names}"
        )
    return shares


def validate(claim: PreparedClaim, request: QuotaRequest) -> list[PhysicalShare]:
    """Check the request against each selected device's allocation; raises ConfigError naming the field."""
    if request.empty():
        raise ConfigError("quota: give memory, cores, priority and/or policy to change")
    shares = _selected(claim, request.device)
    for share in shares:
        memory, cores = request.memory_bytes, request.core_percent
        if memory is not None and not 1 <= memory <= share.memory_bytes:
            raise ConfigError(
                f"memory: {memory} bytes on device {share.device} is outside the allocated range "
                f"1..{share.memory_bytes} bytes"
            )
        if cores is not None and not 0 <= cores <= share.core_percent:
            raise ConfigError(
                f"cores: {cores}% on device {share.device} is outside the allocated range "
                f"0..{share.core_percent}%"
            )
        if request.priority is not None and request.priority.rank > share.priority.rank:
            allowed = ", ".join(p.value for p in Priority.ranked() if p.rank <= share.priority.rank)
            raise ConfigError(f"priority: {request.priority.value} on device {share.device} is above the "
                              f"allocated {share.priority.value} (allowed: {allowed})")
        if request.policy is ComputePolicy.GUARANTEED and share.policy is ComputePolicy.FIXED:
            raise ConfigError(f"policy: guaranteed on device {share.device} was not allocated "
                              "(allowed: fixed)")
    return shares


def resolve(claim: PreparedClaim, request: QuotaRequest, current: Quota) -> list[QuotaChange]:
    """Each selected device with its quota after ``request`` (validated), starting from ``current``; pure."""
    changes: list[QuotaChange] = []
    for share in validate(claim, request):
        now = within_allocation(share, current.get(share.uuid))
        changes.append((share, LiveQuota(
            now.memory_bytes if request.memory_bytes is None else request.memory_bytes,
            now.core_percent if request.core_percent is None else request.core_percent,
            now.priority if request.priority is None else request.priority,
            now.policy if request.policy is None else request.policy,
        )))
    return changes


def _device_quota(ledgers: Ledgers, uid: str, share: PhysicalShare) -> DeviceQuota:
    """The claim's quota on one device as its running shims see it: its board entry (else the allocation)
    and the usage its ledger reports."""
    try:
        entry = ledgers.entry(share.uuid, uid)
    except LedgerWriteError as err:
        raise QuotaError(f"claim {uid}: device {share.device}: {err}; running processes cannot be "
                         "reached") from err
    memory = entry.limit_bytes if entry is not None and entry.limit_bytes else share.memory_bytes
    cores = entry.core_percent if entry is not None else share.core_percent
    live = within_allocation(share, LiveQuota(memory, cores, entry.priority if entry else None,
                                              entry.policy if entry else None))
    usage = ledgers.claim_usage(share.uuid, uid)
    return DeviceQuota(share.device, share.uuid, live.memory_bytes, live.core_percent, share.memory_bytes,
                       share.core_percent, usage.used_bytes if usage is not None else 0,
                       live.priority or share.priority, live.policy or share.policy)


def _apply_board(ledgers: Ledgers, uid: str, share: PhysicalShare, value: LiveQuota) -> DeviceQuota:
    current = _device_quota(ledgers, uid, share)
    priority, policy = value.priority or share.priority, value.policy or share.policy
    try:
        ledgers.set_entry(share.uuid, uid, memory_bytes=value.memory_bytes, core_percent=value.core_percent,
                          priority=priority, policy=policy)
    except XPUShareError as err:
        raise QuotaError(f"claim {uid}: update the board of device {share.device}: {err}") from err
    return replace(current, memory_bytes=value.memory_bytes, core_percent=value.core_percent,
                   priority=priority, policy=policy)


def _rewrite_limits(paths: NodePaths, uid: str, quotas: dict[str, DeviceQuota]) -> None:
    path = paths.limits_file(uid)
    try:
        limits: LimitsFile = read_limits_file(path)
    except (XPUShareError, ValueError) as err:
        raise QuotaError(f"claim {uid}: cannot read its limits file {path}: {err}") from err
    devices: list[DeviceLimits] = []
    for device in limits.devices:
        quota = quotas.get(device.uuid)
        devices.append(device if quota is None else replace(
            device, memory_limit_bytes=quota.memory_bytes, core_percent=quota.core_percent,
            memory_max_bytes=quota.allocated_memory_bytes, core_max_percent=quota.allocated_core_percent,
            priority=quota.priority, policy=quota.policy))
    try:
        write_limits_file(path, limits.claim_uid, devices)
    except XPUShareError as err:
        raise QuotaError(f"claim {uid}: rewrite its limits file: {err}") from err


def _decode_quota_record(path: Path) -> dict[str, LiveQuota]:
    """A quota record's values; raises whatever reading or decoding it raises."""
    body = json.loads(read_regular_file(path, MAX_QUOTA_RECORD_BYTES))
    return {
        str(uuid): LiveQuota(int(v["memoryBytes"]), int(v["corePercent"]),
                             parse_priority(v["priority"]) if "priority" in v else None,
                             parse_policy(v["policy"]) if "policy" in v else None)
        for uuid, v in body["devices"].items()
    }


def read_quota_record(directory: Path, uid: str) -> dict[str, LiveQuota]:
    """The quota last applied to a claim, per device UUID; empty when none (or unreadable: logged)."""
    path = quota_record_path(directory, uid)
    try:
        return _decode_quota_record(path)
    except FileNotFoundError:
        return {}
    except Exception as err:  # a damaged record (even RecursionError) means no quota, never a crash
        log.warning("quota record unreadable, ignored", extra={"claim_uid": uid, "error": repr(err)})
        return {}


def damaged_quota_records(directory: Path) -> dict[str, str]:
    """The quota records that cannot be read (file name -> reason), for recovery to report and remove."""
    if not directory.is_dir():
        return {}
    damaged = {}
    for path in sorted(directory.glob(f"*{RECORD_SUFFIX}")):
        try:
            _decode_quota_record(path)
        except Exception as err:  # any failure to read a record makes it damaged
            damaged[path.name] = f"unreadable: {err!r}"[:300]
    return damaged


def _record_entry(value: LiveQuota) -> dict[str, int | str]:
    entry: dict[str, int | str] = {"memoryBytes": value.memory_bytes, "corePercent": value.core_percent}
    if value.priority is not None:
        entry["priority"] = value.priority.value
    if value.policy is not None:
        entry["policy"] = value.policy.value
    return entry


def write_quota_record(directory: Path, uid: str, values: Quota) -> None:
    """Merge ``values`` into the claim's record (atomically), for re-applying after a re-prepare."""
    path = quota_record_path(directory, uid)
    merged = read_quota_record(directory, uid)
    merged.update(values)
    devices = {u: _record_entry(v) for u, v in merged.items()}
    body = json.dumps({"uid": uid, "devices": devices}, sort_keys=True).encode()
    try:
        ensure_directory(path.parent, 0o700, tighten=False)
        write_atomically(path, body, mode=0o600)
    except OSError as err:
        raise QuotaError(f"claim {uid}: record the quota in {path}: {err}") from err


def remove_quota_record(directory: Path, uid: str) -> None:
    remove_file(quota_record_path(directory, uid), QuotaError, f"claim {uid}: remove its quota record")


def load_quota(paths: NodePaths, uid: str) -> dict[str, LiveQuota]:
    """The quota last applied to a claim, per device UUID. Empty if none.

    The plugin re-applies it whenever it writes the claim's board entries and limits file (prepare,
    re-prepare, restart).
    """
    return read_quota_record(paths.quota_dir, uid)


def forget_quota(paths: NodePaths, uid: str) -> None:
    """Drop the claim's quota record (at unprepare)."""
    remove_quota_record(paths.quota_dir, uid)


def set_quota(paths: NodePaths, uid: str, changes: Sequence[QuotaChange]) -> list[DeviceQuota]:
    """Write already validated per-device values: boards, then the limits file, then the record."""
    ledgers = Ledgers(paths, {})
    quotas = [_apply_board(ledgers, uid, share, value) for share, value in changes]
    _rewrite_limits(paths, uid, {q.uuid: q for q in quotas})
    write_quota_record(paths.quota_dir, uid, {
        q.uuid: LiveQuota(q.memory_bytes, q.core_percent, q.priority, q.policy) for q in quotas})
    log.info("quota changed", extra={"claim_uid": uid, "devices": [q.device for q in quotas],
                                     "memory_bytes": [q.memory_bytes for q in quotas],
                                     "core_percent": [q.core_percent for q in quotas],
                                     "priority": [q.priority.value for q in quotas],
                                     "policy": [q.policy.value for q in quotas]})
    return quotas


def apply_quota(
    paths: NodePaths, uid: str, request: QuotaRequest, claim: PreparedClaim | None = None
) -> list[DeviceQuota]:
    """Validate against the allocation, then update boards, limits file and quota record.

    ``claim`` is the prepared claim when the caller holds it (the plugin); else the checkpoint is read.
    """
    prepared = claim if claim is not None else read_prepared(paths, uid)
    return set_quota(paths, uid, resolve(prepared, request, load_quota(paths, uid)))


def restore_allocation(paths: NodePaths, claim: PreparedClaim) -> list[DeviceQuota]:
    """Give the claim its whole allocation back on every device and drop its quota record."""
    whole = [(share, LiveQuota(share.memory_bytes, share.core_percent, share.priority, share.policy))
             for share in by_physical(claim.devices)]
    quotas = set_quota(paths, claim.uid, whole)
    forget_quota(paths, claim.uid)
    return quotas


def show_quota(paths: NodePaths, uid: str) -> list[DeviceQuota]:
    """The claim's current quota per device, as the running shims see it."""
    claim = read_prepared(paths, uid)
    ledgers = Ledgers(paths, {})
    return [_device_quota(ledgers, uid, share) for share in by_physical(claim.devices)]
