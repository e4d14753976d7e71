"""Pure helpers over object dicts: the system metadata a server owns and the checks on request bodies.

Kept free of storage and HTTP so the rules (what a client may not set, when generation moves, what a
status update may touch) read in one place and can be tested without a server.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import uuid
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.registry import ResourceKind
from dra_driver.simulation.apiserver.status import bad_request, cause, invalid

_SYSTEM_META = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(body: bytes) -> Any:
    """Parse a JSON request body; malformed JSON is the 400 a real server sends."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise bad_request(f"the body of the request could not be decoded as JSON: {err}") from err


def strip_nulls(value: Any) -> Any:
    """Remove null members recursively: a Go decoder leaves such fields unset."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def check_body(kind: ResourceKind, body: Any) -> Obj:
    """The body must be an object of this kind and version (kind and apiVersion may be left out)."""
    if not isinstance(body, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {kind.kind}): "
                          "the body must be a JSON object")
    obj: Obj = strip_nulls(body)
    sent_kind = obj.get("kind") or kind.kind
    sent_version = obj.get("apiVersion") or kind.api_version
    if sent_kind != kind.kind or sent_version != kind.api_version:
        raise bad_request(f"{sent_kind} in version \"{sent_version}\" cannot be handled as a {kind.kind}: "
                          f"expected kind {kind.kind} in {kind.api_version}")
    obj["kind"] = kind.kind
    obj["apiVersion"] = kind.api_version
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise invalid(kind.kind, kind.group, "", [cause("metadata", "Invalid value: must be an object")])
    return obj


def place(kind: ResourceKind, obj: Obj, namespace: str) -> None:
    """Put the URL's namespace into the object; a different namespace in the body is a 400."""
    meta = obj["metadata"]
    if not kind.namespaced:
        meta.pop("namespace", None)
        return
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                          "request")
    meta["namespace"] = namespace


def name_for_create(kind: ResourceKind, obj: Obj) -> str:
    meta = obj["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
        meta["name"] = f"{meta['generateName']}{suffix}"
    if not meta.get("name"):
        raise invalid(kind.kind, kind.group, "", [cause("metadata.name", "Required value: name or "
                                                        "generateName is required", "FieldValueRequired")])
    return str(meta["name"])


def init_system_fields(kind: ResourceKind, obj: Obj) -> None:
    """What a server sets on create, whatever the client sent."""
    meta = obj["metadata"]
    for key in (*_SYSTEM_META, "resourceVersion", "managedFields", "selfLink"):
        meta.pop(key, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now()
    meta["generation"] = 1
    if kind.clear_status_on_create:
        obj.pop("status", None)
    if kind.initial_status:
        status = obj.setdefault("status", {})
        for key, value in kind.initial_status:
            status.setdefault(key, value)
    if kind.kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])


def _content(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def merge_for_update(kind: ResourceKind, old: Obj, new: Obj, subresource: str) -> Obj:
    """The object an update stores: system fields kept, and status or spec taken from the right side."""
    if subresource == "binding":
        return new
    if subresource == "status":
        result = copy.deepcopy(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        return result
    result = new
    meta = result["metadata"]
    for key in _SYSTEM_META:
        meta.pop(key, None)
        if key in old["metadata"]:
            meta[key] = old["metadata"][key]
    meta.pop("managedFields", None)
    if kind.has_status:
        if "status" in old:
            result["status"] = copy.deepcopy(old["status"])
        else:
            result.pop("status", None)
    if _content(result) != _content(old):
        meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
    return result


def same_object(old: Obj, new: Obj) -> bool:
    """True when an update changes nothing but the resourceVersion (then nothing is written)."""
    old_meta = {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}
    new_meta = {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}
    if old_meta != new_meta:
        return False
    return all(old.get(k) == new.get(k) for k in set(old) | set(new) if k != "metadata")


def check_immutable(kind: ResourceKind, old: Obj, new: Obj) -> None:
    """Fields a real server refuses to change after create."""
    causes = []
    if kind.kind in ("ResourceClaim", "ResourceClaimTemplate") and old.get("spec") != new.get("spec"):
        causes.append(cause("spec", "Invalid value: field is immutable"))
    if kind.kind == "Pod" and (old.get("spec") or {}).get("nodeName") and \
            (old.get("spec") or {}).get("nodeName") != (new.get("spec") or {}).get("nodeName"):
        causes.append(cause("spec.nodeName", "Invalid value: field is immutable"))
    if causes:
        raise invalid(kind.kind, kind.group, str(old["metadata"]["name"]), causes)
