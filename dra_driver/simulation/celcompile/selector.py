"""Whether kube-apiserver v1.36 accepts a device selector, and if not, the field error it answers with.

The real server's validation of a ``cel.expression`` (pkg/apis/resource/validation with
k8s.io/dynamic-resource-allocation/cel) runs, in order: a length limit (10 KiB), parsing, type checking
against the DRA environment, the environment's literal validators, the check that the result is a bool
(or an attribute value, whose type is unknown), building the program (literal regular expressions must
compile) and the worst-case cost limit. The first that fails decides the answer: ``Invalid value`` with the
quoted expression and cel-go's messages, an ``Internal error``, ``Too long``, or ``Forbidden: too complex,
exceeds cost limit``.

Expressions using CEL's optional syntax (``a.?b``, ``a[?b]``, ``[?e]``, ``{?k: v}``), which the real server
accepts but cel-python cannot parse, are let through unchecked rather than refused wrongly.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

from dra_driver.simulation.celcompile import checker, cost, library, syntax, validators
from dra_driver.simulation.celcompile.issues import CompileError, render
from dra_driver.simulation.celcompile.types import ANY, BOOL

log = logging.getLogger(__name__)
MAX_EXPRESSION_BYTES = 10 * 1024  # resource.CELSelectorExpressionMaxLength
_OPTIONAL_SYNTAX = (".?", "[?", "{?", ",?")
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Refusal:
    """How the real server refuses an expression: the cause's reason and its message."""

    reason: str
    message: str


def _go_quote(text: str) -> str:
    """Go's ``%q`` of a string, as field errors print an invalid value (escaped quotes and controls)."""
    return json.dumps(text, ensure_ascii=False)


def _invalid(expression: str, detail: str) -> Refusal:
    return Refusal("FieldValueInvalid", f"Invalid value: {_go_quote(expression)}: {detail}")


def _compile_problem(expression: str, consumable_capacity: bool) -> Refusal | None:
    try:
        root = syntax.parse(expression)
    except CompileError as err:
        return _invalid(expression, "compilation failed: " + render(expression, err.issues))
    checked = checker.check(root, library.device_fields(consumable_capacity))
    issues = checked.issues or validators.validate(root, checked)
    if issues:
        return _invalid(expression, "compilation failed: " + render(expression, issues))
    output = checked.type_of(root)
    if output not in (BOOL, ANY):
        return _invalid(expression, f"must evaluate to bool or the unknown type, not {output.runtime_name()}")
    program = validators.program_error(root, checked)
    if program:
        return Refusal("InternalError", f"Internal error: {program}")
    if cost.max_cost(root, checked) > cost.SELECTOR_MAX_COST:
        return Refusal("FieldValueForbidden", "Forbidden: too complex, exceeds cost limit")
    return None


_lock = threading.Lock()
_verdicts: dict[tuple[str, bool], Refusal | None] = {}


def selector_refusal(expression: str, consumable_capacity: bool = True) -> Refusal | None:
    """None when the real server accepts ``expression`` as a selector, else how it refuses it.

    ``consumable_capacity`` is whether the DRAConsumableCapacity gate is on (it declares
    ``device.allowMultipleAllocations``). Verdicts are cached per process (a few milliseconds each).
    """
    if len(expression.encode("utf-8", "surrogatepass")) > MAX_EXPRESSION_BYTES:
        return Refusal("FieldValueTooLong", f"Too long: may not be more than {MAX_EXPRESSION_BYTES} bytes")
    if any(token in expression for token in _OPTIONAL_SYNTAX):
        return None  # cel-python cannot parse CEL's optional syntax: unchecked rather than refused wrongly
    key = (expression, consumable_capacity)
    with _lock:  # request threads share the cache; a compile takes a few milliseconds
        if key not in _verdicts:
            if len(_verdicts) >= _CACHE_LIMIT:
                _verdicts.clear()
            _verdicts[key] = _checked(expression, consumable_capacity)
        return _verdicts[key]


def _checked(expression: str, consumable_capacity: bool) -> Refusal | None:
    """``_compile_problem``, letting an expression through should the checker itself fail (a selector
    refused wrongly would block a user whom the real server lets in; one let through only fails later)."""
    try:
        return _compile_problem(expression, consumable_capacity)
    except RecursionError:
        # Nesting this deep (about 250 levels) the real server refuses with "expression recursion limit
        # exceeded: 250" or "max recursion depth exceeded", at thresholds that depend on the construct.
        log.warning("CEL selector not checked: nested too deeply", extra={"expression": expression})
        return None
    except (ValueError, TypeError, KeyError, AssertionError, IndexError):
        log.warning(
            "CEL selector not checked: the checker failed", exc_info=True, extra={"expression": expression}
        )
        return None
