"""The worst-case cost of a type-checked selector, as cel-go's estimator computes it for kube-apiserver.

The real server refuses a selector whose estimated maximum cost exceeds 1,000,000 (a ``Forbidden`` "too
complex, exceeds cost limit"). The estimate charges 1 per identifier and field selection, list and map
literals a base cost, comparisons of strings a tenth of the shorter one's length, and a comprehension its
range's size times the cost of one step: four nested loops over ``device.attributes`` (32 domains, 32
names each) are over the limit, three are not. Sizes come from literals, from the declared limits of
``device`` (``sizes``) by the path an expression reads, or are unknown, and comparing two values of
unknown size costs more than any limit. ``has()`` costs nothing, as Kubernetes configures it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dra_driver.simulation.celcompile.checker import Checked
from dra_driver.simulation.celcompile.estimates import (
    MAX,
    ONE,
    REGEX_LENGTH_FACTOR,
    STRING_TRAVERSAL_FACTOR,
    UNKNOWN,
    ZERO,
    Estimate,
    fixed,
)
from dra_driver.simulation.celcompile.library_costs import CallCost, Operand, library_cost
from dra_driver.simulation.celcompile.nodes import (
    ACCUMULATOR,
    Call,
    Comprehension,
    Expr,
    Ident,
    ListExpr,
    Literal,
    MapExpr,
    Select,
    StructExpr,
)
from dra_driver.simulation.celcompile.sizes import estimate_size

SELECTOR_MAX_COST = 1_000_000  # resource.CELSelectorExpressionMaxCost
_ACCUMULATORS = (ACCUMULATOR, "__result__")
_COMPARISONS = frozenset(
    {"equals", "not_equals"}
    | {
        f"{op}_{kind}"
        for op in ("less", "less_equals", "greater", "greater_equals")
        for kind in ("string", "bytes")
    }
)


@dataclass
class _Entry:
    """Sizes of a container's keys (indices) and values."""

    list_like: bool
    key: Estimate
    value: Estimate

    def union(self, other: _Entry | None) -> _Entry | None:
        if other is None:
            return None
        return _Entry(self.list_like, self.key.union(other.key), self.value.union(other.value))


@dataclass
class _Local:
    path: list[str] | None
    size: Estimate | None
    entry: _Entry | None = None


@dataclass
class _State:
    paths: dict[Expr, list[str]] = field(default_factory=dict)
    sizes: dict[Expr, Estimate] = field(default_factory=dict)
    entries: dict[Expr, _Entry] = field(default_factory=dict)
    locals: dict[str, list[_Local]] = field(default_factory=dict)


class _Coster:
    """One estimate: the paths into ``device`` that nodes read, the sizes known so far, and the macro
    variables in scope (cel-go's coster)."""

    def __init__(self, checked: Checked) -> None:
        self.checked = checked
        self.s = _State()

    # -- paths, sizes and local variables ----------------------------------------------------------
    def local(self, name: str) -> _Local | None:
        stack = self.s.locals.get(name)
        return stack[-1] if stack else None

    def path(self, e: Expr) -> list[str] | None:
        if isinstance(e, Ident) and (var := self.local(e.name)) is not None:
            return var.path
        return self.s.paths.get(e)

    def size(self, e: Expr) -> Estimate | None:
        if e in self.s.sizes:
            return self.s.sizes[e]
        literal = _literal_size(e)
        if literal is not None:
            return literal
        declared = estimate_size(self.path(e))
        if declared is not None:
            self.s.sizes[e] = declared
            return declared
        if self.checked.type_of(e).is_scalar:
            return ONE
        if isinstance(e, Ident) and (var := self.local(e.name)) is not None:
            return var.size
        return None

    def size_or_unknown(self, e: Expr) -> Estimate:
        return self.size(e) or UNKNOWN

    def entry(self, e: Expr) -> _Entry | None:
        if e in self.s.entries:
            return self.s.entries[e]
        if isinstance(e, Ident) and (var := self.local(e.name)) is not None:
            return var.entry
        return None

    def operand(self, e: Expr) -> Operand:
        path = self.path(e)
        if path and path[0] in _ACCUMULATORS:
            path = None
        return Operand(e, path, self.checked.type_of(e), self.size(e))

    def push(self, name: str, local: _Local) -> None:
        self.s.locals.setdefault(name, []).append(local)

    def pop(self, name: str) -> None:
        self.s.locals[name].pop()

    def push_iteration(self, name: str, rng: Expr, part: str) -> None:
        """An iteration variable: ``part`` is "key", "value" or "single" (one-variable loops)."""
        entry = self.entry(rng)
        list_like = entry.list_like if entry else self.checked.type_of(rng).kind == "list"
        if part == "key":
            sub, size = ("@indices" if list_like else "@keys"), (entry.key if entry else None)
        elif part == "value" or list_like:
            sub, size = ("@items" if list_like else "@values"), (entry.value if entry else None)
        else:
            sub, size = "@keys", (entry.key if entry else None)
        self.push(name, _Local([*(self.path(rng) or []), sub], size))

    # -- nodes -------------------------------------------------------------------------------------
    def cost(self, e: Expr) -> Estimate:
        if isinstance(e, Ident):
            return self.ident(e)
        if isinstance(e, Select):
            return self.select(e)
        if isinstance(e, Call):
            return self.call(e)
        if isinstance(e, ListExpr | MapExpr):
            return self.aggregate(e)
        if isinstance(e, StructExpr):
            return sum((self.cost(v) for _, v in e.fields), ZERO) + fixed(40)
        return self.comprehension(e) if isinstance(e, Comprehension) else ZERO  # or a literal

    def ident(self, e: Ident) -> Estimate:
        var = self.local(e.name)
        path = var.path if var is not None else [e.name]
        if path is not None:
            self.s.paths[e] = path
        return ONE

    def select(self, e: Select) -> Estimate:
        if e.test_only:
            return self.cost(e.operand)  # has() is free in Kubernetes' environment
        total = self.cost(e.operand)
        if self.checked.type_of(e.operand).kind in ("map", "struct", "param"):
            total = total + ONE
        self.s.paths[e] = [*(self.path(e.operand) or []), e.field]
        return total

    def aggregate(self, e: ListExpr | MapExpr) -> Estimate:
        parts = e.elements if isinstance(e, ListExpr) else [x for entry in e.entries for x in entry]
        total = sum((self.cost(p) for p in parts), ZERO)
        empty = not parts
        if isinstance(e, ListExpr):
            values = _union_sizes([self.size_or_unknown(p) for p in e.elements], empty)
            self.s.entries[e] = _Entry(True, ONE, values)
            return total + fixed(10)
        keys = _union_sizes([self.size_or_unknown(k) for k, _ in e.entries], empty)
        values = _union_sizes([self.size_or_unknown(v) for _, v in e.entries], empty)
        self.s.entries[e] = _Entry(False, keys, values)
        return total + fixed(30)

    def call(self, e: Call) -> Estimate:
        name = self.checked.functions.get(e, e.function)
        if name == "dyn" and len(e.args) == 1:
            inner = self.cost(e.args[0])
            self.copy_sizes(e, e.args[0])
            return ONE + inner
        arg_costs = [self.cost(a) for a in e.args]
        args = [self.operand(a) for a in e.args]
        overloads = self.checked.overloads.get(e, ())
        if not overloads:
            return ZERO
        total = ZERO
        target: Operand | None = None
        if (receiver := self.checked.receivers.get(e)) is not None:
            total = self.cost(receiver)
            target = self.operand(receiver)
        spent = Estimate(MAX, 0)
        result_size: Estimate | None = None
        for overload in overloads:
            estimate = self.function(e, name, overload, target=target, args=args, arg_costs=arg_costs)
            spent = spent.union(estimate.cost)
            if estimate.result_size is not None:
                result_size = (
                    estimate.result_size if result_size is None else result_size.union(estimate.result_size)
                )
            if overload in ("index_list", "index_map") and e.args:
                entry = self.entry(e.args[0])
                result_size = entry.value if entry else None
                self.s.paths[e] = [
                    *(self.path(e.args[0]) or []),
                    "@items" if overload == "index_list" else "@values",
                ]
            if result_size is None:
                result_size = self.size(e)
        if result_size is not None:
            self.s.sizes[e] = result_size
        return total + spent

    def function(
        self,
        e: Call,
        name: str,
        overload: str,
        *,
        target: Operand | None,
        args: list[Operand],
        arg_costs: list[Estimate],
    ) -> CallCost:
        """One overload's cost, with its arguments' (cel-go's functionCost)."""
        if overload in ("logical_and", "logical_or"):
            lhs, rhs = arg_costs  # the right side may be skipped: it counts for the maximum only
            return CallCost(Estimate(lhs.min, (lhs + rhs).max))
        if overload == "conditional":
            return self.conditional(e, args, arg_costs)
        arg_sum = sum(arg_costs, ZERO)
        own = library_cost(name, overload, target, args) or self.default_cost(e, overload, target, args)
        if own is None:
            return CallCost(ONE + arg_sum)
        return CallCost(own.cost + arg_sum, own.result_size)

    def default_cost(
        self, e: Call, overload: str, target: Operand | None, args: list[Operand]
    ) -> CallCost | None:
        """cel-go's own estimates for the standard library, without the arguments' costs."""
        if overload in ("add_string", "add_bytes", "add_list"):
            return self.concatenation(e, overload, args)
        if overload in _COMPARISONS:
            shorter = min(_size(args[0]).max, _size(args[1]).max)
            return CallCost(Estimate(1 if shorter > 0 else 0, shorter).factor(STRING_TRAVERSAL_FACTOR))
        if overload == "matches_string" and target is not None:
            text = (_size(target) + ONE).factor(STRING_TRAVERSAL_FACTOR)
            return CallCost(text.times(_size(args[0]).factor(REGEX_LENGTH_FACTOR)))
        if overload == "contains_string" and target is not None:
            text = _size(target).factor(STRING_TRAVERSAL_FACTOR)
            return CallCost(text.times(_size(args[0]).factor(STRING_TRAVERSAL_FACTOR)))
        if overload == "in_list" and len(args) == 2:
            return CallCost(_size(args[1]))
        return _traversals(overload, target, args)

    def conditional(self, e: Call, args: list[Operand], costs: list[Estimate]) -> CallCost:
        size = _size(args[1]).union(_size(args[2]))
        left = self.entry(e.args[1])
        entry = left.union(self.entry(e.args[2])) if left else None
        if entry is not None:
            self.s.entries[e] = entry
        return CallCost(costs[0] + costs[1].union(costs[2]), size)

    def concatenation(self, e: Call, overload: str, args: list[Operand]) -> CallCost:
        result = _size(args[0]) + _size(args[1])
        left = self.entry(e.args[0])
        entry = left.union(self.entry(e.args[1])) if left else None
        if entry is not None:
            self.s.entries[e] = entry
        if overload == "add_list":
            return CallCost(ONE, result)
        return CallCost(result.factor(STRING_TRAVERSAL_FACTOR), result)

    def copy_sizes(self, to: Expr, source: Expr) -> None:
        if (size := self.size(source)) is not None:
            self.s.sizes[to] = size
        if (entry := self.entry(source)) is not None:
            self.s.entries[to] = entry

    def comprehension(self, e: Comprehension) -> Estimate:
        if e.is_bind:
            return self.bind(e)
        total = self.cost(e.iter_range) + self.cost(e.accu_init)
        self.push(e.accu_var, _Local(self.path(e.accu_init), self.size(e.accu_init), self.entry(e.accu_init)))
        if e.iter_var2:
            self.push_iteration(e.iter_var, e.iter_range, "key")
            self.push_iteration(e.iter_var2, e.iter_range, "value")
        else:
            self.push_iteration(e.iter_var, e.iter_range, "single")
        loop, step = self.cost(e.loop_condition), self.cost(e.loop_step)
        self.pop(e.iter_var)
        if e.iter_var2:
            self.pop(e.iter_var2)
        total = total + self.cost(e.result)
        self.pop(e.accu_var)
        count = self.size_or_unknown(e.iter_range)
        total = total + count.times(step + loop)
        if isinstance(e.accu_init, Literal):
            if (init_size := self.size(e.accu_init)) is not None:
                self.s.sizes[e] = init_size
        elif isinstance(e.accu_init, ListExpr | MapExpr):
            self.s.sizes[e] = count
            if (stepped := self.entry(e.loop_step)) is not None:
                self.s.entries[e] = stepped
        return total

    def bind(self, e: Comprehension) -> Estimate:
        total = self.cost(e.iter_range) + self.cost(e.accu_init)
        self.push(e.accu_var, _Local(self.path(e.accu_init), self.size(e.accu_init), self.entry(e.accu_init)))
        total = total + self.cost(e.result)
        self.pop(e.accu_var)
        self.copy_sizes(e, e.result)
        return total


def _size(node: Operand) -> Estimate:
    """cel-go's sizeOrUnknown: the computed size only (no declared limits)."""
    return node.size or UNKNOWN


# The size of the result of a one-argument traversal from its argument's: (min, max) -> result.
_RESULT_SIZES: dict[str, Callable[[Estimate], Estimate | None]] = {
    "string_to_bytes": lambda n: Estimate(n.min, min(n.max * 4, MAX)),  # up to 4 bytes a character
    "bytes_to_string": lambda n: Estimate(n.min // 4, n.max),
    "strings_quote": lambda n: Estimate(n.min + 2, min(n.max * 2 + 2, MAX)),  # quotes, escapes
    "starts_with_string": lambda _: None,
    "ends_with_string": lambda _: None,
}


def _traversals(overload: str, target: Operand | None, args: list[Operand]) -> CallCost | None:
    """cel-go's linear-time estimates (format, string/bytes conversion, quote, startsWith/endsWith)."""
    if overload == "string_format" and target is not None:
        return CallCost(_size(target).factor(STRING_TRAVERSAL_FACTOR))
    result = _RESULT_SIZES.get(overload)
    if result is None or len(args) != 1:
        return None
    length = _size(args[0])
    return CallCost(length.factor(STRING_TRAVERSAL_FACTOR), result(length))


def _union_sizes(sizes: list[Estimate], empty: bool) -> Estimate:
    found = Estimate(0 if empty else MAX, 0)
    for size in sizes:
        found = found.union(size)
    return found


def _literal_size(e: Expr) -> Estimate | None:
    if isinstance(e, Literal):
        if isinstance(e.value, str | bytes):
            return fixed(len(e.value))
        return ONE
    if isinstance(e, ListExpr):
        return fixed(len(e.elements))
    if isinstance(e, MapExpr):
        return fixed(len(e.entries))
    return None


def max_cost(root: Expr, checked: Checked) -> int:
    """The worst-case cost the real server estimates for ``root``."""
    return _Coster(checked).cost(root).max
