"""Request bodies and response payloads on the wire: decoding JSON/YAML bodies, DeleteOptions and
query integers, and encoding lists from the stored JSON of each object without re-serializing it."""

from __future__ import annotations

import json
from typing import Any

from dra_driver.simulation.apiserver import protobuf
from dra_driver.simulation.apiserver.patch import decode_document
from dra_driver.simulation.apiserver.resources import ListResult
from dra_driver.simulation.apiserver.routing import Route
from dra_driver.simulation.apiserver.status import bad_request, unsupported_media

_BODY_TYPES = ("application/json", "application/yaml", "")


def int_param(query: dict[str, str], name: str) -> int:
    text = query.get(name, "") or "0"
    try:
        return int(text)
    except ValueError as err:
        raise bad_request(f"invalid {name} {text!r}: must be an integer") from err


def parse_body(content_type: str, body: bytes) -> Any:
    media = content_type.split(";", maxsplit=1)[0].strip()
    if media == protobuf.PROTOBUF:
        return protobuf.decode(body)
    if media not in _BODY_TYPES:
        raise unsupported_media(media)
    return decode_document(body, as_yaml=media == "application/yaml")


def delete_options(query: dict[str, str], body: bytes) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if body.strip():
        parsed = parse_body("application/json", body)
        if not isinstance(parsed, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        options.update(parsed)
    for key in ("propagationPolicy", "dryRun", "orphanDependents"):
        if key in query:
            options[key] = query[key]
    return options


def list_payload(route: Route, listing: ListResult) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(listing.resource_version)}
    if listing.continue_token:
        meta["continue"] = listing.continue_token
        meta["remainingItemCount"] = listing.remaining
    head = json.dumps({"kind": route.kind.list_kind, "apiVersion": route.kind.api_version, "metadata": meta})
    return head[:-1].encode() + b',"items":[' + b",".join(e.raw for e in listing.entries) + b"]}"
