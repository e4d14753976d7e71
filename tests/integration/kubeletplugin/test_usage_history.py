"""``xpushare status`` over a live plugin's usage history: two tenants with the shim preloaded share the
simulated H100, asking 30 % and 70 %. ``status -o json --window 10`` measures each claim live over 10 s of
that; right after, plain ``status -o json`` shows the share over the same last 10 s at once (no window
waited for) from the plugin's history, close to the live figure. The plugin removes its history when it
stops."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from dra_driver.cli import main
from dra_driver.simulation import workloads
from dra_driver.simulation.demo import claim_environment
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from shim import library_path
from tests.integration.kubeletplugin.conftest import Allocate, ref

pytestmark = pytest.mark.slow

RUN_S = 13.0  # the tenants' run: 1 s to settle, the 10 s window, a margin
SETTLE_S = 1.0  # after the tenants' start, before the live window opens


def _status(plugin: Plugin, *flags: str) -> tuple[dict[str, Any], float]:
    """``xpushare status -o json`` on the plugin's node, and how long it took."""
    paths = plugin.settings.paths
    out = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out):
        code = main(["status", "-o", "json", "--state-dir", str(paths.state_dir),
                     "--run-dir", str(paths.run_dir), *flags])
    assert code == 0
    return json.loads(out.getvalue()), time.monotonic() - started


def _rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for device in body["devices"] for row in device["claims"]}


def test_status_shows_the_last_10_s_at_once_close_to_a_live_window(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, tmp_path: Path
) -> None:
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no claim ledgers")
    try:
        workloads.require_simulated_devices()
    except workloads.WorkloadUnavailable as err:
        pytest.skip(str(err))
    claims = [ref(allocate(name, device_class="gpu.xpushare.io", memory="8Gi", cores=cores))
              for name, cores in (("train", "30"), ("serve", "70"))]
    response = kubelet.prepare(claims)
    assert [response.claims[c.uid].error for c in claims] == ["", ""]
    envs = [claim_environment(plugin, c, tmp_path / c.name) for c in claims]
    epoch = time.monotonic_ns() + workloads.START_DELAY_NS
    seen: dict[str, tuple[dict[str, Any], float]] = {}

    def meanwhile() -> None:
        time.sleep(max(0.0, (epoch - time.monotonic_ns()) / 1e9 + SETTLE_S))
        seen["window"] = _status(plugin, "--window", "10")
        seen["history"] = _status(plugin)  # its last 10 s: the window just measured

    commands = [(workloads.tenant_argv("cuda", epoch, RUN_S), env) for env in envs]
    results = workloads.run_together(commands, timeout_s=RUN_S + 60, during=meanwhile)
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]

    history, took = seen["history"]
    assert took < 1.5  # read from the plugin's history: no window waited for
    assert history["measured"]["source"] == "history"
    assert 0 <= history["measured"]["historyAgeSeconds"] < 2.0  # the plugin writes it every second
    window, took = seen["window"]
    assert took >= 10.0
    assert window["measured"]["source"] == "window"
    shares = {}
    for name in ("train", "serve"):
        recent, live = _rows(history)[name], _rows(window)[name]
        assert recent["last10s"]["seconds"] == pytest.approx(10.0, abs=0.6)
        assert recent["measuredPercent"] == recent["last10s"]["measuredPercent"] > 0
        # The spans differ by up to a second at either end (the plugin samples once a second).
        for figure in ("measuredPercent", "throttledPercent"):
            assert recent["last10s"][figure] == pytest.approx(live["window"][figure], abs=8), (recent, live)
        assert recent["last60s"]["seconds"] >= 10.0  # under a minute here: what was seen, with its span
        shares[name] = recent["measuredPercent"]
    assert shares["train"] < shares["serve"]  # each its own claim's (the shares themselves: tests/.../shim)
    plugin.stop()
    assert not plugin.settings.paths.usage_history.exists()
