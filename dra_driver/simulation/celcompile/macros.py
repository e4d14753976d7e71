"""Macro expansion as cel-go's parser does it, so macros are type-checked and costed as the real server does.

``has(x.f)`` becomes a presence test; ``all``/``exists``/``exists_one``/``map``/``filter`` (one iteration
variable), their two-variable forms (``all(k, v, p)``, ``existsOne``, ``transformList``, ``transformMap``,
``transformMapEntry``), ``cel.bind``, ``sortBy`` and the optional library's ``optMap``/``optFlatMap``
become comprehensions. Every node a macro adds sits at the macro call's opening parenthesis, which is
where the real server's messages about them point. A call that matches no macro (wrong receiver or
argument count) stays a plain call, and then usually an undeclared function.
"""

from __future__ import annotations

from collections.abc import Callable

from dra_driver.simulation.celcompile.issues import CompileError, Issue
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
)
from dra_driver.simulation.celcompile.types import BOOL, INT

_UNUSED = "#unused"
_SORT_INPUT = "@__sortBy_input__"


def _fail(node: Expr, message: str) -> CompileError:
    return CompileError([Issue(node.offset, message)])


def _name(node: Expr, message: str) -> str:
    if not isinstance(node, Ident):
        raise _fail(node, message)
    return node.name


class _Builder:
    """Makes the nodes of one expansion, all at the macro's offset."""

    def __init__(self, offset: int) -> None:
        self.at = offset

    def accu(self) -> Ident:
        return Ident(self.at, ACCUMULATOR)

    def lit(self, value: bool | int) -> Literal:
        return Literal(self.at, BOOL if isinstance(value, bool) else INT, value)

    def call(self, function: str, *args: Expr, target: Expr | None = None) -> Call:
        return Call(self.at, function, list(args), target)

    def fold(
        self,
        rng: Expr,
        var: str,
        *,
        init: Expr,
        cond: Expr,
        step: Expr,
        result: Expr,
        var2: str = "",
        accu: str = ACCUMULATOR,
    ) -> Comprehension:
        return Comprehension(self.at, rng, var, accu, init, cond, step, result, var2)


def _iter_vars(args: list[Expr], count: int) -> tuple[str, str]:
    first = _name(args[0], "argument must be a simple name")
    if count == 1:
        if first in (ACCUMULATOR, "__result__"):
            raise _fail(args[0], "iteration variable overwrites accumulator variable")
        return first, ""
    second = _name(args[1], "argument must be a simple name")
    if first == second:
        raise _fail(args[1], f"duplicate variable name: {first}")
    return first, second


def _quantifier(kind: str, count: int) -> Callable[[_Builder, Expr, list[Expr]], Expr]:
    def expand(b: _Builder, target: Expr, args: list[Expr]) -> Expr:
        var, var2 = _iter_vars(args, count)
        predicate = args[count]
        if kind == "all":
            return b.fold(
                target,
                var,
                init=b.lit(True),
                cond=b.call("@not_strictly_false", b.accu()),
                step=b.call("_&&_", b.accu(), predicate),
                result=b.accu(),
                var2=var2,
            )
        if kind == "exists":
            return b.fold(
                target,
                var,
                init=b.lit(False),
                cond=b.call("@not_strictly_false", b.call("!_", b.accu())),
                step=b.call("_||_", b.accu(), predicate),
                result=b.accu(),
                var2=var2,
            )
        step = b.call("_?_:_", predicate, b.call("_+_", b.accu(), b.lit(1)), b.accu())
        return b.fold(
            target,
            var,
            init=b.lit(0),
            cond=b.lit(True),
            step=step,
            result=b.call("_==_", b.accu(), b.lit(1)),
            var2=var2,
        )

    return expand


def _map(b: _Builder, target: Expr, args: list[Expr]) -> Expr:
    var = _name(args[0], "argument is not an identifier")
    step: Expr = b.call("_+_", b.accu(), ListExpr(b.at, [args[-1]]))
    if len(args) == 3:
        step = b.call("_?_:_", args[1], step, b.accu())
    return b.fold(target, var, init=ListExpr(b.at, []), cond=b.lit(True), step=step, result=b.accu())


def _filter(b: _Builder, target: Expr, args: list[Expr]) -> Expr:
    var = _name(args[0], "argument is not an identifier")
    step = b.call("_?_:_", args[1], b.call("_+_", b.accu(), ListExpr(b.at, [args[0]])), b.accu())
    return b.fold(target, var, init=ListExpr(b.at, []), cond=b.lit(True), step=step, result=b.accu())


def _transform(kind: str) -> Callable[[_Builder, Expr, list[Expr]], Expr]:
    def expand(b: _Builder, target: Expr, args: list[Expr]) -> Expr:
        var, var2 = _iter_vars(args, 2)
        value = args[-1]
        init: Expr
        if kind == "list":
            init, step = ListExpr(b.at, []), b.call("_+_", b.accu(), ListExpr(b.at, [value]))
        elif kind == "map":
            init, step = MapExpr(b.at, []), b.call("cel.@mapInsert", b.accu(), Ident(b.at, var), value)
        else:
            init, step = MapExpr(b.at, []), b.call("cel.@mapInsert", b.accu(), value)
        if len(args) == 4:
            step = b.call("_?_:_", args[2], step, b.accu())
        return b.fold(target, var, init=init, cond=b.lit(True), step=step, result=b.accu(), var2=var2)

    return expand


def _bind(b: _Builder, target: Expr, args: list[Expr]) -> Expr | None:
    if not (isinstance(target, Ident) and target.name == "cel"):
        return None
    var = _name(args[0], "cel.bind() variable names must be simple identifiers")
    return b.fold(
        ListExpr(b.at, []),
        _UNUSED,
        init=args[1],
        cond=b.lit(False),
        step=Ident(b.at, var),
        result=args[2],
        accu=var,
    )


def _sort_by(b: _Builder, target: Expr, args: list[Expr]) -> Expr:
    keys = _map(b, Ident(b.at, _SORT_INPUT), args)
    sort = b.call("@sortByAssociatedKeys", keys, target=Ident(b.at, _SORT_INPUT))
    return b.fold(
        ListExpr(b.at, []),
        _UNUSED,
        init=target,
        cond=b.lit(False),
        step=Ident(b.at, _SORT_INPUT),
        result=sort,
        accu=_SORT_INPUT,
    )


def _opt_map(flat: bool) -> Callable[[_Builder, Expr, list[Expr]], Expr]:
    def expand(b: _Builder, target: Expr, args: list[Expr]) -> Expr:
        what = "optFlatMap" if flat else "optMap"
        var = _name(args[0], f"{what}() variable name must be a simple identifier")
        value = b.call("value", target=target)
        mapped: Expr = b.fold(
            ListExpr(b.at, []),
            _UNUSED,
            init=value,
            cond=b.lit(False),
            step=Ident(b.at, var),
            result=args[1],
            accu=var,
        )
        if not flat:
            mapped = b.call("optional.of", mapped)
        return b.call("_?_:_", b.call("hasValue", target=target), mapped, b.call("optional.none"))

    return expand


_RECEIVER: dict[tuple[str, int], Callable[[_Builder, Expr, list[Expr]], Expr | None]] = {
    ("all", 2): _quantifier("all", 1),
    ("exists", 2): _quantifier("exists", 1),
    ("exists_one", 2): _quantifier("exists_one", 1),
    ("all", 3): _quantifier("all", 2),
    ("exists", 3): _quantifier("exists", 2),
    ("existsOne", 3): _quantifier("exists_one", 2),
    ("exists_one", 3): _quantifier("exists_one", 2),
    ("map", 2): _map,
    ("map", 3): _map,
    ("filter", 2): _filter,
    ("transformList", 3): _transform("list"),
    ("transformList", 4): _transform("list"),
    ("transformMap", 3): _transform("map"),
    ("transformMap", 4): _transform("map"),
    ("transformMapEntry", 3): _transform("entry"),
    ("transformMapEntry", 4): _transform("entry"),
    ("bind", 3): _bind,
    ("sortBy", 2): _sort_by,
    ("optMap", 2): _opt_map(flat=False),
    ("optFlatMap", 2): _opt_map(flat=True),
}


def expand(name: str, target: Expr | None, args: list[Expr], offset: int) -> Expr | None:
    """The expansion of ``target.name(args)`` (or ``name(args)``), or None when no macro matches."""
    builder = _Builder(offset)
    if target is None:
        if name != "has" or len(args) != 1:
            return None
        if not isinstance(args[0], Select):
            raise _fail(args[0], "invalid argument to has() macro")
        return Select(offset, args[0].operand, args[0].field, test_only=True)
    macro = _RECEIVER.get((name, len(args)))
    return macro(builder, target, args) if macro else None
