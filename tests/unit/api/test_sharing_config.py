"""SharingConfig decoding: what users write by hand is accepted or refused with messages naming the field.

The exact messages are pinned because admission returns them to users verbatim and the docs quote them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from api.errors import ConfigValidationError, Issue
from api.v1alpha1 import (
    API_VERSION,
    KIND,
    MAX_PARAMETERS_BYTES,
    ComputePolicy,
    Priority,
    SharingConfig,
    decode_sharing_config,
)

HEAD = f'"apiVersion": "{API_VERSION}", "kind": "{KIND}"'
PREFIX = "spec.devices.config[0].opaque.parameters"
FIELDS = "apiVersion, kind, priority, computePolicy, memoryMiB, corePercent"


def config_json(body: str) -> bytes:
    return ("{" + HEAD + (", " + body if body else "") + "}").encode()


BAD_INPUTS = [
    pytest.param(config_json('"priorty": "high"'),
                 [f"priorty: unknown field; allowed fields: {FIELDS}"], id="misspelt field is unknown"),
    pytest.param(b'{"apiVersion": "xpushare.io/v1", "kind": "SharingConfig"}',
                 ['apiVersion: must be "xpushare.io/v1alpha1" (got "xpushare.io/v1")'],
                 id="wrong apiVersion"),
    pytest.param(b'{"apiVersion": "xpushare.io/v1alpha1", "kind": "GpuConfig"}',
                 ['kind: must be "SharingConfig" (got "GpuConfig")'], id="wrong kind"),
    pytest.param(b'{"priority": "high"}',
                 ['apiVersion: required field missing; must be "xpushare.io/v1alpha1"',
                  'kind: required field missing; must be "SharingConfig"'], id="apiVersion and kind missing"),
    pytest.param(config_json('"memoryMiB": "5"'),
                 ['memoryMiB: must be an integer between 1 and 8796093022207 (got "5")'],
                 id="string is not an integer"),
    pytest.param(config_json('"corePercent": true'),
                 ["corePercent: must be an integer between 1 and 100 (got true)"],
                 id="boolean is not an integer"),
    pytest.param(config_json('"memoryMiB": 512.0'),
                 ["memoryMiB: must be an integer between 1 and 8796093022207 (got 512.0)"],
                 id="float is not an integer"),
    pytest.param(config_json('"memoryMiB": null'),
                 ["memoryMiB: must be an integer between 1 and 8796093022207 (got null)"],
                 id="null is not a way to unset"),
    pytest.param(config_json('"memoryMiB": 0'),
                 ["memoryMiB: must be between 1 and 8796093022207 (got 0)"], id="zero memory"),
    pytest.param(config_json('"memoryMiB": -1024'),
                 ["memoryMiB: must be between 1 and 8796093022207 (got -1024)"], id="negative memory"),
    pytest.param(config_json('"memoryMiB": 8796093022208'),
                 ["memoryMiB: must be between 1 and 8796093022207 (got 8796093022208)"],
                 id="memory whose bytes overflow int64"),
    pytest.param(config_json('"corePercent": 0'),
                 ["corePercent: must be between 1 and 100 (got 0)"], id="zero cores"),
    pytest.param(config_json('"corePercent": 101'),
                 ["corePercent: must be between 1 and 100 (got 101)"], id="more than a whole device"),
    pytest.param(config_json('"priority": "urgent"'),
                 ['priority: must be one of high, normal, low (got "urgent")'], id="bad priority"),
    pytest.param(config_json('"priority": "HIGH"'),
                 ['priority: must be one of high, normal, low (got "HIGH")'], id="enums are case sensitive"),
    pytest.param(config_json('"computePolicy": "burst"'),
                 ['computePolicy: must be one of guaranteed, fixed (got "burst")'], id="bad compute policy"),
    pytest.param(config_json('"computePolicy": 1'),
                 ["computePolicy: must be one of guaranteed, fixed (got 1)"], id="number as enum"),
    pytest.param(config_json('"priority": "low", "priority": "high"'),
                 ["priority: field given more than once"], id="duplicate field"),
    pytest.param(b"[1, 2]", ["parameters: must be a JSON object with apiVersion and kind (got an array)"],
                 id="array instead of object"),
    pytest.param(b'"SharingConfig"',
                 ['parameters: must be a JSON object with apiVersion and kind (got "SharingConfig")'],
                 id="string instead of object"),
    pytest.param(b'{"apiVersion": ', ["parameters: is not valid JSON: Expecting value (line 1, column 16)"],
                 id="truncated JSON"),
    pytest.param(b"\xff\xfe{}", ["parameters: is not valid UTF-8 (byte 0)"], id="bytes that are not UTF-8"),
    pytest.param(config_json('"memoryMiB": NaN'), ["parameters: is not valid JSON: NaN is not a JSON number"],
                 id="NaN is not JSON"),
]


@pytest.mark.parametrize(("raw", "expected"), BAD_INPUTS)
def test_bad_parameters_are_refused_naming_the_field(raw: bytes, expected: list[str]) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        decode_sharing_config(raw)
    assert str(caught.value).splitlines() == expected


def test_every_problem_is_reported_at_once_in_field_order() -> None:
    raw = (b'{"apiVersion": "v1", "kind": "SharingConfig", "priority": "top", "computePolicy": "soft",'
           b' "memoryMiB": 0, "corePercent": 150, "gpus": 2}')
    with pytest.raises(ConfigValidationError) as caught:
        decode_sharing_config(raw, PREFIX)
    assert [issue.path.removeprefix(PREFIX + ".") for issue in caught.value.issues] == [
        "apiVersion", "priority", "computePolicy", "memoryMiB", "corePercent", "gpus"]
    assert str(caught.value).splitlines()[4] == f"{PREFIX}.corePercent: must be between 1 and 100 (got 150)"


def test_path_prefix_locates_root_level_problems_too() -> None:
    with pytest.raises(ConfigValidationError) as caught:
        decode_sharing_config(b"[]", PREFIX)
    expected = Issue(PREFIX, "must be a JSON object with apiVersion and kind (got an array)")
    assert caught.value.issues == (expected,)


def test_issues_are_path_message_pairs() -> None:
    with pytest.raises(ConfigValidationError) as caught:
        decode_sharing_config(config_json('"corePercent": 0'))
    ((path, message),) = caught.value.issues
    assert (path, message) == ("corePercent", "must be between 1 and 100 (got 0)")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("size", [MAX_PARAMETERS_BYTES + 1, 64 * 1024])
def test_parameters_over_10_kib_are_refused_with_size_and_limit(size: int) -> None:
    raw = config_json('"priority": "high"')
    raw = raw[:-1] + b" " * (size - len(raw)) + b"}"
    with pytest.raises(ConfigValidationError) as caught:
        decode_sharing_config(raw, PREFIX)
    assert str(caught.value) == f"{PREFIX}: is {size} bytes, over the limit of 10240 bytes"


def test_parameters_of_exactly_10_kib_are_accepted() -> None:
    raw = config_json('"priority": "high"')
    raw = raw[:-1] + b" " * (MAX_PARAMETERS_BYTES - len(raw)) + b"}"
    assert len(raw) == MAX_PARAMETERS_BYTES
    assert decode_sharing_config(raw).priority is Priority.HIGH


def test_size_of_a_mapping_is_measured_as_compact_json() -> None:
    big = {"apiVersion": API_VERSION, "kind": KIND, "x" * MAX_PARAMETERS_BYTES: 1}
    with pytest.raises(ConfigValidationError, match=r"is 10\d\d\d bytes, over the limit of 10240 bytes"):
        decode_sharing_config(big)


def test_defaults_apply_to_what_is_left_out() -> None:
    config = decode_sharing_config(config_json(""))
    assert (config.priority, config.computePolicy) == (Priority.NORMAL, ComputePolicy.GUARANTEED)
    assert (config.memoryMiB, config.corePercent) == (None, None)
    assert config.model_fields_set == {"apiVersion", "kind"}


FULL = config_json('"priority": "high", "computePolicy": "fixed", "memoryMiB": 16384, "corePercent": 25')


@pytest.mark.parametrize("raw", [
    FULL,
    FULL.decode(),
    {"apiVersion": API_VERSION, "kind": KIND, "priority": "high", "computePolicy": "fixed",
     "memoryMiB": 16384, "corePercent": 25},
], ids=["bytes", "str", "mapping"])
def test_every_input_form_decodes_to_the_same_typed_config(raw: Any) -> None:
    config = decode_sharing_config(raw)
    assert config == SharingConfig(apiVersion="xpushare.io/v1alpha1", kind="SharingConfig",
                                   priority=Priority.HIGH, computePolicy=ComputePolicy.FIXED,
                                   memoryMiB=16384, corePercent=25)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (100, 100), (50, 50)])
def test_core_percent_bounds_are_inclusive(value: int, expected: int) -> None:
    assert decode_sharing_config(config_json(f'"corePercent": {value}')).corePercent == expected


def test_decoded_config_is_frozen() -> None:
    config = decode_sharing_config(config_json('"priority": "low"'))
    with pytest.raises(ValidationError):
        config.priority = Priority.HIGH


def test_mapping_with_bytes_or_odd_keys_is_refused_without_a_crash() -> None:
    raw: dict[Any, Any] = {"apiVersion": API_VERSION, "kind": KIND, "priority": b"high", 7: "x"}
    with pytest.raises(ConfigValidationError) as caught:
        decode_sharing_config(raw)
    assert [str(issue) for issue in caught.value.issues] == [
        "priority: must be one of high, normal, low (got bytes)",
        "[7]: field names must be strings (got 7)",
    ]


def test_error_with_prefix_keeps_list_indexes_attached() -> None:
    error = ConfigValidationError([Issue("[2]", "bad"), Issue("a", "worse"), Issue("", "worst")])
    assert str(error.with_prefix("spec.config")).splitlines() == [
        "spec.config[2]: bad", "spec.config.a: worse", "spec.config: worst"]


def test_error_needs_an_issue() -> None:
    with pytest.raises(ValueError, match="at least one issue"):
        ConfigValidationError([])


def test_bad_inputs_agree_with_the_published_schema() -> None:
    """The JSON Schema refuses every bad JSON object the decoder refuses, so editors warn about the same."""
    import jsonschema

    from api.v1alpha1 import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    for param in BAD_INPUTS:
        raw = param.values[0]
        assert isinstance(raw, bytes)
        try:
            document = json.loads(raw)
        except ValueError:
            continue
        if param.id in {"duplicate field", "float is not an integer"}:
            # JSON Schema sees the parsed object, where a duplicate is gone, and counts 512.0 as an integer
            # (as the API server's Go decoder does not: the decoder is the stricter of the two).
            continue
        assert not validator.is_valid(document), param.id
    assert validator.is_valid(json.loads(config_json('"memoryMiB": 1, "corePercent": 100')))


@pytest.mark.parametrize("raw", [
    pytest.param(b"[" * 5000 + b"]" * 5000, id="deep JSON text"),
    pytest.param(b'{"memoryMiB": ' + b"[" * 3000 + b"]" * 3000 + b"}", id="deep JSON value"),
])
def test_deeply_nested_json_is_refused_not_a_crash(raw: bytes) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        decode_sharing_config(raw, PREFIX)
    assert str(caught.value) == f"{PREFIX}: is nested too deeply (a SharingConfig holds no nested values)"


def test_deeply_nested_mapping_is_refused_not_a_crash() -> None:
    deep: list[Any] = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    with pytest.raises(ConfigValidationError, match=r"^parameters: is nested too deeply"):
        decode_sharing_config({"apiVersion": API_VERSION, "kind": KIND, "memoryMiB": deep})


def test_any_read_only_mapping_is_decoded() -> None:
    from types import MappingProxyType

    raw = MappingProxyType({"apiVersion": API_VERSION, "kind": KIND, "corePercent": 5})
    assert decode_sharing_config(raw).corePercent == 5


def test_priorities_are_ranked_low_to_high() -> None:
    assert Priority.ranked() == (Priority.LOW, Priority.NORMAL, Priority.HIGH)
    assert [p.rank for p in Priority.ranked()] == [0, 1, 2]
    assert max(Priority, key=lambda p: p.rank) is Priority.HIGH
