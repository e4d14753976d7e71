"""CEL selectors that do not compile are refused at create and update, as kube-apiserver does.

The real server compiles every ``cel.expression`` of a ResourceClaim, ResourceClaimTemplate and
DeviceClass and answers 422 naming the field (``...selectors[0].cel.expression``) when it does not
compile. This checks the syntax with cel-python's parser, without type checking: an expression that
parses but would fail the real server's type check is still stored here. Expressions using CEL's
optional syntax (``.?`` and ``?.``), which kube-apiserver accepts but cel-python cannot parse, are let
through rather than refused wrongly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import celpy

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.status import cause

__all__ = ["claim_selector_errors", "class_selector_errors"]

_env = celpy.Environment()
_lock = threading.Lock()
_verdicts: dict[str, str] = {}


def _compile_error(expression: str) -> str:
    """Empty when the expression parses, else the parser's first line."""
    with _lock:
        verdict = _verdicts.get(expression)
        if verdict is None:
            try:
                _env.compile(expression)
                verdict = ""
            except Exception as err:  # celpy raises its own parse errors (and Lark's)
                verdict = _first_line(err)
            _verdicts[expression] = verdict
    return verdict


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return f"Syntax error near: {lines[0].strip()}" if lines else type(err).__name__


def _selector_errors(path: str, selectors: Any) -> list[Obj]:
    errors: list[Obj] = []
    for index, selector in enumerate(selectors if isinstance(selectors, list) else ()):
        cel = selector.get("cel") if isinstance(selector, dict) else None
        expression = cel.get("expression") if isinstance(cel, dict) else None
        if not isinstance(expression, str) or not expression.strip() or _optional_syntax(expression):
            continue
        problem = _compile_error(expression)
        if problem:
            field = f"{path}[{index}].cel.expression"
            errors.append(cause(field, f'Invalid value: "{expression}": compilation failed: {problem}'))
    return errors


def _optional_syntax(expression: str) -> bool:
    return any(token in expression for token in (".?", "?.", "[?"))


def _requests(path: str, spec: Obj) -> Iterator[tuple[str, Obj]]:
    requests = (spec.get("devices") or {}).get("requests") if isinstance(spec.get("devices"), dict) else None
    for index, request in enumerate(requests if isinstance(requests, list) else ()):
        if not isinstance(request, dict):
            continue
        where = f"{path}.devices.requests[{index}]"
        if isinstance(request.get("exactly"), dict):
            yield f"{where}.exactly", request["exactly"]
        alternatives = request.get("firstAvailable")
        for sub, alternative in enumerate(alternatives if isinstance(alternatives, list) else ()):
            if isinstance(alternative, dict):
                yield f"{where}.firstAvailable[{sub}]", alternative


def claim_selector_errors(path: str, spec: Obj) -> list[Obj]:
    """The selectors of a claim spec (at ``path``) that do not compile."""
    errors: list[Obj] = []
    for where, request in _requests(path, spec):
        errors += _selector_errors(f"{where}.selectors", request.get("selectors"))
    return errors


def class_selector_errors(spec: Obj) -> list[Obj]:
    """The selectors of a DeviceClass spec that do not compile."""
    return _selector_errors("spec.selectors", spec.get("selectors"))
