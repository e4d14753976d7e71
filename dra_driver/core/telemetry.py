"""One place that sets up structured logging and OpenTelemetry tracing for every component.

Configuration comes from the standard ``OTEL_*`` variables so operators configure XPUShare the same way as
any other instrumented service:

- ``OTEL_TRACES_EXPORTER``: ``otlp``, ``console`` or ``none``. When unset, ``otlp`` is used if
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific endpoint) is set, otherwise nothing is exported
  (spans are still created, so trace context still propagates).
- ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``: read by the SDK's resource detection.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_STANDARD_RECORD_KEYS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_setup_lock = threading.Lock()
_provider: TracerProvider | None = None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every ``extra`` key given."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class KeyValueFormatter(logging.Formatter):
    """Human-readable single line: ``LEVEL logger: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD_RECORD_KEYS and not key.startswith("_")
        )
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if extras:
            line = f"{line} {extras}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def setup_logging(level: str | int = "INFO", json_output: bool = False) -> None:
    """Send structured log lines to stderr; safe to call more than once (the last call wins)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_output else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if isinstance(level, int) else level.upper())


def _exporter_from_environment(env: Mapping[str, str]) -> SpanExporter | None:
    choice = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoints = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    has_endpoint = any(env.get(key) for key in endpoints)
    if not choice:
        choice = "otlp" if has_endpoint else "none"
    if choice == "none":
        return None
    if choice == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    if choice == "otlp":
        # Imported lazily: the gRPC exporter pulls in a lot and most runs never export.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported value {choice!r}; allowed: otlp, console, none")


def setup_tracing(
    service_name: str,
    env: Mapping[str, str] | None = None,
    extra_processor: SpanProcessor | None = None,
) -> TracerProvider:
    """Install the global tracer provider once per process and return it.

    ``extra_processor`` lets tests (and the demo) observe spans in memory.
    """
    global _provider  # noqa: PLW0603 - the SDK's provider is process-global by design
    environment = os.environ if env is None else env
    with _setup_lock:
        if _provider is None:
            resource = Resource.create({SERVICE_NAME: environment.get("OTEL_SERVICE_NAME", service_name)})
            _provider = TracerProvider(resource=resource)
            exporter = _exporter_from_environment(environment)
            if exporter is not None:
                _provider.add_span_processor(BatchSpanProcessor(exporter))
            trace.set_tracer_provider(_provider)
        if extra_processor is not None:
            _provider.add_span_processor(extra_processor)
        return _provider


def tracer(name: str) -> trace.Tracer:
    """The tracer for a module; works before ``setup_tracing`` (spans then go nowhere)."""
    return trace.get_tracer(name)
