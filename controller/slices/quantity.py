"""Kubernetes quantities: writing them in canonical form and comparing them by value.

The API server re-emits every quantity in canonical form ("65536Mi" comes back as "64Gi"). Writing the
canonical form ourselves keeps what we send equal to what we read back; comparing by value keeps the
publisher from rewriting a slice only because a server chose another spelling.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from kubernetes.utils import parse_quantity

_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL_SUFFIXES = ("", "k", "M", "G", "T", "P", "E")


def format_quantity(value: int, binary: bool = True) -> str:
    """Canonical text of a non-negative integer quantity (binary suffixes for byte counts)."""
    if value < 0:
        raise ValueError(f"quantity {value} is negative")
    if value == 0:
        return "0"
    if binary and value % 1024 == 0:
        exponent = 0
        while value % 1024 == 0 and exponent < len(_BINARY_SUFFIXES) - 1:
            value //= 1024
            exponent += 1
        return f"{value}{_BINARY_SUFFIXES[exponent]}"
    exponent = 0
    while value % 1000 == 0 and exponent < len(_DECIMAL_SUFFIXES) - 1:
        value //= 1000
        exponent += 1
    return f"{value}{_DECIMAL_SUFFIXES[exponent]}"


@lru_cache(maxsize=4096)
def quantity_value(text: str | int | float) -> Decimal:
    """The exact value of a quantity as the API server returns it (string or, rarely, a number)."""
    parsed: Decimal = parse_quantity(text)  # type: ignore[no-untyped-call]
    return parsed
