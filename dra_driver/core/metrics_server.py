"""The metrics endpoint of every process: Prometheus text at ``/metrics``, liveness at ``/healthz``,
readiness at ``/readyz``, served by the standard library in a daemon thread.

Plain HTTP on purpose: what it serves is counts and sizes, the same a node exporter shows, and
Prometheus scrapes pods directly. Each request is rendered on its own thread from the registry, so a
slow scraper never delays another, and nothing is computed between scrapes. The same deadlines as the
webhook's (``httpserve.Limits``) cut off an idle or trickling client, so none can pin a thread.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from api.errors import ConfigError, XPUShareError
from dra_driver.core.httpserve import BackgroundServer, DaemonHTTPServer, Endpoint, Limits, QuietHandler
from dra_driver.core.metrics import Registry

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - Prometheus scrapes the pod's address
Address = tuple[str, int]


class MetricsServerError(XPUShareError):
    """The metrics endpoint could not listen (address taken or not ours)."""


def parse_address(text: str, flag: str = "--metrics-address") -> Address | None:
    """``HOST:PORT``, ``:PORT`` (every interface) or ``[V6]:PORT``; empty or ``0`` turns it off;
    port 0 picks a free one."""
    text = text.strip()
    if text in ("", "0"):
        return None
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or "[" in host or "]" in host:
        raise ConfigError(f"{flag}: {text!r} is not HOST:PORT, :PORT or [IPV6]:PORT (empty or 0: off)")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{flag}: port {port} is outside 0..65535")
    return (host or ANY_ADDRESS, port)


class _Server(DaemonHTTPServer):
    registry: Registry
    ready: Callable[[], bool]


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(QuietHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server dispatches by this name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self.send_body(200, self.server.registry.render().encode(), CONTENT_TYPE)
        elif path == "/healthz":
            self.send_body(200, b"ok\n")
        elif path == "/readyz":
            ready = self.server.ready()
            self.send_body(200 if ready else 503, b"ok\n" if ready else b"not ready\n")
        else:
            self.send_body(404, b"not found: try /metrics, /healthz or /readyz\n")


class MetricsServer(Endpoint):
    """Serves ``registry``; ``ready`` answers ``/readyz`` (always ready when not given)."""

    _listening = "metrics endpoint listening"

    def __init__(
        self,
        registry: Registry,
        address: Address,
        ready: Callable[[], bool] | None = None,
        *,
        limits: Limits | None = None,
    ) -> None:
        host, port = address
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Handler, limits=limits)
        except OSError as err:
            raise MetricsServerError(f"metrics endpoint: listen on {host}:{port}: {err}") from err
        self._server.registry = registry
        self._server.ready = ready or (lambda: True)
        self._runner = BackgroundServer(self._server, "xpushare-metrics")

    @property
    def url(self) -> str:
        host = self._runner.host
        host = "127.0.0.1" if host == ANY_ADDRESS else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}"

    def listening_at(self) -> dict[str, object]:
        return {"address": self.url}
