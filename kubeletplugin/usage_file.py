"""The usage history the plugin publishes for ``xpushare status`` (``<run-dir>/usage.json``).

The plugin's sampler replaces the file atomically once a second (a reader sees the old file or the new
one), so ``status`` can show the last 10 s and 60 s without waiting. Per (claim, device) it holds only
the samples those windows need (``usage_history.needed``: the newest and each window's first), not the
whole ring, so it stays small at any node size. Stamps are CLOCK_MONOTONIC (what the samples use, and
what ``status`` compares them with: the same kernel clock in every container of the node) and the wall
clock (a file left from before a reboot has a monotonic stamp that may look recent; its wall stamp does
not)::

    {"version": 1, "writtenMonotonicNs": 81234000000, "writtenUnixSeconds": 1718000000.5,
     "claims": [{"uid": "...", "device": "GPU-...", "samples": [[t_ns, used_ns, throttled_ns], ...]}]}

The writer is the root plugin, yet the reader still trusts nothing: a file over ``MAX_FILE_BYTES``, not
JSON, of another version, with a field out of range or in a shape not written here, or stamped more than
``MAX_AGE_SECONDS`` ago raises ``UsageFileError``, whose message says why (``status`` then measures
itself). Unknown keys are ignored, so a newer writer's additions do not break an older reader.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.errors import XPUShareError
from dra_driver.core.fileio import read_regular_file, write_atomically
from kubeletplugin.usage_history import Key, Point, Share, share

FORMAT_VERSION = 1
FILE_MODE = 0o600  # node state for ``xpushare status`` in the plugin's pod; no container reads it
MAX_AGE_SECONDS = 5.0  # the sampler writes every second; five missed writes and it is not current
MAX_ENTRIES = 4096  # (claim, device) pairs: 64 devices, each with a full board (64 claims)
MAX_SAMPLES = 8  # per pair: the newest and one per window are written (three)
MAX_NAME = 256  # a claim UID or a device UUID
MAX_FILE_BYTES = 4 << 20  # MAX_ENTRIES pairs of the longest names, with the three samples written each
_MAX_COUNTER = (1 << 63) - 1


class UsageFileError(XPUShareError):
    """The usage history cannot be used; the message says why (missing, stale, damaged)."""


@dataclass(frozen=True, slots=True)
class UsageFile:
    """A read, validated usage history."""

    written_ns: int  # CLOCK_MONOTONIC of the write
    written_unix: float
    samples: Mapping[Key, tuple[Point, ...]]

    def share(self, key: Key, window_s: float) -> Share | None:
        """The (claim, device)'s share over the last ``window_s`` before the write; None if not known."""
        points = self.samples.get(key)
        return None if points is None else share(points, window_s)

    def age_s(self, now_ns: int) -> float:
        return (now_ns - self.written_ns) / 1e9


def encode(samples: Mapping[Key, Sequence[Point]], written_ns: int, written_unix: float) -> bytes:
    """The file's bytes (pairs in a stable order, each with its points oldest first)."""
    claims = [{"uid": uid, "device": uuid, "samples": [[p.t_ns, p.used_ns, p.throttled_ns] for p in points]}
              for (uid, uuid), points in sorted(samples.items()) if points]
    body = {"version": FORMAT_VERSION, "writtenMonotonicNs": written_ns, "writtenUnixSeconds": written_unix,
            "claims": claims[:MAX_ENTRIES]}
    return json.dumps(body, separators=(",", ":")).encode()


def write_usage_file(path: Path, samples: Mapping[Key, Sequence[Point]], written_ns: int,
                     written_unix: float) -> None:
    """Replace the file atomically; raises ``OSError``. Not flushed to disk: a lost file is rewritten by
    the next pass, and a stale one is refused by its readers."""
    write_atomically(path, encode(samples, written_ns, written_unix), mode=FILE_MODE, durable=False)


def read_usage_file(path: Path, now_ns: int, now_unix: float,
                    max_age_s: float = MAX_AGE_SECONDS) -> UsageFile:
    """The history at ``path`` if it is sound and was written within ``max_age_s`` of now (both clocks);
    else ``UsageFileError``."""
    try:
        data = read_regular_file(path, MAX_FILE_BYTES)
    except FileNotFoundError as err:
        raise UsageFileError(f"no usage history at {path} (is the plugin running?)") from err
    except OSError as err:
        raise UsageFileError(f"usage history unreadable: {err}") from err
    found = decode(data)
    _check_fresh(found, now_ns, now_unix, max_age_s)
    return found


def _check_fresh(found: UsageFile, now_ns: int, now_unix: float, max_age_s: float) -> None:
    age, wall_age = found.age_s(now_ns), now_unix - found.written_unix
    if age < 0 or wall_age < -1.0:  # the wall clock may be stepped back a little by NTP
        raise UsageFileError("usage history stamped in the future (written before a reboot?)")
    if max(age, wall_age) > max_age_s:
        raise UsageFileError(f"usage history stale: written {max(age, wall_age):.0f} s ago "
                             f"(the plugin writes it every second; is it running?)")


def decode(data: bytes) -> UsageFile:
    """The file's content, every field checked (``UsageFileError`` naming the first bad one)."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise UsageFileError(f"usage history damaged: not JSON ({err})") from err
    top = _object(body, "the file")
    if top.get("version") != FORMAT_VERSION:
        raise UsageFileError(f"usage history of version {top.get('version')!r}, not {FORMAT_VERSION}")
    written_ns = _counter(top.get("writtenMonotonicNs"), "writtenMonotonicNs")
    unix = top.get("writtenUnixSeconds")
    if isinstance(unix, bool) or not isinstance(unix, int | float) or not math.isfinite(unix) or unix < 0:
        raise UsageFileError("usage history damaged: writtenUnixSeconds is not a time")
    claims = top.get("claims")
    if not isinstance(claims, list) or len(claims) > MAX_ENTRIES:
        raise UsageFileError(f"usage history damaged: claims is not a list of at most {MAX_ENTRIES}")
    samples: dict[Key, tuple[Point, ...]] = {}
    for index, entry in enumerate(claims):
        key, points = _entry(entry, f"claims[{index}]", written_ns)
        if key in samples:
            raise UsageFileError(f"usage history damaged: claims[{index}] repeats {key}")
        samples[key] = points
    return UsageFile(written_ns, float(unix), samples)


def _entry(entry: Any, where: str, written_ns: int) -> tuple[Key, tuple[Point, ...]]:
    fields = _object(entry, where)
    uid, uuid = _name(fields.get("uid"), f"{where}.uid"), _name(fields.get("device"), f"{where}.device")
    raw = fields.get("samples")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_SAMPLES:
        raise UsageFileError(f"usage history damaged: {where}.samples is not a list of 1..{MAX_SAMPLES}")
    points: list[Point] = []
    for n, sample in enumerate(raw):
        at = f"{where}.samples[{n}]"
        if not isinstance(sample, list) or len(sample) != 3:
            raise UsageFileError(f"usage history damaged: {at} is not [t_ns, used_ns, throttled_ns]")
        point = Point(*(_counter(value, at) for value in sample))
        if points and not (point.t_ns > points[-1].t_ns and point.used_ns >= points[-1].used_ns
                           and point.throttled_ns >= points[-1].throttled_ns):
            raise UsageFileError(f"usage history damaged: {at} goes back in time or in its counters")
        points.append(point)
    if points[-1].t_ns > written_ns:
        raise UsageFileError(f"usage history damaged: {where} has a sample after the file was written")
    return (uid, uuid), tuple(points)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageFileError(f"usage history damaged: {where} is not an object")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise UsageFileError(f"usage history damaged: {where} is not a name of 1..{MAX_NAME} characters")
    return value


def _counter(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNTER:
        raise UsageFileError(f"usage history damaged: {where} is not a count of nanoseconds")
    return value
