"""Rows of ``kubectl xpushare status`` from the plugin's metrics text: one read, or two for the rates."""

from __future__ import annotations

import pytest

from dra_driver.cli.kubectl import main as kubectl_main
from dra_driver.core.metrics import Family, Registry, Sample
from kubeletplugin.remote_status import claim_rows, render

GIB = 1 << 30
LABELS = {"namespace": "team-a", "name": "train", "claim_uid": "uid-1", "device": "npu-0"}


def _metrics(compute_s: float, throttled_s: float) -> str:
    values = {"xpushare_claim_memory_used_bytes": ("gauge", 3 * GIB),
              "xpushare_claim_memory_limit_bytes": ("gauge", 16 * GIB),
              "xpushare_claim_memory_peak_bytes": ("gauge", 5 * GIB),
              "xpushare_claim_core_share_percent": ("gauge", 25),
              "xpushare_claim_processes": ("gauge", 2),
              "xpushare_claim_compute_seconds_total": ("counter", compute_s),
              "xpushare_claim_throttled_seconds_total": ("counter", throttled_s),
              "xpushare_claim_memory_refusals_total": ("counter", 7)}
    registry = Registry()
    registry.register(lambda: [Family(name, name, kind, [Sample.of(value, **LABELS)])
                               for name, (kind, value) in values.items()])
    registry.gauge("xpushare_prepared_claims", "other families are left out").set(1)
    return registry.render()


def test_two_reads_give_the_share_measured_and_throttled_over_the_window() -> None:
    (row,) = claim_rows(_metrics(10.0, 1.0), _metrics(10.5, 1.25), window_s=2.0)
    assert (row.namespace, row.name, row.uid, row.device) == ("team-a", "train", "uid-1", "npu-0")
    assert (row.used_bytes, row.limit_bytes, row.peak_bytes) == (3 * GIB, 16 * GIB, 5 * GIB)
    assert (row.share_percent, row.processes, row.refused) == (25, 2, 7)
    assert row.measured_percent == pytest.approx(25.0)
    assert row.throttled_percent == pytest.approx(12.5)
    cells = render([row]).splitlines()[1].split()
    assert cells == ["team-a/train", "npu-0", "3.0Gi", "16.0Gi", "5.0Gi", "25%", "25.0%", "12.5%", "2", "7"]


def test_one_read_has_no_rates() -> None:
    (row,) = claim_rows(_metrics(10.0, 1.0))
    assert (row.measured_percent, row.throttled_percent) == (None, None)
    assert render([row]).splitlines()[1].split()[6:8] == ["-", "-"]


def test_the_kubectl_plugin_is_the_remote_status_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubectl_main([]) == 2
    assert "usage: kubectl xpushare status NODE" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        kubectl_main(["status", "--help"])
    assert done.value.code == 0
    assert "remote-status" in capsys.readouterr().out
