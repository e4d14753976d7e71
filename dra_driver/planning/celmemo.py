"""Selector results shared between devices that look the same to the selector.

The allocator caches CEL results per device, and cel-python needs about a millisecond per evaluation,
so a cluster of 500 nodes x 8 GPUs would spend seconds evaluating one class selector 4,000 times with
4,000 identical answers. ``SharedCel`` is the allocator's ``CelCache`` with a memo keyed by what the
expression can read: when every ``attributes[...]``/``capacity[...]`` access in it names its domain and
its field literally, the answer depends only on those values (plus ``driver`` and
``allowMultipleAllocations``), so devices that agree on them share one evaluation. An expression that
reads a map some other way (``exists``, ``size``, a computed key) is evaluated per device, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from celpy import celtypes

from dra_driver.simulation.allocator import CelCache, SelectorError

__all__ = ["Reference", "SharedCel", "referenced", "referenced_names"]

Reference = tuple[str, str, str]  # ("attributes" or "capacity", domain, name)

_WORD = re.compile(r"\b(attributes|capacity)\b")
# A literal access: attributes["domain"].name or attributes["domain"]["name"], not a method call.
_ACCESS = re.compile(
    r'\b(attributes|capacity)\s*\[\s*"([^"\\]*)"\s*\]\s*'
    r'(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()|\[\s*"([^"\\]*)"\s*\])'
)
_MISSING = object()


def referenced(expression: str) -> frozenset[Reference] | None:
    """The fields ``expression`` reads, or None when it reads a map in a way we cannot list."""
    accesses = list(_ACCESS.finditer(expression))
    if len(accesses) != len(_WORD.findall(expression)):
        return None
    return frozenset((m[1], m[2], m[3] or m[4]) for m in accesses)


def referenced_names(expressions: Iterable[str]) -> frozenset[str] | None:
    """The attribute and capacity names any of ``expressions`` reads (None: cannot tell for one)."""
    names: set[str] = set()
    for expression in expressions:
        found = referenced(expression)
        if found is None:
            return None
        names.update(name for _, _, name in found)
    return frozenset(names)


def _hashable(value: Any) -> Any:
    """The value with its type: CEL's true and 1 differ, Python's hash them alike."""
    if isinstance(value, list):  # celtypes.ListType: list attributes
        return ("list", tuple(_hashable(item) for item in value))
    return (type(value).__name__, value)


def _lookup(device: celtypes.MapType, reference: Reference) -> Any:
    kind, domain, name = reference
    by_domain = device[celtypes.StringType(kind)].get(celtypes.StringType(domain))
    if by_domain is None:
        return _MISSING
    value = by_domain.get(celtypes.StringType(name), _MISSING)
    return _hashable(value)


class SharedCel(CelCache):
    """A ``CelCache`` whose answers are shared by devices with equal values in the fields read."""

    def __init__(self) -> None:
        super().__init__()
        self._references: dict[str, tuple[Reference, ...] | None] = {}
        self._answers: dict[tuple[Any, ...], bool | SelectorError] = {}
        self.evaluations = 0  # how many times cel-python ran (for tests and the benchmark)

    def matches(self, expression: str, device: celtypes.MapType) -> bool:
        if expression not in self._references:
            found = referenced(expression)
            self._references[expression] = None if found is None else tuple(sorted(found))
        references = self._references[expression]
        if references is None:
            self.evaluations += 1
            return super().matches(expression, device)
        key = (
            expression,
            device[celtypes.StringType("driver")],
            device[celtypes.StringType("allowMultipleAllocations")],
            *(_lookup(device, reference) for reference in references),
        )
        answer = self._answers.get(key)
        if answer is None:
            self.evaluations += 1
            try:
                answer = super().matches(expression, device)
            except SelectorError as err:
                answer = err
            self._answers[key] = answer
        if isinstance(answer, SelectorError):
            raise answer
        return answer
