"""AdmissionReview decisions on SharingConfig in the three kinds that carry it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.admission import review
from controller.admission.server import parse_review
from tests.unit.controller.admission.objects import (
    BAD,
    DRIVER,
    GOOD,
    MALFORMED_REVIEWS,
    admission_review,
    claim,
    configs,
    device_class,
    template,
)


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (claim, "spec.devices.config[1].opaque.parameters.corePercent"),
        (template, "spec.spec.devices.config[1].opaque.parameters.corePercent"),
        (device_class, "spec.config[1].opaque.parameters.corePercent"),
    ],
)
def test_bad_config_is_denied_with_the_field_path_and_allowed_range(build: Any, path: str) -> None:
    answer = review(admission_review(build(configs(GOOD, BAD))), DRIVER)
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert f"{path}: must be between 1 and 100 (got 150)" in response["status"]["message"]


@pytest.mark.parametrize("build", [claim, template, device_class])
def test_good_configs_are_admitted(build: Any) -> None:
    response = review(
        admission_review(build(configs(GOOD, {"apiVersion": GOOD["apiVersion"], "kind": "SharingConfig"}))),
        DRIVER,
    )["response"]
    assert response == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_every_problem_is_reported_at_once() -> None:
    bad = {**BAD, "priorty": "high", "computePolicy": "sometimes"}
    message = review(admission_review(claim(configs(bad))), DRIVER)["response"]["status"]["message"]
    assert "spec.devices.config[0].opaque.parameters.priorty: unknown field" in message
    assert (
        "spec.devices.config[0].opaque.parameters.computePolicy: must be one of guaranteed, fixed" in message
    )
    assert "spec.devices.config[0].opaque.parameters.corePercent" in message


def test_configs_of_other_drivers_are_not_judged() -> None:
    response = review(admission_review(claim(configs({"anything": -1}, driver="gpu.nvidia.com"))), DRIVER)
    assert response["response"]["allowed"] is True


def test_driver_name_is_configurable() -> None:
    obj = claim(configs(BAD, driver="xpushare.example.com"))
    assert review(admission_review(obj), DRIVER)["response"]["allowed"] is True
    assert review(admission_review(obj), "xpushare.example.com")["response"]["allowed"] is False


def test_deletes_and_other_kinds_pass() -> None:
    assert review(admission_review(claim(configs(BAD)), "DELETE"), DRIVER)["response"]["allowed"] is True
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert review(admission_review(pod), DRIVER)["response"]["allowed"] is True


@pytest.mark.parametrize("body", [None, [], {"request": "nope"}, {}])
def test_malformed_reviews_are_answered_not_crashed_on(body: Any) -> None:
    response = review(body, DRIVER)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 400


def test_parameters_that_are_not_an_object_are_denied() -> None:
    obj = claim([{"opaque": {"driver": DRIVER, "parameters": "corePercent=5"}}])
    message = review(admission_review(obj), DRIVER)["response"]["status"]["message"]
    assert "spec.devices.config[0].opaque.parameters" in message


@pytest.mark.parametrize(
    ("body", "message"), [(b, m) for _, b, m in MALFORMED_REVIEWS], ids=[c for c, _, _ in MALFORMED_REVIEWS]
)
def test_a_malformed_review_is_denied_naming_the_field(body: Any, message: str) -> None:
    response = review(body, DRIVER)["response"]
    assert response["allowed"] is False
    assert message in response["status"]["message"]


def test_a_malformed_envelope_is_a_bad_request_and_keeps_the_uid() -> None:
    body = admission_review(claim(configs(GOOD)))
    body["request"]["kind"] = "ResourceClaim"
    response = review(body, DRIVER)["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["status"] == {
        "code": 400,
        "reason": "BadRequest",
        "message": "request.kind: must be an object (got a string)",
    }


def test_a_delete_needs_no_object() -> None:
    body = admission_review(claim(configs(BAD)), "DELETE")
    body["request"]["object"] = None
    assert review(body, DRIVER)["response"]["allowed"] is True


def test_names_of_the_wrong_type_are_not_trusted() -> None:
    obj = claim(configs(BAD))
    obj["metadata"] = {"name": ["x"], "namespace": {"a": 1}}
    message = review(admission_review(obj), DRIVER)["response"]["status"]["message"]
    assert message.startswith("invalid xpushare.io config in ResourceClaim ?:")


def test_a_field_given_twice_in_parameters_is_refused_at_admission() -> None:
    parameters = '{"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", "priority": "low"'
    body = json.dumps(admission_review(claim(configs(GOOD)))).replace(
        json.dumps(GOOD), parameters + ', "priority": "high"}')
    problem, parsed = parse_review(body.encode())
    assert problem == ""
    response = review(parsed, DRIVER)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert "spec.devices.config[0].opaque.parameters.priority: field given more than once" in (
        response["status"]["message"])


@pytest.mark.parametrize("raw", [b"{", b"\xff", b'{"request": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_a_body_that_is_not_json_is_a_problem_named_before_review(raw: bytes) -> None:
    problem, parsed = parse_review(raw)
    assert problem.startswith("request body: ")
    assert parsed is None


@pytest.mark.parametrize("kind", [["ResourceClaim"], {"kind": "ResourceClaim"}, 7])
def test_a_kind_that_is_not_a_string_is_denied_naming_the_field_not_a_crash(kind: Any) -> None:
    request = admission_review(claim(configs(BAD)))
    request["request"]["kind"]["kind"] = kind
    request["request"]["object"]["kind"] = kind
    response = review(request, DRIVER)["response"]
    assert (response["allowed"], response["status"]["code"]) == (False, 400)
    assert response["status"]["message"].startswith("request.kind.kind: must be a string")
    request["request"]["kind"] = ["ResourceClaim"]
    response = review(request, DRIVER)["response"]
    assert (response["allowed"], response["status"]["code"]) == (False, 400)
    assert response["status"]["message"].startswith("request.kind: must be an object")
