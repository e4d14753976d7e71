"""The CEL environment that device selectors run in, shaped like kube-scheduler's.

A selector sees one variable, ``device``, with ``driver``, ``allowMultipleAllocations``,
``attributes["<domain>"].<name>`` and ``capacity["<domain>"].<name>``. Names published without a domain
belong to the driver's domain, and an unknown domain yields an empty map (so ``has(...)`` guards work), as
in Kubernetes. Version attributes are semantic versions and capacities are quantities, with the methods
of the Kubernetes CEL libraries: ``quantity()``/``isQuantity()``, ``semver()``/``isSemver()``,
``compareTo``, ``isGreaterThan``, ``isLessThan``, ``major``/``minor``/``patch``, ``sign``, ``isInteger``,
``asInteger``, ``asApproximateFloat``, ``add`` and ``sub``. ``cel.bind`` and the cost limit are not
supported (see docs/allocation.md).

Each expression compiles once per process (``CelCache``); evaluation is pure. cel-python's interpreter
costs a few hundred microseconds per evaluation, so the allocator also caches results per device.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import celpy
from celpy import celtypes
from celpy.evaluation import CELEvalError, bool_eq, bool_ge, bool_gt, bool_le, bool_lt, bool_ne

from api.errors import XPUShareError
from dra_driver.core.quantity import Quantity, QuantityError, parse_quantity

__all__ = ["CelCache", "SelectorError", "Semver", "device_variable", "parse_semver"]

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class SelectorError(XPUShareError):
    """A selector failed to compile or to evaluate; the real scheduler fails the claim with it."""


@dataclass(frozen=True, slots=True, order=False)
class Semver:
    """A semantic version (semver.org 2.0.0) ordered by precedence; build metadata is ignored."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    def key(self) -> tuple[Any, ...]:
        """Sort key: a release ranks above its pre-releases; numeric identifiers below alphanumeric."""
        pre = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)


def parse_semver(text: str) -> Semver:
    match = _SEMVER.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])")
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    return Semver(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre)


class _DomainMap(celtypes.MapType):
    """Outer attribute/capacity map: an unknown domain reads as an empty map, as in Kubernetes."""

    def __getitem__(self, key: Any) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            return celtypes.MapType({})


def _cmp(left: Any, right: Any) -> int:
    if isinstance(left, Quantity) and isinstance(right, Quantity):
        a: Any = left.value
        b: Any = right.value
    elif isinstance(left, Semver) and isinstance(right, Semver):
        a, b = left.key(), right.key()
    else:
        raise TypeError(f"no such overload: compare {type(left).__name__} with {type(right).__name__}")
    return int(a > b) - int(a < b)


def _quantity(text: Any) -> Quantity:
    try:
        return parse_quantity(str(text))
    except QuantityError as err:
        raise ValueError(str(err)) from err


def _is_quantity(text: Any) -> celtypes.BoolType:
    try:
        parse_quantity(str(text))
    except QuantityError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _is_semver(text: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_SEMVER.match(str(text)) is not None)


def _as_quantity(value: Any) -> Quantity:
    if isinstance(value, Quantity):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Quantity(Fraction(int(value)))
    raise TypeError(f"no such overload for {type(value).__name__}")


def _as_integer(q: Quantity) -> celtypes.IntType:
    if q.value.denominator != 1:
        raise ValueError(f"quantity {q} is not an integer")
    return celtypes.IntType(q.value.numerator)


_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


def _mixed_numbers(a: Any, b: Any) -> bool:
    return isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS) and type(a) is not type(b)


def _plain(number: Any) -> int | float:
    return float(number) if isinstance(number, celtypes.DoubleType) else int(number)


def _ordering(compare: Callable[[Any, Any], bool], native: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """CEL orders int, uint and double against each other by exact value (kube-apiserver's environment
    has cross-type numeric comparisons); cel-python refuses an int on the left of a double."""

    def ordered(a: Any, b: Any) -> Any:
        if _mixed_numbers(a, b):
            return celtypes.BoolType(compare(_plain(a), _plain(b)))
        return native(a, b)

    return ordered


def _equality(equal: bool, native: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """CEL's heterogeneous equality: numbers equal by value across types, values of other different
    types simply unequal; cel-python raises for both (only reachable through dyn attribute values, since
    the API server's type check refuses such literals)."""

    def compared(a: Any, b: Any) -> Any:
        if _mixed_numbers(a, b):
            return celtypes.BoolType((_plain(a) == _plain(b)) is equal)
        try:
            return native(a, b)
        except TypeError:
            if type(a) is type(b):
                raise
            return celtypes.BoolType(not equal)

    return compared


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_<_": _ordering(lambda a, b: a < b, bool_lt),
    "_<=_": _ordering(lambda a, b: a <= b, bool_le),
    "_>_": _ordering(lambda a, b: a > b, bool_gt),
    "_>=_": _ordering(lambda a, b: a >= b, bool_ge),
    "_==_": _equality(True, bool_eq),
    "_!=_": _equality(False, bool_ne),
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "semver": lambda text: parse_semver(str(text)),
    "isSemver": _is_semver,
    "compareTo": lambda a, b: celtypes.IntType(_cmp(a, b)),
    "isGreaterThan": lambda a, b: celtypes.BoolType(_cmp(a, b) > 0),
    "isLessThan": lambda a, b: celtypes.BoolType(_cmp(a, b) < 0),
    "major": lambda v: celtypes.IntType(v.major),
    "minor": lambda v: celtypes.IntType(v.minor),
    "patch": lambda v: celtypes.IntType(v.patch),
    "sign": lambda q: celtypes.IntType((q.value > 0) - (q.value < 0)),
    "isInteger": lambda q: celtypes.BoolType(q.value.denominator == 1),
    "asInteger": _as_integer,
    "asApproximateFloat": lambda q: celtypes.DoubleType(float(q.value)),
    "add": lambda q, other: q + _as_quantity(other),
    "sub": lambda q, other: q - _as_quantity(other),
}


def _attribute_value(value: object) -> Any:
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, Semver):
        return value
    if isinstance(value, tuple):
        return celtypes.ListType([_attribute_value(item) for item in value])
    return celtypes.StringType(str(value))


def _split_name(name: str, driver: str) -> tuple[str, str]:
    domain, sep, ident = name.partition("/")
    return (domain, ident) if sep else (driver, name)


def _by_domain(values: Mapping[str, Any], driver: str) -> _DomainMap:
    nested: dict[str, dict[Any, Any]] = {}
    for name, value in values.items():
        domain, ident = _split_name(name, driver)
        nested.setdefault(domain, {})[celtypes.StringType(ident)] = value
    return _DomainMap({celtypes.StringType(d): celtypes.MapType(m) for d, m in nested.items()})


def device_variable(
    driver: str,
    attributes: Mapping[str, object],
    capacity: Mapping[str, Quantity],
    allow_multiple_allocations: bool,
) -> celtypes.MapType:
    """The ``device`` variable for one device (built once per device and reused for every selector)."""
    return celtypes.MapType(
        {
            celtypes.StringType("driver"): celtypes.StringType(driver),
            celtypes.StringType("allowMultipleAllocations"): celtypes.BoolType(allow_multiple_allocations),
            celtypes.StringType("attributes"): _by_domain(
                {name: _attribute_value(value) for name, value in attributes.items()}, driver
            ),
            celtypes.StringType("capacity"): _by_domain(capacity, driver),
        }
    )


class CelCache:
    """Compiles each selector expression once; thread-safe, shared by every allocation in a process."""

    def __init__(self) -> None:
        self._env = celpy.Environment()
        self._programs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _program(self, expression: str) -> Any:
        with self._lock:
            cached = self._programs.get(expression)
            if cached is None:
                try:
                    cached = self._env.program(self._env.compile(expression), functions=_FUNCTIONS)
                except Exception as err:
                    cached = SelectorError(f"CEL compile error: {_first_line(err)}")
                self._programs[expression] = cached
        if isinstance(cached, SelectorError):
            raise cached
        return cached

    def matches(self, expression: str, device: celtypes.MapType) -> bool:
        """True when the selector accepts the device; SelectorError on a compile or runtime error."""
        program = self._program(expression)
        try:
            result = program.evaluate({"device": device})
        except Exception as err:
            raise SelectorError(f"CEL runtime error: {_first_line(err)}") from err
        if isinstance(result, CELEvalError):
            raise SelectorError(f"CEL runtime error: {_first_line(result)}")
        if not isinstance(result, celtypes.BoolType):
            raise SelectorError(f"CEL result must be a bool, not {type(result).__name__}")
        return bool(result)


def _first_line(err: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    text = str(args[0]) if args else str(err)
    if len(args) >= 3 and isinstance(args[2], tuple) and args[2]:
        text = f"{text}: {args[2][0]}"  # celpy keeps the underlying message in the third argument
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__
