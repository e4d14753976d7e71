"""OpenAPI documents generated from the official client's models, for when the upstream ones are absent.

An installed package ships no copy of the upstream Kubernetes documents, yet kubectl downloads OpenAPI
before every create or apply (field validation, ``explain``, apply patches) and fails without it. The
``kubernetes`` client defines every kind as a pydantic model with the upstream field names, types,
required fields and descriptions, so the documents are rebuilt from those: components named as upstream
names them, ``x-kubernetes-group-version-kind`` on the kinds, and the paths and query parameters kubectl
looks for. What the models do not carry (which strings are quantities, which lists merge by which key)
comes from the small tables below. Everything is built once per process.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from typing import Any

from kubernetes.client import models

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.registry import KINDS, ResourceKind

TITLE = "XPUShare simulated Kubernetes (generated from the kubernetes client models)"
"""``info.title`` of every generated document: it tells them apart from the upstream ones."""

_V3_REF = "#/components/schemas/"
_V2_REF = "#/definitions/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_META_TYPES = frozenset({"ObjectMeta", "ManagedFieldsEntry", "OwnerReference", "ListMeta", "LabelSelector",
                         "LabelSelectorRequirement", "Condition", "Status", "StatusDetails", "StatusCause",
                         "DeleteOptions", "Preconditions", "ShardInfo"})
_CLASS_NAME = re.compile(r"^(Core|Resource|Coordination|Events)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$")
_ATTRIBUTES_NOTE = re.compile(r"\s*Attributes:\s*openapi_types.*$", re.DOTALL)

# Quantity-typed fields (the models type them as plain strings, but a real server also takes numbers and
# canonicalizes them): schema -> {property: where the quantity sits ("" itself, "map" values, "list" items)}.
_QUANTITIES: dict[str, dict[str, str]] = {
    "io.k8s.api.core.v1.ResourceRequirements": {"limits": "map", "requests": "map"},
    "io.k8s.api.core.v1.NodeStatus": {"capacity": "map", "allocatable": "map"},
    "io.k8s.api.core.v1.PodSpec": {"overhead": "map"},
    "io.k8s.api.core.v1.ContainerStatus": {"allocatedResources": "map"},
    "io.k8s.api.core.v1.EmptyDirVolumeSource": {"sizeLimit": ""},
    "io.k8s.api.core.v1.ResourceFieldSelector": {"divisor": ""},
    "io.k8s.api.resource.v1.DeviceCapacity": {"value": ""},
    "io.k8s.api.resource.v1.Counter": {"value": ""},
    "io.k8s.api.resource.v1.CapacityRequestPolicy": {"default": "", "validValues": "list"},
    "io.k8s.api.resource.v1.CapacityRequestPolicyRange": {"min": "", "max": "", "step": ""},
    "io.k8s.api.resource.v1.CapacityRequirements": {"requests": "map"},
    "io.k8s.api.resource.v1.DeviceRequestAllocationResult": {"consumedCapacity": "map"},
}

# Strategic-merge patch metadata of the served kinds' lists (upstream keeps it in Go struct tags):
# schema -> {property: merge key, or "" for a merged list of primitives}.
_MERGE_KEYS: dict[str, dict[str, str]] = {
    _META + "ObjectMeta": {"ownerReferences": "uid", "finalizers": ""},
    "io.k8s.api.core.v1.PodSpec": {"containers": "name", "initContainers": "name",
                                   "ephemeralContainers": "name", "volumes": "name",
                                   "imagePullSecrets": "name", "hostAliases": "ip", "resourceClaims": "name",
                                   "schedulingGates": "name", "topologySpreadConstraints": "topologyKey"},
    "io.k8s.api.core.v1.Container": {"env": "name", "ports": "containerPort", "volumeMounts": "mountPath",
                                     "volumeDevices": "devicePath"},
    "io.k8s.api.core.v1.EphemeralContainer": {"env": "name", "ports": "containerPort",
                                              "volumeMounts": "mountPath", "volumeDevices": "devicePath"},
    "io.k8s.api.core.v1.PodStatus": {"conditions": "type", "podIPs": "ip", "hostIPs": "ip",
                                     "resourceClaimStatuses": "name"},
    "io.k8s.api.core.v1.NodeSpec": {"podCIDRs": ""},
    "io.k8s.api.core.v1.NodeStatus": {"conditions": "type", "addresses": "type"},
    "io.k8s.api.core.v1.NamespaceStatus": {"conditions": "type"},
    "io.k8s.api.resource.v1.ResourceClaimStatus": {"reservedFor": "uid"},
}

_WRITE_PARAMS = (
    ("dryRun", "When present, indicates that modifications should not be persisted."),
    ("fieldManager", "A name associated with the actor or entity that is making these changes."),
    ("fieldValidation", "How the server treats unknown and duplicate fields in the body: Ignore, Warn "
                        "(the default) or Strict."),
)
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json")
_LIST_PARAMS = ("labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "timeoutSeconds",
                "watch", "allowWatchBookmarks", "sendInitialEvents")


def upstream_name(class_name: str, group_of_owner: str, core_names: frozenset[str]) -> str:
    """``io.k8s.api.<group>.<version>.<Kind>`` for a client model class name such as ``V1ResourcePool``.

    The class name carries the version (and the group only where two groups share a kind name), so the
    group comes from where the model is used: meta types by name, types a core kind uses from core, the
    rest from the kind that refers to them.
    """
    match = _CLASS_NAME.match(class_name)
    if match is None:
        return class_name
    prefix, version, name = match.groups()
    version = version.lower()
    if prefix:
        return f"io.k8s.api.{prefix.lower()}.{version}.{name}"
    if name in _META_TYPES:
        return f"{_META}{name}"
    if class_name in core_names:
        return f"io.k8s.api.core.{version}.{name}"
    return f"io.k8s.api.{group_of_owner.split('.', maxsplit=1)[0] or 'core'}.{version}.{name}"


def _pydantic_schema(class_name: str) -> Obj:
    schema: Obj = getattr(models, class_name).model_json_schema(by_alias=True)
    return schema


def _kind_models(kind: ResourceKind) -> list[tuple[str, str, str]]:
    """(model class, upstream name, kind) of the kind and of its list."""
    base = kind.schema.rsplit(".", 1)[0]
    list_class = re.sub(r"^(Core|Resource)(?=V\d)", "", kind.model) + "List"
    return [(kind.model, kind.schema, kind.kind), (list_class, f"{base}.{kind.list_kind}", kind.list_kind)]


@functools.cache
def components() -> dict[str, Obj]:
    """Every component schema of the served kinds, in OpenAPI v3 form (refs to ``#/components/schemas``)."""
    core_names: set[str] = set()
    for kind in KINDS:
        if not kind.group:
            core_names.update(_pydantic_schema(kind.model).get("$defs", {}))
    frozen = frozenset(core_names)
    out: dict[str, Obj] = {}
    for kind in KINDS:
        for class_name, name, kind_name in _kind_models(kind):
            if class_name != kind.model and not hasattr(models, class_name):
                continue  # a list model is only documentation; the kind's own model must exist
            raw = _pydantic_schema(class_name)
            names = {d: upstream_name(d, kind.group, frozen) for d in raw.get("$defs", {})}
            names[class_name] = name
            for def_name, body in [*raw.get("$defs", {}).items(), (class_name, raw)]:
                out.setdefault(names[def_name], _convert(body, names))
            out[name]["x-kubernetes-group-version-kind"] = [
                {"group": kind.group, "kind": kind_name, "version": kind.version}]
    for name, fields in _QUANTITIES.items():
        for prop, where in fields.items():
            _set_quantity(out.get(name, {}).get("properties", {}), prop, where)
    for name, fields in _MERGE_KEYS.items():
        props = out.get(name, {}).get("properties", {})
        for prop, key in fields.items():
            if prop in props:
                props[prop]["x-kubernetes-patch-strategy"] = "merge"
                if key:
                    props[prop]["x-kubernetes-patch-merge-key"] = key
    out[QUANTITY] = {"description": "Quantity is a fixed-point representation of a number, such as 64Gi, "
                                    "100m or 1.5.", "oneOf": [{"type": "string"}, {"type": "number"}]}
    return out


def _set_quantity(props: Obj, prop: str, where: str) -> None:
    if prop not in props:
        return
    ref = {"$ref": _V3_REF + QUANTITY}
    target = props[prop]
    description = target.get("description")
    if where == "map":
        target["additionalProperties"] = ref
    elif where == "list":
        target["items"] = ref
    else:
        props[prop] = {"allOf": [ref], **({"description": description} if description else {})}


def _convert(schema: Any, names: dict[str, str]) -> Any:
    """Pydantic's JSON schema in the upstream dialect: refs renamed, nullability, titles and the
    generator's ``Attributes:`` note dropped (unknown fields are pruned, never rejected, so no
    ``additionalProperties: false``)."""
    if isinstance(schema, list):
        return [_convert(item, names) for item in schema]
    if not isinstance(schema, dict):
        return schema
    any_of = schema.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of:
        rest = [s for s in any_of if s != {"type": "null"}]
        outer = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        inner = rest[0] if len(rest) == 1 else {"anyOf": rest}
        return _convert({**inner, **outer} if "$ref" not in inner else _wrap_ref(inner, outer), names)
    out: Obj = {}
    for key, value in schema.items():
        if key in ("title", "$defs") or (key == "additionalProperties" and value is False):
            continue
        if key == "$ref":
            out[key] = _V3_REF + names.get(str(value).rsplit("/", 1)[-1], str(value))
        elif key == "description":
            out[key] = _ATTRIBUTES_NOTE.sub("", str(value)).strip()
        elif key == "properties":
            out[key] = {prop: _convert(sub, names) for prop, sub in value.items()}
        else:
            out[key] = _convert(value, names)
    if "$ref" in out and len(out) > 1:
        return _wrap_ref({"$ref": out.pop("$ref")}, out)
    return out


def _wrap_ref(ref: Obj, siblings: Obj) -> Obj:
    """OpenAPI 3.0 ignores siblings of ``$ref``: upstream wraps such refs in a one-entry ``allOf``."""
    siblings = {k: v for k, v in siblings.items() if k != "default"}
    return {"allOf": [ref], **siblings} if siblings else ref


def _closure(roots: list[str], comps: dict[str, Obj]) -> dict[str, Obj]:
    """The components ``roots`` need, following refs."""
    found: dict[str, Obj] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in found or name not in comps:
            continue
        found[name] = comps[name]
        pending += [ref.removeprefix(_V3_REF) for ref in re.findall(r'"\$ref": "([^"]+)"',
                                                                    json.dumps(comps[name]))]
    return dict(sorted(found.items()))


def _param(name: str, where: str = "query", description: str = "", kind: str = "string") -> Obj:
    param: Obj = {"name": name, "in": where, "schema": {"type": kind, "uniqueItems": True}}
    if where == "path":
        param["required"] = True
    if description:
        param["description"] = description
    return param


def _operation(kind: ResourceKind, action: str, verb: str, *, body: str | None, response: str,
               params: list[Obj]) -> Obj:
    group = kind.group.split(".", maxsplit=1)[0].capitalize() or "Core"
    op: Obj = {
        "description": f"{action} {kind.kind}",
        "operationId": f"{verb}{group}{kind.version.capitalize()}{kind.kind}",
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": _V3_REF + response}}}}},
        "tags": [kind.group.replace(".", "_") + "_" + kind.version if kind.group else "core_v1"],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": kind.group, "kind": kind.kind, "version": kind.version},
    }
    if body is not None:
        # kubectl computes a strategic merge patch only where the PATCH operation accepts one.
        media = _PATCH_TYPES if action == "patch" else ("*/*",)
        op["requestBody"] = {"content": {m: {"schema": {"$ref": _V3_REF + body}} for m in media}}
    return op


def _paths(kind: ResourceKind) -> Obj:
    """The REST paths of one kind with the operations kube-apiserver lists for them."""
    prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    scope = "/namespaces/{namespace}" if kind.namespaced else ""
    scoped = [_param("namespace", "path")] if kind.namespaced else []
    named = [*scoped, _param("name", "path")]
    write = [_param(name, description=text) for name, text in _WRITE_PARAMS]
    listing = [_param(name, kind="integer" if name in ("limit", "timeoutSeconds") else "string")
               for name in _LIST_PARAMS]
    one, many = kind.schema, f"{kind.schema.rsplit('.', 1)[0]}.{kind.list_kind}"

    def op(action: str, verb: str, body: str | None, response: str, params: list[Obj]) -> Obj:
        return _operation(kind, action, verb, body=body, response=response, params=params)

    def item() -> Obj:
        return {"get": op("get", "read", None, one, named),
                "put": op("put", "replace", one, one, [*named, *write]),
                "patch": op("patch", "patch", _PATCH, one, [*named, *write, _param("force", kind="boolean")])}

    collection = f"{prefix}{scope}/{kind.plural}"
    paths: Obj = {
        collection: {"get": op("list", "list", None, many, [*scoped, *listing]),
                     "post": op("post", "create", one, one, [*scoped, *write]),
                     "delete": op("deletecollection", "deleteCollection", None, many, scoped)},
        f"{collection}/{{name}}": {**item(), "delete": op("delete", "delete", None, one, named)},
    }
    if kind.has_status:
        paths[f"{collection}/{{name}}/status"] = item()
    if kind.namespaced:
        paths[f"{prefix}/{kind.plural}"] = {"get": op("list", "list", None, many, listing)}
    return paths


_PATCH = _META + "Patch"


def _meta_extras() -> dict[str, Obj]:
    return {_PATCH: {"description": "Patch is provided to give a concrete name and type to the Kubernetes "
                                    "PATCH request body.", "type": "object"}}


@functools.cache
def v3_documents() -> dict[str, Obj]:
    """The OpenAPI v3 document of each served group/version, keyed like the upstream file names."""
    comps = {**components(), **_meta_extras()}
    docs: dict[str, Obj] = {}
    for kind in KINDS:
        doc = docs.setdefault(kind.schema_doc, {
            "openapi": "3.0.0", "info": {"title": TITLE, "version": kind.group_version},
            "paths": {}, "components": {"schemas": {}}})
        doc["paths"].update(_paths(kind))
    for doc in docs.values():
        refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc["paths"]))
        doc["components"]["schemas"] = _closure(sorted(set(refs)), comps)
    return docs


@functools.cache
def v3_payloads() -> dict[str, bytes]:
    """Each v3 document serialized once, so serving one is a write and its hash is stable."""
    return {name: json.dumps(doc).encode() for name, doc in v3_documents().items()}


def v3_hash(name: str) -> str:
    return hashlib.sha256(v3_payloads()[name]).hexdigest()[:16].upper()


@functools.cache
def v2_payload() -> bytes:
    """The OpenAPI v2 (swagger) document of everything served, refs pointing at ``#/definitions``."""
    definitions: Obj = {}
    paths: Obj = {}
    for doc in v3_documents().values():
        definitions.update(doc["components"]["schemas"])
        for path, operations in doc["paths"].items():
            paths[path] = {verb: _v2_operation(op) for verb, op in operations.items()}
    document = {"swagger": "2.0", "info": {"title": TITLE, "version": "v1.36.0"},
                "paths": paths, "definitions": _v2_schema(dict(sorted(definitions.items())))}
    return json.dumps(document).encode()


def _v2_operation(op: Obj) -> Obj:
    out = copy.deepcopy(op)
    params = [{**{k: v for k, v in p.items() if k != "schema"}, "type": p["schema"]["type"]}
              for p in out["parameters"]]
    body = out.pop("requestBody", None)
    if body is not None:
        params.append({"name": "body", "in": "body", "required": True,
                       "schema": next(iter(body["content"].values()))["schema"]})
    out["parameters"] = params
    schema = out["responses"]["200"]["content"]["application/json"]["schema"]
    out["responses"] = {"200": {"description": "OK", "schema": schema}}
    out["consumes"] = list(body["content"]) if body is not None else ["*/*"]
    out["produces"] = ["application/json"]
    converted: Obj = _v2_schema(out)
    return converted


def _v2_schema(value: Any) -> Any:
    """v3 refs and ``allOf`` wrappers in v2 form: ``$ref`` into ``#/definitions`` beside its description,
    and no ``oneOf`` (v2 has none: a quantity is a string, as upstream's v2 document says)."""
    if isinstance(value, list):
        return [_v2_schema(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "allOf" in value and len(value["allOf"]) == 1 and "$ref" in value["allOf"][0]:
        value = {**value["allOf"][0], **{k: v for k, v in value.items() if k != "allOf"}}
    if "oneOf" in value:
        value = {**{k: v for k, v in value.items() if k != "oneOf"}, "type": "string", "format": "quantity"}
    out = {k: _v2_schema(v) for k, v in value.items()}
    if "$ref" in out:
        out["$ref"] = str(out["$ref"]).replace(_V3_REF, _V2_REF)
    return out


def v3_index(prefix_of: dict[str, str]) -> Obj:
    """The ``/openapi/v3`` index for the generated documents: ``prefix_of`` maps document to URL part."""
    return {"paths": {prefix: {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={v3_hash(name)}"}
                      for name, prefix in prefix_of.items()}}
