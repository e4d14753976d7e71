"""Validate objects against the upstream Kubernetes OpenAPI documents, strictly.

Upstream schemas allow unknown fields (the API server prunes them silently), which would hide a typo
in what we send. This validator closes every object schema that lists its properties, so a misspelt
field fails the test instead of vanishing on the server.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator


def _close_objects(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


@cache
def _components(document: Path) -> dict[str, Any]:
    components: dict[str, Any] = json.loads(document.read_text())["components"]
    closed = copy.deepcopy(components)
    _close_objects(closed)
    return closed


def validator(schemas_dir: Path, document: str, component: str) -> Draft7Validator:
    """A validator for ``component`` (e.g. ``io.k8s.api.resource.v1.ResourceSlice``) of ``document``."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": _components(schemas_dir / document)}
    return Draft7Validator(schema)


def errors(schemas_dir: Path, document: str, component: str, obj: Any) -> list[str]:
    """Every schema violation of ``obj`` as ``path: message`` lines (empty when valid)."""
    found = validator(schemas_dir, document, component).iter_errors(obj)
    return [f"{'.'.join(str(part) for part in error.absolute_path)}: {error.message}" for error in found]


RESOURCE_V1 = "k8s/apis__resource.k8s.io__v1_openapi.json"
