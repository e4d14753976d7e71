"""AdmissionReview v1 decisions for our SharingConfig in DeviceClasses, ResourceClaims and templates.

Pure: an AdmissionReview request (a dict) in, an AdmissionReview response out. Decoding goes through
``api.v1alpha1.decode_object_configs``, the decoder the node plugin uses at prepare time, so a config
admitted here is never refused there, and the denial names every bad field the way the API server
would (``spec.devices.config[1].opaque.parameters.corePercent: must be between 0 and 100 (got 150)``).
Configs of other drivers are not ours to judge and pass untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.errors import ConfigValidationError
from api.v1alpha1 import decode_object_configs
from dra_driver.core.kubetypes import Obj

KINDS = frozenset({"DeviceClass", "ResourceClaim", "ResourceClaimTemplate"})
API_VERSION = "admission.k8s.io/v1"


def decide(request: Mapping[str, Any], driver_name: str) -> tuple[bool, str]:
    """(allowed, message) for one AdmissionRequest."""
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return True, ""
    obj = request.get("object")
    kind = (request.get("kind") or {}).get("kind") or (obj or {}).get("kind")
    if not isinstance(obj, Mapping) or kind not in KINDS:
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
