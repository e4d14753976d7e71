"""``xpushare status`` over the plugin's usage history: the last 10 s and 60 s at once when the history is
current, the two-read window (with a note saying why) when it is missing, stale or damaged, and the live
window beside the history when ``--window`` asks for it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dra_driver.cli import main
from kubeletplugin.state import ClaimKey, ClaimPreparer
from kubeletplugin.status import as_json, measurement_line, refresh, render_table
from kubeletplugin.usage_file import write_usage_file
from kubeletplugin.usage_history import NS_PER_S, Point, Share
from kubeletplugin.usage_sampler import UsageSampler
from shim import library_path
from shim.ledger import ClaimLedger
from tests.support.plugin_claims import claim, shared
from tests.support.plugin_preparer import MemoryReader, node_preparer
from tests.support.usage_clocks import Clocks, Sleeps

UUID = "NPU-UUID-0"


@pytest.fixture
def node(tmp_path: Path) -> tuple[ClaimPreparer, ClaimKey, Clocks, Sleeps]:
    """A claim at 30 % for the last 60 s (throttled 5 %), sampled once a second by the plugin's sampler."""
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no claim ledgers")
    reader = MemoryReader()
    preparer = node_preparer(tmp_path, reader)
    key = reader.add(claim("train", results=[shared("npu-0", memory="4Gi", cores="40")]))
    preparer.prepare(key)
    clocks = Clocks()
    sampler = UsageSampler(preparer, preparer.paths.usage_history, clock_ns=clocks.mono, wall=clocks.wall)
    with ClaimLedger.open(preparer.paths.claim_ledger(UUID, key.uid), key.uid, UUID) as ledger:
        for second in range(61):
            if second:
                clocks.ns += NS_PER_S
                ledger.head_pointer().claim.used_ns += (3 if second > 50 else 1) * NS_PER_S // 10
                ledger.head_pointer().claim.throttled_ns += NS_PER_S // 20
            sampler.sample()
    return preparer, key, clocks, Sleeps(clocks)


def test_the_last_10_s_show_at_once_from_the_plugins_history(
    node: tuple[ClaimPreparer, ClaimKey, Clocks, Sleeps],
) -> None:
    preparer, _, clocks, sleeps = node
    clocks.ns += NS_PER_S // 2  # status runs half a second after the plugin's last pass
    devices, measurement = refresh(preparer.paths, None, sleeps, clocks.mono, clocks.wall)
    assert sleeps.waits == []  # nothing waited for
    ((row,),) = [d.claims for d in devices]
    assert (row.core_percent, row.measured_percent, row.throttled_percent) == (40, 30.0, 5.0)
    assert (row.last_10s, row.last_60s, row.window) == (Share(10.0, 30.0, 5.0), Share(60.0, 13.3, 5.0), None)
    assert (measurement.source, measurement.history_age_s, measurement.note) == ("history", 0.5, None)
    assert measurement_line(measurement) == (
        "MEASURED, THROTTLED: the last 10 s, from the plugin's usage history (0.5 s old)")
    assert "30.0%" in render_table(devices)
    body = json.loads(json.dumps(as_json(devices, measurement)))
    assert body["measured"] == {"source": "history", "historyFile": str(preparer.paths.usage_history),
                                "historyAgeSeconds": 0.5, "historyWindowsSeconds": [10, 60], "note": None}
    (claim_row,) = body["devices"][0]["claims"]
    assert claim_row["last10s"] == {"seconds": 10.0, "measuredPercent": 30.0, "throttledPercent": 5.0}
    assert claim_row["last60s"] == {"seconds": 60.0, "measuredPercent": 13.3, "throttledPercent": 5.0}
    assert (claim_row["window"], claim_row["measuredPercent"]) == (None, 30.0)


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif how == "missing":
        path.unlink()
    elif how == "oversized":
        path.write_bytes(b" " * (5 << 20))


@pytest.mark.parametrize(
    ("how", "note"),
    [("stale", "stale: written 30 s ago"), ("truncated", "damaged: not JSON"),
     ("missing", "no usage history at"), ("oversized", "larger than the limit")],
)
def test_an_unusable_history_falls_back_to_two_reads_and_says_why(
    node: tuple[ClaimPreparer, ClaimKey, Clocks, Sleeps], how: str, note: str
) -> None:
    preparer, _, clocks, sleeps = node
    clocks.ns += 30 * NS_PER_S if how == "stale" else 0
    _damage(preparer.paths.usage_history, how)
    devices, measurement = refresh(preparer.paths, None, sleeps, clocks.mono, clocks.wall)
    assert sleeps.waits == [2.0]  # measured over its own window instead
    ((row,),) = [d.claims for d in devices]
    assert (row.last_10s, row.last_60s) == (None, None)
    assert row.window == Share(2.0, 0.0, 0.0)  # nothing ran meanwhile
    assert row.measured_percent == 0.0
    assert measurement.source == "window"
    assert measurement.note is not None
    assert note in measurement.note
    assert measurement_line(measurement).startswith("MEASURED, THROTTLED: over 2 s measured now; ")


def test_window_measures_live_beside_the_history(
    node: tuple[ClaimPreparer, ClaimKey, Clocks, Sleeps],
) -> None:
    preparer, key, clocks, sleeps = node
    ledger_path = preparer.paths.claim_ledger(UUID, key.uid)

    def busy_window(seconds: float) -> None:  # the tenant runs at 80 % while status waits
        sleeps(seconds)
        with ClaimLedger.open(ledger_path, key.uid, UUID) as ledger:
            ledger.head_pointer().claim.used_ns += int(0.8 * seconds * NS_PER_S)

    devices, measurement = refresh(preparer.paths, 1.0, busy_window, clocks.mono, clocks.wall)
    ((row,),) = [d.claims for d in devices]
    assert (row.window, row.measured_percent) == (Share(1.0, 80.0, 0.0), 80.0)
    assert row.last_10s == Share(10.0, 30.0, 5.0)  # the history read before the window, still shown in JSON
    assert measurement.source == "window"


def test_window_0_shows_the_history_without_waiting_and_dashes_without_one(
    node: tuple[ClaimPreparer, ClaimKey, Clocks, Sleeps],
) -> None:
    preparer, _, clocks, sleeps = node
    devices, measurement = refresh(preparer.paths, 0.0, sleeps, clocks.mono, clocks.wall)
    assert (devices[0].claims[0].measured_percent, measurement.source, sleeps.waits) == (30.0, "history", [])
    preparer.paths.usage_history.unlink()
    devices, measurement = refresh(preparer.paths, 0.0, sleeps, clocks.mono, clocks.wall)
    assert (devices[0].claims[0].measured_percent, measurement.source, sleeps.waits) == (None, "none", [])
    assert measurement_line(measurement).startswith("MEASURED, THROTTLED: not measured; no usage history at ")


def test_the_command_reads_the_history_with_the_real_clocks(
    node: tuple[ClaimPreparer, ClaimKey, Clocks, Sleeps], capsys: pytest.CaptureFixture[str]
) -> None:
    preparer, key, _, _ = node
    now = time.monotonic_ns()
    points = (Point(now - 10 * NS_PER_S, 0, 0), Point(now, 4 * NS_PER_S, NS_PER_S))
    write_usage_file(preparer.paths.usage_history, {(key.uid, UUID): points}, now, time.time())
    started = time.monotonic()
    paths = preparer.paths
    where = ["--state-dir", str(paths.state_dir), "--run-dir", str(paths.run_dir)]
    assert main(["status", "-o", "json", *where]) == 0
    assert time.monotonic() - started < 1.5  # no two-read window was waited for
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert (body["measured"]["source"], body["windowSeconds"]) == ("history", 0.0)
    (row,) = body["devices"][0]["claims"]
    assert (row["measuredPercent"], row["throttledPercent"], row["last10s"]["seconds"]) == (40.0, 10.0, 10.0)
    assert main(["status", *where]) == 0
    table = capsys.readouterr().out
    assert table.startswith("MEASURED, THROTTLED: the last 10 s, from the plugin's usage history (")
    assert " 40.0% " in table
