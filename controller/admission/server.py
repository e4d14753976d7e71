"""The admission webhook's HTTPS server: POST an AdmissionReview to ``/validate``, get one back.

The API server only calls webhooks over TLS; the certificate and key come from files (mounted from a
Secret that cert-manager or the Helm chart provides). ``/healthz`` answers probes. Each connection is
served on its own thread, TLS handshake included, under ``httpserve.Limits`` deadlines, so no client
can stall another's review; with ``failurePolicy: Ignore`` a stalled webhook would admit everything.

Every request gets an answer: HTTP 400 (or 408, 411, 413) with a line naming what is wrong when the
body is not an AdmissionReview at all (not a JSON object, nested too deeply, too large), else an
AdmissionReview, denying with the field (``request.object.metadata: must be an object``) when the
review itself is malformed. The decision itself is pure (``review.review``).
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path

from api.errors import ConfigValidationError, XPUShareError
from api.v1alpha1.decode import parse_json
from controller.admission.review import json_type, review
from dra_driver.core.httpserve import BackgroundServer, DaemonHTTPServer, Endpoint, Limits, QuietHandler
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
            self.send_body(404, b"not found", "text/plain", close=True)  # its body was not read
            return
        data = self.read_body(MAX_BODY)
        if data is None:
            return  # refused and answered
        problem, body = parse_review(data)
        if problem:
            self.send_body(400, f"{problem}\n".encode())
            return
        with _tracer.start_as_current_span("xpushare.admission_review") as span:
            answer = review(body, self.server.driver_name)
            span.set_attribute("xpushare.allowed", bool(answer["response"]["allowed"]))
        log.debug(
            "admission review",
            extra={"uid": answer["response"]["uid"], "allowed": answer["response"]["allowed"]},
        )
        self.send_body(200, json.dumps(answer).encode(), "application/json")


def parse_review(data: bytes) -> tuple[str, object]:
    """(problem, body): the problem is empty when ``data`` is a JSON object, the shape of an
    AdmissionReview; whether it is a well-formed one is ``review``'s to say."""
    if not data:
        return "request body: empty; expected an AdmissionReview", None
    try:
        # The decoder's parser: it keeps fields given twice in parameters for the config check to refuse,
        # and turns too-deep nesting (RecursionError) and bad UTF-8 into a message.
        body = parse_json(data)
    except ConfigValidationError as err:
        if isinstance(err.__cause__, RecursionError):  # the C parser gives up after ~1,000 levels
            return "request body: JSON nested too deeply for an AdmissionReview", None
        return f"request body: not JSON: {err.issues[0].message.removeprefix('is not valid JSON: ')}", None
    if not isinstance(body, dict):
        return f"request body: must be a JSON object, an AdmissionReview (got {json_type(body)})", None
    return "", body


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
        *,
        limits: Limits | None = None,
    ) -> None:
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as err:
            raise WebhookError(f"load webhook certificate {cert_file} and key {key_file}: {err}") from err
        try:
            self._server = _Server((host, port), _Handler, limits=limits, tls=context)
        except OSError as err:
            raise WebhookError(f"listen on {host}:{port}: {err}") from err
        self._server.driver_name = driver_name
        self._runner = BackgroundServer(self._server, "xpushare-webhook")
