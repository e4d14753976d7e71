"""Literal tokens of cel-python's grammar as typed values (the cost estimate needs a string's length).

cel-python's parser keeps literal tokens as source text; cel-go decodes them while parsing. Decoding the
escapes here (``\\n``, ``\\x41``, ``\\u00e9``, octal, raw strings, triple quotes) gives the same lengths.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dra_driver.simulation.celcompile.types import BOOL, BYTES, DOUBLE, INT, NULL, STRING, UINT, CelType

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)
INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class BadLiteralError(ValueError):
    """A number literal out of range: cel-go refuses it while parsing."""


def _unescape(match: re.Match[str]) -> str:
    text = match.group(0)[1:]
    if text[0] in "xuU":
        return chr(int(text[1:], 16))
    if text[0].isdigit():
        return chr(int(text, 8))
    return _SIMPLE_ESCAPES.get(text, "\\" + text)


def _quoted(text: str) -> str:
    raw = text[0] in "rR"
    body = text[1:] if raw else text
    quote = 3 if body[:3] in ('"""', "'''") else 1
    inner = body[quote:-quote]
    return inner if raw else _ESCAPE.sub(_unescape, inner)


def _integer(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("-")
    return sign * int(digits, 16 if digits[:2].lower() == "0x" else 10)


def _int(text: str) -> tuple[CelType, object]:
    value = _integer(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise BadLiteralError("invalid int literal")
    return INT, value


def _uint(text: str) -> tuple[CelType, object]:
    value = _integer(text[:-1])
    if not 0 <= value <= UINT64_MAX:
        raise BadLiteralError("invalid uint literal")
    return UINT, value


_DECODERS: dict[str, Callable[[str], tuple[CelType, object]]] = {
    "INT_LIT": _int,
    "UINT_LIT": _uint,
    "FLOAT_LIT": lambda text: (DOUBLE, float(text)),
    "STRING_LIT": lambda text: (STRING, _quoted(text)),
    "MLSTRING_LIT": lambda text: (STRING, _quoted(text)),
    "BYTES_LIT": lambda text: (BYTES, _quoted(text[1:]).encode("utf-8", "surrogateescape")),
    "BOOL_LIT": lambda text: (BOOL, text == "true"),
}


def decode(kind: str, text: str) -> tuple[CelType, object]:
    """The CEL type and Python value of a literal token of ``kind`` (cel-python's terminal names)."""
    decoder = _DECODERS.get(kind)
    return decoder(text) if decoder else (NULL, None)
