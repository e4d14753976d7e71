"""What the library functions cost in the real server's estimate, before cel-go's defaults apply.

Kubernetes' CostEstimator prices its own functions and cel-go's string extension by the size of what
they read (``lowerAscii``, ``split``, ``join``, ``find``, list ``sum``/``max``/``indexOf``...), parsing
functions (``quantity``, ``semver``, ``url``, ``ip``, ``cidr``, and the ``is...`` tests but ``isURL``) by
the length of the string they parse, and charges 1 for quantity and semver methods and for ``==`` between
two values of the same Kubernetes type (so ``device.capacity[d].memory == quantity("1Gi")`` is cheap while
``!=`` between quantities, which has no such rule, counts as comparing values of unknown size). cel-go's
sets extension charges the product of both lists' sizes, and its list extension the size of the list it
builds (the square of it for ``sort`` and ``distinct``). Other functions fall through to cel-go's
defaults (``cost``).

The parts of this that differ from the Kubernetes source we read (parsing functions, ``==``, the size of
``url``'s result) were established against a real v1.36.3 API server. Not reproduced: the per-overload
estimators newer cel-go releases attach to the string extension, which would take precedence; they
differ only for expressions far from anything a device selector needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from dra_driver.simulation.celcompile.estimates import (
    MAX,
    ONE,
    REGEX_LENGTH_FACTOR,
    STRING_TRAVERSAL_FACTOR,
    UNKNOWN,
    Estimate,
    fixed,
)
from dra_driver.simulation.celcompile.nodes import Expr, Literal
from dra_driver.simulation.celcompile.sizes import estimate_size
from dra_driver.simulation.celcompile.types import CelType


@dataclass
class Operand:
    """What an estimator knows of an argument: its node, path into ``device``, type and computed size."""

    expr: Expr | None
    path: list[str] | None
    type: CelType
    size: Estimate | None


@dataclass
class CallCost:
    cost: Estimate
    result_size: Estimate | None = None


def size_of(node: Operand) -> Estimate:
    """Kubernetes' sizeEstimate: the computed size, else the declared one, else unknown."""
    return node.size or estimate_size(node.path) or UNKNOWN


def _elements(list_node: Operand) -> Operand | None:
    if not list_node.type.params:
        return None
    path = [*list_node.path, "@items"] if list_node.path else None
    return Operand(None, path, list_node.type.params[0], None)


_FIXED_ONE = frozenset(
    {
        "sign",
        "asInteger",
        "isInteger",
        "asApproximateFloat",
        "isGreaterThan",
        "isLessThan",
        "compareTo",
        "add",
        "sub",
        "masked",
        "prefixLength",
        "family",
        "isUnspecified",
        "isLoopback",
        "isLinkLocalMulticast",
        "isLinkLocalUnicast",
    }
)


def _list_scan(target: Operand, _: list[Operand], __: str) -> CallCost | None:
    element = _elements(target)
    if element is None:  # indexOf/lastIndexOf on a string
        return CallCost(size_of(target).factor(STRING_TRAVERSAL_FACTOR))
    per_element = ONE
    if element.type.kind in ("string", "bytes"):
        per_element = per_element + size_of(element).factor(STRING_TRAVERSAL_FACTOR)
    return CallCost(size_of(target).times(per_element))


def _traverse(target: Operand, _: list[Operand], __: str) -> CallCost | None:
    size = size_of(target)
    return CallCost(size.factor(STRING_TRAVERSAL_FACTOR), size)


def _replace(target: Operand, args: list[Operand], _: str) -> CallCost | None:
    if len(args) < 2:
        return None
    size, old, new = size_of(target), size_of(args[0]), size_of(args[1])
    if old.min == 0:
        count_max, kept_max = (size.max + 1 if size.max < MAX else size.max), size.max
    elif new.max <= old.min:
        count_max, kept_max = 0, size.max
    else:
        count_max, kept_max = math.ceil(size.max / old.min), 0
    if old.max == 0:
        count_min, kept_min = (size.min + 1 if size.min < MAX else size.min), size.min
    elif old.max <= new.min:
        count_min, kept_min = 0, size.min
    else:
        count_min, kept_min = math.ceil(size.min / old.max), 0
    result = Estimate(count_min, count_max).times(new) + Estimate(kept_min, kept_max)
    return CallCost(size.factor(2 * STRING_TRAVERSAL_FACTOR), result)


def _split(target: Operand, args: list[Operand], _: str) -> CallCost | None:
    size = size_of(target)
    longest = size.max
    if len(args) > 1 and isinstance(args[1].expr, Literal) and isinstance(args[1].expr.value, int):
        longest = args[1].expr.value % 2**64  # the limit, as cel-go converts it to uint
    return CallCost(size.factor(2 * STRING_TRAVERSAL_FACTOR), Estimate(0, longest))


def _join(target: Operand, args: list[Operand], _: str) -> CallCost | None:
    count = size_of(target)
    element = _elements(target)
    total = count.times(size_of(element)) if element else Estimate(0, 0)
    if args:
        separators = Estimate(max(count.min - 1, 0), max(count.max - 1, 0))
        total = total + size_of(args[0]).times(separators)
    return CallCost(total.factor(STRING_TRAVERSAL_FACTOR), total)


def _find(target: Operand, args: list[Operand], _: str) -> CallCost | None:
    if not args:
        return None
    size = size_of(target)
    text_cost = (size + ONE).factor(STRING_TRAVERSAL_FACTOR)
    regex_cost = size_of(args[0]).factor(REGEX_LENGTH_FACTOR)
    return CallCost(text_cost.times(regex_cost), Estimate(0, size.max))


def _ip(target: Operand, args: list[Operand], overload: str) -> CallCost | None:
    if overload == "cidr_ip" or not args:
        return CallCost(ONE)
    return CallCost(size_of(args[0]).factor(STRING_TRAVERSAL_FACTOR))


def _contains_ip(_: Operand, args: list[Operand], overload: str) -> CallCost | None:
    if not args:
        return None
    ip_bytes = Estimate(4, 16)
    cost = (ip_bytes + ip_bytes).factor(STRING_TRAVERSAL_FACTOR)
    if overload == "cidr_contains_ip_string":
        cost = cost + size_of(args[0]).factor(STRING_TRAVERSAL_FACTOR)
    return CallCost(cost)


def _contains_cidr(_: Operand, args: list[Operand], overload: str) -> CallCost | None:
    if not args:
        return None
    ip_bytes = Estimate(4, 16)
    cost = (ip_bytes + ip_bytes).factor(STRING_TRAVERSAL_FACTOR) + ip_bytes.factor(STRING_TRAVERSAL_FACTOR)
    cost = cost + ONE
    if overload == "cidr_contains_cidr_string":
        cost = cost + size_of(args[0]).factor(STRING_TRAVERSAL_FACTOR)
    return CallCost(cost)


_MEMBER: dict[str, Callable[[Operand, list[Operand], str], CallCost | None]] = {
    "isSorted": _list_scan,
    "sum": _list_scan,
    "max": _list_scan,
    "min": _list_scan,
    "indexOf": _list_scan,
    "lastIndexOf": _list_scan,
    "lowerAscii": _traverse,
    "upperAscii": _traverse,
    "substring": _traverse,
    "trim": _traverse,
    "replace": _replace,
    "split": _split,
    "join": _join,
    "find": _find,
    "findAll": _find,
    "ip": _ip,
    "containsIP": _contains_ip,
    "containsCIDR": _contains_cidr,
}
# Global functions whose cost is one pass over the string they parse (``ip.isCanonical``: two passes).
_PARSERS = {
    "quantity": 1,
    "isQuantity": 1,
    "semver": 1,
    "isSemver": 1,
    "ip": 1,
    "isIP": 1,
    "cidr": 1,
    "isCIDR": 1,
    "ip.isCanonical": 2,
}
_CHEAP_EQUALITY = frozenset(
    {
        "kubernetes.Quantity",
        "kubernetes.Semver",
        "kubernetes.URL",
        "kubernetes.NamedFormat",
        "net.IP",
        "net.CIDR",
    }
)
_SETS = {"list_sets_contains_list": 1.0, "list_sets_intersects_list": 1.0, "list_sets_equivalent_list": 2.0}


def _int_literal(node: Operand, default: int) -> int:
    if isinstance(node.expr, Literal) and type(node.expr.value) is int:
        return max(node.expr.value, 0)
    return default


def _allocating(factor: float, size: Estimate) -> CallCost:
    """cel-go's list extension: the result's size times a factor, plus the call and the new list."""
    return CallCost(size.factor(factor) + ONE + fixed(10), size)


def _whole_list(overload: str, size: Estimate, args: list[Operand]) -> CallCost | None:
    """reverse, flatten and distinct: a pass (or, for distinct, a comparison of every pair) per element."""
    if overload == "list_reverse" and not args:
        return _allocating(1, size)
    if overload in ("list_flatten", "list_flatten_int") and len(args) <= 1:
        return _allocating(float(_int_literal(args[0], MAX)) if args else 1.0, size)
    if overload == "list_distinct" and not args:
        return _allocating(2, size.times(size))
    return None


def _sorting(overload: str, size: Estimate, args: list[Operand]) -> CallCost | None:
    """sort (and sortBy's keys): every pair compared, strings and bytes a little dearer."""
    sorting = overload.endswith("_sort") and not args
    if not sorting and not (overload.endswith("_sortByAssociatedKeys") and len(args) == 1):
        return None
    keys = size if sorting else size_of(args[0])
    textual = overload.startswith(("list_string_", "list_bytes_"))
    return _allocating(2 + (STRING_TRAVERSAL_FACTOR if textual else 0), keys.times(keys))


def _list_extension(overload: str, target: Operand | None, args: list[Operand]) -> CallCost | None:
    """The estimates cel-go's list extension (version 3) registers for its overloads."""
    if overload == "lists_range" and target is None and len(args) == 1:
        return _allocating(1, fixed(_int_literal(args[0], MAX)))
    if target is None:
        return None
    size = size_of(target)
    if overload == "list_slice" and len(args) == 2:
        start, end = _int_literal(args[0], 0), _int_literal(args[1], size.max)
        return _allocating(1, fixed(max(end - start, 0)))
    return _whole_list(overload, size, args) or _sorting(overload, size, args)


def _kubernetes(function: str, overload: str, target: Operand | None, args: list[Operand]) -> CallCost | None:
    """Kubernetes' CostEstimator for the functions it knows by name."""
    if function in _FIXED_ONE:
        return CallCost(ONE)
    if (
        function == "_==_"
        and len(args) == 2
        and args[0].type == args[1].type
        and args[0].type.name in _CHEAP_EQUALITY
    ):
        return CallCost(ONE)
    if function == "url" and len(args) == 1:
        size = size_of(args[0])
        return CallCost(size.factor(STRING_TRAVERSAL_FACTOR), size)
    if function in _PARSERS and target is None and args:
        return CallCost(size_of(args[0]).factor(_PARSERS[function] * STRING_TRAVERSAL_FACTOR))
    member = _MEMBER.get(function)
    if member is not None and target is not None:
        return member(target, args, overload)
    return None


def library_cost(
    function: str, overload: str, target: Operand | None, args: list[Operand]
) -> CallCost | None:
    """The library's own estimate of a call (without its arguments' costs), or None for cel-go's default."""
    if overload in _SETS and len(args) == 2:
        return CallCost(size_of(args[0]).times(size_of(args[1])).factor(_SETS[overload]) + ONE)
    return _list_extension(overload, target, args) or _kubernetes(function, overload, target, args)


__all__ = ["CallCost", "Operand", "fixed", "library_cost", "size_of"]
