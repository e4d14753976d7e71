"""cel-go's AST from cel-python's parse tree: the offsets messages point at, and macro expansion."""

from __future__ import annotations

import pytest

from dra_driver.simulation.celcompile.issues import CompileError, Issue, render
from dra_driver.simulation.celcompile.nodes import Call, Comprehension, Ident, Literal, Select
from dra_driver.simulation.celcompile.syntax import parse


def test_operators_are_calls_located_at_their_operator() -> None:
    root = parse("device.driver  ==  1")
    assert isinstance(root, Call)
    assert (root.function, root.offset) == ("_==_", 15)
    select = root.args[0]
    assert isinstance(select, Select)
    assert (select.field, select.offset) == ("driver", 6)  # the dot


def test_calls_and_indexes_are_located_at_their_bracket() -> None:
    root = parse('device.capacity["x"].memory.compareTo(quantity("1"))')
    assert isinstance(root, Call)
    assert (root.function, root.offset) == ("compareTo", 37)
    index = root.target
    assert isinstance(index, Select)
    assert isinstance(index.operand, Call)
    assert (index.operand.function, index.operand.offset) == ("_[_]", 15)


def test_double_negation_is_dropped_as_cel_go_s_parser_does() -> None:
    root = parse("!!1")
    assert isinstance(root, Literal)
    assert root.value == 1


def test_a_quantifier_becomes_a_comprehension_at_the_macro_s_parenthesis() -> None:
    root = parse("[1].all(x, x > 0)")
    assert isinstance(root, Comprehension)
    assert (root.iter_var, root.offset) == ("x", 7)
    assert isinstance(root.loop_step, Call)
    assert root.loop_step.function == "_&&_"


def test_cel_bind_and_has_expand() -> None:
    bind = parse("cel.bind(a, device, a.driver == 'x')")
    assert isinstance(bind, Comprehension)
    assert bind.is_bind
    assert bind.accu_var == "a"
    has = parse("has(device.driver)")
    assert isinstance(has, Select)
    assert has.test_only


def test_a_call_matching_no_macro_stays_a_call() -> None:
    root = parse("device.all()")
    assert isinstance(root, Call)
    assert isinstance(root.target, Ident)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("has(device)", "invalid argument to has() macro"),
        ("[1].all(1, true)", "argument must be a simple name"),
        ("[1].map(1, 1)", "argument is not an identifier"),
        ("cel.bind(1, 2, true)", "cel.bind() variable names must be simple identifiers"),
        ("device.all(k, k, true)", "duplicate variable name: k"),
        ("9223372036854775808 == 1", "invalid int literal"),
        ("device.driver ==", "Syntax error: mismatched input '<EOF>' expecting {"),
    ],
)
def test_malformed_expressions_are_refused_while_parsing(expression: str, message: str) -> None:
    with pytest.raises(CompileError) as info:
        parse(expression)
    assert info.value.issues[0].message.startswith(message)


def test_issues_render_with_the_line_and_a_caret_under_the_column() -> None:
    text = 'device.driver == "é" ||\n\tdevice.driver == 1'
    rendered = render(text, [Issue(text.index("== 1"), "late"), Issue(14, "early")])
    assert rendered == (
        'ERROR: <input>:1:15: early\n | device.driver == "é" ||\n | ..............^\n'
        "ERROR: <input>:2:16: late\n |  device.driver == 1\n | ...............^"
    )


def test_a_wide_character_draws_a_wide_dot() -> None:
    text = 'device.driver == "é" || x'
    assert render(text, [Issue(len(text) - 1, "m")]).endswith(" | " + "." * 18 + "\uff0e" + "." * 5 + "^")


def test_lexing_follows_cel_go_where_cel_python_s_differs() -> None:
    call = parse("1.size()")  # a call on an int, not the double 1.
    assert isinstance(call, Call)
    assert isinstance(call.target, Literal)
    assert call.target.value == 1
    negated = parse("-2u")  # unary minus on a uint (which has no such overload), not a literal
    assert isinstance(negated, Call)
    assert negated.function == "-_"
    literal = parse("x || true").args[1]  # type: ignore[attr-defined]
    assert isinstance(literal, Literal)
    assert literal.offset == 5  # keeps its position
    with pytest.raises(CompileError):
        parse("x == 1.")
    with pytest.raises(CompileError, match="no viable alternative"):
        parse("-!x")


def test_a_conjunction_is_balanced_as_cel_go_s_parser_balances_it() -> None:
    root = parse("a && b && c && d")
    assert isinstance(root, Call)
    assert root.offset == 7  # the middle operator
    assert [arg.offset for arg in root.args] == [2, 12]  # (a && b) and (c && d)
