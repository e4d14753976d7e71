"""What the JSON and YAML readers hand to the decoders: plain values, plus what plain values cannot say.

A ``dict`` forgets that a key was given twice, YAML allows keys that JSON cannot encode (``1:``, ``[a]:``,
dates), and an integer of thousands of digits cannot even be turned into text (Python refuses over 4,300
digits). The readers record these instead of silently keeping one value or crashing later, so the
decoders and ``xpushare config validate`` can report them with the path where they sit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from api.errors import Issue, join_path

MAX_INT_DIGITS = 100
"""Longer integers are read as ``OutOfRangeInt``: no field allows more than 19 digits, and converting
thousands of digits costs the quadratic time that Python's int/str limit exists to stop."""

_BEYOND = 10**MAX_INT_DIGITS


class ParsedObject(dict[str, Any]):
    """A parsed object that remembers its keys given more than once, and its keys that were not strings
    (described in JSON terms and left out of the object, which holds string keys only)."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[str] = []
        self.bad_keys: list[str] = []


class OutOfRangeInt(int):
    """Stands for an integer too long to read: its value lies beyond every range a field allows, and it
    describes itself by its length (``a 5000-digit number``), never by converting its digits."""

    digits: int

    def __new__(cls, digits: int, *, negative: bool = False) -> OutOfRangeInt:
        value = super().__new__(cls, -_BEYOND if negative else _BEYOND)
        value.digits = digits
        return value

    def __repr__(self) -> str:
        return f"{'a negative' if self < 0 else 'a'} {self.digits}-digit number"

    __str__ = __repr__


def parse_int(text: str) -> int:
    """An integer from its decimal digits, or an ``OutOfRangeInt`` past ``MAX_INT_DIGITS`` digits."""
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        return OutOfRangeInt(digits, negative=text.lstrip().startswith("-"))
    return int(text)


def describe(value: Any) -> str:
    """A value as the user wrote it, in JSON terms, short enough for one line."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, OutOfRangeInt):
        return str(value)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):  # not JSON (bytes from YAML's !!binary), or an int too long to write
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def key_issues(value: Any, path: str = "") -> list[Issue]:
    """Every key given twice and every key that is not a string, anywhere in ``value``, by path.

    Issues come in document order. Iterative, so that depth costs no stack; the readers bound the size
    it walks (aliases counted as expanded).
    """
    issues: list[Issue] = []
    pending: list[tuple[str, Any]] = [(path, value)]
    while pending:
        where, node = pending.pop()
        if isinstance(node, Mapping):
            issues.extend(Issue(join_path(where, key), "field given more than once")
                          for key in getattr(node, "duplicates", ()))
            bad = list(getattr(node, "bad_keys", ()))
            bad += [describe(key) for key in node if not isinstance(key, str)]
            issues.extend(Issue(where, f"field names must be strings (got {got})") for got in bad)
            children = [(join_path(where, key), child) for key, child in node.items() if isinstance(key, str)]
            pending.extend(reversed(children))
        elif isinstance(node, list | tuple):
            pending.extend(reversed([(f"{where}[{index}]", child) for index, child in enumerate(node)]))
    return issues
