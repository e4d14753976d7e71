"""A minimal in-process metrics registry: counters, gauges and histograms with labels, and collectors that
produce samples at scrape time, rendered in the Prometheus text exposition format (version 0.0.4).

Components record events here (prepare latency, errors, slice publishing); values that live elsewhere
(the claims' ledgers the shims update) are read by a ``Collector`` when a scrape asks, never polled, so a
scrape always sees the current value and an idle node does no work. ``MetricsServer``
(``dra_driver.core.metrics_server``) serves ``Registry.render()`` over HTTP. No client library is needed for
this little, and the registry is an object passed around, so tests get their own.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

LabelKey = tuple[tuple[str, str], ...]
KINDS = ("counter", "gauge", "histogram", "untyped")
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@cache
def _check_name(name: str) -> str:
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"metric name {name!r}: must match {_METRIC_NAME.pattern}")
    return name


@cache
def _check_label(name: str) -> str:
    if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
        raise ValueError(f"label name {name!r}: must match {_LABEL_NAME.pattern} and not start with __")
    return name


def _key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted((_check_label(name), str(value)) for name, value in labels.items()))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Exact for integers up to 2**53 (byte counts must not lose digits, as ``%g`` would)."""
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of a family: ``suffix`` is ``_bucket``, ``_sum`` or ``_count`` for histograms."""

    labels: LabelKey
    value: float
    suffix: str = ""

    @classmethod
    def of(cls, value: float, /, **labels: str) -> Sample:
        return cls(_key(labels), value)


@dataclass(frozen=True, slots=True)
class Family:
    """All samples of one metric name, with its one HELP and TYPE line."""

    name: str
    help_text: str
    kind: str
    samples: Sequence[Sample] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind {self.kind!r} is not one of {KINDS}")

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help_text)}", f"# TYPE {self.name} {self.kind}"]
        for sample in self.samples:
            label_text = ",".join(f'{name}="{escape_label_value(text)}"' for name, text in sample.labels)
            braces = f"{{{label_text}}}" if label_text else ""
            lines.append(f"{self.name}{sample.suffix}{braces} {format_value(sample.value)}")
        return lines


class Collector(Protocol):
    """Produces families when a scrape asks (reads live state; must be quick and must not block)."""

    def __call__(self) -> Iterable[Family]: ...


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str) -> None:
        self.name = _check_name(name)
        self.help_text = help_text
        self._lock = threading.Lock()

    def collect(self) -> Family:
        return Family(self.name, self.help_text, self.kind, self._samples())

    def _samples(self) -> list[Sample]:
        raise NotImplementedError


class _Scalar(_Metric):
    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[LabelKey, float] = {}

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(_key(labels), 0.0)

    def _add(self, amount: float, labels: Mapping[str, str]) -> None:
        key = _key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def _samples(self) -> list[Sample]:
        with self._lock:
            items = sorted(self._values.items())
        return [Sample(key, value) for key, value in items]


M = TypeVar("M", bound=_Metric)


class Counter(_Scalar):
    """A monotonically increasing count."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"counter {self.name}: increment {amount} is negative")
        self._add(amount, labels)


class Gauge(_Scalar):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = _key(labels)
        with self._lock:
            self._values[key] = value

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._add(amount, labels)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self._add(-amount, labels)


@dataclass(slots=True)
class _Series:
    counts: list[int]  # per bucket, not cumulative; the last one is +Inf
    total: float = 0.0


class Histogram(_Metric):
    """Observations counted into fixed buckets (upper bounds, ``le``), with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text)
        bounds = tuple(float(b) for b in buckets)
        if not bounds or any(math.isnan(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"histogram {name}: buckets {list(buckets)} must be increasing and non-empty")
        self.buckets = bounds if math.isinf(bounds[-1]) else (*bounds, math.inf)
        self._series: dict[LabelKey, _Series] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = _key(labels)
        if "le" in dict(key):
            raise ValueError(f"histogram {self.name}: the label 'le' is reserved for buckets")
        if math.isnan(value):
            raise ValueError(f"histogram {self.name}: observed NaN")
        index = bisect.bisect_left(self.buckets, value)  # the first bucket whose bound is >= value
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series([0] * len(self.buckets))
            series.counts[index] += 1
            series.total += value

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(_key(labels))
            return sum(series.counts) if series else 0

    def sum(self, **labels: str) -> float:
        with self._lock:
            series = self._series.get(_key(labels))
            return series.total if series else 0.0

    def _samples(self) -> list[Sample]:
        with self._lock:
            items = sorted((key, list(s.counts), s.total) for key, s in self._series.items())
        samples: list[Sample] = []
        for key, counts, total in items:
            cumulative = 0
            for bound, count in zip(self.buckets, counts, strict=True):
                cumulative += count
                le = tuple(sorted((*key, ("le", format_value(bound)))))
                samples.append(Sample(le, cumulative, "_bucket"))
            samples += [Sample(key, total, "_sum"), Sample(key, cumulative, "_count")]
        return samples


class Registry:
    """Named metrics and collectors of one process (or one test); asking twice for a name returns the
    same metric."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Collector] = []
        self._lock = threading.Lock()

    def counter(self, name: str, help_text: str) -> Counter:
        return self._get(Counter, name, lambda: Counter(name, help_text))

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._get(Gauge, name, lambda: Gauge(name, help_text))

    def histogram(self, name: str, help_text: str, buckets: Sequence[float] | None = None) -> Histogram:
        found = self._get(Histogram, name, lambda: Histogram(name, help_text, buckets or DEFAULT_BUCKETS))
        if buckets is not None and found.buckets != Histogram(name, help_text, buckets).buckets:
            raise ValueError(f"histogram {name} exists with buckets {list(found.buckets)}")
        return found

    def _get(self, kind: type[M], name: str, make: Callable[[], M]) -> M:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = make()
            if not isinstance(metric, kind):
                raise TypeError(f"metric {name} is a {metric.kind}, not a {kind.kind}")
            return metric

    def register(self, collector: Collector) -> None:
        """Call ``collector`` at every scrape until ``unregister``."""
        with self._lock:
            self._collectors.append(collector)

    def unregister(self, collector: Collector) -> None:
        with self._lock:
            if collector in self._collectors:
                self._collectors.remove(collector)

    def collect(self) -> list[Family]:
        """Every family, sorted by name; families of the same name and kind are merged into one."""
        with self._lock:
            families = [metric.collect() for metric in self._metrics.values()]
            collectors = list(self._collectors)
        for collector in collectors:
            families.extend(_run(collector))
        merged: dict[str, Family] = {}
        for family in families:
            seen = merged.get(family.name)
            if seen is None:
                merged[family.name] = family
            elif seen.kind == family.kind:
                merged[family.name] = Family(seen.name, seen.help_text, seen.kind,
                                             (*seen.samples, *family.samples))
            else:
                log.warning("metric family dropped: kind differs", extra={"metric": family.name})
        return [merged[name] for name in sorted(merged)]

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        return "".join(line + "\n" for family in self.collect() for line in family.render())


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
