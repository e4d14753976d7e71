"""AdmissionReview v1 decisions for our SharingConfig in DeviceClasses, ResourceClaims and templates.

Pure: an AdmissionReview request (a dict) in, an AdmissionReview response out. Decoding goes through
``api.v1alpha1.decode_object_configs``, the decoder the node plugin uses at prepare time, so a config
admitted here is never refused there, and the denial names every bad field the way the API server
would (``spec.devices.config[1].opaque.parameters.corePercent: must be between 0 and 100 (got 150)``).
Configs of other drivers are not ours to judge and pass untouched.

A field given twice inside opaque parameters reaches the webhook as the client sent it (the API server
keeps parameters as raw JSON), and ``json.loads`` keeps the last value silently. ``review_json`` parses
the body with the decoder's own parser, which remembers duplicates, so the rule holds here as in
``xpushare config validate`` and at prepare time; ``review`` on an already parsed body cannot see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.errors import ConfigValidationError
from api.v1alpha1 import decode_object_configs, parse_json
from dra_driver.core.kubetypes import Obj

KINDS = frozenset({"DeviceClass", "ResourceClaim", "ResourceClaimTemplate"})
API_VERSION = "admission.k8s.io/v1"


def decide(request: Mapping[str, Any], driver_name: str) -> tuple[bool, str]:
    """(allowed, message) for one AdmissionRequest."""
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return True, ""
    obj = request.get("object")
    if not isinstance(obj, Mapping):
        return True, ""
    group_kind = request.get("kind")
    kind = (group_kind.get("kind") if isinstance(group_kind, Mapping) else None) or obj.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:  # a list or an object is not hashable
        return True, ""
    try:
        decode_object_configs({**obj, "kind": kind}, driver_name)
    except ConfigValidationError as err:
        return False, f"invalid {driver_name} config in {kind} {_name(obj)}:\n{err}"
    return True, ""


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name") or metadata.get("generateName") or "?"
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def review_json(raw: bytes | str, driver_name: str) -> Obj:
    """The AdmissionReview answer to the raw request body; use this rather than ``review(json.loads(...))``
    so that duplicate fields in parameters are refused. A body that is not JSON is answered with 400."""
    try:
        body = parse_json(raw)
    except ConfigValidationError as err:
        return _response("", False, f"AdmissionReview: body {err.issues[0].message}", 400)
    return review(body, driver_name)


def review(body: Any, driver_name: str) -> Obj:
    """The AdmissionReview answer to ``body``; a malformed review is answered with a denial, not a crash."""
    request = body.get("request") if isinstance(body, Mapping) else None
    if not isinstance(request, Mapping):
        return _response("", False, "AdmissionReview: request missing", 400)
    allowed, message = decide(request, driver_name)
    return _response(str(request.get("uid", "")), allowed, message, 422)


def _response(uid: str, allowed: bool, message: str, code: int) -> Obj:
    response: Obj = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "reason": "Invalid", "message": message}
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
