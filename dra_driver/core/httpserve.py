"""The small HTTP servers of our processes (metrics endpoint, admission webhook), served by the standard
library on a daemon thread.

One base handler (HTTP/1.1 keep-alive, no Nagle delay, request lines logged at DEBUG only) and one
runner (start, port, a stop that is safe twice and before start), so each server only routes requests.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"


class DaemonHTTPServer(ThreadingHTTPServer):
    """Each request on its own daemon thread, so a stuck client never keeps the process alive."""

    daemon_threads = True


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else a client's delayed ACK adds ~40 ms to each keep-alive request

    def send_body(self, status: int, data: bytes, content_type: str = TEXT) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, type(self).__module__, *args)


class BackgroundServer:
    """Runs an HTTP server's ``serve_forever`` on a named daemon thread."""

    def __init__(self, server: ThreadingHTTPServer, thread_name: str) -> None:
        self.server = server
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice and before ``start``."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()


class Endpoint:
    """Base of a process's servers: ``start`` returns at once (logging where it listens), ``stop`` waits."""

    _runner: BackgroundServer
    _listening = "listening"  # the start-up log line

    @property
    def port(self) -> int:
        return self._runner.port

    def listening_at(self) -> dict[str, object]:
        """What the start-up log line says about the address."""
        return {"port": self.port}

    def start(self) -> Self:
        self._runner.start()
        log.info(self._listening, extra=self.listening_at())
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice and before ``start``."""
        self._runner.stop()
