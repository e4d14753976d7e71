"""What a real Kubernetes v1.36.3 API server answers for device selectors, and the embedded one must too.

``real_server_verdicts.json`` was recorded from kube-apiserver v1.36.3 (``../shared/k8s``) creating a
DeviceClass with each selector: the cause's reason and message for a refusal, or acceptance. It covers
type errors (operators, functions, fields of ``device``, macros, literals), results that are not bools,
the literal validators and the cost limit, and expressions that must stay accepted. ``selector_refusal``
must give exactly the same answer, so a change in the checker, the messages or the cost estimate shows
here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dra_driver.simulation.celcompile import MAX_EXPRESSION_BYTES, selector_refusal

ROWS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "real_server_verdicts.json").read_text())[
    "rows"
]
REFUSED = [(r["expression"], r["refused"]["reason"], r["refused"]["message"]) for r in ROWS if r["refused"]]
ACCEPTED = [r["expression"] for r in ROWS if not r["refused"]]


def test_the_recording_covers_both_answers() -> None:
    assert len(REFUSED) >= 35
    assert len(ACCEPTED) >= 30


@pytest.mark.parametrize(("expression", "reason", "message"), REFUSED)
def test_refused_as_the_real_server_refuses(expression: str, reason: str, message: str) -> None:
    refusal = selector_refusal(expression)
    assert refusal is not None, f"accepted, but kube-apiserver refuses {expression!r}"
    assert (refusal.reason, refusal.message) == (reason, message)


@pytest.mark.parametrize("expression", ACCEPTED)
def test_accepted_as_the_real_server_accepts(expression: str) -> None:
    assert selector_refusal(expression) is None


def test_too_long_is_refused_before_compiling() -> None:
    refusal = selector_refusal('device.driver == "' + "a" * MAX_EXPRESSION_BYTES + '"')
    assert refusal is not None
    assert (refusal.reason, refusal.message) == (
        "FieldValueTooLong",
        "Too long: may not be more than 10240 bytes",
    )


def test_allow_multiple_allocations_needs_the_consumable_capacity_gate() -> None:
    """As on a real v1.36.3 server started with DRAConsumableCapacity=false."""
    assert selector_refusal("device.allowMultipleAllocations", consumable_capacity=True) is None
    refusal = selector_refusal("device.allowMultipleAllocations", consumable_capacity=False)
    assert refusal is not None
    assert refusal.message == (
        'Invalid value: "device.allowMultipleAllocations": compilation failed: ERROR: <input>:1:7: '
        "undefined field 'allowMultipleAllocations'\n | device.allowMultipleAllocations\n | ......^"
    )


def test_a_type_error_deep_in_a_long_conjunction_is_found() -> None:
    expression = " && ".join(['device.driver == "a"'] * 399 + ["device.driver == 1"])
    refusal = selector_refusal(expression)
    assert refusal is not None
    assert "found no matching overload for '_==_' applied to '(string, int)'" in refusal.message


def test_nesting_too_deep_to_check_is_let_through_rather_than_failing() -> None:
    """kube-apiserver refuses 300 nested parentheses ("expression recursion limit exceeded: 250"); the
    embedded server does not reproduce those limits and stores the selector unchecked."""
    assert selector_refusal("(" * 300 + "true" + ")" * 300) is None
