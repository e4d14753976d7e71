"""The admission webhook against hostile clients, over real HTTPS on loopback: idle and half-open
connections, a slowloris, and bodies that are not AdmissionReviews. Each must get a clear answer (or be
cut off) without delaying anyone else's review."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.admission import WebhookServer
from controller.admission.server import MAX_BODY
from dra_driver.core.httpserve import Limits
from tests.unit.controller.admission.objects import GOOD, MALFORMED_REVIEWS, admission_review, claim, configs

LIMITS = Limits(handshake_seconds=1.0, idle_seconds=2.0, header_seconds=2.0, body_seconds=1.0)
FAST = 0.5  # seconds: a review on loopback takes milliseconds; a stalled one takes a deadline or forever
SLACK = 1.5  # seconds a cut-off may come after its deadline on a loaded machine
GOOD_REVIEW = json.dumps(admission_review(claim(configs(GOOD)))).encode()


@pytest.fixture(scope="module")  # one server for all: each stop waits up to half a second
def webhook(certificate: tuple[Path, Path]) -> Iterator[WebhookServer]:
    server = WebhookServer(*certificate, "xpushare.io", host="127.0.0.1", port=0, limits=LIMITS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cert(certificate: tuple[Path, Path]) -> str:
    return str(certificate[0])


def tls(server: WebhookServer, cert: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=cert)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def review_seconds(server: WebhookServer, cert: str) -> float:
    """One good review by a real TLS client on a new connection, timed from connect to answer."""
    start = time.monotonic()
    context = ssl.create_default_context(cafile=cert)
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
    try:
        connection.request(
            "POST", "/validate", body=GOOD_REVIEW, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["response"]["allowed"]) == (200, True)
    finally:
        connection.close()
    return time.monotonic() - start


def until_closed(sock: socket.socket, within: float) -> tuple[float, bytes]:
    """(seconds until the server closed ``sock``, what it sent before); raises if it stays open."""
    sock.settimeout(within)
    start, received = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except (ConnectionResetError, ssl.SSLEOFError):
        pass
    return time.monotonic() - start, received


def half_client_hello(cert: str) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context(cafile=cert).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    return hello[: len(hello) // 2]


def test_idle_and_half_open_connections_do_not_stall_reviews(webhook: WebhookServer, cert: str) -> None:
    address = ("127.0.0.1", webhook.port)
    with socket.create_connection(address) as idle, socket.create_connection(address) as half:
        half.sendall(half_client_hello(cert))
        time.sleep(0.1)  # both accepted before the first review
        latencies = [review_seconds(webhook, cert) for _ in range(20)]
        assert max(latencies) < FAST, latencies
        for sock in (idle, half):  # and neither holds its thread past the handshake deadline
            _, received = until_closed(sock, LIMITS.handshake_seconds + SLACK)
            assert received == b""


def test_a_slowloris_delays_nobody_and_is_cut_off(webhook: WebhookServer, cert: str) -> None:
    request = b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
    latencies: list[float] = []
    answer = b""
    with tls(webhook, cert) as slow:
        start = time.monotonic()
        for byte in request:  # one header byte a second, a review in between
            slow.sendall(bytes([byte]))
            latencies.append(review_seconds(webhook, cert))
            slow.settimeout(1.0)  # not select(): TLS 1.3 session tickets make the socket readable
            try:
                answer = slow.recv(4096)
                break  # the server answered or closed
            except TimeoutError:
                continue
        cut_off_after = time.monotonic() - start
        answer += until_closed(slow, 1.0)[1]
    assert max(latencies) < FAST, latencies
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b"request headers: not received within 2 s\n")
    assert LIMITS.header_seconds - 0.1 < cut_off_after < LIMITS.header_seconds + SLACK


def raw_post(body: bytes, *headers: str, length: str | None = "exact") -> bytes:
    lines = ["POST /validate HTTP/1.1", "Host: webhook", "Content-Type: application/json", *headers]
    if length is not None:
        lines.append(f"Content-Length: {len(body) if length == 'exact' else length}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


TRUNCATED = GOOD_REVIEW[: len(GOOD_REVIEW) // 2]
# (case, raw request, status, what the answer says, whether the connection must close after it)
REFUSED: list[tuple[str, bytes, int, str, bool]] = [
    ("not JSON", raw_post(b"{not json"), 400, "request body: not JSON", False),
    ("truncated JSON", raw_post(TRUNCATED), 400, "request body: not JSON", False),
    ("not UTF-8", raw_post(b'{"a": "\xff"}'), 400, "request body: not JSON", False),
    ("5,000-digit number", raw_post(b"1" * 5000), 400, "request body: must be a JSON object", False),
    (
        "an array",
        raw_post(b"[]"),
        400,
        "request body: must be a JSON object, an AdmissionReview (got an",
        False,
    ),
    ("a string", raw_post(b'"review"'), 400, "request body: must be a JSON object", False),
    ("empty", raw_post(b""), 400, "request body: empty", False),
    ("100k deep", raw_post(deep(100_000)), 400, "request body: JSON nested too deeply", False),
    ("Content-Length abc", raw_post(b"{}", length="abc"), 400, "Content-Length: must be a byte count", True),
    ("Content-Length -1", raw_post(b"{}", length="-1"), 400, "Content-Length: must be a byte count", True),
    (
        "Content-Length twice",
        raw_post(b"{}", "Content-Length: 3"),
        400,
        "Content-Length: given more than once",
        True,
    ),
    (
        "Content-Length huge",
        raw_post(b"{}", length=str(10**15)),
        413,
        "Content-Length: 1000000000000000",
        True,
    ),
    ("Content-Length absurd", raw_post(b"{}", length="9" * 5000), 413, "Content-Length: 99999", True),
    ("one byte too many", raw_post(b"{}", length=str(MAX_BODY + 1)), 413, "Content-Length: 3145729", True),
    ("no Content-Length", raw_post(b"{}", length=None), 411, "Content-Length: required", True),
    (
        "chunked",
        raw_post(b"2\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked", length=None),
        411,
        "Transfer-Encoding: not accepted",
        True,
    ),
    ("body never finished", raw_post(b"{}", length="10"), 408, "request body: not received within 1 s", True),
]


def exchange(server: WebhookServer, cert: str, request: bytes) -> tuple[http.client.HTTPResponse, bytes]:
    with tls(server, cert) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response, response.read()


@pytest.mark.parametrize("case", [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_what_is_not_an_admission_review_is_refused_with_the_reason(
    webhook: WebhookServer, cert: str, case: tuple[bytes, int, str, bool], caplog: pytest.LogCaptureFixture
) -> None:
    request_bytes, status, message, closes = case
    caplog.set_level(logging.WARNING)
    response, body = exchange(webhook, cert, request_bytes)
    assert response.status == status, body
    assert body.decode().startswith(message), body
    assert (response.getheader("Connection") == "close") == closes
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no handler crashed


@pytest.mark.parametrize(
    ("review", "message"),
    [case[1:] for case in MALFORMED_REVIEWS],
    ids=[case[0] for case in MALFORMED_REVIEWS],
)
def test_a_malformed_review_is_denied_over_https_naming_the_field(
    webhook: WebhookServer, cert: str, review: Any, message: str
) -> None:
    response, body = exchange(webhook, cert, raw_post(json.dumps(review).encode()))
    assert response.status == 200
    answer = json.loads(body)["response"]
    assert answer["allowed"] is False
    assert message in answer["status"]["message"]


def test_deep_json_is_refused_quickly_and_the_connection_goes_on(webhook: WebhookServer, cert: str) -> None:
    with tls(webhook, cert) as sock:
        start = time.monotonic()
        sock.sendall(raw_post(deep(100_000)))
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 400
        assert response.read() == b"request body: JSON nested too deeply for an AdmissionReview\n"
        assert time.monotonic() - start < FAST
        sock.sendall(raw_post(GOOD_REVIEW))  # the body was read whole, so the connection is still good
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, json.loads(response.read())["response"]["allowed"]) == (200, True)
