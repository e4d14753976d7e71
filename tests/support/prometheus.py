"""A strict reader of the Prometheus text exposition format (0.0.4), for tests that scrape an endpoint.

Written from the format's description rather than from our renderer, so a rendering mistake (a second
TYPE line for a family, a sample before its TYPE, a badly escaped label value) fails the reading.
"""

from __future__ import annotations

import math
import re
import urllib.request
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"({_NAME})(\{{.*\}})? (\S+)")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_HELP_ESCAPE = re.compile(r"\\([\\n])")


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


def _unescape(text: str, position: int) -> tuple[str, int]:
    """Read a quoted label value starting after its opening quote; return it and the index past it."""
    chars: list[str] = []
    while position < len(text):
        char = text[position]
        if char == '"':
            return "".join(chars), position + 1
        if char == "\\":
            escaped = text[position + 1 : position + 2]
            if escaped not in _ESCAPES:
                raise ExpositionError(f"bad escape \\{escaped} in {text!r}")
            chars.append(_ESCAPES[escaped])
            position += 2
            continue
        if char == "\n":
            raise ExpositionError(f"raw newline in label value of {text!r}")
        chars.append(char)
        position += 1
    raise ExpositionError(f"unterminated label value in {text!r}")


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position, body = 0, text[1:-1]
    while position < len(body):
        match = _LABEL_NAME.match(body, position)
        if match is None or body[match.end() : match.end() + 2] != '="':
            raise ExpositionError(f"bad label at {body[position:]!r}")
        value, position = _unescape(body, match.end() + 2)
        if match.group() in labels:
            raise ExpositionError(f"label {match.group()} twice in {text!r}")
        labels[match.group()] = value
        if position < len(body):
            if body[position] != ",":
                raise ExpositionError(f"expected ',' at {body[position:]!r}")
            position += 1
    return labels


def _family(name: str, types: dict[str, str]) -> str:
    for suffix in _HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and types.get(base) == "histogram":
            return base
    return name


def parse(text: str) -> Exposition:
    if text and not text.endswith("\n"):
        raise ExpositionError("the text must end with a newline")
    result = Exposition()
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, keyword, name, rest = [*line.split(" ", 3), ""][:4]
            table = result.help if keyword == "HELP" else result.types
            if name in table:
                raise ExpositionError(f"second {keyword} line for {name}")
            if keyword == "TYPE" and any(_family(s.name, {name: rest}) == name for s in result.samples):
                raise ExpositionError(f"TYPE of {name} after its samples")
            if keyword == "HELP":
                rest = _HELP_ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], rest)
            table[name] = rest
            continue
        match = _SAMPLE.fullmatch(line)
        if match is None:
            raise ExpositionError(f"not a sample line: {line!r}")
        name, label_text, value = match.groups()
        if _family(name, result.types) not in result.types:
            raise ExpositionError(f"sample {name} has no TYPE line before it")
        number = math.inf if value == "+Inf" else -math.inf if value == "-Inf" else float(value)
        result.samples.append(ParsedSample(name, _labels(label_text) if label_text else {}, number))
    return result


def scrape(url: str, timeout_s: float = 5.0) -> tuple[str, Exposition]:
    """GET ``url`` (an endpoint's /metrics); the Content-Type and the parsed body."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - a test's own server
        content_type = str(response.headers["Content-Type"])
        return content_type, parse(response.read().decode())
