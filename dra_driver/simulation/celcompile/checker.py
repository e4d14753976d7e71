"""Type checking of a selector expression, following cel-go's checker rule for rule.

Every node gets a type: identifiers from the declarations (``device``, the standard type names, macro
variables), field selections from ``device``'s declared fields or a map's value type, calls from overload
resolution (an argument list matches an overload when each argument unifies with its parameter; the
result is the first match's, or dyn when matching overloads disagree). The problems and their positions
are the real server's: "undeclared reference", "undefined field", "found no matching overload",
"expected type ... but found ...", "does not support field selection", and "cannot be range of a
comprehension". The result also records each call's matching overloads and resolved name, which the cost
estimate needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dra_driver.simulation.celcompile import library
from dra_driver.simulation.celcompile.issues import Issue
from dra_driver.simulation.celcompile.nodes import (
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
from dra_driver.simulation.celcompile.types import (
    BOOL,
    DYN,
    ERROR,
    INT,
    Bindings,
    CelType,
    is_dyn,
    is_dyn_or_error,
    is_optional,
    list_of,
    map_of,
    most_general,
    optional_of,
    param,
)


@dataclass
class Checked:
    """The outcome of checking: problems, each node's type, and each call's overloads and name."""

    issues: list[Issue] = field(default_factory=list)
    types: dict[Expr, CelType] = field(default_factory=dict)
    overloads: dict[Call, tuple[str, ...]] = field(default_factory=dict)
    functions: dict[Call, str] = field(default_factory=dict)  # namespaced names: ``sets.contains``
    receivers: dict[Call, Expr] = field(default_factory=dict)  # member calls that kept their receiver

    def type_of(self, node: Expr) -> CelType:
        return self.types.get(node, DYN)


def qualified_name(node: Expr) -> str | None:
    """``a.b.c`` for a chain of field selections on an identifier, else None."""
    if isinstance(node, Ident):
        return node.name
    if isinstance(node, Select) and not node.test_only:
        prefix = qualified_name(node.operand)
        return f"{prefix}.{node.field}" if prefix else None
    return None


class _Checker:
    """One check: the type of every node, the bindings of type parameters so far, the scopes of macro
    variables, and the problems found."""

    def __init__(self, fields: dict[str, CelType]) -> None:
        self.fields = fields
        self.out = Checked()
        self.bindings = Bindings()
        self.scopes: list[dict[str, CelType]] = []
        self.fresh = 0

    # -- helpers -----------------------------------------------------------------------------------
    def error(self, node: Expr, message: str) -> None:
        self.out.issues.append(Issue(node.offset, message))

    def set(self, node: Expr, t: CelType) -> None:
        self.out.types[node] = t

    def get(self, node: Expr) -> CelType:
        return self.out.types.get(node, ERROR)

    def new_var(self) -> CelType:
        self.fresh += 1
        return param(f"_var{self.fresh - 1}")

    def assignable(self, t1: CelType, t2: CelType) -> bool:
        trial = self.bindings.copy()
        if trial.assignable(t1, t2):
            self.bindings = trial
            return True
        return False

    def mismatch(self, node: Expr, expected: CelType, found: CelType) -> None:
        self.error(node, f"expected type '{expected}' but found '{found}'")

    # -- nodes -------------------------------------------------------------------------------------
    def check(self, node: Expr) -> None:
        if isinstance(node, Literal):
            self.set(node, node.type)
        elif isinstance(node, Ident):
            self.ident(node)
        elif isinstance(node, Select):
            self.select(node)
        elif isinstance(node, Call):
            self.call(node)
        elif isinstance(node, ListExpr):
            self.list_expr(node)
        elif isinstance(node, MapExpr):
            self.map_expr(node)
        elif isinstance(node, StructExpr):
            self.struct_expr(node)
        elif isinstance(node, Comprehension):
            self.comprehension(node)

    def lookup(self, name: str) -> CelType | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name == "device":
            return library.DEVICE
        return library.TYPE_NAMES.get(name)

    def ident(self, node: Ident) -> None:
        found = self.lookup(node.name)
        if found is None:
            self.error(node, f"undeclared reference to '{node.name}' (in container '')")
        self.set(node, found or ERROR)

    def select(self, node: Select) -> None:
        name = None if node.test_only else qualified_name(node)
        if name and "." in name and name in library.TYPE_NAMES and not self.lookup(name.split(".")[0]):
            self.set(node, library.TYPE_NAMES[name])
            return
        result = self.select_field(node, node.operand, node.field)
        self.set(node, BOOL if node.test_only else self.bindings.substitute(result))

    def select_field(self, node: Expr, operand: Expr, name: str) -> CelType:
        self.check(operand)
        target = self.bindings.substitute(self.get(operand))
        wrapped = is_optional(target)
        if wrapped:
            target = target.params[0]
        result = ERROR
        if target.kind == "map":
            result = target.params[1]
        elif target == library.DEVICE:
            found = self.fields.get(name)
            if found is None:
                self.error(node, f"undefined field '{name}'")
            result = found or ERROR
        elif target.kind == "struct":
            self.error(node, f"unexpected failed resolution of '{target.name}'")
        elif target.kind == "param":
            self.assignable(DYN, target)
            result = DYN
        else:
            if not is_dyn_or_error(target):
                self.error(node, f"type '{target}' does not support field selection")
            result = DYN
        return optional_of(result) if wrapped else result

    def call(self, node: Call) -> None:
        for arg in node.args:
            self.check(arg)
        if node.target is None:
            self.resolve_or_error(node, node.function, None)
            return
        prefix = qualified_name(node.target)
        if prefix and f"{prefix}.{node.function}" in library.FUNCTIONS:
            self.resolve_or_error(node, f"{prefix}.{node.function}", None)
            return
        self.check(node.target)
        self.out.receivers[node] = node.target
        self.resolve_or_error(node, node.function, node.target)

    def resolve_or_error(self, node: Call, name: str, target: Expr | None) -> None:
        self.out.functions[node] = name
        overloads = library.FUNCTIONS.get(name)
        if overloads is None and target is not None and name in library.MEMBER_ONLY:
            self.member_only(node, name, target)
            return
        if overloads is None:
            self.error(node, f"undeclared reference to '{name}' (in container '')")
            self.set(node, ERROR)
            return
        self.set(node, self.resolve(node, name, overloads, target) or ERROR)

    def member_only(self, node: Call, name: str, target: Expr) -> None:
        """A function whose overloads are not modelled: dyn receivers pass, known ones cannot match."""
        receiver = self.bindings.substitute(self.get(target), params_to_dyn=True)
        if is_dyn_or_error(receiver):
            self.set(node, DYN)
            return
        self.no_overload(node, name, [receiver, *(self.get(a) for a in node.args)], member=True)
        self.set(node, ERROR)

    def resolve(
        self, node: Call, name: str, overloads: tuple[library.Overload, ...], target: Expr | None
    ) -> CelType | None:
        arg_types = ([self.get(target)] if target is not None else []) + [self.get(a) for a in node.args]
        if name in ("_&&_", "_||_"):
            return self.logical(node, arg_types)
        result: CelType | None = None
        matched: list[str] = []
        for overload in overloads:
            if overload.member != (target is not None):
                continue
            fresh = Bindings({p: self.new_var() for p in sorted(overload.params)})
            candidate = tuple(fresh.substitute(t) for t in overload.args)
            trial = self.bindings.copy()
            if not trial.assignable_all(tuple(arg_types), candidate):
                continue
            self.bindings = trial
            matched.append(overload.id)
            returned = trial.substitute(fresh.substitute(overload.result))
            if result is None:
                result = returned
            elif not is_dyn(result) and returned != result:
                result = DYN
        if result is None:
            self.no_overload(node, name, arg_types, member=target is not None)
            return None
        self.out.overloads[node] = tuple(matched)
        return result

    def logical(self, node: Call, arg_types: list[CelType]) -> CelType | None:
        ok = True
        for arg, arg_type in zip(node.args, arg_types, strict=True):
            if not self.assignable(arg_type, BOOL):
                self.mismatch(arg, BOOL, arg_type)
                ok = False
        self.out.overloads[node] = ("logical_and" if node.function == "_&&_" else "logical_or",)
        return BOOL if ok else None

    def no_overload(self, node: Call, name: str, arg_types: list[CelType], member: bool) -> None:
        shown = [str(self.bindings.substitute(t, params_to_dyn=True)) for t in arg_types]
        signature = f"{shown[0]}.({', '.join(shown[1:])})" if member else f"({', '.join(shown)})"
        self.error(node, f"found no matching overload for '{name}' applied to '{signature}'")

    def join(self, previous: CelType | None, current: CelType) -> CelType:
        """The element type of a literal so far: mixed elements make it dyn (the validators refuse them
        later, except in ``format`` arguments)."""
        if previous is None:
            return current
        if self.assignable(previous, current):
            return most_general(previous, current)
        return DYN

    def list_expr(self, node: ListExpr) -> None:
        elem: CelType | None = None
        for element in node.elements:
            self.check(element)
            elem = self.join(elem, self.get(element))
        self.set(node, list_of(elem or self.new_var()))

    def map_expr(self, node: MapExpr) -> None:
        key: CelType | None = None
        value: CelType | None = None
        for k, v in node.entries:
            self.check(k)
            key = self.join(key, self.get(k))
            self.check(v)
            value = self.join(value, self.get(v))
        if key is None or value is None:
            key, value = self.new_var(), self.new_var()
        self.set(node, map_of(key, value))

    def struct_expr(self, node: StructExpr) -> None:
        if node.type_name != library.DEVICE.name:
            self.error(node, f"undeclared reference to '{node.type_name}' (in container '')")
            self.set(node, ERROR)
            return
        for name, value in node.fields:
            self.check(value)
            expected = self.fields.get(name)
            if expected is None:
                self.error(value, f"undefined field '{name}'")
            elif not self.assignable(expected, self.get(value)):
                self.error(
                    value,
                    f"expected type of field '{name}' is '{expected}' but provided type is "
                    f"'{self.get(value)}'",
                )
        self.set(node, library.DEVICE)

    def comprehension(self, node: Comprehension) -> None:
        self.check(node.iter_range)
        self.check(node.accu_init)
        range_type = self.bindings.substitute(self.get(node.iter_range))
        accu_type = self.get(node.accu_init)
        self.scopes.append({node.accu_var: accu_type})
        var_type, var2_type = self.iteration_types(node, range_type)
        loop = {node.iter_var: var_type}
        if node.iter_var2:
            loop[node.iter_var2] = var2_type
        self.scopes.append(loop)
        self.check(node.loop_condition)
        self.assert_type(node.loop_condition, BOOL)
        self.check(node.loop_step)
        self.assert_type(node.loop_step, accu_type)
        self.scopes.pop()
        self.check(node.result)
        self.scopes.pop()
        self.set(node, self.bindings.substitute(self.get(node.result)))

    def iteration_types(self, node: Comprehension, range_type: CelType) -> tuple[CelType, CelType]:
        """The types of the (first, second) iteration variables over ``range_type``."""
        if range_type.kind == "list":
            elem = range_type.params[0]
            return (INT, elem) if node.iter_var2 else (elem, DYN)
        if range_type.kind == "map":
            return range_type.params[0], range_type.params[1]
        if range_type.kind in ("dyn", "error", "param"):
            self.assignable(DYN, range_type)
            return DYN, DYN
        self.error(
            node.iter_range,
            f"expression of type '{range_type}' cannot be range of a comprehension "
            "(must be list, map, or dynamic)",
        )
        return ERROR, ERROR

    def assert_type(self, node: Expr, expected: CelType) -> None:
        if not self.assignable(expected, self.get(node)):
            self.mismatch(node, expected, self.get(node))


def check(root: Expr, fields: dict[str, CelType]) -> Checked:
    """Type-check ``root`` against the selector environment whose ``device`` has ``fields``."""
    checker = _Checker(fields)
    checker.check(root)
    out = checker.out
    out.types = {node: checker.bindings.substitute(t, params_to_dyn=True) for node, t in out.types.items()}
    return out
