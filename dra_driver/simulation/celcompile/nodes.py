"""The expression tree the checker walks: cel-go's AST shapes, built from cel-python's parse tree.

cel-python parses CEL into a Lark tree of grammar rules; kube-apiserver checks cel-go's AST, in which
operators are calls (``_==_``), macros are already expanded into comprehensions and every node has the
source offset the real server's messages point at. Building the same shapes here lets the checker and the
cost estimate follow cel-go's rules one to one. Nodes compare by identity (the checker keys its type map
on them).
"""

from __future__ import annotations

from dataclasses import dataclass

from dra_driver.simulation.celcompile.types import CelType

ACCUMULATOR = "@result"  # the accumulator of macro comprehensions; no user identifier can clash with it


@dataclass(eq=False)
class Expr:
    """Base of every node: ``offset`` is where messages about it point (0-based, in characters)."""

    offset: int


@dataclass(eq=False)
class Literal(Expr):
    type: CelType
    value: object


@dataclass(eq=False)
class Ident(Expr):
    name: str


@dataclass(eq=False)
class Select(Expr):
    operand: Expr
    field: str
    test_only: bool = False  # has(operand.field)


@dataclass(eq=False)
class Call(Expr):
    function: str
    args: list[Expr]
    target: Expr | None = None  # the receiver of a member call


@dataclass(eq=False)
class ListExpr(Expr):
    elements: list[Expr]


@dataclass(eq=False)
class MapExpr(Expr):
    entries: list[tuple[Expr, Expr]]


@dataclass(eq=False)
class StructExpr(Expr):
    type_name: str
    fields: list[tuple[str, Expr]]


@dataclass(eq=False)
class Comprehension(Expr):
    """A fold over ``iter_range``: what ``all``/``exists``/``map``/``filter``/``cel.bind`` macros become."""

    iter_range: Expr
    iter_var: str
    accu_var: str
    accu_init: Expr
    loop_condition: Expr
    loop_step: Expr
    result: Expr
    iter_var2: str = ""  # the value variable of a two-variable comprehension

    @property
    def is_bind(self) -> bool:
        """``cel.bind``: an empty range, a false condition and a named accumulator."""
        return (
            isinstance(self.iter_range, ListExpr)
            and not self.iter_range.elements
            and isinstance(self.loop_condition, Literal)
            and self.loop_condition.value is False
            and self.accu_var != ACCUMULATOR
        )
