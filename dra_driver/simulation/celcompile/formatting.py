"""The real server's static check of ``"literal".format([literal, list])``.

cel-go's string extension parses a literal format string at compile time and refuses a clause it does
not know, a clause with no argument left ("index 1 out of range"), an argument left over ("too many
arguments supplied to string.format"), and ``%d`` given something other than an integer. The other
clauses' type rules (``%f``, ``%e``, ``%x``, ``%o``, ``%b``, ``%s``) are not reproduced: arguments they
would refuse are let through. ``format`` arguments are also exempt from the homogeneous-literal rule.
"""

from __future__ import annotations

import re

from dra_driver.simulation.celcompile.checker import Checked
from dra_driver.simulation.celcompile.issues import Issue
from dra_driver.simulation.celcompile.nodes import Call, ListExpr, Literal
from dra_driver.simulation.celcompile.types import is_dyn_or_error

_CLAUSE = re.compile(r"%(?:\.(\d+))?(.?)")
_VERBS = frozenset("sdfeboxX")
_INTEGERS = frozenset({"int", "uint"})


def is_literal_format(checked: Checked, call: Call) -> bool:
    """A member ``format`` of the string extension on a literal string, with one list literal."""
    receiver = checked.receivers.get(call)
    return (
        call.function == "format"
        and "string_format" in checked.overloads.get(call, ())
        and isinstance(receiver, Literal)
        and isinstance(receiver.value, str)
        and len(call.args) == 1
        and isinstance(call.args[0], ListExpr)
    )


def format_issues(checked: Checked, call: Call) -> list[Issue]:
    """What the real server finds wrong with one literal ``format`` call (see ``is_literal_format``)."""
    receiver, args = checked.receivers[call], call.args[0]
    assert isinstance(receiver, Literal)
    assert isinstance(receiver.value, str)
    assert isinstance(args, ListExpr)
    used = 0
    for match in _CLAUSE.finditer(receiver.value.replace("%%", "")):
        verb = match.group(2)
        if verb not in _VERBS:
            message = f'could not parse formatting clause: unrecognized formatting clause "{verb}"'
            return [Issue(call.offset, message)]
        if used >= len(args.elements):
            return [Issue(call.offset, f"index {used} out of range")]
        arg = args.elements[used]
        arg_type = checked.type_of(arg)
        if verb == "d" and arg_type.kind not in _INTEGERS and not is_dyn_or_error(arg_type):
            return [
                Issue(
                    arg.offset,
                    "error during formatting: decimal clause can only be used on integers, "
                    f"was given {arg_type}",
                )
            ]
        used += 1
    if len(args.elements) > used:
        return [
            Issue(
                call.offset,
                f"too many arguments supplied to string.format (expected {used}, got {len(args.elements)})",
            )
        ]
    return []
