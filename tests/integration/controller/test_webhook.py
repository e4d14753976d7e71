"""The admission webhook over real HTTPS, as the API server calls it (certificate checked, TLS 1.2+)."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.admission import WebhookError, WebhookServer
from tests.unit.controller.admission.objects import BAD, GOOD, admission_review, claim, configs


@pytest.fixture
def webhook(certificate: tuple[Path, Path]) -> Iterator[WebhookServer]:
    server = WebhookServer(*certificate, driver_name="xpushare.io", host="127.0.0.1", port=0).start()
    yield server
    server.stop()


def call(server: WebhookServer, cert: Path, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(cert))
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_webhook_denies_a_bad_config_with_the_decoder_message(
    webhook: WebhookServer, certificate: tuple[Path, Path]
) -> None:
    status, body = call(
        webhook, certificate[0], "POST", "/validate", admission_review(claim(configs(GOOD, BAD)))
    )
    assert status == 200
    response = json.loads(body)["response"]
    assert response["allowed"] is False
    assert (
        "spec.devices.config[1].opaque.parameters.corePercent: must be between 1 and 100 (got 150)"
        in response["status"]["message"]
    )


def test_webhook_admits_a_good_config(webhook: WebhookServer, certificate: tuple[Path, Path]) -> None:
    status, body = call(webhook, certificate[0], "POST", "/validate", admission_review(claim(configs(GOOD))))
    assert status == 200
    assert json.loads(body)["response"]["allowed"] is True


def test_webhook_answers_probes_and_refuses_junk(
    webhook: WebhookServer, certificate: tuple[Path, Path]
) -> None:
    assert call(webhook, certificate[0], "GET", "/healthz") == (200, b"ok")
    assert call(webhook, certificate[0], "POST", "/elsewhere", {})[0] == 404
    context = ssl.create_default_context(cafile=str(certificate[0]))
    connection = http.client.HTTPSConnection("127.0.0.1", webhook.port, context=context, timeout=10)
    connection.request("POST", "/validate", body=b"{not json", headers={"Content-Type": "application/json"})
    assert connection.getresponse().status == 400
    connection.close()


def test_webhook_refuses_plain_http(webhook: WebhookServer) -> None:
    def plain_get() -> int:
        connection = http.client.HTTPConnection("127.0.0.1", webhook.port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status
        finally:
            connection.close()

    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        plain_get()


def test_missing_certificate_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WebhookError, match="load webhook certificate"):
        WebhookServer(tmp_path / "none.crt", tmp_path / "none.key", "xpushare.io", host="127.0.0.1", port=0)
