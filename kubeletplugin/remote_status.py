"""A node's claims seen from a workstation: the node plugin's metrics read through the API server's proxy
(``kubectl xpushare status NODE``), so no shell on the node is needed.

The plugin pod on the node is found by its label and ``spec.nodeName``; its ``/metrics`` is read through
``pods/proxy`` (what ``kubectl get --raw`` would do) and parsed with the Prometheus client library's
parser. Each claim's row comes from its per-device families: memory used, limit and peak, the share it
asked for and the device time it was charged, time throttled, processes and allocations refused at the
limit: the columns ``xpushare status`` shows on the node. The device time comes, as there, from the
plugin's usage history (the last 10 s and 60 s, in one read); from two reads ``window`` seconds apart
when asked, or when the plugin publishes no history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from api.errors import XPUShareError

PLUGIN_SELECTOR = "app.kubernetes.io/component=kubelet-plugin"
DEFAULT_PORT = 9464
FALLBACK_WINDOW_S = 1.0  # the two reads' distance when the plugin publishes no usage history
SHOWN_WINDOW = "10s"  # the history window MEASURED shows, as ``xpushare status`` on the node
_RECENT_COMPUTE = "xpushare_claim_compute_recent_percent"
_RECENT_THROTTLED = "xpushare_claim_throttled_recent_percent"
_KEY = ("namespace", "name", "claim_uid", "device")


class RemoteStatusError(XPUShareError):
    """The node's plugin or its metrics could not be reached."""


@dataclass(frozen=True, slots=True)
class ClaimRow:
    namespace: str
    name: str
    uid: str
    device: str
    used_bytes: float
    limit_bytes: float
    peak_bytes: float
    share_percent: float
    measured_percent: float | None  # device time charged: over the window, else the last 10 s (None: unknown)
    throttled_percent: float | None
    processes: float
    refused: float
    recent_percent: dict[str, float] = field(default_factory=dict)  # "10s", "60s": from the plugin's history
    recent_throttled_percent: dict[str, float] = field(default_factory=dict)


def plugin_pod(api: k8s.ApiClient, node: str, namespace: str, selector: str = PLUGIN_SELECTOR) -> str:
    pods = k8s.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector,
                                                  field_selector=f"spec.nodeName={node}").items
    if not pods:
        raise RemoteStatusError(f"no pod labelled {selector} on node {node} in namespace {namespace}: is the "
                                "XPUShare chart installed there (--namespace)?")
    meta = pods[0].metadata
    assert meta is not None  # the API server always sends it
    return str(meta.name)


def scrape(api: k8s.ApiClient, pod: str, namespace: str, port: int = DEFAULT_PORT) -> str:
    """The pod's ``/metrics`` through the API server's proxy."""
    try:
        text = k8s.CoreV1Api(api).connect_get_namespaced_pod_proxy_with_path(f"{pod}:{port}", namespace,
                                                                              "metrics")
    except k8s.ApiException as err:
        raise RemoteStatusError(f"read /metrics of pod {namespace}/{pod} port {port} through the API "
                                f"server: {err.status} {err.reason}") from err
    return str(text)


def _samples(text: str) -> dict[tuple[str, ...], dict[str, float]]:
    """Per claim and device (its labels): metric name -> value (``name:window`` for the windowed ones)."""
    found: dict[tuple[str, ...], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("xpushare_claim_") or not all(k in sample.labels for k in _KEY):
                continue
            key = tuple(sample.labels[k] for k in _KEY)
            window = sample.labels.get("window")
            name = sample.name if window is None else f"{sample.name}:{window}"
            found.setdefault(key, {})[name] = float(sample.value)
    return found


def _recent(values: dict[str, float], metric: str) -> dict[str, float]:
    prefix = f"{metric}:"
    return {name[len(prefix):]: value for name, value in values.items() if name.startswith(prefix)}


def _rate(metric: str, now: dict[str, float], before: dict[str, float] | None,
          window_s: float) -> float | None:
    """A counter of seconds over the window, as a percent of the window; None without an earlier read."""
    if before is None or metric not in now or metric not in before:
        return None
    return 100.0 * max(0.0, now[metric] - before[metric]) / window_s


def claim_rows(first: str, second: str | None = None, window_s: float = 0.0) -> list[ClaimRow]:
    """Rows from one scrape (MEASURED: the plugin's last 10 s), or two ``window_s`` apart (over them)."""
    now = _samples(second if second is not None else first)
    before = _samples(first) if second is not None and window_s > 0 else {}
    rows = []
    for key in sorted(now):
        values, old = now[key], before.get(key)
        recent, throttled = _recent(values, _RECENT_COMPUTE), _recent(values, _RECENT_THROTTLED)
        live = old is not None
        namespace, name, uid, device = key
        rows.append(ClaimRow(
            namespace, name, uid, device,
            used_bytes=values.get("xpushare_claim_memory_used_bytes", 0.0),
            limit_bytes=values.get("xpushare_claim_memory_limit_bytes", 0.0),
            peak_bytes=values.get("xpushare_claim_memory_peak_bytes", 0.0),
            share_percent=values.get("xpushare_claim_core_share_percent", 0.0),
            measured_percent=_rate("xpushare_claim_compute_seconds_total", values, old, window_s) if live
            else recent.get(SHOWN_WINDOW),
            throttled_percent=_rate("xpushare_claim_throttled_seconds_total", values, old, window_s) if live
            else throttled.get(SHOWN_WINDOW),
            processes=values.get("xpushare_claim_processes", 0.0),
            refused=values.get("xpushare_claim_memory_refusals_total", 0.0),
            recent_percent=recent,
            recent_throttled_percent=throttled,
        ))
    return rows


def node_rows(api: k8s.ApiClient, node: str, namespace: str, *, port: int = DEFAULT_PORT,
              window_s: float | None = None, sleep: Callable[[float], None] = time.sleep
              ) -> tuple[list[ClaimRow], float]:
    """The node's claims and the seconds MEASURED spans now (0: the plugin's history, or not measured).

    ``window_s`` None: one read, whose MEASURED is the plugin's last 10 s; from a plugin that publishes
    no history (an older one), two reads ``FALLBACK_WINDOW_S`` apart. A number: two reads that far apart
    (0: one read)."""
    pod = plugin_pod(api, node, namespace)
    first = scrape(api, pod, namespace, port)
    if window_s is None:
        rows = claim_rows(first)
        if all(r.recent_percent for r in rows):
            return rows, 0.0
        window_s = FALLBACK_WINDOW_S
    if window_s <= 0:
        return claim_rows(first), 0.0
    sleep(window_s)
    return claim_rows(first, scrape(api, pod, namespace, port), window_s), window_s


def measured_line(rows: Iterable[ClaimRow], window_s: float) -> str:
    """What MEASURED and THROTTLED mean in this table."""
    if window_s > 0:
        return f"MEASURED, THROTTLED: over {window_s:g} s measured now"
    if any(r.recent_percent for r in rows):
        return f"MEASURED, THROTTLED: the last {SHOWN_WINDOW}, from the plugin's usage history"
    return "MEASURED, THROTTLED: not measured"


def _gib(value: float) -> str:
    return f"{value / (1 << 30):.1f}Gi"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def render(rows: Iterable[ClaimRow]) -> str:
    header = ("CLAIM", "DEVICE", "USED", "LIMIT", "PEAK", "SHARE", "MEASURED", "THROTTLED", "PROCS",
              "REFUSED")
    lines = [header] + [(f"{r.namespace}/{r.name}", r.device, _gib(r.used_bytes), _gib(r.limit_bytes),
                         _gib(r.peak_bytes), f"{r.share_percent:.0f}%", _percent(r.measured_percent),
                         _percent(r.throttled_percent), f"{r.processes:.0f}", f"{r.refused:.0f}")
                        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)
