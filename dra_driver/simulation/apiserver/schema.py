"""Structural validation against the Kubernetes OpenAPI v3 documents.

The documents (one per group/version: the upstream ones, unmodified, from the directory named by
``XPUSHARE_K8S_SCHEMAS`` or given to the server; without them, those generated from the client models
by ``openapi``) are loaded once; each kind's validator is compiled once and
cached, because compiling costs far more than validating. Refs like ``#/components/schemas/...`` are
resolved by the ``referencing`` library inside the document that holds them.

Besides validation this module walks the schemas for two other jobs that need the same type
information: pruning unknown fields (a real API server drops them when it decodes into its Go structs)
and telling the strategic-merge patcher which lists merge by which key.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api.errors import ConfigError
from dra_driver.core.kubetypes import Obj
from dra_driver.core.quantity import QuantityError, canonical
from dra_driver.simulation.apiserver import openapi
from dra_driver.simulation.apiserver.registry import ResourceKind
from dra_driver.simulation.apiserver.status import cause

SCHEMAS_ENV = "XPUSHARE_K8S_SCHEMAS"
_REF_PREFIX = "#/components/schemas/"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def default_schema_dir() -> Path | None:
    """The directory named by ``$XPUSHARE_K8S_SCHEMAS``; None (no upstream schemas) when it is unset.

    The package ships no copy of the upstream documents and never looks for them beside a checkout:
    tests and benchmarks name theirs through the variable.
    """
    override = os.environ.get(SCHEMAS_ENV)
    return Path(override) if override else None


class SchemaSet:
    """The loaded OpenAPI documents of one schema directory, with per-kind validators cached."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory or Path()
        # Without the upstream documents (an installed package, no checkout beside shared/), the server
        # serves and validates against documents generated from the client models instead. ApiServer
        # warns when this happens.
        self.available = directory is not None and directory.is_dir()
        self._lock = threading.Lock()
        self._docs: dict[str, Obj] = {}
        self._validators: dict[str, Draft202012Validator] = {}

    def document(self, name: str) -> Obj:
        with self._lock:
            if name not in self._docs and not self.available:
                self._docs[name] = openapi.v3_documents()[name]
            if name not in self._docs:
                path = self.directory / name
                try:
                    self._docs[name] = json.loads(path.read_text())
                except (OSError, ValueError) as err:
                    raise ConfigError(f"read OpenAPI document {path}: {err}; set {SCHEMAS_ENV} to the "
                                      "directory holding the upstream Kubernetes schemas") from err
            return self._docs[name]

    def raw_document(self, name: str) -> bytes:
        """The document as served: the upstream file's bytes, or the generated document (KeyError when
        there is none of that name)."""
        if not self.available:
            return openapi.v3_payloads()[name]
        return (self.directory / name).read_bytes()

    def components(self, kind: ResourceKind) -> dict[str, Obj]:
        comps: dict[str, Obj] = self.document(kind.schema_doc)["components"]["schemas"]
        return comps

    def validator(self, kind: ResourceKind) -> Draft202012Validator:
        doc = self.document(kind.schema_doc)
        with self._lock:
            found = self._validators.get(kind.schema)
            if found is None:
                uri = f"urn:k8s:{kind.schema_doc}"
                resource = Resource.from_contents(doc, default_specification=DRAFT202012)
                registry: Registry[Any] = Registry().with_resource(uri, resource)
                root = {"$ref": f"{_REF_PREFIX}{kind.schema}"}
                flat = _inline(doc["components"]["schemas"], root, uri, frozenset())
                found = Draft202012Validator(flat, registry=registry)
                self._validators[kind.schema] = found
            return found

    def validate(self, kind: ResourceKind, obj: Obj) -> list[Obj]:
        """Status causes for every schema violation in ``obj`` (empty when it is valid)."""
        errors = sorted(self.validator(kind).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        return [_to_cause(err) for err in _leaves(errors)]

    def root(self, kind: ResourceKind) -> Obj:
        return self.components(kind).get(kind.schema, {})


def _inline(components: dict[str, Obj], schema: Any, uri: str, seen: frozenset[str]) -> Any:
    """A copy of ``schema`` with refs inlined and documentation dropped: validating it costs half as much
    as following refs at every step. A recursive ref stays a ref into the registered document."""
    if isinstance(schema, list):
        return [_inline(components, item, uri, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _inline_ref(components, str(schema["$ref"]).removeprefix(_REF_PREFIX), uri, seen)
    out: Obj = {}
    for key, value in schema.items():
        if key in ("description", "default") or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: _inline(components, sub, uri, seen) for name, sub in value.items()}
        else:
            out[key] = _inline(components, value, uri, seen)
    if list(out) == ["allOf"] and len(out["allOf"]) == 1:
        return out["allOf"][0]
    return out


def _inline_ref(components: dict[str, Obj], name: str, uri: str, seen: frozenset[str]) -> Any:
    if name == _QUANTITY:
        return {}  # normalize() parses every quantity and reports the bad ones with their path
    if name == _INT_OR_STRING:
        return {"type": ["integer", "string"]}  # the same as the document's oneOf, at a fraction of the cost
    if name in seen:
        return {"$ref": f"{uri}{_REF_PREFIX}{name}"}
    return _inline(components, components[name], uri, seen | {name})


def _leaves(errors: list[ValidationError]) -> list[ValidationError]:
    """Replace oneOf/anyOf failures by their most specific sub-error."""
    out: list[ValidationError] = []
    for err in errors:
        leaf = err
        if err.validator in ("oneOf", "anyOf") and err.context:
            leaf = max(err.context, key=lambda e: len(e.absolute_path))
            if len(leaf.absolute_path) == len(err.absolute_path):
                leaf = err
        out.append(leaf)
    return out


def _to_cause(err: ValidationError) -> Obj:
    path = field_path(err)
    value = json.dumps(err.instance)[:80]
    if err.validator == "required":
        missing = str(err.message).split("'")[1] if "'" in str(err.message) else ""
        return cause(join_field(path, missing), "Required value", "FieldValueRequired")
    if err.validator == "type":
        return cause(path, f"Invalid value: {value}: must be of type {err.validator_value}",
                     "FieldValueTypeInvalid")
    if err.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in err.validator_value)
        return cause(path, f"Unsupported value: {value}: supported values: {allowed}",
                     "FieldValueNotSupported")
    if err.validator in ("oneOf", "anyOf"):
        return cause(path, f"Invalid value: {value}: must be a string or a number", "FieldValueTypeInvalid")
    return cause(path, f"Invalid value: {value}: {err.message}")


def join_field(path: str, name: str) -> str:
    if not name:
        return path
    return f"{path}.{name}" if path else name


def field_path(err: ValidationError) -> str:
    """``spec.devices[0].attributes[model]``: properties dotted, list indices and map keys bracketed."""
    steps: list[str] = []
    keywords = list(err.absolute_schema_path)
    i = 0
    while i < len(keywords):
        keyword = keywords[i]
        if keyword == "properties" and i + 1 < len(keywords):
            steps.append("prop")
            i += 1
        elif keyword in ("additionalProperties", "items"):
            steps.append("index")
        i += 1
    elements = list(err.absolute_path)
    if len(steps) != len(elements):
        steps = ["index" if isinstance(e, int) else "prop" for e in elements]
    out = ""
    for step, element in zip(steps, elements, strict=True):
        out = join_field(out, str(element)) if step == "prop" else f"{out}[{element}]"
    return out


def resolve(components: dict[str, Obj], schema: Obj) -> Obj:
    """Follow ``$ref`` and the single-entry ``allOf`` wrappers the Kubernetes documents use."""
    for _ in range(16):
        if "$ref" in schema:
            schema = components.get(str(schema["$ref"]).removeprefix(_REF_PREFIX), {})
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            break
    return schema


def child(components: dict[str, Obj], schema: Obj, key: str | int) -> Obj | None:
    """The schema of ``key`` inside an object or list described by ``schema``; None when unknown."""
    schema = resolve(components, schema)
    if isinstance(key, int):
        items = schema.get("items")
        return resolve(components, items) if isinstance(items, dict) else None
    props = schema.get("properties")
    if isinstance(props, dict) and key in props:
        return resolve(components, props[key])
    extra = schema.get("additionalProperties")
    return resolve(components, extra) if isinstance(extra, dict) else None


@dataclass
class Normalized:
    """What normalizing an object found: unknown fields dropped, quantities that do not parse."""

    dropped: list[str] = field(default_factory=list)
    bad_quantities: list[Obj] = field(default_factory=list)


def normalize(components: dict[str, Obj], schema: Obj, value: Any, found: Normalized, path: str = "") -> Any:
    """Drop fields the schema does not know and canonicalize quantities, as decoding into Go types does.

    Containers are changed in place; the (possibly replaced) value is returned for scalars.
    """
    if _QUANTITY in str(schema.get("$ref", "")) or _QUANTITY in str(schema.get("allOf", "")):
        try:
            return canonical(value)
        except QuantityError as err:
            found.bad_quantities.append(cause(path, f"Invalid value: {json.dumps(value)}: {err}"))
            return value
    schema = resolve(components, schema)
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key in list(value):
            if isinstance(props, dict) and key in props:
                value[key] = normalize(components, props[key], value[key], found, join_field(path, key))
            elif isinstance(extra, dict):
                value[key] = normalize(components, extra, value[key], found, f"{path}[{key}]")
            elif isinstance(props, dict):
                del value[key]
                found.dropped.append(join_field(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            value[index] = normalize(components, schema["items"], item, found, f"{path}[{index}]")
    return value


@functools.cache
def shared_schema_set(directory: str | None) -> SchemaSet:
    """One SchemaSet per directory for the whole process, so every server reuses compiled validators."""
    return SchemaSet(Path(directory) if directory is not None else None)
