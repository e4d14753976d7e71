"""Turns the raw ``parameters`` of an opaque config into a ``SharingConfig``, or into every reason not to.

The kubelet plugin (at prepare time), admission and ``xpushare config validate`` all decode through here,
so a config is accepted or refused the same way everywhere, with the same messages. Messages name the
field and what it allows, because the person reading them wrote the YAML and has no stack trace to go by.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from api.errors import ConfigValidationError, Issue, join_path
from api.parsed import ParsedObject, describe, parse_int
from api.v1alpha1.sharing import API_VERSION, KIND, MAX_PARAMETERS_BYTES, SharingConfig

RawParameters = bytes | str | Mapping[str, Any]
_TOO_DEEP = "is nested too deeply (a SharingConfig holds no nested values)"
_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _object_hook(pairs: list[tuple[str, Any]]) -> ParsedObject:
    obj = ParsedObject()
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes | str) -> Any:
    """Parse JSON text, refusing what Go's decoder refuses too (NaN, Infinity, invalid UTF-8).

    Objects come back as ``ParsedObject``s that remember keys given twice, and integers too long to
    convert as ``OutOfRangeInt``, so that whoever parses a whole request with this (admission) keeps what
    ``decode_object_configs`` needs to refuse them.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_object_hook, parse_constant=_reject_constant,
                          parse_int=parse_int)
    except UnicodeDecodeError as err:
        issue = Issue("", f"is not valid UTF-8 (byte {err.start})")
        raise ConfigValidationError([issue]) from err
    except json.JSONDecodeError as err:
        issue = Issue("", f"is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})")
        raise ConfigValidationError([issue]) from err
    except ValueError as err:
        raise ConfigValidationError([Issue("", f"is not valid JSON: {err}")]) from err
    except RecursionError as err:
        raise ConfigValidationError([Issue("", _TOO_DEEP)]) from err


def _size(raw: bytes | str) -> int:
    if isinstance(raw, bytes):
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


def _size_parsed(raw: Any) -> int:
    # A parsed value (from YAML or JSON): measure it as the API server stores it, compact JSON. Keys JSON
    # cannot encode are skipped here and reported by validation.
    try:
        text = json.dumps(raw, separators=(",", ":"), default=str, skipkeys=True)
    except RecursionError as err:
        raise ConfigValidationError([Issue("", _TOO_DEEP)]) from err
    except ValueError as err:  # a circular value, or an int past Python's conversion limit
        raise ConfigValidationError([Issue("", "has no JSON form (a value inside itself, or an integer "
                                                 "too long to write)")]) from err
    return len(text.encode("utf-8", "surrogatepass"))


def decode_sharing_config(raw: RawParameters, path: str = "") -> SharingConfig:
    """Decode and validate one config's ``parameters`` (JSON bytes or text, or an already parsed object).

    ``path`` says where the parameters sit in a larger object (for example
    ``spec.devices.config[0].opaque.parameters``) and prefixes every issue. Raises
    ``ConfigValidationError`` listing every problem found.
    """
    return _decode(raw, path, parse=isinstance(raw, bytes | str))


def decode_parsed(value: Any, path: str = "") -> SharingConfig:
    """Decode parameters already parsed from YAML or JSON, whatever their type.

    Unlike ``decode_sharing_config``, a string here is a JSON string, not JSON text: it is refused as the
    API server's copy of it would be, and nothing is parsed again.
    """
    return _decode(value, path, parse=False)


def _decode(raw: Any, path: str, *, parse: bool) -> SharingConfig:
    try:
        size = _size(raw) if parse else _size_parsed(raw)
        if size > MAX_PARAMETERS_BYTES:
            issue = Issue("", f"is {size} bytes, over the limit of {MAX_PARAMETERS_BYTES} bytes")
            raise ConfigValidationError([issue])
        data: Any = parse_json(raw) if parse else raw
        if isinstance(data, Mapping) and not isinstance(data, dict):
            data = dict(data)  # strict validation wants a dict; any read-only mapping is fine here
    except ConfigValidationError as err:
        raise err.with_prefix(path) from err.__cause__
    # What the parsed object recorded: keys given twice, keys that were not strings (left out of it).
    issues = [Issue(key, "field given more than once") for key in getattr(data, "duplicates", ())]
    issues += [Issue("", f"field names must be strings (got {got})") for got in getattr(data, "bad_keys", ())]
    try:
        config = SharingConfig.model_validate(data)
    except ValidationError as err:
        issues.extend(_issue(detail) for detail in err.errors())
        raise ConfigValidationError(issues).with_prefix(path) from err
    if issues:
        raise ConfigValidationError(issues).with_prefix(path)
    return config


def merge_sharing_configs(
    class_configs: Iterable[SharingConfig], claim_configs: Iterable[SharingConfig]
) -> SharingConfig:
    """The effective config: class configs first, then claim configs, each in order.

    A later config overrides an earlier one field by field, and only for the fields it sets explicitly,
    so a claim that sets only ``priority`` keeps its class's ``computePolicy``.
    """
    values: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
    for config in (*class_configs, *claim_configs):
        values.update({name: getattr(config, name) for name in config.model_fields_set})
    return SharingConfig.model_validate(values)


def _issue(detail: ErrorDetails) -> Issue:
    """One pydantic error in our words: the field's dotted path, what it allows, what it got."""
    return Issue(_dotted(detail["loc"]), _message(detail))


def _message(detail: ErrorDetails) -> str:
    got = describe(detail.get("input"))
    kind, loc = detail["type"], detail["loc"]
    field = SharingConfig.model_fields.get(str(loc[0])) if loc else None
    if not loc:
        message = "must be a JSON object with apiVersion and kind (got {got})"
    elif kind == "invalid_key":
        message = "field names must be strings (got {got})"
    elif kind == "extra_forbidden":
        message = "unknown field; allowed fields: " + ", ".join(SharingConfig.model_fields)
    elif field is None:
        message = detail["msg"] + " (got {got})"
    elif kind == "missing":
        message = "required field missing; must be " + _allowed(field, with_type=True)
    else:
        message = "must be " + _allowed(field, with_type=kind not in _RANGE_ERRORS) + " (got {got})"
    return message.replace("{got}", got)


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path = join_path(path, f"[{part}]" if isinstance(part, int) else part)
    return path


def _allowed(field: FieldInfo, *, with_type: bool) -> str:
    """What a field accepts, in the words a message uses: a constant, a list of values or a range."""
    annotation = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Literal:
        return " or ".join(json.dumps(value) for value in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(str(member.value) for member in annotation)
    low = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), None)
    high = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), None)
    bounds = f"between {low} and {high}" if low is not None and high is not None else ""
    if annotation is int and with_type:
        return f"an integer {bounds}".rstrip()
    return bounds or str(annotation)
