"""The checks kube-apiserver runs on a selector after type checking, and the regular expressions its
program refuses to build.

After a successful type check the real server (Kubernetes' base environment, from 1.29) refuses
aggregate literals whose elements are not all of exactly the same type (``[1, dyn(2)]``), and literal
arguments that cannot work: ``duration("x")``, ``timestamp("x")`` and ``s.matches("(")`` ("invalid
matches argument"). A literal pattern of ``find``/``findAll`` or of the global ``matches(s, p)`` that does
not compile fails later, when the program is built: a 422 with an InternalError cause.

Go's RE2 is not Python's ``re``: a pattern is refused here only for the mistakes both refuse (unbalanced
parentheses or brackets, a repetition of nothing or of a repetition) and for Perl syntax RE2 lacks
(look-around, backreferences); patterns only one of them accepts otherwise pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dra_driver.simulation.celcompile.checker import Checked
from dra_driver.simulation.celcompile.formatting import format_issues, is_literal_format
from dra_driver.simulation.celcompile.issues import Issue
from dra_driver.simulation.celcompile.nodes import (
    Call,
    Comprehension,
    Expr,
    ListExpr,
    Literal,
    MapExpr,
    Select,
    StructExpr,
)
from dra_driver.simulation.celcompile.types import equivalent

_DURATION = re.compile(r"-?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:h|m|s|ms|us|µs|μs|ns))+|-?0")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_PERL_ONLY = re.compile(r"\(\?<?[=!]|\\[1-9]")
_GO_REGEXP_ERRORS = (
    ("missing ), unterminated subpattern", "missing closing )"),
    ("unbalanced parenthesis", "unexpected )"),
    ("unterminated character set", "missing closing ]"),
    ("nothing to repeat", "missing argument to repetition operator"),
    ("multiple repeat", "invalid nested repetition operator"),
)


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of the tree, parents before children."""
    for found, _ in walk_with_calls(node, ()):
        yield found


def walk_with_calls(node: Expr, calls: tuple[str, ...]) -> Iterator[tuple[Expr, tuple[str, ...]]]:
    """Every node with the names of the calls it is inside of, parents before children."""
    yield node, calls
    inside = (*calls, node.function) if isinstance(node, Call) else calls
    for child in _children(node):
        yield from walk_with_calls(child, inside)


def _children(node: Expr) -> list[Expr]:
    children: list[Expr] = []
    if isinstance(node, Select):
        children = [node.operand]
    elif isinstance(node, Call):
        children = ([node.target] if node.target is not None else []) + node.args
    elif isinstance(node, ListExpr):
        children = node.elements
    elif isinstance(node, MapExpr):
        children = [part for entry in node.entries for part in entry]
    elif isinstance(node, StructExpr):
        children = [value for _, value in node.fields]
    elif isinstance(node, Comprehension):
        children = [node.iter_range, node.accu_init, node.loop_condition, node.loop_step, node.result]
    return children


def regexp_error(pattern: str) -> str | None:
    """Go's ``regexp.Compile`` error text for ``pattern`` when both RE2 and Python refuse it, else None."""
    perl = _PERL_ONLY.search(pattern)
    if perl:
        return f"invalid or unsupported Perl syntax: `{perl.group(0)}`"
    try:
        re.compile(pattern)
    except re.error as err:
        for python_text, go_text in _GO_REGEXP_ERRORS:
            if err.msg.startswith(python_text):
                return f"{go_text}: `{pattern}`"
    return None


def _literal_text(call: Call, index: int) -> tuple[Literal, str] | None:
    if len(call.args) <= index:
        return None
    arg = call.args[index]
    if isinstance(arg, Literal) and isinstance(arg.value, str):
        return arg, arg.value
    return None


def _literal_argument_issue(checked: Checked, call: Call) -> Issue | None:
    name = checked.functions.get(call, call.function)
    found = _literal_text(call, 0)
    if found is None or name not in ("duration", "timestamp", "matches"):
        return None
    arg, text = found
    bad = {
        "duration": lambda: not _DURATION.fullmatch(text),
        "timestamp": lambda: not _TIMESTAMP.fullmatch(text),
        "matches": lambda: regexp_error(text) is not None,
    }[name]()
    return Issue(arg.offset, f"invalid {name} argument") if bad else None


def _aggregate_issues(checked: Checked, node: Expr) -> list[Issue]:
    issues: list[Issue] = []
    if isinstance(node, ListExpr) and node.elements:
        first = checked.type_of(node.elements[0])
        for element in node.elements[1:]:
            if not equivalent(first, checked.type_of(element)):
                issues.append(
                    Issue(element.offset, f"expected type '{first}' but found '{checked.type_of(element)}'")
                )
                break
    elif isinstance(node, MapExpr) and node.entries:
        key, value = (checked.type_of(part) for part in node.entries[0])
        for k, v in node.entries[1:]:
            for expected, part in ((key, k), (value, v)):
                if not equivalent(expected, checked.type_of(part)):
                    issues.append(
                        Issue(part.offset, f"expected type '{expected}' but found '{checked.type_of(part)}'")
                    )
    return issues


def validate(root: Expr, checked: Checked) -> list[Issue]:
    """The problems the real server's AST validators find in a type-checked expression."""
    issues: list[Issue] = []
    for node, calls in walk_with_calls(root, ()):
        if "format" not in calls:  # the format check exempts its arguments from the homogeneity rule
            issues += _aggregate_issues(checked, node)
        if isinstance(node, Call):
            issue = _literal_argument_issue(checked, node)
            issues += [issue] if issue else []
            issues += format_issues(checked, node) if is_literal_format(checked, node) else []
    return issues


def program_error(root: Expr, checked: Checked) -> str | None:
    """Why the real server could not build the program: a literal regular expression that fails."""
    for node in walk(root):
        if not isinstance(node, Call):
            continue
        name = checked.functions.get(node, node.function)
        index = 1 if name == "matches" and node not in checked.receivers else 0
        found = _literal_text(node, index) if name in ("matches", "find", "findAll") else None
        problem = regexp_error(found[1]) if found else None
        if problem:
            return f"program instantiation failed: error parsing regexp: {problem}"
    return None
