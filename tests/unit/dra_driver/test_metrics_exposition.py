"""The registry's text, rendered by the Prometheus client library and read back with its parser: families,
escaping, exact values, histogram buckets, label sets, and collectors evaluated at scrape time."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest

from dra_driver.core.metrics import Family, Registry, Sample
from tests.support.prometheus import ExpositionError, parse


def test_each_family_has_one_help_and_type_line_before_its_samples() -> None:
    registry = Registry()
    registry.counter("b_total", "B", labels=("kind",)).inc(kind="x")
    registry.counter("b_total", "B", labels=("kind",)).inc(kind="y")
    registry.gauge("a", "A").set(1)
    registry.histogram("c_seconds", "C", [1]).observe(0.5)
    text = registry.render()
    exposition = parse(text)
    assert exposition.types == {"a": "gauge", "b": "counter", "b_total": "counter", "c_seconds": "histogram"}
    assert sorted(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")) == [
        "a",
        "b_total",
        "c_seconds",
    ]
    assert exposition.value("b_total", kind="y") == 1


def test_label_values_and_help_text_survive_escaping() -> None:
    registry = Registry()
    nasty = 'C:\\dir "quoted"\nsecond line, {braces}="x"'
    gauge = registry.gauge("xpushare_escape", 'Help with \\ and\nnewline "kept"', labels=("path", "plain"))
    gauge.set(7, path=nasty, plain="ok")
    exposition = parse(registry.render())
    assert exposition.value("xpushare_escape", path=nasty, plain="ok") == 7
    assert exposition.help["xpushare_escape"] == 'Help with \\ and\nnewline "kept"'


def test_byte_counts_render_exactly() -> None:
    registry = Registry()
    registry.gauge("bytes", "b").set(17_179_869_184 + 1)  # %g would print 1.71799e+10
    registry.gauge("ratio", "r").set(0.125)
    exposition = parse(registry.render())
    assert exposition.value("bytes") == 17_179_869_185
    assert exposition.value("ratio") == 0.125
    special = registry.gauge("special", "s", labels=("which",))
    for which, value in (("up", math.inf), ("down", -math.inf), ("nan", math.nan)):
        special.set(value, which=which)
    exposition = parse(registry.render())
    assert (exposition.value("special", which="up"), exposition.value("special", which="down")) == (math.inf,
                                                                                                   -math.inf)
    assert math.isnan(exposition.value("special", which="nan"))


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    registry = Registry()
    latency = registry.histogram("op_seconds", "Latency", buckets=[0.01, 0.1, 1], labels=("operation",))
    for value in (0.005, 0.01, 0.05, 0.5, 2, 3):
        latency.observe(value, operation="prepare")
    latency.observe(0.02, operation="unprepare")
    exposition = parse(registry.render())
    buckets = {s.labels["le"]: s.value for s in exposition.find("op_seconds_bucket", operation="prepare")}
    assert buckets == {"0.01": 2, "0.1": 3, "1.0": 4, "+Inf": 6}
    assert exposition.value("op_seconds_count", operation="prepare") == 6
    assert exposition.value("op_seconds_sum", operation="prepare") == pytest.approx(5.565)
    assert exposition.value("op_seconds_bucket", operation="unprepare", le="0.01") == 0
    assert (latency.count(operation="prepare"), latency.count(operation="other")) == (6, 0)
    with pytest.raises(ValueError, match="expected"):
        latency.observe(1)  # the label set is the metric's
    assert latency.sum(operation="unprepare") == pytest.approx(0.02)


@pytest.mark.parametrize("buckets", [[], [1, 0.5], [1, 1], [math.nan]])
def test_histogram_buckets_must_increase(buckets: list[float]) -> None:
    with pytest.raises(ValueError, match="must be increasing"):
        Registry().histogram("h", "h", buckets)


def test_histogram_refuses_le_label_nan_and_other_buckets_under_its_name() -> None:
    registry = Registry()
    with pytest.raises(ValueError, match="le"):
        registry.histogram("h_le_seconds", "h", [1], labels=("le",))
    histogram = registry.histogram("h_seconds", "h", [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        histogram.observe(math.nan)
    assert registry.histogram("h_seconds", "h") is histogram
    with pytest.raises(ValueError, match="exists with buckets"):
        registry.histogram("h_seconds", "h", [5])


@pytest.mark.parametrize(("name", "label"), [("1bad", "ok"), ("ok", "bad-label"), ("ok", "__reserved")])
def test_bad_metric_and_label_names_are_refused(name: str, label: str) -> None:
    with pytest.raises(ValueError, match="name"):
        Registry().gauge(name, "x", labels=(label,)).set(1, **{label: "v"})


def test_gauges_go_up_and_down_per_label_set() -> None:
    gauge = Registry().gauge("in_flight", "x", labels=("operation",))
    gauge.inc(operation="prepare")
    gauge.inc(2, operation="prepare")
    gauge.dec(operation="prepare")
    assert gauge.value(operation="prepare") == 2
    assert gauge.value(operation="unprepare") == 0


class _Source:
    """A collector over a value that changes between scrapes; counts its calls."""

    def __init__(self) -> None:
        self.level = 1.0
        self.calls = 0

    def __call__(self) -> Iterable[Family]:
        self.calls += 1
        yield Family("xpushare_live", "Live value", "gauge", [Sample.of(self.level, device="npu-0")])


def test_collectors_are_read_at_scrape_time_only() -> None:
    registry, source = Registry(), _Source()
    registry.register(source)
    assert source.calls == 0
    assert parse(registry.render()).value("xpushare_live", device="npu-0") == 1
    source.level = 42
    assert parse(registry.render()).value("xpushare_live", device="npu-0") == 42
    assert source.calls == 2
    registry.unregister(source)
    assert "xpushare_live" not in registry.render()
    assert source.calls == 2


def test_a_failing_collector_costs_only_its_own_samples() -> None:
    def broken() -> list[Family]:
        raise RuntimeError("ledger gone")

    registry = Registry()
    registry.gauge("kept", "k").set(1)
    registry.register(broken)
    assert parse(registry.render()).value("kept") == 1


def test_collector_families_of_one_name_merge_and_clashes_are_dropped() -> None:
    """Two collectors' families of one name and kind become one; another kind under that name, or a
    family named like one of the registry's own metrics, is dropped (one name, one family)."""
    registry = Registry()
    registry.counter("own_total", "Own").inc()
    first = Family("events_total", "Events", "counter", [Sample.of(1, source="first")])
    second = Family("events_total", "Events", "counter", [Sample.of(2, source="second")])
    clash = Family("events_total", "Events", "gauge", [Sample.of(9, source="clash")])
    shadow = Family("own_total", "Own", "counter", [Sample.of(5, source="shadow")])
    for family in (first, second, clash, shadow):
        registry.register(lambda family=family: [family])
    exposition = parse(registry.render())
    assert {s.labels["source"]: s.value for s in exposition.find("events_total")} == {"first": 1, "second": 2}
    assert [s.value for s in exposition.find("own_total")] == [1]


def test_the_parser_catches_format_mistakes() -> None:
    """The reader the tests rely on must be able to fail."""
    with pytest.raises(ExpositionError, match="second TYPE"):
        parse("# TYPE a gauge\na 1\n# TYPE a gauge\n")
    with pytest.raises(ExpositionError, match="newline"):
        parse("# TYPE a gauge\na 1")
    with pytest.raises(ExpositionError, match="not the text exposition format"):
        parse('# TYPE a gauge\na{x="unterminated} 1\n')
