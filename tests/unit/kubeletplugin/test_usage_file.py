"""The published usage history: what the plugin writes reads back the same, and ``xpushare status`` refuses
a file that is missing, stale, oversized, truncated or damaged in any field, saying why."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubeletplugin.usage_file import (
    FILE_MODE,
    MAX_AGE_SECONDS,
    MAX_FILE_BYTES,
    MAX_SAMPLES,
    UsageFileError,
    decode,
    encode,
    read_usage_file,
    write_usage_file,
)
from kubeletplugin.usage_history import NS_PER_S, Point, Share

NOW_NS = 500 * NS_PER_S
NOW_UNIX = 1_718_000_000.0
KEY = ("6f0c2a1e-claim", "GPU-8d4f")
SAMPLES = {
    KEY: (Point(440 * NS_PER_S, 0, 0), Point(490 * NS_PER_S, 10 * NS_PER_S, 0),
          Point(500 * NS_PER_S, 17 * NS_PER_S, 2 * NS_PER_S)),
    ("other-claim", "GPU-8d4f"): (Point(500 * NS_PER_S, 3, 0),),
}


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(encode(SAMPLES, NOW_NS, NOW_UNIX))
    body.update(changes)
    return body


def _with_sample(sample: Any) -> dict[str, Any]:
    body = _body()
    body["claims"][0]["samples"][1] = sample
    return body


def test_what_the_plugin_writes_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    write_usage_file(path, SAMPLES, NOW_NS, NOW_UNIX)
    found = read_usage_file(path, NOW_NS + NS_PER_S, NOW_UNIX + 1.0)
    assert dict(found.samples) == SAMPLES
    assert (found.written_ns, found.written_unix, found.age_s(NOW_NS + NS_PER_S)) == (NOW_NS, NOW_UNIX, 1.0)
    assert found.share(KEY, 10) == Share(10.0, 70.0, 20.0)
    assert found.share(KEY, 60) == Share(60.0, 28.3, 3.3)
    assert found.share(("gone", "GPU-8d4f"), 10) is None
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["usage.json"]  # no temporary file left


def test_keys_it_does_not_know_are_ignored() -> None:
    """A newer plugin may add fields; this reader keeps working."""
    body = _body(newField={"x": 1})
    body["claims"][0]["extra"] = [1, 2]
    assert dict(decode(json.dumps(body).encode()).samples) == SAMPLES


def test_a_missing_file_says_the_plugin_may_not_be_running(tmp_path: Path) -> None:
    with pytest.raises(UsageFileError, match=r"no usage history at .*usage.json \(is the plugin running\?\)"):
        read_usage_file(tmp_path / "usage.json", NOW_NS, NOW_UNIX)


@pytest.mark.parametrize(
    ("now_ns", "now_unix", "reason"),
    [
        (NOW_NS + int((MAX_AGE_SECONDS + 1) * NS_PER_S), NOW_UNIX + MAX_AGE_SECONDS + 1,
         "stale: written 6 s ago"),
        (NOW_NS + NS_PER_S, NOW_UNIX + 3600, "stale: written 3600 s ago"),  # left from before a reboot
        (NOW_NS - NS_PER_S, NOW_UNIX, "stamped in the future"),  # another boot's monotonic clock
        (NOW_NS, NOW_UNIX - 30, "stamped in the future"),
    ],
    ids=["plugin stopped writing", "wall clock old", "monotonic ahead", "wall clock ahead"],
)
def test_a_stale_file_is_refused(tmp_path: Path, now_ns: int, now_unix: float, reason: str) -> None:
    path = tmp_path / "usage.json"
    write_usage_file(path, SAMPLES, NOW_NS, NOW_UNIX)
    with pytest.raises(UsageFileError, match=reason):
        read_usage_file(path, now_ns, now_unix)


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    path.write_bytes(encode(SAMPLES, NOW_NS, NOW_UNIX)[:-1] + b" " * MAX_FILE_BYTES + b"}")
    with pytest.raises(UsageFileError, match=r"unreadable: .*larger than the limit"):
        read_usage_file(path, NOW_NS, NOW_UNIX)


@pytest.mark.parametrize(
    "make", [lambda p: p.symlink_to(p.parent / "elsewhere"), os.mkfifo, lambda p: p.mkdir()],
    ids=["symlink", "fifo", "directory"],
)
def test_a_file_that_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path: Path, make: Callable[[Path], None]
) -> None:
    (tmp_path / "elsewhere").write_bytes(encode(SAMPLES, NOW_NS, NOW_UNIX))
    path = tmp_path / "usage.json"
    make(path)
    with pytest.raises(UsageFileError, match="unreadable"):
        read_usage_file(path, NOW_NS, NOW_UNIX)


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    data = encode(SAMPLES, NOW_NS, NOW_UNIX)
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(UsageFileError, match="damaged: not JSON"):
            read_usage_file(path, NOW_NS, NOW_UNIX)


BAD_BODIES: dict[str, tuple[Any, str]] = {
    "a list": ([], "the file is not an object"),
    "another version": (_body(version=2), "version 2, not 1"),
    "no version": ({k: v for k, v in _body().items() if k != "version"}, "version None"),
    "stamp a string": (_body(writtenMonotonicNs="500"), "writtenMonotonicNs is not a count"),
    "stamp a bool": (_body(writtenMonotonicNs=True), "writtenMonotonicNs is not a count"),
    "stamp negative": (_body(writtenMonotonicNs=-1), "writtenMonotonicNs is not a count"),
    "stamp past 64 bits": (_body(writtenMonotonicNs=1 << 64), "writtenMonotonicNs is not a count"),
    "wall time infinite": (_body(writtenUnixSeconds=float("inf")), "writtenUnixSeconds is not a time"),
    "claims an object": (_body(claims={}), "claims is not a list"),
    "entry a string": (_body(claims=["x"]), r"claims\[0\] is not an object"),
    "uid empty": (_body(claims=[{"uid": "", "device": "d", "samples": [[1, 1, 1]]}]), r"claims\[0\].uid"),
    "uid too long": (_body(claims=[{"uid": "u" * 257, "device": "d", "samples": [[1, 1, 1]]}]), r"\.uid"),
    "device missing": (_body(claims=[{"uid": "u", "samples": [[1, 1, 1]]}]), r"claims\[0\].device"),
    "no samples": (_body(claims=[{"uid": "u", "device": "d", "samples": []}]), "samples is not a list"),
    "too many samples": (
        _body(claims=[{"uid": "u", "device": "d", "samples": [[n, n, n] for n in range(MAX_SAMPLES + 1)]}]),
        "samples is not a list of 1..8",
    ),
    "sample of two": (_with_sample([1, 2]), r"samples\[1\] is not \[t_ns, used_ns, throttled_ns\]"),
    "sample a float": (_with_sample([490e9, 10e9, 0]), r"samples\[1\] is not a count"),
    "sample negative": (_with_sample([490 * NS_PER_S, -1, 0]), r"samples\[1\] is not a count"),
    "time going back": (_with_sample([430 * NS_PER_S, 1, 0]), "goes back in time or in its counters"),
    "counter going down": (_with_sample([490 * NS_PER_S, 18 * NS_PER_S, 0]), "goes back"),
    "sample after the stamp": (_body(writtenMonotonicNs=499 * NS_PER_S), "sample after the file was written"),
    "a pair twice": (_body(claims=_body()["claims"] * 2), r"claims\[2\] repeats"),
}


@pytest.mark.parametrize(("body", "reason"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_damaged_field_is_refused_and_named(body: Any, reason: str) -> None:
    with pytest.raises(UsageFileError, match=reason):
        decode(json.dumps(body).encode())


@pytest.mark.parametrize(
    "data", [b"[" * 100_000 + b"]" * 100_000, b'{"version": 1, "writtenMonotonicNs": ' + b"9" * 5000 + b"}",
             b"\xff\xfe garbage"],
    ids=["deep nesting", "huge number", "not utf-8"],
)
def test_hostile_bytes_are_refused_not_raised(data: bytes) -> None:
    with pytest.raises(UsageFileError, match="usage history"):
        decode(data)
