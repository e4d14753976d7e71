"""The limits file: what the node plugin tells the shim inside a container to enforce.

The plugin writes one file per claim on the host and the CDI spec mounts it read-only, so a tenant cannot
raise its own limits. The shim reads it once at start-up in C (``shim/src/limits.c``); this module is the
one writer and a reader that accepts exactly what the C parser accepts. Format (see ``xpushare.h``)::

    version 1
    claim <claim-uid>
    device index=0 uuid=GPU-... memory=17179869184 cores=25 priority=normal policy=guaranteed
           scheduling=serial ledger=/path board=/path   (one line)

One ``device`` line per device of the claim; ``index`` is its position in the claim and ``physical`` its
number on the node (the Ascend chip id, the minor of its device node): the shim finds the device a process
uses by its UUID (CUDA) or physical id (Ascend), whatever order the process sees its devices in.
``ledger`` is the claim's own ledger of the device, ``board`` the device's board (read-only). Optional
``memory-max``/``cores-max`` record what the claim was allocated: a live quota change (written to the
device's board) may move the limits anywhere up to them, and the shim never goes past them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from api.errors import ConfigError, XPUShareError
from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import Scheduling
from dra_driver.core.fileio import write_atomically

FORMAT_VERSION = 1
MAX_DEVICES = 64
MAX_KEY_LEN = 63
MAX_PATH_LEN = 255
MAX_PHYSICAL = 1 << 20
FILE_MODE = 0o444
_TOKEN = re.compile(r"^[^\s=#]+$")
_Member = TypeVar("_Member", bound=StrEnum)


class LimitsFileError(XPUShareError):
    """The limits file could not be written or read."""


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    """One device's limits as the shim sees them."""

    uuid: str
    index: int
    memory_limit_bytes: int
    core_percent: int = 100
    priority: Priority = Priority.NORMAL
    policy: ComputePolicy = ComputePolicy.GUARANTEED
    ledger_path: str = ""  # the claim's own ledger of the device
    memory_max_bytes: int | None = None
    core_max_percent: int | None = None
    board_path: str = ""  # the device's board (its peers' ledgers are in claims/ beside it)
    scheduling: Scheduling = Scheduling.SERIAL  # how the device shares its time (how time is measured)
    physical: int | None = None  # the device's number on the node (Ascend chip id, /dev node minor)


@dataclass(frozen=True, slots=True)
class LimitsFile:
    claim_uid: str
    devices: tuple[DeviceLimits, ...]


def _token(field: str, value: str, max_len: int = MAX_KEY_LEN) -> str:
    if not _TOKEN.match(value) or len(value) > max_len:
        raise ConfigError(f"{field}: {value!r} must be 1-{max_len} characters without spaces, '=' or '#'")
    return value


def _bounded(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{field}: {value!r} must be an integer in [{low}, {high}]")
    return value


def _choice(field: str, value: str, allowed: Sequence[_Member]) -> _Member:
    for member in allowed:
        if value == member:
            return member
    raise ConfigError(f"{field}: {value!r} must be one of {', '.join(allowed)}")


def _priority(value: str) -> Priority:
    return _choice("priority", value, Priority.ranked())


def _policy(value: str) -> ComputePolicy:
    return _choice("policy", value, tuple(ComputePolicy))


def _scheduling(value: str) -> Scheduling:
    return _choice("scheduling", value, tuple(Scheduling))


def _path_field(name: str, value: str) -> str:
    if value and (not value.startswith("/") or len(value) > MAX_PATH_LEN or not _TOKEN.match(value)):
        raise ConfigError(f"{name}: {value!r} must be an absolute path of at most {MAX_PATH_LEN} "
                          "characters without spaces")
    return value


def _device_line(device: DeviceLimits) -> str:
    ledger = _path_field("ledger_path", device.ledger_path)
    board = _path_field("board_path", getattr(device, "board_path", ""))
    fields = [
        f"index={_bounded('index', device.index, 0, MAX_DEVICES - 1)}",
        f"uuid={_token('uuid', device.uuid)}",
        f"memory={_bounded('memory_limit_bytes', device.memory_limit_bytes, 0, 2**64 - 1)}",
        f"cores={_bounded('core_percent', device.core_percent, 0, 100)}",
        f"priority={_priority(device.priority)}",
        f"policy={_policy(device.policy)}",
        f"scheduling={_scheduling(getattr(device, 'scheduling', Scheduling.SERIAL))}",
    ]
    physical = getattr(device, "physical", None)
    if physical is not None:
        fields.append(f"physical={_bounded('physical', physical, 0, MAX_PHYSICAL)}")
    if ledger:
        fields.append(f"ledger={ledger}")
    if board:
        fields.append(f"board={board}")
    # Any object with DeviceLimits' required fields is accepted (a plugin's own dataclass): the optional
    # ones are read with defaults.
    memory_max = getattr(device, "memory_max_bytes", None)
    cores_max = getattr(device, "core_max_percent", None)
    if memory_max is not None:
        memory_max = _bounded("memory_max_bytes", memory_max, device.memory_limit_bytes, 2**64 - 1)
        fields.append(f"memory-max={memory_max}")
    if cores_max is not None:
        fields.append(f"cores-max={_bounded('core_max_percent', cores_max, device.core_percent, 100)}")
    return "device " + " ".join(fields)


def render_limits(claim_uid: str, devices: Sequence[DeviceLimits]) -> str:
    """The file's text (pure); raises ConfigError naming the first bad field."""
    if len(devices) > MAX_DEVICES:
        raise ConfigError(f"devices: {len(devices)} given, at most {MAX_DEVICES}")
    indexes = [d.index for d in devices]
    if len(set(indexes)) != len(indexes):
        raise ConfigError(f"index: each device needs its own index, got {indexes}")
    lines = ["# xpushare limits (read-only; written by the node plugin)", f"version {FORMAT_VERSION}",
             f"claim {_token('claim_uid', claim_uid)}"]
    lines += [_device_line(d) for d in devices]
    return "\n".join(lines) + "\n"


def write_limits_file(path: Path, claim_uid: str, devices: Sequence[DeviceLimits]) -> Path:
    """Write atomically (temp file, fsync, rename) with mode 0444, so readers never see half a file."""
    text = render_limits(claim_uid, devices).encode()
    try:
        write_atomically(path, text, mode=FILE_MODE)
    except OSError as err:
        raise LimitsFileError(f"write limits file {path}: {err}") from err
    return path


def _parse_device(rest: str, line_no: int) -> DeviceLimits:
    values: dict[str, str] = {}
    for item in rest.split():
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"line {line_no}: {item!r} is not key=value")
        values[key] = value
    try:
        return DeviceLimits(
            uuid=values.get("uuid", ""),
            index=_bounded("index", int(values["index"]), 0, MAX_DEVICES - 1),
            memory_limit_bytes=_bounded("memory", int(values.get("memory", "0")), 0, 2**64 - 1),
            core_percent=_bounded("cores", int(values.get("cores", "100")), 0, 100),
            priority=_priority(values.get("priority", Priority.NORMAL)),
            policy=_policy(values.get("policy", ComputePolicy.GUARANTEED)),
            ledger_path=values.get("ledger", ""),
            board_path=values.get("board", ""),
            memory_max_bytes=_optional("memory-max", values, 2**64 - 1),
            core_max_percent=_optional("cores-max", values, 100),
            scheduling=_scheduling(values.get("scheduling", Scheduling.SERIAL)),
            physical=_optional("physical", values, MAX_PHYSICAL),
        )
    except (KeyError, ValueError) as err:
        raise ConfigError(f"line {line_no}: device needs index and integer fields ({err})") from err


def _optional(key: str, values: dict[str, str], high: int) -> int | None:
    return _bounded(key, int(values[key]), 0, high) if key in values else None


def parse_limits(text: str) -> LimitsFile:
    """Parse a limits file's text with the C parser's rules (unknown keys and records are ignored)."""
    version, claim, devices = 0, "", []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "version":
            version = int(rest.strip()) if rest.strip().isdigit() else -1
        elif word == "claim":
            claim = rest.strip()
        elif word == "device":
            devices.append(_parse_device(rest, line_no))
    if version != FORMAT_VERSION:
        raise ConfigError(f"version: expected {FORMAT_VERSION}, found {version}")
    if not claim:
        raise ConfigError("claim: missing")
    if len({d.index for d in devices}) != len(devices):
        raise ConfigError("index: duplicated device index")
    return LimitsFile(claim_uid=claim, devices=tuple(devices))


def read_limits_file(path: Path) -> LimitsFile:
    try:
        return parse_limits(path.read_text())
    except OSError as err:
        raise LimitsFileError(f"read limits file {path}: {err}") from err
