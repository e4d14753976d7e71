"""Live quota changes: a prepared claim's memory limit and compute share, changed while it runs.

What the claim was allocated (the plugin's checkpoint record) bounds every change: a quota may move
anywhere from 1 byte (0 % for cores) up to the allocation and back, never past it. A change is applied in
this order, each step atomic:

1. the claim's record in each device's ledger (the shim in every running process reads it from the shared
   mapping: memory at the next allocation, the share at the next launch check, well within a second);
2. the claim's read-only limits file, rewritten (temp file, fsync, rename) with the new values and the
   allocation as ``memory-max``/``cores-max``, so containers started later begin with the new quota and a
   running shim knows how far the ledger may raise it again;
3. a small record under ``<state-dir>/quota/<uid>.json`` that the plugin re-applies after re-preparing.

Lowering memory below what the claim holds refuses new allocations until usage drops; nothing is killed.
Used by ``xpushare quota`` on the node and by the plugin for the ``xpushare.io/quota`` claim annotation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from kubernetes.utils.quantity import parse_quantity

from dra_driver.errors import ConfigError, XPUShareError
from kubeletplugin.checkpoint import (
    CheckpointError,
    ClaimState,
    PreparedClaim,
    PreparedDevice,
    decode,
    write_atomically,
)
from shim.ledger import Ledger
from shim.limits import DeviceLimits, LimitsFile, read_limits_file, write_limits_file

log = logging.getLogger(__name__)

ANNOTATION = "xpushare.io/quota"
QUOTA_DIR = "quota"


class QuotaError(XPUShareError):
    """A quota change could not be validated or applied."""


@dataclass(frozen=True, slots=True)
class QuotaRequest:
    """New limits for a claim; ``None`` keeps the current value. ``device`` limits it to one device."""

    memory_bytes: int | None = None
    core_percent: int | None = None
    device: str | None = None


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


@dataclass(frozen=True, slots=True)
class NodePaths:
    """Where the plugin keeps its state on the node (the ``kubelet-plugin`` flags' defaults)."""

    state_dir: Path = Path("/var/lib/xpushare")
    run_dir: Path = Path("/var/run/xpushare")
    checkpoint: Path | None = None  # default <state_dir>/checkpoint

    @property
    def checkpoint_dir(self) -> Path:
        return self.checkpoint or self.state_dir / "checkpoint"

    def limits_file(self, uid: str) -> Path:
        return self.run_dir / "limits" / f"{uid}.limits"

    def ledger(self, uuid: str) -> Path:
        return self.run_dir / "ledger" / uuid

    def quota_record(self, uid: str) -> Path:
        return self.state_dir / QUOTA_DIR / f"{uid}.json"


def parse_memory(text: str) -> int:
    """A memory quantity (``8Gi``, ``512Mi``, bytes) as bytes; raises ConfigError naming the field."""
    try:
        value = Decimal(parse_quantity(text))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, InvalidOperation) as err:
        raise ConfigError(f"memory: {text!r} is not a quantity (e.g. 8Gi, 512Mi)") from err
    if value != value.to_integral_value() or value <= 0:
        raise ConfigError(f"memory: {text!r} must be a positive whole number of bytes")
    return int(value)


def parse_annotation(text: str) -> QuotaRequest:
    """The claim annotation's value, e.g. ``memory=8Gi,cores=30``."""
    fields: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in ("memory", "cores", "device"):
            raise ConfigError(
                f"{ANNOTATION}: {item!r} must be memory=<quantity>, cores=<0-100> or device=<name>"
            )
        fields[key] = value.strip()
    cores = fields.get("cores")
    if cores is not None and not cores.isdigit():
        raise ConfigError(f"{ANNOTATION}: cores {cores!r} must be an integer in [0, 100]")
    return QuotaRequest(
        memory_bytes=parse_memory(fields["memory"]) if "memory" in fields else None,
        core_percent=int(cores) if cores is not None else None,
        device=fields.get("device"),
    )


def read_prepared(paths: NodePaths, uid: str) -> PreparedClaim:
    """The claim's checkpoint record: what the plugin prepared, hence what may be changed and how far."""
    record = paths.checkpoint_dir / f"{uid}.json"  # the checkpoint's one record file per claim
    try:
        claim, _boot_id = decode(record.read_bytes())
    except FileNotFoundError as err:
        raise QuotaError(f"claim {uid}: not prepared on this node (no record {record})") from err
    except (OSError, CheckpointError) as err:
        raise QuotaError(f"claim {uid}: cannot read its checkpoint record {record}: {err}") from err
    if claim.state is not ClaimState.PREPARE_COMPLETED:
        raise QuotaError(f"claim {uid}: preparation is not complete (state {claim.state.value})")
    return claim


def _selected(claim: PreparedClaim, device: str | None) -> list[PreparedDevice]:
    devices = [d for d in claim.devices if device is None or device in (d.device, d.uuid)]
    if not devices:
        names = ", ".join(f"{d.device} ({d.uuid})" for d in claim.devices) or "none"
        raise QuotaError(f"device: {device!r} is not a device of claim {claim.uid}; its devices: {names}")
    return devices


def validate(claim: PreparedClaim, request: QuotaRequest) -> list[PreparedDevice]:
    """Check the request against each selected device's allocation; raises ConfigError naming the field."""
    if request.memory_bytes is None and request.core_percent is None:
        raise ConfigError("quota: give memory and/or cores to change")
    devices = _selected(claim, request.device)
    for device in devices:
        memory, cores = request.memory_bytes, request.core_percent
        if memory is not None and not 1 <= memory <= device.memory_bytes:
            raise ConfigError(
                f"memory: {memory} bytes on device {device.device} is outside the allocated range "
                f"1..{device.memory_bytes} bytes"
            )
        if cores is not None and not 0 <= cores <= device.core_percent:
            raise ConfigError(
                f"cores: {cores}% on device {device.device} is outside the allocated range "
                f"0..{device.core_percent}%"
            )
    return devices


def _device_quota(uid: str, device: PreparedDevice, ledger: Ledger) -> DeviceQuota:
    record = ledger.snapshot().container(uid)
    memory = record.limit_bytes if record is not None and record.limit_bytes else device.memory_bytes
    cores = record.core_percent if record is not None else device.core_percent
    return DeviceQuota(device.device, device.uuid, min(memory, device.memory_bytes),
                       min(cores, device.core_percent), device.memory_bytes, device.core_percent,
                       record.used_bytes if record is not None else 0)


def _open_ledger(paths: NodePaths, uid: str, device: PreparedDevice) -> Ledger:
    path = paths.ledger(device.uuid)
    try:
        return Ledger.attach(path)
    except XPUShareError as err:
        raise QuotaError(f"claim {uid}: ledger of device {device.device} unusable ({err}); running processes "
                         "cannot be reached") from err


def _apply_ledger(paths: NodePaths, uid: str, device: PreparedDevice, request: QuotaRequest) -> DeviceQuota:
    with _open_ledger(paths, uid, device) as ledger:
        current = _device_quota(uid, device, ledger)
        record = ledger.snapshot().container(uid)
        memory = current.memory_bytes if request.memory_bytes is None else request.memory_bytes
        cores = current.core_percent if request.core_percent is None else request.core_percent
        priority = record.priority if record is not None else device.priority
        policy = record.policy if record is not None else device.policy
        try:
            ledger.set_container(uid, memory, cores, priority, policy)
        except XPUShareError as err:
            raise QuotaError(f"claim {uid}: update the ledger of device {device.device}: {err}") from err
        return replace(current, memory_bytes=memory, core_percent=cores)


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
            memory_max_bytes=quota.allocated_memory_bytes, core_max_percent=quota.allocated_core_percent))
    try:
        write_limits_file(path, limits.claim_uid, devices)
    except XPUShareError as err:
        raise QuotaError(f"claim {uid}: rewrite its limits file: {err}") from err


def _record(paths: NodePaths, uid: str, quotas: list[DeviceQuota]) -> None:
    path = paths.quota_record(uid)
    previous = load_quota(paths, uid)
    previous.update({q.uuid: (q.memory_bytes, q.core_percent) for q in quotas})
    devices = {u: {"memoryBytes": m, "corePercent": c} for u, (m, c) in previous.items()}
    body = {"uid": uid, "devices": devices}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(body, sort_keys=True).encode())
    except (OSError, CheckpointError) as err:
        raise QuotaError(f"claim {uid}: record the quota in {path}: {err}") from err


def load_quota(paths: NodePaths, uid: str) -> dict[str, tuple[int, int]]:
    """The quota last applied to a claim, per device UUID: (memory bytes, core percent). Empty if none.

    The plugin calls this after (re-)preparing a claim and re-applies it with ``apply_quota``.
    """
    path = paths.quota_record(uid)
    try:
        body = json.loads(path.read_bytes())
        return {uuid: (int(v["memoryBytes"]), int(v["corePercent"])) for uuid, v in body["devices"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("quota record unreadable, ignored", extra={"claim_uid": uid, "error": str(err)})
        return {}


def forget_quota(paths: NodePaths, uid: str) -> None:
    """Drop the claim's quota record (at unprepare)."""
    paths.quota_record(uid).unlink(missing_ok=True)


def apply_quota(paths: NodePaths, uid: str, request: QuotaRequest) -> list[DeviceQuota]:
    """Validate against the allocation, then update ledgers, limits file and quota record."""
    claim = read_prepared(paths, uid)
    devices = validate(claim, request)
    quotas = [_apply_ledger(paths, uid, device, request) for device in devices]
    _rewrite_limits(paths, uid, {q.uuid: q for q in quotas})
    _record(paths, uid, quotas)
    log.info("quota changed", extra={"claim_uid": uid, "devices": [q.device for q in quotas],
                                     "memory_bytes": [q.memory_bytes for q in quotas],
                                     "core_percent": [q.core_percent for q in quotas]})
    return quotas


def show_quota(paths: NodePaths, uid: str) -> list[DeviceQuota]:
    """The claim's current quota per device, as the running shims see it."""
    claim = read_prepared(paths, uid)
    quotas = []
    for device in claim.devices:
        with _open_ledger(paths, uid, device) as ledger:
            quotas.append(_device_quota(uid, device, ledger))
    return quotas
