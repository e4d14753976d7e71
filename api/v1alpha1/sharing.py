"""``SharingConfig``: the opaque parameters a DeviceClass or a claim gives the ``xpushare.io`` driver.

It carries what the scheduler does not need (priority, compute policy) and, for the ``exclusive`` slice
mode, the limits that capacity requests cannot express. The model is strict on purpose: users write it by
hand, and a typo that silently falls back to a default (``corePercnt: 25``) would give a pod a whole
device. So unknown fields are rejected and no type is coerced (``"5"`` is not an integer, ``true`` is
not an integer). Persisted copies of prepared claims are read elsewhere, leniently.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

API_VERSION = "xpushare.io/v1alpha1"
KIND = "SharingConfig"
MAX_PARAMETERS_BYTES = 10 * 1024
"""The API server's limit on a config's opaque parameters (10 KiB)."""
MAX_MEMORY_MIB = (1 << 63) // (1 << 20) - 1
"""Largest ``memoryMiB`` whose size in bytes still fits the signed 64-bit fields of the device ledger."""
SCHEMA_ID = "https://xpushare.io/schemas/sharingconfig.v1alpha1.schema.json"


class Priority(StrEnum):
    """Which claim's work runs first when claims on one device contend for compute."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """The order under contention, higher first: low 0, normal 1, high 2."""
        return _PRIORITY_ORDER.index(self)

    @classmethod
    def ranked(cls) -> tuple[Priority, ...]:
        """Every priority, lowest first."""
        return _PRIORITY_ORDER


_PRIORITY_ORDER = (Priority.LOW, Priority.NORMAL, Priority.HIGH)


class ComputePolicy(StrEnum):
    """guaranteed: the share holds under contention and idle time is usable by anyone;
    fixed: the share is a hard cap, even when the device is otherwise idle."""

    GUARANTEED = "guaranteed"
    FIXED = "fixed"


class SharingConfig(BaseModel):
    """How a claim shares an xpushare.io device: its priority, compute policy and, for the exclusive
    slice mode, its memory limit and compute share."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, title=KIND,
        field_title_generator=lambda name, _info: name,
    )

    apiVersion: Literal["xpushare.io/v1alpha1"] = Field(  # noqa: N815 - the wire name
        description="Version of this config type.")
    kind: Literal["SharingConfig"] = Field(description="Type of this config.")
    # Enums are matched by value (a string), which strict mode alone would refuse outside JSON mode;
    # the validator below keeps non-strings (YAML's !!binary bytes, numbers) out.
    priority: Annotated[Priority, Strict(False)] = Field(
        default=Priority.NORMAL, description="Which claim runs first under contention.")
    computePolicy: Annotated[ComputePolicy, Strict(False)] = Field(  # noqa: N815
        default=ComputePolicy.GUARANTEED,
        description="guaranteed: share under contention, idle time usable by all; fixed: hard cap.")
    memoryMiB: int | None = Field(  # noqa: N815
        default=None, ge=1, le=MAX_MEMORY_MIB,
        description="Memory limit in MiB (exclusive slice mode).")
    corePercent: int | None = Field(  # noqa: N815
        default=None, ge=1, le=100,
        description="Compute share in percent of the device (exclusive slice mode).")

    @field_validator("priority", "computePolicy", mode="before")
    @classmethod
    def _enum_needs_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("enum", "Input should be a string")
        return value

    @field_validator("memoryMiB", "corePercent", mode="before")
    @classmethod
    def _reject_null(cls, value: Any) -> Any:
        # An explicit null would count as "set" and erase a class config's value in a merge; leaving the
        # field out is the one way to say "unset".
        if value is None:
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


class _SchemaGenerator(GenerateJsonSchema):
    """Describes optional fields as they are accepted: absent or a value, never null."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", 0) is None:
            del json_schema["default"]
        return json_schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``SharingConfig``, as published under ``deploy/schemas``."""
    body = SharingConfig.model_json_schema(schema_generator=_SchemaGenerator)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **body}
