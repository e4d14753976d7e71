"""CEL types and the unification rules of cel-go's type checker, which kube-apiserver runs on selectors.

The real server refuses a selector when an operator or function has no overload for the argument types
the checker infers, so the embedded server must infer the same types: ``dyn`` and the attribute values'
``any`` match everything, ``null`` matches only nullable types, lists and maps match element-wise, and
type parameters (the ``A`` of ``_==_(A, A)``) bind to the first type they meet and then constrain the
rest. The printed names (``map(string, map(string, any))``, ``kubernetes.Quantity``, ``!error!``) are the
ones the real server's messages use.
"""

from __future__ import annotations

from dataclasses import dataclass

_PRIMITIVE_KINDS = frozenset({"bool", "int", "uint", "double", "string", "bytes", "duration", "timestamp"})
# Kinds whose values may be compared with ``null`` (cel-go's legacy nullability).
_NULLABLE_KINDS = frozenset({"opaque", "struct", "any", "duration", "timestamp", "null"})
_SCALAR_KINDS = frozenset({"bool", "double", "duration", "int", "timestamp", "uint"})
_RUNTIME_NAMES = {
    "any": "google.protobuf.Any",
    "duration": "google.protobuf.Duration",
    "timestamp": "google.protobuf.Timestamp",
    "null": "null_type",
}


@dataclass(frozen=True, slots=True)
class CelType:
    """A CEL type: ``kind`` plus the name of a struct, opaque type or type parameter, and parameters."""

    kind: str
    name: str = ""
    params: tuple[CelType, ...] = ()

    def __str__(self) -> str:
        if self.kind in ("list", "map", "type") and self.params:
            return f"{self.kind}({', '.join(str(p) for p in self.params)})"
        if self.kind == "opaque" and self.params:
            return f"{self.name}({', '.join(str(p) for p in self.params)})"
        if self.kind in ("struct", "opaque", "param"):
            return self.name
        return {"error": "!error!", "null": "null"}.get(self.kind, self.kind)

    def runtime_name(self) -> str:
        """The name cel-go's ``Type.String`` gives (well-known types by their protobuf names), which the
        real server uses when a selector's result is not a bool; checker messages use ``str``."""
        if self.params and self.kind in ("list", "map", "type", "opaque"):
            head = self.name if self.kind == "opaque" else self.kind
            return f"{head}({', '.join(p.runtime_name() for p in self.params)})"
        return _RUNTIME_NAMES.get(self.kind) or str(self)

    @property
    def is_scalar(self) -> bool:
        """A value of fixed size (cost estimation charges 1 to compare two)."""
        if self.kind == "opaque" and self.name == "optional_type":
            return self.params[0].is_scalar
        return self.kind in _SCALAR_KINDS


BOOL, INT, UINT, DOUBLE = CelType("bool"), CelType("int"), CelType("uint"), CelType("double")
STRING, BYTES, NULL = CelType("string"), CelType("bytes"), CelType("null")
DURATION, TIMESTAMP = CelType("duration"), CelType("timestamp")
DYN, ANY, ERROR = CelType("dyn"), CelType("any"), CelType("error")


def list_of(elem: CelType) -> CelType:
    return CelType("list", params=(elem,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", params=(key, value))


def type_of(inner: CelType) -> CelType:
    return CelType("type", params=(inner,))


def struct(name: str) -> CelType:
    return CelType("struct", name)


def opaque(name: str, *params: CelType) -> CelType:
    return CelType("opaque", name, params)


def optional_of(inner: CelType) -> CelType:
    return opaque("optional_type", inner)


def param(name: str) -> CelType:
    return CelType("param", name)


def is_dyn(t: CelType) -> bool:
    return t.kind in ("dyn", "any")


def is_dyn_or_error(t: CelType) -> bool:
    return t.kind in ("dyn", "any", "error")


def is_optional(t: CelType) -> bool:
    return t.kind == "opaque" and t.name == "optional_type"


def equivalent(a: CelType, b: CelType) -> bool:
    """Equal, except that type parameters match whatever their names (the homogeneous-literal rule)."""
    if a.kind != b.kind or len(a.params) != len(b.params):
        return False
    if a.kind != "param" and a.name != b.name:
        return False
    return all(equivalent(x, y) for x, y in zip(a.params, b.params, strict=True))


def type_params(t: CelType) -> set[str]:
    """The names of the type parameters appearing in ``t``."""
    found = {t.name} if t.kind == "param" else set()
    for p in t.params:
        found |= type_params(p)
    return found


class Bindings:
    """Type-parameter substitutions found so far; copied before a tentative match, kept when it holds."""

    def __init__(self, values: dict[str, CelType] | None = None) -> None:
        self.values: dict[str, CelType] = dict(values or {})

    def copy(self) -> Bindings:
        return Bindings(self.values)

    def find(self, t: CelType) -> CelType | None:
        return self.values.get(t.name) if t.kind == "param" else None

    def substitute(self, t: CelType, params_to_dyn: bool = False) -> CelType:
        """``t`` with bound parameters replaced (recursively); unbound ones become dyn if asked."""
        bound = self.find(t)
        if bound is not None:
            return self.substitute(bound, params_to_dyn)
        if t.kind == "param":
            return DYN if params_to_dyn else t
        if t.params:
            return CelType(t.kind, t.name, tuple(self.substitute(p, params_to_dyn) for p in t.params))
        return t

    def assignable(self, t1: CelType, t2: CelType) -> bool:
        """Whether ``t1`` and ``t2`` unify, binding type parameters on the way (cel-go's argument order:
        an argument's type first and the declared one second, or the expected type first)."""
        if "param" in (t1.kind, t2.kind):
            return self._params_assignable(t1, t2)
        if is_dyn_or_error(t1) or is_dyn_or_error(t2):
            return True
        if "null" in (t1.kind, t2.kind):
            return _nullable(t2 if t1.kind == "null" else t1)
        if t1.kind == "type":
            return t2.kind == "type"
        if t1.kind != t2.kind or t1.name != t2.name:
            return False
        return t1.kind not in ("opaque", "list", "map") or self.assignable_all(t1.params, t2.params)

    def _params_assignable(self, t1: CelType, t2: CelType) -> bool:
        """``assignable`` when either side is a type parameter: try binding ``t2``, then ``t1``."""
        if t2.kind == "param":
            valid, has_binding = self._substitution(t1, t2)
            if valid or has_binding:
                return valid
        if t1.kind == "param":
            return self._substitution(t2, t1)[0]
        return is_dyn_or_error(t1)  # ``t2`` occurs in ``t1``: only a wildcard still matches

    def assignable_all(self, l1: tuple[CelType, ...], l2: tuple[CelType, ...]) -> bool:
        if len(l1) != len(l2):
            return False
        return all(self.assignable(a, b) for a, b in zip(l1, l2, strict=True))

    def _substitution(self, candidate: CelType, variable: CelType) -> tuple[bool, bool]:
        """(whether ``candidate`` may be what parameter ``variable`` stands for, whether it was bound)."""
        if candidate == variable:
            return True, True
        bound = self.find(variable)
        if bound is not None:
            if candidate == bound:
                return True, True
            if self.assignable(candidate, bound):
                general = most_general(candidate, bound)
                if self._not_within(variable, general):
                    self.values[variable.name] = general
                return True, True
            return False, True
        if self._not_within(variable, candidate):
            self.values[variable.name] = candidate
            return True, False
        return False, False

    def _not_within(self, variable: CelType, within: CelType) -> bool:
        """The occurs check: binding ``variable`` to ``within`` must not make a cycle."""
        if variable == within:
            return False
        if within.kind == "param":
            bound = self.find(within)
            return True if bound is None else self._not_within(variable, bound)
        return all(self._not_within(variable, p) for p in within.params)


def _nullable(t: CelType) -> bool:
    return t.kind in _NULLABLE_KINDS


def _less_specific(a: CelType, b: CelType) -> bool:
    """Whether ``a`` is equal to ``b`` or matches it only through dyn (it is the more general one)."""
    if is_dyn(a) or a.kind == "param":
        return True
    if is_dyn(b) or b.kind == "param" or a.kind != b.kind:
        return False
    if a.kind in ("opaque", "list", "map"):
        return (
            a.name == b.name
            and len(a.params) == len(b.params)
            and all(_less_specific(x, y) for x, y in zip(a.params, b.params, strict=True))
        )
    if a.kind == "type":
        return True
    return a == b


def most_general(a: CelType, b: CelType) -> CelType:
    return a if _less_specific(a, b) else b
