"""Kubernetes quantities: exact parsing and the canonical form the API server prints.

Guards the arithmetic behind every capacity comparison: no float rounding, and strings written back
into ``consumedCapacity`` or a ResourceSlice in the form the API server itself would produce (the
publisher and the simulated API server compare what was written with what comes back).
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from dra_driver.core.devices import GIB, MIB
from dra_driver.core.quantity import (
    QuantityError,
    QuantityFormat,
    canonical,
    format_int,
    format_quantity,
    parse_quantity,
    quantity_value,
)

PARSE = {
    "binary gibibytes": ("16Gi", 16 * 1024**3),
    "binary kibibytes": ("1Ki", 1024),
    "decimal kilo": ("2k", 2000),
    "decimal mega": ("1M", 10**6),
    "milli": ("250m", Fraction(1, 4)),
    "plain integer": ("100", 100),
    "fractional binary": ("1.5Gi", 3 * 512 * 1024**2),
    "exponent": ("1e3", 1000),
    "negative exponent": ("5E-3", Fraction(5, 1000)),
    "leading plus": ("+7", 7),
    "leading dot": (".5", Fraction(1, 2)),
    "nano": ("3n", Fraction(3, 10**9)),
}


@pytest.mark.parametrize(("text", "value"), PARSE.values(), ids=PARSE.keys())
def test_quantity_parses_exactly(text: str, value: Fraction) -> None:
    assert parse_quantity(text).value == value


CANONICAL = {
    "whole gibibytes stay binary": ("16Gi", "16Gi"),
    "1024Mi becomes 1Gi": ("1024Mi", "1Gi"),
    "non-multiple of 1024 keeps the largest binary suffix": ("1536Mi", "1536Mi"),
    "small binary values print as decimal": ("512", "512"),
    "decimal thousands take the k suffix": ("1000", "1k"),
    "1500 stays 1500": ("1500", "1500"),
    "1500000 becomes 1500k": ("1.5M", "1500k"),
    "fractional binary prints in decimal milli units": ("0.5Ki", "512"),
    "milli": ("0.25", "250m"),
    "exponent form stays an exponent": ("1e3", "1e3"),
    "zero": ("0", "0"),
}


@pytest.mark.parametrize(("text", "expected"), CANONICAL.values(), ids=CANONICAL.keys())
def test_quantity_prints_canonically(text: str, expected: str) -> None:
    assert str(parse_quantity(text)) == expected


def test_values_finer_than_a_nano_round_up() -> None:
    assert format_quantity(Fraction(1, 10**10), QuantityFormat.DECIMAL_SI) == "1n"


@pytest.mark.parametrize("text", ["", "Gi", "1.2.3", "16GB", "1e", "abc", "1 Gi", " 1Gi", "1e99999"])
def test_a_malformed_quantity_is_rejected_with_the_text_quoted(text: str) -> None:
    with pytest.raises(QuantityError, match=r"capacity\.memory"):
        parse_quantity(text, "capacity.memory")


def test_equal_values_written_differently_are_equal() -> None:
    assert parse_quantity("1Gi") == parse_quantity("1024Mi") == parse_quantity("1073741824")
    assert parse_quantity("1k") < parse_quantity("1Ki")


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [
        (64 * GIB, True, "64Gi"),
        (81559 * MIB, True, "81559Mi"),
        (1536 * MIB, True, "1536Mi"),
        (1024 * GIB, True, "1Ti"),
        (100, False, "100"),
        (2000, False, "2k"),
        (1500, True, "1500"),
        (0, True, "0"),
    ],
)
def test_format_int_writes_the_canonical_form(value: int, binary: bool, text: str) -> None:
    assert format_int(value, binary=binary) == text
    assert quantity_value(text) == value


def test_equal_quantities_compare_equal_whatever_the_spelling() -> None:
    assert quantity_value("65536Mi") == quantity_value("64Gi")
    assert quantity_value("1k") == quantity_value("1000")


@pytest.mark.parametrize(("given", "stored"), [
    ("64Gi", "64Gi"), ("65536Mi", "64Gi"), ("1536Mi", "1536Mi"), ("1023Mi", "1023Mi"), ("1Ki", "1Ki"),
    ("512", "512"), ("1024", "1024"), ("2000", "2k"), ("1500", "1500"), ("1.5", "1500m"), ("0.1m", "1m"),
    ("500m", "500m"), ("3k", "3k"), ("1e3", "1e3"), ("12e2", "1200"), ("-2Gi", "-2Gi"), ("0", "0"),
    ("0Gi", "0"), (100, "100"), (1.5, "1500m"), ("+5", "5"), ("1.5Gi", "1536Mi"), ("0.5Ki", "512"),
])
def test_canonical_form_is_what_the_api_server_stores(given: object, stored: str) -> None:
    assert canonical(given) == stored


@pytest.mark.parametrize("bad", ["lots", "1.2.3", "5Xi", "", " ", True, None, {"value": 1}, "1e", "Gi"])
def test_malformed_quantities_are_rejected_in_the_api_servers_words(bad: object) -> None:
    with pytest.raises(QuantityError, match="quantities must match"):
        canonical(bad)
