"""The limits file writer and reader (the C parser's side is exercised by the integration tests)."""

from __future__ import annotations

import stat
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from api.errors import ConfigError
from dra_driver.core.devices import Scheduling
from shim.limits import DeviceLimits, parse_limits, read_limits_file, render_limits, write_limits_file

GIB = 1 << 30
DEVICE = DeviceLimits(uuid="GPU-1234", index=0, memory_limit_bytes=16 * GIB, core_percent=25, priority="high",
                      policy="fixed", ledger_path="/var/run/xpushare/ledger/GPU-1234")


@dataclass(frozen=True)
class PluginDevice:
    """The shape of the plugin's own dataclass: the writer takes any object with these fields."""

    uuid: str
    index: int
    memory_limit_bytes: int
    core_percent: int
    priority: str
    policy: str
    ledger_path: str


def test_render_is_the_documented_line_format() -> None:
    text = render_limits("uid-1", [DEVICE])
    assert text.splitlines()[1:] == [
        "version 1",
        "claim uid-1",
        "device index=0 uuid=GPU-1234 memory=17179869184 cores=25 priority=high policy=fixed "
        "scheduling=serial ledger=/var/run/xpushare/ledger/GPU-1234",
    ]


def test_a_time_sliced_device_round_trips_and_an_unknown_scheduling_is_refused() -> None:
    sliced = replace(DEVICE, scheduling=Scheduling.TIME_SLICED)
    text = render_limits("uid-1", [sliced])
    assert " scheduling=time-sliced " in text
    assert parse_limits(text).devices == (sliced,)
    older = text.replace(" scheduling=time-sliced", "")  # a file written before the key existed
    assert parse_limits(older).devices[0].scheduling is Scheduling.SERIAL
    with pytest.raises(ConfigError, match="scheduling: 'round-robin' must be one of serial, time-sliced"):
        parse_limits(text.replace("time-sliced", "round-robin"))


def test_write_then_read_round_trips_with_mode_0444(tmp_path: Path) -> None:
    second = replace(DEVICE, uuid="GPU-5678", index=1, memory_limit_bytes=0, priority="low", ledger_path="")
    path = write_limits_file(tmp_path / "limits", "uid-1", [DEVICE, second])
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert read_limits_file(path).devices == (DEVICE, second)
    assert [p.name for p in tmp_path.iterdir()] == ["limits"]  # no temporary file left behind


def test_the_plugins_dataclass_is_accepted(tmp_path: Path) -> None:
    device = PluginDevice("GPU-1", 2, GIB, 50, "normal", "guaranteed", "/l/GPU-1")
    path = write_limits_file(tmp_path / "limits", "uid-2", [device])
    parsed = read_limits_file(path)
    assert parsed.claim_uid == "uid-2"
    assert parsed.devices[0] == DeviceLimits("GPU-1", 2, GIB, 50, "normal", "guaranteed", "/l/GPU-1")


def test_rewriting_replaces_the_read_only_file(tmp_path: Path) -> None:
    path = write_limits_file(tmp_path / "limits", "uid-1", [DEVICE])
    write_limits_file(path, "uid-1", [replace(DEVICE, memory_limit_bytes=GIB)])
    assert read_limits_file(path).devices[0].memory_limit_bytes == GIB


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"index": 64}, "index"),
        ({"index": -1}, "index"),
        ({"uuid": "GPU 1"}, "uuid"),
        ({"uuid": ""}, "uuid"),
        ({"uuid": "x" * 64}, "uuid"),
        ({"memory_limit_bytes": -1}, "memory_limit_bytes"),
        ({"core_percent": 101}, "core_percent"),
        ({"priority": "urgent"}, "priority"),
        ({"policy": "burst"}, "policy"),
        ({"ledger_path": "relative/path"}, "ledger_path"),
        ({"ledger_path": "/with space"}, "ledger_path"),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        render_limits("uid-1", [replace(DEVICE, **change)])  # type: ignore[arg-type]


def test_duplicate_indexes_and_bad_claims_are_refused() -> None:
    with pytest.raises(ConfigError, match="index"):
        render_limits("uid-1", [DEVICE, replace(DEVICE, uuid="GPU-2")])
    with pytest.raises(ConfigError, match="claim_uid"):
        render_limits("has space", [DEVICE])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("claim a\n", "version"),
        ("version 2\nclaim a\n", "version"),
        ("version 1\n", "claim"),
        ("version 1\nclaim a\ndevice uuid=x\n", "index"),
        ("version 1\nclaim a\ndevice index=0 cores=150\n", "cores"),
        ("version 1\nclaim a\ndevice index=0 garbage\n", "key=value"),
    ],
)
def test_parse_rejects_what_the_shim_would_reject(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_limits(text)


def test_parse_ignores_comments_and_unknown_keys() -> None:
    parsed = parse_limits("# x\nversion 1\nclaim a\nfuture thing\ndevice index=3 memory=5 newkey=1\n")
    assert parsed.devices == (DeviceLimits(uuid="", index=3, memory_limit_bytes=5),)


def test_the_allocation_ceiling_round_trips_and_may_not_be_below_the_limit(tmp_path: Path) -> None:
    device = replace(DEVICE, memory_max_bytes=32 * GIB, core_max_percent=50)
    text = render_limits("uid-1", [device])
    assert text.splitlines()[-1].endswith("memory-max=34359738368 cores-max=50")
    assert parse_limits(text).devices == (device,)
    assert parse_limits(render_limits("uid-1", [DEVICE])).devices[0].core_max_percent is None
    with pytest.raises(ConfigError, match=r"core_max_percent: 20 must be an integer in \[25, 100\]"):
        render_limits("uid-1", [replace(DEVICE, core_max_percent=20)])
