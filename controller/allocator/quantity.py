"""Kubernetes resource quantities ("16Gi", "250m", "1e3") parsed exactly and printed canonically.

Capacities, counters and capacity requests all travel as quantity strings. Comparing or summing them with
floats would let a claim slip past a device's limit by a rounding error, so values are held as
``fractions.Fraction`` and printed back in the canonical form the API server uses (the largest binary
suffix that divides a BinarySI value, otherwise a decimal mantissa with an SI suffix or exponent that is a
multiple of three). The module has no dependency on the rest of the allocator so other components (the
node plugin reading ``consumedCapacity``, a capacity planner) can reuse it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from dra_driver.errors import ConfigError

__all__ = ["Quantity", "QuantityError", "QuantityFormat", "format_quantity", "parse_quantity"]

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_PATTERN = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_MAX_EXPONENT = 64  # far beyond any real capacity; keeps "1e999999" from building a huge integer
_NANO = Fraction(1, 10**9)


class QuantityError(ConfigError):
    """A string is not a Kubernetes quantity; the message quotes it and names the accepted forms."""


class QuantityFormat(StrEnum):
    """How a quantity prints; taken from the suffix it was written with, as Kubernetes does."""

    BINARY_SI = "BinarySI"
    DECIMAL_SI = "DecimalSI"
    DECIMAL_EXPONENT = "DecimalExponent"


@dataclass(frozen=True, slots=True, eq=False)
class Quantity:
    """An exact quantity; equal and ordered by value alone, whatever suffix it was written with."""

    value: Fraction
    format: QuantityFormat = QuantityFormat.DECIMAL_SI

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def __gt__(self, other: Quantity) -> bool:
        return self.value > other.value

    def __ge__(self, other: Quantity) -> bool:
        return self.value >= other.value

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, self.format)

    def with_value(self, value: Fraction) -> Quantity:
        """Same print format, another value (sums and rounded requests keep the capacity's style)."""
        return Quantity(value, self.format)


def parse_quantity(text: str | int | Quantity, field: str = "quantity") -> Quantity:
    """Parse ``text`` exactly; ``field`` names where it came from in the error message."""
    if isinstance(text, Quantity):
        return text
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise QuantityError(f"{field}: expected a quantity string such as '16Gi', got {text!r}")
    if isinstance(text, int):
        return Quantity(Fraction(text))
    match = _PATTERN.match(text)
    if match is None:
        raise QuantityError(
            f"{field}: {text!r} is not a quantity; use a number with an optional suffix "
            "(Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E) or exponent (e3)"
        )
    number, suffix = match.group(1), match.group(2) or ""
    value = Fraction(number)
    if suffix in _BINARY:
        return Quantity(value * 1024 ** _BINARY[suffix], QuantityFormat.BINARY_SI)
    if suffix[:1] in {"e", "E"} and suffix not in _DECIMAL:
        exponent = int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"{field}: exponent of {text!r} is out of range (|e| <= {_MAX_EXPONENT})")
        return Quantity(value * Fraction(10) ** exponent, QuantityFormat.DECIMAL_EXPONENT)
    return Quantity(value * Fraction(10) ** _DECIMAL[suffix], QuantityFormat.DECIMAL_SI)


def format_quantity(value: Fraction | int, fmt: QuantityFormat = QuantityFormat.DECIMAL_SI) -> str:
    """The canonical string for ``value``; values finer than 1n round up, as the API server does."""
    value = Fraction(value)
    if fmt is QuantityFormat.BINARY_SI and value.denominator == 1 and abs(value) >= 1024:
        return _format_binary(value.numerator)
    if value % _NANO:
        value = Fraction(math.ceil(value / _NANO)) * _NANO
    return _format_decimal(value, exponent_style=fmt is QuantityFormat.DECIMAL_EXPONENT)


def _format_binary(number: int) -> str:
    power = 0
    while power < len(_BINARY) and number % 1024 == 0:
        number //= 1024
        power += 1
    suffix = next((name for name, exp in _BINARY.items() if exp == power), "")
    return f"{number}{suffix}"


def _format_decimal(value: Fraction, exponent_style: bool) -> str:
    if value == 0:
        return "0"
    exponent = -9
    mantissa = value * 10**9
    # Climb in steps of three while the mantissa stays whole: 1500000 -> 1500k, 1000 -> 1k.
    while exponent < 18 and mantissa % 1000 == 0:
        mantissa /= 1000
        exponent += 3
    digits = str(mantissa.numerator)
    if exponent_style:
        return digits if exponent == 0 else f"{digits}e{exponent}"
    return f"{digits}{_DECIMAL_SUFFIX[exponent]}"
