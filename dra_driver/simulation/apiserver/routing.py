"""URL parsing: which kind, namespace, name and subresource a Kubernetes REST path addresses.

Paths follow ``/api/v1/...`` for the core group and ``/apis/<group>/<version>/...`` for the others, then
``[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]``, with the legacy ``watch/`` prefix. Anything that
does not name a served resource is a 404 Status, as kube-apiserver answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from dra_driver.simulation.apiserver.registry import Registry, ResourceKind
from dra_driver.simulation.apiserver.status import path_not_found


@dataclass(frozen=True)
class Route:
    kind: ResourceKind
    namespace: str | None  # None: cluster-scoped kind, or a namespaced kind across all namespaces
    name: str
    subresource: str
    watch: bool


def _has_subresource(kind: ResourceKind, subresource: str) -> bool:
    if subresource == "status":
        return kind.has_status
    return subresource == "binding" and kind.kind == "Pod"


def split_prefix(parts: list[str]) -> tuple[str, str, list[str]] | None:
    """(group, version, rest) of a resource path, or None for paths outside the resource space."""
    if len(parts) >= 3 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 4 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def resolve_route(registry: Registry, path: str, parts: list[str]) -> Route:
    split = split_prefix(parts)
    if split is None:
        raise path_not_found(path)
    group, version, rest = split
    watch = False
    if rest and rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = registry.lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise path_not_found(path)
    kind = registry.lookup(group, version, rest[0])
    if kind is None or (kind.namespaced is False and namespace is not None):
        raise path_not_found(path)
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and not _has_subresource(kind, subresource):
        raise path_not_found(path)
    if kind.namespaced and name and namespace is None:
        raise path_not_found(path)
    return Route(kind, namespace, name, subresource, watch)
