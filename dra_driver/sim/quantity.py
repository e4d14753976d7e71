"""Canonical form of Kubernetes quantities, as a real API server stores them.

A server parses every quantity and writes it back canonically: ``1024Mi`` comes back as ``1Gi``, ``2000``
as ``2k``, ``1.5`` as ``1500m`` and a JSON number as a string. A driver that compares what it wrote with
what it reads back (XPUShare's publisher does, to detect dropped fields) must expect that, so the
simulator does the same. Values are rounded up to milli precision like resource.Quantity.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_PATTERN = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?")
_BINARY = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_DECIMAL = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse(value: object) -> tuple[Decimal, str]:
    """The amount (rounded up to milli precision) and the notation: binary, decimal or exponent."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(MESSAGE)
    text = str(value) if not isinstance(value, float) else repr(value)
    match = _PATTERN.fullmatch(text.strip())
    if match is None:
        raise QuantityError(MESSAGE)
    try:
        number = Decimal(match[1])
    except InvalidOperation as err:
        raise QuantityError(MESSAGE) from err
    suffix = match[2] or ""
    if suffix in _BINARY[1:]:
        amount, style = number * (Decimal(1024) ** _BINARY.index(suffix)), "binary"
    elif suffix[:1] in ("e", "E"):
        amount, style = number.scaleb(int(suffix[1:])), "exponent"
    else:
        amount, style = number.scaleb(_DECIMAL[suffix]), "decimal"
    return (amount * 1000).to_integral_value(rounding=ROUND_CEILING) / 1000, style


def amount(value: object) -> Decimal:
    return parse(value)[0]


def canonical(value: object) -> str:
    """The canonical string of a quantity given as a string or a JSON number."""
    amount, style = parse(value)
    if amount == 0:
        return "0"
    if style == "binary" and (abs(amount) < 1024 or amount != amount.to_integral_value()):
        style = "decimal"
    return _binary(int(amount)) if style == "binary" else _decimal(amount, style == "exponent")


def _binary(value: int) -> str:
    power = 0
    while power < len(_BINARY) - 1 and value % 1024 == 0:
        value //= 1024
        power += 1
    return f"{value}{_BINARY[power]}"


def _decimal(amount: Decimal, exponent_style: bool) -> str:
    mantissa = int(amount * 1000)
    exponent = -3
    while mantissa % 1000 == 0 and (exponent_style or exponent < 18):
        mantissa //= 1000
        exponent += 3
    if exponent_style:
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"
