"""Validate CDI specs against the upstream CDI JSON Schema (``../shared/schemas/cdi``).

``schema.json`` refers to ``defs.json`` by a relative URI, so both are registered under their file names.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.conftest import SCHEMAS_DIR


@functools.cache
def _validator(cdi_dir: Path) -> Any:
    schema = json.loads((cdi_dir / "schema.json").read_text())
    defs = json.loads((cdi_dir / "defs.json").read_text())
    registry: Registry[Any] = Registry().with_resources(
        [("defs.json", Resource.from_contents(defs, default_specification=DRAFT7))]
    )
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema, registry=registry)


def validate_cdi_spec(spec: dict[str, Any], schemas_dir: Path = SCHEMAS_DIR) -> None:
    """Raise ``jsonschema.ValidationError`` when ``spec`` breaks the upstream CDI schema."""
    _validator(schemas_dir / "cdi").validate(spec)


def cdi_errors(spec: dict[str, Any], schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    return [error.message for error in _validator(schemas_dir / "cdi").iter_errors(spec)]
