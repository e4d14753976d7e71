"""AdmissionReview v1 decisions for our SharingConfig in DeviceClasses, ResourceClaims and templates.

Pure: an AdmissionReview request (a dict) in, an AdmissionReview response out. Decoding goes through
``api.v1alpha1.decode_object_configs``, the decoder the node plugin uses at prepare time, so a config
admitted here is never refused there, and the denial names every bad field the way the API server
would (``spec.devices.config[1].opaque.parameters.corePercent: must be between 0 and 100 (got 150)``).
Configs of other drivers are not ours to judge and pass untouched.

The API server only sends well-typed reviews, but anyone who reaches the port can send anything, so
the envelope's types are checked before use and a malformed one is denied with the field's path from
the review's root (``request.object.metadata: must be an object``), never answered with a crash.

A field given twice inside opaque parameters reaches the webhook as the client sent it (the API server
keeps parameters as raw JSON), and ``json.loads`` keeps the last value silently. The server parses the
body with the decoder's own parser (``parse_json``), which remembers duplicates, so the rule holds here
as in ``xpushare config validate`` and at prepare time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.errors import ConfigValidationError
from api.v1alpha1 import decode_object_configs
from dra_driver.core.kubetypes import Obj

KINDS = frozenset({"DeviceClass", "ResourceClaim", "ResourceClaimTemplate"})
API_VERSION = "admission.k8s.io/v1"
MALFORMED = 400  # the status code of a denial for a malformed review
INVALID = 422  # ... and for an invalid config in a well-formed one


def json_type(value: object) -> str:
    """``value``'s JSON type, as a message says what it got."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


def envelope_problem(request: Mapping[str, Any]) -> str:
    """The first field of an AdmissionRequest that has the wrong type, as ``path: must be ...``; empty
    when the fields ``decide`` reads are usable."""
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        return f"request.uid: must be a non-empty string (got {json_type(uid)})"
    checks: list[tuple[str, object, type, str]] = [
        ("request.operation", request.get("operation"), str, "a string"),
        ("request.kind", request.get("kind", {}), Mapping, "an object"),
    ]
    gvk = request.get("kind")
    if isinstance(gvk, Mapping):
        checks.append(("request.kind.kind", gvk.get("kind", ""), str, "a string"))
    if request.get("operation") in ("CREATE", "UPDATE"):
        obj = request.get("object")
        checks.append(("request.object", obj, Mapping, "an object"))
        if isinstance(obj, Mapping):
            checks.append(("request.object.kind", obj.get("kind", ""), str, "a string"))
            checks.append(("request.object.metadata", obj.get("metadata", {}), Mapping, "an object"))
    for path, value, expected, name in checks:
        if not isinstance(value, expected):
            return f"{path}: must be {name} (got {json_type(value)})"
    return ""


def decide(request: Mapping[str, Any], driver_name: str) -> tuple[bool, str]:
    """(allowed, message) for one AdmissionRequest."""
    return _decide(request, driver_name)[:2]


def _decide(request: Mapping[str, Any], driver_name: str) -> tuple[bool, str, int]:
    problem = envelope_problem(request)
    if problem:
        return False, problem, MALFORMED
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return True, "", 0
    obj: Mapping[str, Any] = request["object"]
    kind = (request.get("kind") or {}).get("kind") or obj.get("kind")
    if kind not in KINDS:
        return True, "", 0
    try:
        decode_object_configs({**obj, "kind": kind}, driver_name)
    except ConfigValidationError as err:
        return False, f"invalid {driver_name} config in {kind} {_name(obj)}:\n{err}", INVALID
    return True, "", 0


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    name, namespace = (
        value if isinstance(value, str) and value else None
        for value in (metadata.get("name") or metadata.get("generateName"), metadata.get("namespace"))
    )
    return f"{namespace}/{name or '?'}" if namespace else name or "?"


def review(body: Any, driver_name: str) -> Obj:
    """The AdmissionReview answer to ``body``; a malformed review is answered with a denial, not a crash."""
    if not isinstance(body, Mapping):
        return _response("", False, f"AdmissionReview: must be an object (got {json_type(body)})", MALFORMED)
    request = body.get("request")
    if not isinstance(request, Mapping):
        return _response("", False, f"request: must be an object (got {json_type(request)})", MALFORMED)
    allowed, message, code = _decide(request, driver_name)
    uid = request.get("uid")
    return _response(uid if isinstance(uid, str) else "", allowed, message, code)


def _response(uid: str, allowed: bool, message: str, code: int) -> Obj:
    response: Obj = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "reason": "Invalid" if code == INVALID else "BadRequest",
                              "message": message}  # fmt: skip
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
