"""Rows of ``kubectl xpushare status`` from the plugin's metrics text: one read, or two for the rates."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from dra_driver.cli.kubectl import main as kubectl_main
from dra_driver.core.metrics import Family, Registry, Sample
from kubeletplugin import remote_status
from kubeletplugin.remote_status import claim_rows, measured_line, render

GIB = 1 << 30
LABELS = {"namespace": "team-a", "name": "train", "claim_uid": "uid-1", "device": "npu-0"}


def _metrics(compute_s: float, throttled_s: float,
             recent: dict[str, tuple[float, float]] | None = None) -> str:
    """The plugin's claim families; ``recent``: window -> (measured, throttled) percent from its history."""
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
    windows = (recent or {}).items()
    registry.register(lambda: [
        Family("xpushare_claim_compute_recent_percent", "h", "gauge",
               [Sample.of(m, **LABELS, window=w) for w, (m, _) in windows]),
        Family("xpushare_claim_throttled_recent_percent", "h", "gauge",
               [Sample.of(t, **LABELS, window=w) for w, (_, t) in windows])])
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


def test_one_read_from_a_plugin_without_history_has_no_rates() -> None:
    (row,) = claim_rows(_metrics(10.0, 1.0))
    assert (row.measured_percent, row.throttled_percent) == (None, None)
    assert render([row]).splitlines()[1].split()[6:8] == ["-", "-"]
    assert measured_line([row], 0.0) == "MEASURED, THROTTLED: not measured"


def test_one_read_shows_the_plugin_s_last_10_s_and_keeps_the_60_s() -> None:
    (row,) = claim_rows(_metrics(10.0, 1.0, {"10s": (24.5, 3.0), "60s": (20.0, 1.5)}))
    assert (row.measured_percent, row.throttled_percent) == (24.5, 3.0)
    assert row.recent_percent == {"10s": 24.5, "60s": 20.0}
    assert row.recent_throttled_percent == {"10s": 3.0, "60s": 1.5}
    assert measured_line([row], 0.0) == "MEASURED, THROTTLED: the last 10s, from the plugin's usage history"


def test_two_reads_win_over_the_history_when_asked() -> None:
    history = {"10s": (99.0, 99.0)}
    (row,) = claim_rows(_metrics(10.0, 1.0, history), _metrics(10.5, 1.25, history), window_s=2.0)
    assert (row.measured_percent, row.throttled_percent) == (pytest.approx(25.0), pytest.approx(12.5))


API = k8s.ApiClient()  # never called: the pod lookup and the reads are the test's


class _Node:
    """The API server's side of ``node_rows``: the plugin pod's metrics, one text per read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *texts: str) -> None:
        self.texts, self.reads, self.slept = list(texts), 0, 0.0
        monkeypatch.setattr(remote_status, "plugin_pod", lambda api, node, namespace: "plugin-abcde")
        monkeypatch.setattr(remote_status, "scrape", self._scrape)

    def _scrape(self, api: object, pod: str, namespace: str, port: int) -> str:
        self.reads += 1
        return self.texts.pop(0)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


def test_by_default_one_read_answers_from_a_plugin_with_history(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _Node(monkeypatch, _metrics(10.0, 1.0, {"10s": (30.0, 0.0)}))
    (row,), window = remote_status.node_rows(API, "n1", "xpushare-system", sleep=node.sleep)
    assert (node.reads, node.slept, window, row.measured_percent) == (1, 0.0, 0.0, 30.0)


def test_by_default_a_plugin_without_history_is_read_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _Node(monkeypatch, _metrics(10.0, 1.0), _metrics(10.25, 1.0))
    (row,), window = remote_status.node_rows(API, "n1", "xpushare-system", sleep=node.sleep)
    fallback = remote_status.FALLBACK_WINDOW_S
    assert (node.reads, node.slept, window) == (2, fallback, fallback)
    assert row.measured_percent == pytest.approx(25.0)


def test_the_kubectl_plugin_is_the_remote_status_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubectl_main([]) == 2
    assert "usage: kubectl xpushare status NODE" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        kubectl_main(["status", "--help"])
    assert done.value.code == 0
    assert "remote-status" in capsys.readouterr().out
