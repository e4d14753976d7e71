"""The metrics endpoint over real HTTP: /metrics, /healthz, /readyz, 404, free ports, a clean stop, and
the address flag's parsing."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest

from api.errors import ConfigError
from dra_driver.core.httpserve import Limits
from dra_driver.core.metrics import Registry
from dra_driver.core.metrics_server import MetricsServer, MetricsServerError, parse_address
from tests.support.prometheus import scrape


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def server(registry: Registry) -> Iterator[MetricsServer]:
    running = MetricsServer(registry, ("127.0.0.1", 0)).start()
    yield running
    running.stop()


def test_metrics_are_served_as_prometheus_text(server: MetricsServer, registry: Registry) -> None:
    registry.counter("xpushare_things_total", "Things", labels=("kind",)).inc(3, kind="a")
    content_type, exposition = scrape(f"{server.url}/metrics")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert exposition.value("xpushare_things_total", kind="a") == 3
    registry.counter("xpushare_things_total", "Things").inc(kind="a")
    assert scrape(f"{server.url}/metrics?x=1")[1].value("xpushare_things_total", kind="a") == 4


def test_health_readiness_and_unknown_paths(registry: Registry) -> None:
    state = {"ready": False}
    server = MetricsServer(registry, ("127.0.0.1", 0), ready=lambda: state["ready"]).start()
    try:
        assert _get(f"{server.url}/healthz") == (200, "ok\n")
        assert _get(f"{server.url}/readyz") == (503, "not ready\n")
        state["ready"] = True
        assert _get(f"{server.url}/readyz") == (200, "ok\n")
        assert _get(f"{server.url}/other")[0] == 404
    finally:
        server.stop()


def test_port_zero_picks_a_free_port_and_stop_closes_it(registry: Registry) -> None:
    server = MetricsServer(registry, ("127.0.0.1", 0)).start()
    port = server.port
    assert port > 0
    server.stop()
    server.stop()  # twice is fine
    with socket.socket() as probe:
        probe.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))


def test_a_taken_port_is_a_clear_error(server: MetricsServer, registry: Registry) -> None:
    with pytest.raises(MetricsServerError, match=f"listen on 127.0.0.1:{server.port}"):
        MetricsServer(registry, ("127.0.0.1", server.port))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":9464", ("0.0.0.0", 9464)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9464", ("::1", 9464)),
        ("metrics.local:80", ("metrics.local", 80)),
        ("", None),
        ("0", None),
        (" ", None),
    ],
)
def test_addresses(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["9464", "host:", ":http", ":70000", "[::1]9464", "a]:1"])
def test_bad_addresses_name_the_flag(text: str) -> None:
    with pytest.raises(ConfigError, match="--metrics-address"):
        parse_address(text)


FAST = Limits(idle_seconds=1.0, header_seconds=1.0, body_seconds=1.0, write_seconds=2.0, max_connections=3)
SLACK = 1.5  # seconds a cut-off may come after its deadline on a loaded machine


def _until_closed(sock: socket.socket, within: float) -> tuple[float, bytes]:
    """(seconds until the server closed ``sock``, what it sent before)."""
    sock.settimeout(within)
    start, received = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - start, received


def _timed_get(url: str) -> float:
    start = time.monotonic()
    assert _get(url)[0] == 200
    return time.monotonic() - start


def test_idle_and_trickling_clients_are_cut_off_and_delay_nobody(registry: Registry) -> None:
    server = MetricsServer(registry, ("127.0.0.1", 0), limits=replace(FAST, max_connections=16)).start()
    address = ("127.0.0.1", server.port)
    try:
        with socket.create_connection(address) as idle, socket.create_connection(address) as slow:
            slow.sendall(b"GET /metr")  # and nothing more: the headers' deadline runs
            assert max(_timed_get(f"{server.url}/healthz") for _ in range(5)) < 0.5
            _, answer = _until_closed(slow, FAST.header_seconds + SLACK)
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert answer.endswith(b"request headers: not received within 1 s\n")
            _, answer = _until_closed(idle, FAST.idle_seconds + SLACK)
            assert answer == b""  # an idle connection is closed without a word
    finally:
        server.stop()


def test_connections_over_the_limit_are_closed_at_once_and_service_resumes(registry: Registry) -> None:
    server = MetricsServer(registry, ("127.0.0.1", 0), limits=replace(FAST, header_seconds=30)).start()
    address = ("127.0.0.1", server.port)
    held = [socket.create_connection(address) for _ in range(FAST.max_connections)]
    for sock in held:
        sock.sendall(b"GET /hea")  # each in the middle of its headers: busy, not idle
    try:
        time.sleep(0.2)  # all accepted
        with socket.create_connection(address) as extra:
            seconds, answer = _until_closed(extra, 5)
            assert (seconds, answer) < (1.0, b"\x00")  # closed well before any deadline, with no answer
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while True:  # the held connections' threads see the close and free their slots
        try:
            assert _get(f"{server.url}/healthz") == (200, "ok\n")
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    server.stop()


def test_idle_connections_holding_every_slot_make_room_for_a_new_client(registry: Registry) -> None:
    server = MetricsServer(registry, ("127.0.0.1", 0), limits=replace(FAST, idle_seconds=30)).start()
    address = ("127.0.0.1", server.port)
    held = [socket.create_connection(address) for _ in range(FAST.max_connections)]
    try:
        time.sleep(0.2)  # all accepted, each waiting for a request that never comes
        for _ in range(3):  # every new client is served at once, each time at an idle one's expense
            assert _timed_get(f"{server.url}/healthz") < 1.0
        closed = 0
        for sock in held:
            sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                closed += sock.recv(1) == b""
        assert closed >= 1  # the oldest idle connections were closed to make room
    finally:
        for sock in held:
            sock.close()
        server.stop()
