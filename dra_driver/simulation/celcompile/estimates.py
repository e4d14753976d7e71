"""Ranges of sizes and costs with cel-go's saturating arithmetic (a product that overflows is the maximum).

An unknown size is [0, 2^64-1]; multiplying it by a cost factor gives a cost far over any limit, which is
why comparing two values of unknown length (``type(x) == int``, elements of a ``split`` result) makes the
real server refuse an expression as too complex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX = 2**64 - 1
STRING_TRAVERSAL_FACTOR = 0.1
REGEX_LENGTH_FACTOR = 0.25


def _add(x: int, y: int) -> int:
    return min(x + y, MAX)


def _mul(x: int, y: int) -> int:
    return min(x * y, MAX)


def _factor(x: int, factor: float) -> int:
    value = float(x)
    if value > 0 and factor > 0 and value > float(MAX) / factor:
        return MAX
    ceiled = math.ceil(value * factor)
    return MAX if ceiled >= 2**64 else int(ceiled)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A [min, max] range, of a size or of a cost."""

    min: int
    max: int

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(_add(self.min, other.min), _add(self.max, other.max))

    def times(self, other: Estimate) -> Estimate:
        return Estimate(_mul(self.min, other.min), _mul(self.max, other.max))

    def factor(self, per_unit: float) -> Estimate:
        return Estimate(_factor(self.min, per_unit), _factor(self.max, per_unit))

    def union(self, other: Estimate) -> Estimate:
        return Estimate(min(self.min, other.min), max(self.max, other.max))


def fixed(value: int) -> Estimate:
    return Estimate(value, value)


ZERO = fixed(0)
ONE = fixed(1)
UNKNOWN = Estimate(0, MAX)
