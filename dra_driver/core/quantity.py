"""Kubernetes resource quantities ("16Gi", "250m", "1e3") parsed exactly and printed canonically.

Capacities, counters and capacity requests all travel as quantity strings. Comparing or summing them with
floats would let a claim slip past a device's limit by a rounding error, so values are held as
``fractions.Fraction`` and printed back in the canonical form the API server uses (the largest binary
suffix that divides a BinarySI value, otherwise a decimal mantissa with an SI suffix or exponent that is a
multiple of three). Every component reads and writes quantities here: the allocator (exact arithmetic),
the slice builder and publisher (canonical text, comparison by value), the node plugin
(``consumedCapacity``) and the simulated API server (what a server stores and answers with).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache

from api.errors import ConfigError

__all__ = [
    "Quantity",
    "QuantityError",
    "QuantityFormat",
    "canonical",
    "format_int",
    "format_quantity",
    "parse_quantity",
    "quantity_value",
    "stored_value",
]

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_PATTERN = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_MAX_EXPONENT = 64  # far beyond any real capacity; keeps "1e999999" from building a huge integer
_NANO = Fraction(1, 10**9)
_MILLI = Fraction(1, 1000)
# The API server's own wording, which the simulated server answers with.
SERVER_MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(ConfigError, ValueError):
    """A string is not a Kubernetes quantity; the message quotes it and names the accepted forms.

    Also a ``ValueError``, so code that treats any malformed value alike needs no special case.
    """


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
    return _format_nanos(math.ceil(value / _NANO), exponent_style=fmt is QuantityFormat.DECIMAL_EXPONENT)


def format_int(value: int, binary: bool = True) -> str:
    """Canonical text of a non-negative integer: binary suffixes for byte counts, decimal otherwise.

    Integer arithmetic only, since the slice builder writes several of these per device. A byte count
    that no power of 1024 divides is written in decimal, because that is how the server reads it back.
    """
    if value < 0:
        raise ValueError(f"quantity {value} is negative")
    if binary and value and value % 1024 == 0:
        return _format_binary(value)
    return _format_nanos(value * 10**9, exponent_style=False)


@lru_cache(maxsize=4096)
def quantity_value(text: str | int | float) -> Fraction:
    """The exact value of a quantity as the API server returns it (string or, rarely, a JSON number)."""
    return parse_quantity(repr(text) if isinstance(text, float) else text).value


def stored_value(value: object) -> Fraction:
    """The value an API server stores: JSON numbers accepted, rounded up to milli precision."""
    return _stored(value).value


def canonical(value: object) -> str:
    """The string an API server stores for a quantity given as a string or a JSON number."""
    return str(_stored(value))


def _stored(value: object) -> Quantity:
    """Raises ``QuantityError`` with the server's own message, which the simulated server passes on."""
    if isinstance(value, float):
        value = repr(value)
    elif isinstance(value, str):
        value = value.strip()
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise QuantityError(SERVER_MESSAGE)
    try:
        parsed = parse_quantity(value)
    except QuantityError as err:
        raise QuantityError(SERVER_MESSAGE) from err
    return parsed.with_value(math.ceil(parsed.value / _MILLI) * _MILLI)


def _format_binary(number: int) -> str:
    power = 0
    while power < len(_BINARY) and number % 1024 == 0:
        number //= 1024
        power += 1
    suffix = next((name for name, exp in _BINARY.items() if exp == power), "")
    return f"{number}{suffix}"


def _format_nanos(nanos: int, exponent_style: bool) -> str:
    """``nanos`` billionths as a decimal mantissa with an SI suffix, or an exponent, of a power of 1000."""
    if nanos == 0:
        return "0"
    exponent = -9
    # Climb in steps of three while the mantissa stays whole: 1500000 -> 1500k, 1000 -> 1k. Exponents
    # have no suffix to run out of, so only the SI form stops at E (10^18).
    while (exponent_style or exponent < 18) and nanos % 1000 == 0:
        nanos //= 1000
        exponent += 3
    if exponent_style:
        return str(nanos) if exponent == 0 else f"{nanos}e{exponent}"
    return f"{nanos}{_DECIMAL_SUFFIX[exponent]}"
