"""A minimal in-process metrics registry: counters and gauges with labels, rendered as Prometheus text.

Components record events here (slice-mode fallbacks, publish outcomes, prepare errors); the HTTP
endpoint that serves ``Registry.render()`` is wired by each process. No client library is needed for
this little, and the registry is an object passed around, so tests get their own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TypeVar

LabelKey = tuple[tuple[str, str], ...]


def _key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted((name, str(value)) for name, value in labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help_text = help_text
        self._values: dict[LabelKey, float] = {}
        self._lock = threading.Lock()

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(_key(labels), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            label_text = ",".join(f'{name}="{_escape(text)}"' for name, text in key)
            suffix = f"{{{label_text}}}" if label_text else ""
            lines.append(f"{self.name}{suffix} {value:g}")
        return lines


M = TypeVar("M", bound=_Metric)


class Counter(_Metric):
    """A monotonically increasing count."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"counter {self.name}: increment {amount} is negative")
        with self._lock:
            key = _key(labels)
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[_key(labels)] = value


class Registry:
    """Named metrics of one process (or one test); asking twice for a name returns the same metric."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help_text: str) -> Counter:
        return self._get(Counter, name, help_text)

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._get(Gauge, name, help_text)

    def _get(self, kind: type[M], name: str, help_text: str) -> M:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = kind(name, help_text)
            if not isinstance(metric, kind):
                raise TypeError(f"metric {name} is a {metric.kind}, not a {kind.kind}")
            return metric

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            metrics = [self._metrics[name] for name in sorted(self._metrics)]
        return "".join(line + "\n" for metric in metrics for line in metric.render())


_default = Registry()


def default_registry() -> Registry:
    """The process-wide registry that the metrics endpoint serves."""
    return _default
