"""Logging and tracing set-up from the standard OTEL_* variables."""

import json
import logging

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from dra_driver.core import telemetry


def test_exporter_defaults_to_none_without_endpoint() -> None:
    assert telemetry._exporter_from_environment({}) is None


def test_exporter_console_when_asked() -> None:
    exporter = telemetry._exporter_from_environment({"OTEL_TRACES_EXPORTER": "console"})
    assert isinstance(exporter, ConsoleSpanExporter)


def test_exporter_otlp_when_endpoint_is_set() -> None:
    exporter = telemetry._exporter_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert type(exporter).__name__ == "OTLPSpanExporter"


def test_exporter_rejects_unknown_value_naming_the_variable() -> None:
    with pytest.raises(ValueError, match=r"OTEL_TRACES_EXPORTER.*otlp, console, none"):
        telemetry._exporter_from_environment({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_json_log_lines_carry_extra_keys(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry.setup_logging("INFO", json_output=True)
    logging.getLogger("xpushare.test").info("prepared claim", extra={"claim_uid": "abc"})
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["msg"] == "prepared claim"
    assert entry["claim_uid"] == "abc"
    assert entry["level"] == "INFO"
