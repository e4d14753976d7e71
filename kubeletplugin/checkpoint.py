"""The node plugin's checkpoint: which claims it prepared, with what, so a restart loses nothing.

The kubelet never re-prepares a running pod's claim after a plugin restart, so the checkpoint is the only
record of what the plugin gave out. It is a directory with one record file per claim (``<uid>.json``):
each write is small and independent of how many claims the node holds (a single file would be re-encoded
whole on every change, which at hundreds of claims cost more than the rest of a prepare), and a damaged
file costs one claim, not all. Format rules (compatible means old and new plugins read each other's files):

- ``version`` names the layout; the current one is ``v1``. New fields are optional and left out when
  empty, and readers ignore fields they do not know (``extra="ignore"``), so a downgraded plugin still
  reads a newer file. User input is decoded strictly elsewhere; persisted data is read leniently here.
- ``checksum`` is the SHA-256 of the canonical JSON of ``data``; a mismatch, bad JSON or a wrong shape
  makes the record corrupt, which the caller reports and rebuilds from the API server.
- ``data.nodeBootID`` records the boot the record was written in: a reboot invalidates device ledgers
  (shared memory is gone), not claims.
- Claims move through two states, ``PrepareStarted`` then ``PrepareCompleted``; a claim left in
  ``PrepareStarted`` by a crash is rolled back on start.

Writes are atomic (``dra_driver.core.fileio``: temp file, fsync, rename, fsync of the directory). The
directory and its locking (an ``flock`` with a timeout, because plugin pods overlap during rolling
updates) are in ``kubeletplugin.checkpoint_store``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from api.errors import XPUShareError
from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import DeviceType

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = "v1"
DEFAULT_BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
_Member = TypeVar("_Member", bound=StrEnum)


class CheckpointError(XPUShareError):
    """The checkpoint could not be read, written or locked."""


class CheckpointCorruptError(CheckpointError):
    """The checkpoint exists but cannot be trusted (bad JSON, wrong shape, checksum mismatch)."""


class CheckpointLockTimeoutError(CheckpointError):
    """Another process held the checkpoint lock for longer than the timeout."""


class ClaimState(StrEnum):
    PREPARE_STARTED = "PrepareStarted"
    PREPARE_COMPLETED = "PrepareCompleted"


@dataclass(frozen=True, slots=True)
class PreparedDevice:
    """One allocated device as prepared for a claim, with the limits the container got."""

    pool: str
    device: str
    request_names: tuple[str, ...]
    cdi_device_ids: tuple[str, ...]
    uuid: str
    index: int
    device_type: DeviceType
    memory_bytes: int
    core_percent: int
    priority: Priority
    policy: ComputePolicy
    share_id: str | None = None
    exclusive: bool = False
    minor: int | None = None


@dataclass(frozen=True, slots=True)
class PreparedClaim:
    uid: str
    namespace: str
    name: str
    state: ClaimState
    devices: tuple[PreparedDevice, ...] = field(default=())
    pods: tuple[str, ...] = field(default=())  # the pods the claim was reserved for when it was prepared


# --- persisted shape (lenient readers, compact writers) -------------------------------------------------


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class _DeviceV1(_Model):
    pool: str
    device: str
    request_names: list[str] = pydantic.Field(alias="requestNames")
    cdi_device_ids: list[str] = pydantic.Field(alias="cdiDeviceIDs")
    uuid: str
    index: int
    device_type: DeviceType = pydantic.Field(alias="type")
    memory_bytes: int = pydantic.Field(alias="memoryBytes", ge=0)
    core_percent: int = pydantic.Field(alias="corePercent", ge=0, le=100)
    priority: str
    policy: str
    share_id: str | None = pydantic.Field(default=None, alias="shareID")
    exclusive: bool | None = None
    minor: int | None = None


class _ClaimV1(_Model):
    namespace: str
    name: str
    state: ClaimState
    devices: list[_DeviceV1] = []
    pods: list[str] = []


class _RecordV1(_Model):
    node_boot_id: str = pydantic.Field(alias="nodeBootID")
    uid: str
    claim: _ClaimV1


def _member(enum: type[_Member], value: str, default: _Member) -> _Member:
    """A persisted priority or policy; one this plugin does not know (a newer plugin's) reads as the
    default rather than costing the claim its record."""
    try:
        return enum(value)
    except ValueError:
        log.warning("unknown value in checkpoint, default used", extra={"value": value, "default": default})
        return default


def _device_from_model(model: _DeviceV1) -> PreparedDevice:
    return PreparedDevice(
        pool=model.pool,
        device=model.device,
        request_names=tuple(model.request_names),
        cdi_device_ids=tuple(model.cdi_device_ids),
        uuid=model.uuid,
        index=model.index,
        device_type=model.device_type,
        memory_bytes=model.memory_bytes,
        core_percent=model.core_percent,
        priority=_member(Priority, model.priority, Priority.NORMAL),
        policy=_member(ComputePolicy, model.policy, ComputePolicy.GUARANTEED),
        share_id=model.share_id,
        exclusive=bool(model.exclusive),
        minor=model.minor,
    )


def _device_to_json(device: PreparedDevice) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "pool": device.pool,
        "device": device.device,
        "requestNames": list(device.request_names),
        "cdiDeviceIDs": list(device.cdi_device_ids),
        "uuid": device.uuid,
        "index": device.index,
        "type": device.device_type.value,
        "memoryBytes": device.memory_bytes,
        "corePercent": device.core_percent,
        "priority": device.priority.value,
        "policy": device.policy.value,
    }
    # Optional fields are left out when empty so older readers never meet them needlessly.
    if device.share_id is not None:
        entry["shareID"] = device.share_id
    if device.exclusive:
        entry["exclusive"] = True
    if device.minor is not None:
        entry["minor"] = device.minor
    return entry


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def encode(claim: PreparedClaim, boot_id: str) -> bytes:
    """Serialize one claim's record into its file's bytes (pure)."""
    body: dict[str, Any] = {
        "namespace": claim.namespace,
        "name": claim.name,
        "state": claim.state.value,
        "devices": [_device_to_json(d) for d in claim.devices],
    }
    if claim.pods:  # left out when empty, as optional device fields are
        body["pods"] = list(claim.pods)
    data = {"nodeBootID": boot_id, "uid": claim.uid, "claim": body}
    checksum = hashlib.sha256(_canonical(data)).hexdigest()
    return json.dumps({"version": CHECKPOINT_VERSION, "checksum": checksum, "data": data}).encode()


def decode(raw: bytes) -> tuple[PreparedClaim, str]:
    """Parse a record's bytes into (claim, boot id); raises ``CheckpointCorruptError``."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointCorruptError(f"not valid JSON: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise CheckpointCorruptError("no 'data' object")
    if document.get("version") != CHECKPOINT_VERSION:
        raise CheckpointCorruptError(
            f"version {document.get('version')!r} is not supported; allowed: {CHECKPOINT_VERSION}"
        )
    expected = hashlib.sha256(_canonical(document["data"])).hexdigest()
    if document.get("checksum") != expected:
        raise CheckpointCorruptError("checksum does not match the data")
    try:
        record = _RecordV1.model_validate(document["data"])
    except pydantic.ValidationError as err:
        raise CheckpointCorruptError(f"data has the wrong shape: {err}") from err
    model = record.claim
    claim = PreparedClaim(
        uid=record.uid,
        namespace=model.namespace,
        name=model.name,
        state=model.state,
        devices=tuple(_device_from_model(d) for d in model.devices),
        pods=tuple(model.pods),
    )
    return claim, record.node_boot_id


def read_boot_id(path: Path = DEFAULT_BOOT_ID_PATH) -> str:
    try:
        return path.read_text().strip()
    except OSError as err:
        raise CheckpointError(f"read boot id from {path}: {err}") from err
