"""The metrics endpoint of every process: Prometheus text at ``/metrics``, liveness at ``/healthz``,
readiness at ``/readyz``, served by the standard library in a daemon thread.

Plain HTTP on purpose: what it serves is counts and sizes, the same a node exporter shows, and
Prometheus scrapes pods directly. Each request is rendered on its own thread from the registry, so a
slow scraper never delays another, and nothing is computed between scrapes.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dra_driver.errors import ConfigError, XPUShareError
from dra_driver.metrics import Registry

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: Registry
    ready: Callable[[], bool]


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.registry.render().encode(), CONTENT_TYPE)
        elif path == "/healthz":
            self._send(200, b"ok\n")
        elif path == "/readyz":
            ready = self.server.ready()
            self._send(200 if ready else 503, b"ok\n" if ready else b"not ready\n")
        else:
            self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

    def _send(self, status: int, data: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics http: " + format, *args)


class MetricsServer:
    """Serves ``registry``; ``ready`` answers ``/readyz`` (always ready when not given)."""

    def __init__(
        self, registry: Registry, address: Address, ready: Callable[[], bool] | None = None
    ) -> None:
        host, port = address
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as err:
            raise MetricsServerError(f"metrics endpoint: listen on {host}:{port}: {err}") from err
        self._server.registry = registry
        self._server.ready = ready or (lambda: True)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        host = "127.0.0.1" if host == ANY_ADDRESS else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}"

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="xpushare-metrics", daemon=True
        )
        self._thread.start()
        log.info("metrics endpoint listening", extra={"address": self.url})
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice and before ``start``."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
