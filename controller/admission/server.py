"""The admission webhook's HTTPS server: POST an AdmissionReview to ``/validate``, get one back.

The API server only calls webhooks over TLS; the certificate and key come from files (mounted from a
Secret that cert-manager or the Helm chart provides). ``/healthz`` answers probes. Each request is
handled on its own thread; the decision itself is pure (``review.review``).
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

from api.errors import XPUShareError
from controller.admission.review import review
from dra_driver.core.httpserve import BackgroundServer, DaemonHTTPServer, Endpoint, QuietHandler
from dra_driver.core.telemetry import tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

MAX_BODY = 3 * 1024 * 1024  # the API server's own request limit


class WebhookError(XPUShareError):
    """The webhook could not start (certificate unreadable, port taken)."""


class _Server(DaemonHTTPServer):
    driver_name: str


class _Handler(QuietHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server dispatches by this name
        if self.path == "/healthz":
            self.send_body(200, b"ok", "text/plain")
        else:
            self.send_body(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - http.server dispatches by this name
        if self.path.split("?", 1)[0] != "/validate":
            self.send_body(404, b"not found", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self.send_body(400, b"body missing or too large", "text/plain")
            return
        try:
            body: Any = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_body(400, b"body is not JSON", "text/plain")
            return
        with _tracer.start_as_current_span("xpushare.admission_review") as span:
            answer = review(body, self.server.driver_name)
            span.set_attribute("xpushare.allowed", bool(answer["response"]["allowed"]))
        log.debug(
            "admission review",
            extra={"uid": answer["response"]["uid"], "allowed": answer["response"]["allowed"]},
        )
        self.send_body(200, json.dumps(answer).encode(), "application/json")



class WebhookServer(Endpoint):
    """HTTPS server for ``/validate``; ``start`` returns at once, ``stop`` waits for the thread."""

    _listening = "admission webhook listening"

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        driver_name: str,
        host: str = "0.0.0.0",  # noqa: S104 - the API server reaches the webhook through its Service
        port: int = 8443,
    ) -> None:
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as err:
            raise WebhookError(f"load webhook certificate {cert_file} and key {key_file}: {err}") from err
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as err:
            raise WebhookError(f"listen on {host}:{port}: {err}") from err
        self._server.driver_name = driver_name
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._runner = BackgroundServer(self._server, "xpushare-webhook")

