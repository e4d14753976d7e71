"""Label and field selectors, parsed once per request and matched against stored objects.

Label selectors take the full set-based syntax (``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x)``, ``a``, ``!a``). Field selectors take ``=``, ``==`` and ``!=`` on the fields a kind
declares in the registry; any other field is a 400, as in kube-apiserver, so a client that relies on an
unsupported field fails loudly here instead of silently getting everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.registry import ResourceKind
from dra_driver.simulation.apiserver.status import bad_request

Matcher = Callable[[Obj], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(in|notin)\s*\(([^)]*)\)|(==|=|!=)\s*([^,]*))?\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (s.strip() for s in parts) if p]


def parse_labels(text: str | None) -> Matcher | None:
    if not text:
        return None
    checks = [_label_requirement(part) for part in _split_top(text)]
    return lambda obj: _all_hold(checks, (obj.get("metadata") or {}).get("labels") or {})


def _all_hold(checks: list[Callable[[dict[str, Any]], bool]], labels: dict[str, Any]) -> bool:
    return all(check(labels) for check in checks)


def _label_requirement(part: str) -> Callable[[dict[str, Any]], bool]:
    match = _SET_RE.match(part)
    if match is None:
        raise bad_request(f"unable to parse requirement: invalid label selector {part!r}")
    negate, key, set_op, values, op, value = match.groups()
    if negate:
        if set_op or op:
            raise bad_request(f"unable to parse requirement: {part!r}")
        return lambda labels: key not in labels
    if set_op:
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if set_op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if op:
        wanted = value.strip()
        if op == "!=":
            return lambda labels: labels.get(key) != wanted
        return lambda labels: labels.get(key) == wanted
    return lambda labels: key in labels


def field_value(obj: Obj, path: str) -> str:
    """A field's value as a field selector compares it: absent is "", booleans are lower case."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and path == "source":
        return str(value.get("component", ""))
    return str(value)


def parse_fields(kind: ResourceKind, text: str | None) -> Matcher | None:
    if not text:
        return None
    checks: list[tuple[str, bool, str]] = []
    for part in _split_top(text):
        match = re.match(r"^([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*)$", part)
        if match is None:
            raise bad_request(f"invalid field selector: {part!r}")
        label, op, value = match.groups()
        if not kind.supports_field(label):
            raise bad_request(f'field label not supported: {label}')
        checks.append((label, op == "!=", value.strip()))
    return lambda obj: all((field_value(obj, f) == v) != neg for f, neg, v in checks)


def combine(*matchers: Matcher | None) -> Matcher | None:
    active = [m for m in matchers if m is not None]
    if not active:
        return None
    return lambda obj: all(m(obj) for m in active)
