"""Parse a CEL expression with cel-python's grammar (``grammar``) and build cel-go's AST from the Lark tree.

Operators become calls named as in cel-go (``_==_``, ``_&&_``, ``@in``, ``_[_]``, ``!_``), macros are
expanded (``macros``), and each node keeps the offset the real server reports: the operator of a binary
expression, the ``.`` of a field selection, the ``(`` of a call, the ``[`` of an index, the start of an
identifier or literal. Lark drops anonymous tokens such as ``==``, so their offsets are found in the text
between the neighbouring nodes.

Not supported: CEL's optional field and index syntax (``a.?b``, ``a[?b]``, ``{?k: v}``, ``[?e]``), which
cel-python's grammar cannot parse; ``selector`` lets such expressions through unchecked.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from dra_driver.simulation.celcompile import grammar, literals, macros
from dra_driver.simulation.celcompile.issues import CompileError, Issue
from dra_driver.simulation.celcompile.nodes import (
    Call,
    Expr,
    Ident,
    ListExpr,
    Literal,
    MapExpr,
    Select,
    StructExpr,
)

_RELATIONS = {
    "relation_lt": "_<_",
    "relation_le": "_<=_",
    "relation_gt": "_>_",
    "relation_ge": "_>=_",
    "relation_eq": "_==_",
    "relation_ne": "_!=_",
    "relation_in": "@in",
}
_SYMBOLS = {
    "_<_": "<",
    "_<=_": "<=",
    "_>_": ">",
    "_>=_": ">=",
    "_==_": "==",
    "_!=_": "!=",
    "@in": "in",
    "_+_": "+",
    "_-_": "-",
    "_*_": "*",
    "_/_": "/",
    "_%_": "%",
}
_ARITHMETIC = {
    "addition_add": "_+_",
    "addition_sub": "_-_",
    "multiplication_mul": "_*_",
    "multiplication_div": "_/_",
    "multiplication_mod": "_%_",
}
_UNARY = {"unary_not": "!_", "unary_neg": "-_"}


# Where an operand must start, ANTLR (cel-go's parser) lists what it expected in these words.
_OPERAND_START = frozenset(
    {
        "MLSTRING_LIT",
        "BOOL_LIT",
        "DOT",
        "INT_LIT",
        "IDENT",
        "STRING_LIT",
        "LBRACE",
        "FLOAT_LIT",
        "BYTES_LIT",
        "BANG",
        "UINT_LIT",
        "LSQB",
        "MINUS",
        "LPAR",
        "NULL_LIT",
    }
)
_PUNCTUATION = {"COLON": "':'", "RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "$END": "<EOF>"}
_OPERAND_EXPECTED = (
    " expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, "
    "NUM_UINT, STRING, BYTES, IDENTIFIER}"
)


def _syntax_issue(text: str, err: UnexpectedInput) -> Issue:
    """The first syntax problem, in the words of cel-go's parser where Lark's report allows."""
    if isinstance(err, UnexpectedCharacters):
        return Issue(err.pos_in_stream or 0, f"Syntax error: token recognition error at: '{err.char}'")
    assert isinstance(err, UnexpectedToken)
    expected = set(err.expected)
    if expected == _OPERAND_START:
        expecting = _OPERAND_EXPECTED
    else:  # one closing token, and operators (which ANTLR does not list at this point)
        closing = [_PUNCTUATION[name] for name in expected if name in _PUNCTUATION]
        expecting = f" expecting {closing[0]}" if len(closing) == 1 and not expected & _OPERAND_START else ""
    if err.token.type == "$END":
        return Issue(len(text), f"Syntax error: mismatched input '<EOF>'{expecting}")
    return Issue(err.token.start_pos or 0, f"Syntax error: mismatched input '{err.token}'{expecting}")


def parse(text: str) -> Expr:
    """The checked-AST shape of ``text``; CompileError for syntax and macro errors."""
    try:
        tree = grammar.parser().parse(text)
    except UnexpectedInput as err:
        raise CompileError([_syntax_issue(text, err)]) from err
    return _Builder(text).build(tree)


def _start(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.start_pos or 0
    return node.meta.start_pos


def _end(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.end_pos or 0
    return node.meta.end_pos


class _Builder:
    """Walks one Lark tree; ``text`` is the source, for the offsets of dropped tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.rules: dict[str, Callable[[Tree[Token]], Expr]] = {
            "expr": self._expr,
            "conditionalor": lambda t: self._logical(t, "_||_", "||"),
            "conditionaland": lambda t: self._logical(t, "_&&_", "&&"),
            "relation": self._binary,
            "addition": self._binary,
            "multiplication": self._binary,
            "unary": self._unary,
            "member": self._single,
            "primary": self._single,
            "paren_expr": self._single,
            "member_dot": self._member_dot,
            "member_dot_arg": self._member_call,
            "member_index": self._member_index,
            "member_object": self._member_object,
            "ident": lambda t: Ident(_start(t.children[0]), str(t.children[0])),
            "dot_ident": lambda t: Ident(_start(t.children[0]), str(t.children[0])),
            "ident_arg": self._global_call,
            "dot_ident_arg": self._global_call,
            "list_lit": lambda t: ListExpr(t.meta.start_pos, self._list(t)),
            "map_lit": self._map,
            "literal": self._literal,
        }

    def build(self, node: Tree[Token] | Token) -> Expr:
        assert isinstance(node, Tree), node
        return self.rules[str(node.data)](node)

    def _find(self, token: str, start: int) -> int:
        found = self.text.find(token, start)
        return found if found >= 0 else start

    def _single(self, tree: Tree[Token]) -> Expr:
        return self.build(tree.children[0])

    def _expr(self, tree: Tree[Token]) -> Expr:
        if len(tree.children) == 1:
            return self.build(tree.children[0])
        condition, when_true, when_false = tree.children
        offset = self._find("?", _end(condition))
        args = [self.build(condition), self.build(when_true), self.build(when_false)]
        return Call(offset, "_?_:_", args)

    def _logical(self, tree: Tree[Token], function: str, symbol: str) -> Expr:
        """A chain of ``&&`` (or ``||``) as cel-go's parser builds it: a balanced tree, so a long
        conjunction nests only as deep as its logarithm."""
        terms: list[Tree[Token] | Token] = []
        operators: list[int] = []
        node: Tree[Token] | Token = tree
        while isinstance(node, Tree) and node.data == tree.data and len(node.children) == 2:
            left, right = node.children
            terms.append(right)
            operators.append(self._find(symbol, _end(left)))
            node = left
        terms.append(node.children[0] if isinstance(node, Tree) and node.data == tree.data else node)
        built = [self.build(term) for term in reversed(terms)]
        return self._balance(function, built, operators[::-1], 0, len(operators) - 1)

    def _balance(self, function: str, terms: list[Expr], operators: list[int], low: int, high: int) -> Expr:
        if high < low:
            return terms[0]
        middle = (low + high + 1) // 2
        left = terms[middle] if middle == low else self._balance(function, terms, operators, low, middle - 1)
        right = (
            terms[middle + 1]
            if middle == high
            else self._balance(function, terms, operators, middle + 1, high)
        )
        return Call(operators[middle], function, [left, right])

    def _binary(self, tree: Tree[Token]) -> Expr:
        if len(tree.children) == 1:
            return self.build(tree.children[0])
        operator, right = tree.children
        assert isinstance(operator, Tree)
        name = str(operator.data)
        function = _RELATIONS.get(name) or _ARITHMETIC[name]
        offset = operator.meta.end_pos - len(_SYMBOLS[function])
        return Call(offset, function, [self.build(operator.children[0]), self.build(right)])

    def _unary(self, tree: Tree[Token]) -> Expr:
        if len(tree.children) == 1:
            return self.build(tree.children[0])
        operator = tree.children[0]
        assert isinstance(operator, Tree)
        function, count, operand = _UNARY[str(operator.data)], 1, tree.children[1]
        while isinstance(operand, Tree) and len(operand.children) == 2:
            inner_operator = operand.children[0]
            assert isinstance(inner_operator, Tree)
            if inner_operator.data != operator.data:  # cel-go's grammar has no ``-!x`` or ``!-x``
                start, end = operator.meta.start_pos, inner_operator.meta.end_pos
                message = f"Syntax error: no viable alternative at input '{self.text[start:end]}'"
                raise CompileError([Issue(inner_operator.meta.start_pos, message)])
            count, operand = count + 1, operand.children[1]
        inner = self.build(operand)
        # cel-go's parser drops an even number of repeated ``!`` or ``-``: ``!!x`` is ``x``.
        return inner if count % 2 == 0 else Call(operator.meta.start_pos, function, [inner])

    def _member_dot(self, tree: Tree[Token]) -> Expr:
        operand, field = tree.children
        dot = self.text.rfind(".", _end(operand), _start(field))
        return Select(dot if dot >= 0 else _start(field), self.build(operand), str(field))

    def _args(self, tree: Tree[Token], first: int) -> list[Expr]:
        rest = tree.children[first:]
        return self._list_of(rest[0]) if rest else []

    def _list_of(self, exprlist: Tree[Token] | Token) -> list[Expr]:
        assert isinstance(exprlist, Tree)
        return [self.build(child) for child in exprlist.children]

    def _call(self, name: Token, target: Expr | None, args: list[Expr]) -> Expr:
        offset = self._find("(", _end(name))
        expanded = macros.expand(str(name), target, args, offset)
        return expanded if expanded is not None else Call(offset, str(name), args, target)

    def _member_call(self, tree: Tree[Token]) -> Expr:
        name = tree.children[1]
        assert isinstance(name, Token)
        return self._call(name, self.build(tree.children[0]), self._args(tree, 2))

    def _global_call(self, tree: Tree[Token]) -> Expr:
        name = tree.children[0]
        assert isinstance(name, Token)
        return self._call(name, None, self._args(tree, 1))

    def _member_index(self, tree: Tree[Token]) -> Expr:
        operand, index = tree.children
        offset = self._find("[", _end(operand))
        return Call(offset, "_[_]", [self.build(operand), self.build(index)])

    def _member_object(self, tree: Tree[Token]) -> Expr:
        type_node = tree.children[0]
        offset = self._find("{", _end(type_node))
        name = self.text[_start(type_node) : _end(type_node)].replace(" ", "").lstrip(".")
        fields: list[tuple[str, Expr]] = []
        if len(tree.children) > 1:
            inits = tree.children[1]
            assert isinstance(inits, Tree)
            pairs = inits.children
            fields = [(str(pairs[i]), self.build(pairs[i + 1])) for i in range(0, len(pairs), 2)]
        return StructExpr(offset, name, fields)

    def _list(self, tree: Tree[Token]) -> list[Expr]:
        return self._list_of(tree.children[0]) if tree.children else []

    def _map(self, tree: Tree[Token]) -> Expr:
        entries: list[tuple[Expr, Expr]] = []
        if tree.children:
            inits = tree.children[0]
            assert isinstance(inits, Tree)
            items = [self.build(child) for child in inits.children]
            entries = [(items[i], items[i + 1]) for i in range(0, len(items), 2)]
        return MapExpr(tree.meta.start_pos, entries)

    def _literal(self, tree: Tree[Token]) -> Expr:
        token = tree.children[0]
        assert isinstance(token, Token)
        text, start = str(token), _start(token)
        negated = token.type == "UINT_LIT" and text.startswith("-")  # cel-go: ``-`` applied to a uint
        try:
            cel_type, value = literals.decode(token.type, text[1:] if negated else text)
        except literals.BadLiteralError as err:
            raise CompileError([Issue(start, str(err))]) from err
        if negated:
            return Call(start, "-_", [Literal(start + 1, cel_type, value)])
        return Literal(start, cel_type, value)
