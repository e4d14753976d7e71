"""The metrics endpoint over real HTTP: /metrics, /healthz, /readyz, 404, free ports, a clean stop, and
the address flag's parsing."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from api.errors import ConfigError
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
    registry.counter("xpushare_things_total", "Things").inc(3, kind="a")
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
