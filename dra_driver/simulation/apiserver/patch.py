"""The PATCH flavours clients send: JSON merge patch, JSON patch, strategic merge patch and apply.

Strategic merge patch is JSON merge patch plus list handling: a list whose schema field carries
``x-kubernetes-patch-strategy: merge`` merges element by element, matched on the
``x-kubernetes-patch-merge-key`` (conditions by ``type``, containers by ``name``), primitive lists with
that strategy are unioned, and every other list is replaced. The directives kubectl emits
(``$patch: replace|delete``, ``$retainKeys``, ``$setElementOrder/...``, ``$deleteFromPrimitiveList/...``)
are honoured. Server-side apply (``application/apply-patch+yaml``) is served as a strategic merge of the
applied configuration without field ownership tracking: fields left out of a later apply are kept, not
removed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from api.errors import ConfigError
from api.yamlfile import load_documents
from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.schema import child, resolve
from dra_driver.simulation.apiserver.status import bad_request

Components = dict[str, Obj]


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(original: Any, operations: Any) -> Any:
    """RFC 6902 operations; a failed ``test`` or a bad path is a 422 in kube-apiserver, a 400 here."""
    if not isinstance(operations, list):
        raise bad_request("json patch: the body must be a list of operations")
    doc = copy.deepcopy(original)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"json patch: malformed operation {op!r}")
        doc = _apply_op(doc, op)
    return doc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch: path {path!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _container(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        try:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise bad_request(f"json patch: path element {part!r} not found") from err
    return doc


def _apply_op(doc: Any, op: Obj) -> Any:
    parts = _pointer(str(op["path"]))
    kind = op["op"]
    if kind == "test":
        if _container(doc, parts) != op.get("value"):
            raise bad_request(f"json patch: test failed at {op['path']}")
        return doc
    if kind in ("move", "copy"):
        source = _pointer(str(op.get("from", "")))
        value = copy.deepcopy(_container(doc, source))
        if kind == "move":
            doc = _remove(doc, source)
        return _add(doc, parts, value)
    if kind == "remove":
        return _remove(doc, parts)
    if kind == "replace":
        doc = _remove(doc, parts)
        return _add(doc, parts, copy.deepcopy(op.get("value")))
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op.get("value")))
    raise bad_request(f"json patch: unknown operation {kind!r}")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _container(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else _index(last, len(parent) + 1)
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise bad_request(f"json patch: cannot add to a scalar at {last!r}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return None
    parent = _container(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        del parent[_index(last, len(parent))]
    elif isinstance(parent, dict) and last in parent:
        del parent[last]
    else:
        raise bad_request(f"json patch: path element {last!r} not found")
    return doc


def _index(text: str, bound: int) -> int:
    if not text.isdigit() or int(text) >= bound:
        raise bad_request(f"json patch: bad list index {text!r}")
    return int(text)


def strategic_merge(components: Components, schema: Obj, original: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``original`` guided by the schema's patch strategies (see module doc)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [item for item in result.get(name) or [] if item not in value]
        elif key.startswith("$") or value is None:
            if value is None:
                result.pop(key, None)
        else:
            merged = _merge_field(components, schema, key, result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_field(components: Components, schema: Obj, key: str, original: Any, value: Any) -> Any:
    strategy, merge_key = _patch_meta(components, schema, key)
    sub = child(components, schema, key) or {}
    if isinstance(value, list):
        if "merge" not in strategy or not isinstance(original, list):
            return [_strip(item) for item in value]
        if merge_key:
            return _merge_keyed_list(components, child(components, sub, 0) or {}, merge_key, original, value)
        return original + [item for item in value if item not in original]
    return strategic_merge(components, sub, original, value)


def _patch_meta(components: Components, schema: Obj, key: str) -> tuple[str, str]:
    props = resolve(components, schema).get("properties")
    raw = props.get(key) if isinstance(props, dict) else None
    if not isinstance(raw, dict):
        return "", ""
    return str(raw.get("x-kubernetes-patch-strategy", "")), str(raw.get("x-kubernetes-patch-merge-key", ""))


def _merge_keyed_list(components: Components, item_schema: Obj, merge_key: str, original: list[Any],
                      patch: list[Any]) -> list[Any]:
    result = list(original)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            result.append(_strip(item))
            continue
        position = next((i for i, old in enumerate(result)
                         if isinstance(old, dict) and old.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(_strip(item))
        else:
            result[position] = strategic_merge(components, item_schema, result[position], item)
    return result


def _strip(value: Any) -> Any:
    """Copy a patch value that lands whole, dropping directives and nulls inside it."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE, STRATEGIC, JSON_PATCH, APPLY)


def parse_patch(content_type: str, body: bytes) -> Any:
    """Decode a patch body; apply patches are YAML (of which JSON is a subset)."""
    return decode_document(body, as_yaml=content_type == APPLY)


def decode_document(body: bytes, as_yaml: bool) -> Any:
    """A JSON or YAML body as data; what does not decode is a 400 quoting the parser's complaint."""
    if as_yaml:
        # Bounded like config files: a request's aliases may repeat parts of it, not multiply it.
        try:
            documents = load_documents(body.decode(), "the YAML body")
        except (ConfigError, UnicodeDecodeError) as err:
            raise bad_request(f"error decoding YAML: {err}") from err
        if len(documents) != 1:
            raise bad_request(f"error decoding YAML: expected one document, found {len(documents)}")
        return documents[0]
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise bad_request(f"the body of the request could not be decoded as JSON: {err}") from err


def apply_patch(content_type: str, components: Components, schema: Obj, original: Obj, patch: Any) -> Any:
    if content_type == JSON_PATCH:
        return json_patch(original, patch)
    if not isinstance(patch, dict):
        raise bad_request(f"{content_type}: the patch must be a JSON object")
    if content_type == MERGE:
        return merge_patch(original, patch)
    return strategic_merge(components, schema, original, patch)
