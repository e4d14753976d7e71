"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for.

kubectl requests ``application/json;as=Table;v=v1;g=meta.k8s.io``; a server answers with rows of cells
and the default columns Name and Created At, the same as for a resource without printer columns.
"""

from __future__ import annotations

from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.store import Entry

_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a "
     "namespace.", "priority": 0},
    {"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp "
     "representing the server time when this object was created.", "priority": 0},
]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _row(entry: Entry) -> Obj:
    meta = entry.obj.get("metadata") or {}
    partial: dict[str, Any] = {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
    }
    return {"cells": [meta.get("name", ""), meta.get("creationTimestamp", "")], "object": partial}


def to_table(entries: list[Entry], resource_version: int, continue_token: str) -> Obj:
    meta: Obj = {"resourceVersion": str(resource_version)}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": _COLUMNS,
        "rows": [_row(e) for e in entries],
    }
