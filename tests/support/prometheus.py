"""Reading the Prometheus text exposition format (0.0.4) in tests that scrape an endpoint, with the
Prometheus client library's own parser (``prometheus_client.parser``), so what our endpoints serve is
read back as Prometheus reads it."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


class ExpositionError(AssertionError):
    """The text breaks the exposition format."""


@dataclass(frozen=True)
class ParsedSample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Exposition:
    help: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    samples: list[ParsedSample] = field(default_factory=list)

    def find(self, metric: str, /, **labels: str) -> list[ParsedSample]:
        """Samples of ``metric`` whose labels include ``labels``."""
        return [s for s in self.samples if s.name == metric and labels.items() <= s.labels.items()]

    def value(self, metric: str, /, **labels: str) -> float:
        """The one sample of ``metric`` with exactly ``labels``."""
        found = [s for s in self.samples if s.name == metric and s.labels == labels]
        if len(found) != 1:
            raise ExpositionError(f"{len(found)} samples of {metric}{labels}; have {self.find(metric)}")
        return found[0].value


def parse(text: str) -> Exposition:
    """Read ``text`` with the Prometheus client library's own parser. A counter family is known by its
    name with and without ``_total`` (the library names the family without it, the samples with it)."""
    if text and not text.endswith("\n"):
        raise ExpositionError("the text must end with a newline")
    type_lines = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    repeated = sorted({name for name in type_lines if type_lines.count(name) > 1})
    if repeated:
        raise ExpositionError(f"second TYPE line for {repeated}")
    result = Exposition()
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, TypeError) as err:
        raise ExpositionError(f"not the text exposition format: {err}") from err
    for family in families:
        names = [family.name, f"{family.name}_total"] if family.type == "counter" else [family.name]
        for name in names:
            result.help[name] = family.documentation
            result.types[name] = "untyped" if family.type == "unknown" else family.type
        result.samples += [ParsedSample(s.name, dict(s.labels), float(s.value)) for s in family.samples]
    return result


def scrape(url: str, timeout_s: float = 5.0) -> tuple[str, Exposition]:
    """GET ``url`` (an endpoint's /metrics); the Content-Type and the parsed body."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - a test's own server
        content_type = str(response.headers["Content-Type"])
        return content_type, parse(response.read().decode())
