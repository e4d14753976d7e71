"""Metrics of one process: counters, gauges and histograms with labels, and collectors that produce samples
at scrape time, kept and rendered by the Prometheus client library (``prometheus_client``).

Components record events here (prepare latency, errors, slice publishing); values that live elsewhere
(the claims' ledgers the shims update) are read by a ``Collector`` when a scrape asks, never polled, so a
scrape always sees the current value and an idle node does no work. ``MetricsServer``
(``dra_driver.core.metrics_server``) serves ``Registry.render()`` over HTTP. The registry is an object
passed around (a ``prometheus_client.CollectorRegistry`` of its own), so tests get their own; this module
adds only what the components share: metrics asked for by name (the same name gives the same metric),
labels named when the metric is made, and collectors that describe families as plain values
(``Family``, ``Sample``), one of which failing costs only its own samples.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

# One series per counter and histogram, as the Prometheus text format (0.0.4) has it: no `_created`.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

LabelKey = tuple[tuple[str, str], ...]
KINDS = ("counter", "gauge", "histogram", "untyped")
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LIBRARY_KIND = {"untyped": "unknown"}  # the library's name for an untyped family
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a collector's family: ``suffix`` is ``_bucket``, ``_sum`` or ``_count`` for
    histograms (a bucket's bound is its ``le`` label)."""

    labels: LabelKey
    value: float
    suffix: str = ""

    @classmethod
    def of(cls, value: float, /, **labels: str) -> Sample:
        return cls(tuple(sorted(labels.items())), value)


@dataclass(frozen=True, slots=True)
class Family:
    """All samples of one metric name that a collector reports, with its help text and kind."""

    name: str
    help_text: str
    kind: str
    samples: Sequence[Sample] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind {self.kind!r} is not one of {KINDS}")

    def to_library(self) -> Metric:
        """The library's form: a counter family is named without ``_total``, its samples with it."""
        base = self.name.removesuffix("_total") if self.kind == "counter" else self.name
        metric = Metric(base, self.help_text, _LIBRARY_KIND.get(self.kind, self.kind))
        for sample in self.samples:
            metric.add_sample(self.name + sample.suffix, dict(sample.labels), float(sample.value))
        return metric


class Collector(Protocol):
    """Produces families when a scrape asks (reads live state; must be quick and must not block)."""

    def __call__(self) -> Iterable[Family]: ...


class _Labelled:
    """A library metric with the label names it was made with; a call must give exactly those."""

    def __init__(self, metric: Any, name: str, labels: Sequence[str]) -> None:
        self._metric = metric
        self.name = name
        self.labels = tuple(labels)

    def _child(self, labels: Mapping[str, str]) -> Any:
        if set(labels) != set(self.labels):
            raise ValueError(f"metric {self.name}: labels {sorted(labels)} given, {sorted(self.labels)} "
                             "expected")
        return self._metric.labels(**labels) if self.labels else self._metric

    def _sample(self, suffix: str, labels: Mapping[str, str]) -> float:
        """One sample of this metric alone (the registry's get_sample_value would run every collector)."""
        self._child(labels)  # the same label check as a change
        wanted = (self.name + suffix, dict(labels))
        samples = (s for family in self._metric.collect() for s in family.samples)
        return next((s.value for s in samples if (s.name, s.labels) == wanted), 0.0)


class Counter(_Labelled):
    """A monotonically increasing count (its name ends with ``_total``)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"counter {self.name}: increment {amount} is negative")
        self._child(labels).inc(amount)

    def value(self, **labels: str) -> float:
        return self._sample("", labels)


class Gauge(_Labelled):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        self._child(labels).set(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).dec(amount)

    def value(self, **labels: str) -> float:
        return self._sample("", labels)


class Histogram(_Labelled):
    """Observations counted into fixed buckets (upper bounds, ``le``), with their sum and count."""

    kind = "histogram"

    def __init__(self, metric: Any, name: str, labels: Sequence[str], buckets: tuple[float, ...]) -> None:
        super().__init__(metric, name, labels)
        self.buckets = buckets

    def observe(self, value: float, **labels: str) -> None:
        if math.isnan(value):
            raise ValueError(f"histogram {self.name}: observed NaN")
        self._child(labels).observe(value)

    def count(self, **labels: str) -> int:
        return int(self._sample("_count", labels))

    def sum(self, **labels: str) -> float:
        return self._sample("_sum", labels)


M = TypeVar("M", Counter, Gauge, Histogram)


def _checked(name: str, labels: Sequence[str]) -> None:
    """Names Prometheus's text format takes as they are (the library would escape others)."""
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"metric name {name!r} must match {_METRIC_NAME.pattern}")
    for label in labels:
        if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
            raise ValueError(f"metric {name}: label name {label!r} must match {_LABEL_NAME.pattern} "
                             "and not start with __")


def _buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    bounds = tuple(float(b) for b in buckets)
    if not bounds or any(math.isnan(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
        raise ValueError(f"buckets {list(buckets)} must be increasing and non-empty")
    return bounds if math.isinf(bounds[-1]) else (*bounds, math.inf)


class _Collectors:
    """The registry's collectors as one library collector: their families, merged by name. A family named
    like one of the registry's own metrics (``taken``) is dropped: one name, one family."""

    def __init__(self, taken: Callable[[], set[str]]) -> None:
        self._collectors: list[Collector] = []
        self._taken = taken
        self._lock = threading.Lock()

    def add(self, collector: Collector) -> None:
        with self._lock:
            self._collectors.append(collector)

    def remove(self, collector: Collector) -> None:
        with self._lock:
            if collector in self._collectors:
                self._collectors.remove(collector)

    def families(self) -> list[Family]:
        with self._lock:
            collectors = list(self._collectors)
        merged: dict[str, Family] = {}
        taken = self._taken()
        for family in (f for collector in collectors for f in _run(collector)):
            seen = merged.get(family.name)
            if family.name in taken:
                log.warning("metric family dropped: a registry metric has its name",
                            extra={"metric": family.name})
            elif seen is None:
                merged[family.name] = family
            elif seen.kind == family.kind:
                merged[family.name] = Family(seen.name, seen.help_text, seen.kind,
                                             (*seen.samples, *family.samples))
            else:
                log.warning("metric family dropped: kind differs", extra={"metric": family.name})
        return [merged[name] for name in sorted(merged)]

    def collect(self) -> Iterator[Metric]:
        for family in self.families():
            try:
                yield family.to_library()
            except ValueError as err:  # a bad name or label from a collector: its family alone is lost
                log.warning("metric family dropped", extra={"metric": family.name, "error": str(err)})


class Registry:
    """Named metrics and collectors of one process (or one test); asking twice for a name returns the
    same metric (asking with other label names is an error; with none, it is the metric as made)."""

    def __init__(self) -> None:
        self.library = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        self._collectors = _Collectors(self._names)
        self._lock = threading.Lock()
        self.library.register(self._collectors)

    def _names(self) -> set[str]:
        with self._lock:
            return set(self._metrics)

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        def make() -> Counter:
            metric = prometheus_client.Counter(name, help_text, labelnames=labels, registry=self.library)
            return Counter(metric, name, labels)

        return self._get(Counter, name, labels, make)

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        def make() -> Gauge:
            metric = prometheus_client.Gauge(name, help_text, labelnames=labels, registry=self.library)
            return Gauge(metric, name, labels)

        return self._get(Gauge, name, labels, make)

    def histogram(self, name: str, help_text: str, buckets: Sequence[float] | None = None,
                  labels: Sequence[str] = ()) -> Histogram:
        bounds = _buckets(DEFAULT_BUCKETS if buckets is None else buckets)

        def make() -> Histogram:
            metric = prometheus_client.Histogram(name, help_text, labelnames=labels, buckets=bounds,
                                                 registry=self.library)
            return Histogram(metric, name, labels, bounds)

        found = self._get(Histogram, name, labels, make)
        if buckets is not None and found.buckets != bounds:
            raise ValueError(f"histogram {name} exists with buckets {list(found.buckets)}")
        return found

    def _get(self, kind: type[M], name: str, labels: Sequence[str], make: Callable[[], M]) -> M:
        _checked(name, labels)
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = make()
            if not isinstance(metric, kind):
                raise TypeError(f"metric {name} is a {metric.kind}, not a {kind.kind}")
            if labels and metric.labels != tuple(labels):  # none given: the metric as it was made
                raise ValueError(f"metric {name} exists with labels {list(metric.labels)}")
            return metric

    def register(self, collector: Collector) -> None:
        """Call ``collector`` at every scrape until ``unregister``."""
        self._collectors.add(collector)

    def unregister(self, collector: Collector) -> None:
        self._collectors.remove(collector)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4), as the library writes it."""
        return generate_latest(self.library).decode()


def _run(collector: Collector) -> list[Family]:
    # One broken source (an unreadable ledger, a bug) must cost its own samples, never the whole scrape.
    try:
        return list(collector())
    except Exception as err:
        log.warning("metrics collector failed", extra={"collector": repr(collector), "error": repr(err)})
        return []


_default = Registry()


def default_registry() -> Registry:
    """The process-wide registry that the metrics endpoint serves."""
    return _default
