"""The decoder on hostile parameters: JSON text from admission or the node, and parsed values from YAML."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from api.errors import ConfigValidationError
from api.parsed import MAX_INT_DIGITS, OutOfRangeInt, key_issues, parse_int
from api.v1alpha1 import decode_object_configs, decode_parsed, decode_sharing_config, parse_json

HEAD = '{"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig"'


def problems(raw: Any, decode: Any = decode_sharing_config) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        decode(raw)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(("raw", "expected"), [
    pytest.param(HEAD + ', "memoryMiB": ' + "9" * 5000 + "}",
                 "memoryMiB: must be between 1 and 8796093022207 (got a 5000-digit number)",
                 id="integer past Python's 4300-digit limit"),
    pytest.param(HEAD + ', "corePercent": -' + "1" * 200 + "}",
                 "corePercent: must be between 1 and 100 (got a negative 200-digit number)",
                 id="long negative integer"),
    pytest.param(HEAD + ', "x": ' + "1" * 5000 + "}",
                 "x: unknown field; allowed fields: apiVersion, kind, priority, computePolicy, memoryMiB, "
                 "corePercent", id="huge integer in an unknown field"),
    pytest.param('{"apiVersion": "xpushare.io/v1alpha1", "kind": ["SharingConfig"]}',
                 'kind: must be "SharingConfig" (got an array)', id="kind a list"),
])
def test_hostile_json_parameters_get_a_message(raw: str, expected: str) -> None:
    assert problems(raw.encode()) == [expected]


def test_integers_up_to_the_bound_are_read_exactly() -> None:
    assert parse_int("9" * MAX_INT_DIGITS) == int("9" * MAX_INT_DIGITS)
    assert type(parse_int("9" * MAX_INT_DIGITS)) is int
    assert isinstance(parse_int("9" * (MAX_INT_DIGITS + 1)), OutOfRangeInt)
    assert parse_int("-" + "9" * (MAX_INT_DIGITS + 1)) < -(10**MAX_INT_DIGITS) + 1


def test_duplicate_inside_an_object_parsed_by_the_decoders_parser_is_refused() -> None:
    text = ('{"kind": "DeviceClass", "spec": {"config": [{"opaque": {"driver": "xpushare.io", "parameters": '
            + HEAD + ', "priority": "high", "priority": "low"}}}]}}')
    with pytest.raises(ConfigValidationError) as caught:
        decode_object_configs(parse_json(text))
    assert [str(issue) for issue in caught.value.issues] == [
        "spec.config[0].opaque.parameters.priority: field given more than once"]
    assert [str(issue) for issue in key_issues(parse_json(text))] == [
        "spec.config[0].opaque.parameters.priority: field given more than once"]


def test_unsupported_kind_that_is_a_list_is_named_not_crashed_on() -> None:
    assert problems({"kind": ["DeviceClass"]}, decode_object_configs) == [
        "kind: must be one of DeviceClass, ResourceClaim, ResourceClaimTemplate (got an array)"]


def test_parsed_values_json_cannot_encode_are_refused_without_a_crash() -> None:
    circular: dict[str, Any] = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig"}
    circular["priority"] = circular
    assert problems(circular, decode_parsed) == [
        "parameters: has no JSON form (a value inside itself, or an integer too long to write)"]
    odd_keys: dict[Any, Any] = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", b"k": 1}
    assert problems(odd_keys, decode_parsed) == ["b'k': field names must be strings (got bytes)"]


def test_a_parsed_string_is_not_parsed_again() -> None:
    assert problems(HEAD + "}", decode_parsed) == [
        f"parameters: must be a JSON object with apiVersion and kind (got {json.dumps(HEAD + '}')[:37]}...)"]


def _hostile_json(rng: random.Random) -> bytes:
    fields = ["priority", "computePolicy", "memoryMiB", "corePercent", "kind", "apiVersion"]
    values = ["9" * rng.randint(101, 6000), "-" + "1" * rng.randint(4300, 4400), "[]", "{}", "null", "1.5",
              "true", '"x"', "[" * 3000 + "]" * 3000, "1e999", '"\\ud800"']
    body = [f'"{rng.choice(fields)}": {rng.choice(values)}' for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.4:
        body += ['"priority": "high"', '"priority": "high"']
    text = "{" + ", ".join(body) + "}"
    if rng.random() < 0.2:
        text = text[: rng.randrange(1, len(text))]
    return text.encode() if rng.random() < 0.9 else text.encode() + b"\xff"


def test_seeded_hostile_json_is_always_refused_with_issues() -> None:
    rng = random.Random(4300)  # noqa: S311 - reproducible on purpose, not a secret
    for _ in range(300):
        raw = _hostile_json(rng)
        with pytest.raises(ConfigValidationError) as caught:
            decode_sharing_config(raw)
        assert caught.value.issues, raw[:200]
