"""Discovery documents (/api, /apis, /apis/<group>/<version>, /version) built from the registry.

kubectl and client-go find resources only through these documents: the verbs, kinds, short names and
the namespaced flag of every resource, and the status subresources. The OpenAPI v3 index points at the
upstream documents themselves (or at the generated ones, see ``openapi``), which kubectl reads to learn
that the server does field validation.
"""

from __future__ import annotations

import hashlib

from dra_driver import __version__
from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.registry import Registry, ResourceKind

KUBE_VERSION = {"major": "1", "minor": "36", "gitVersion": "v1.36.0-xpushare.sim"}


def version_info() -> Obj:
    return {
        **KUBE_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25",
        "compiler": "gc",
        "platform": "linux/amd64",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "xpushareVersion": __version__,
    }


def api_versions(address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> Obj:
    groups = [_group(name, versions) for name, versions in registry.groups().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, name: str) -> Obj | None:
    versions = registry.groups().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource(kind: ResourceKind) -> Obj:
    entry: Obj = {
        "name": kind.plural,
        "singularName": kind.singular or kind.kind.lower(),
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": list(kind.verbs),
        "storageVersionHash": hashlib.sha256(kind.qualified.encode()).hexdigest()[:12],
    }
    if kind.short_names:
        entry["shortNames"] = list(kind.short_names)
    if kind.categories:
        entry["categories"] = list(kind.categories)
    return entry


def _status_resource(kind: ResourceKind) -> Obj:
    return {
        "name": f"{kind.plural}/status",
        "singularName": "",
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": ["get", "patch", "update"],
    }


def resource_list(registry: Registry, group: str, version: str) -> Obj | None:
    kinds = registry.in_group_version(group, version)
    if not kinds:
        return None
    resources: list[Obj] = []
    for kind in kinds:
        resources.append(_resource(kind))
        if kind.has_status:
            resources.append(_status_resource(kind))
        if kind.kind == "Pod":
            resources.append({"name": "pods/binding", "singularName": "", "namespaced": True,
                              "kind": "Binding", "verbs": ["create"]})
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}


def openapi_v3_index(registry: Registry) -> Obj:
    """Paths of the OpenAPI v3 documents served (one per group/version), as kube-apiserver lists them."""
    paths: Obj = {}
    for kind in registry.kinds:
        prefix = f"apis/{kind.group}/{kind.version}" if kind.group else f"api/{kind.version}"
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={kind.schema_doc[:16]}"}
    return {"paths": paths}


def openapi_document_prefixes(registry: Registry) -> dict[str, str]:
    """Document file name -> the ``/openapi/v3/`` path part that serves it, one per group/version."""
    return {kind.schema_doc: f"apis/{kind.group}/{kind.version}" if kind.group else f"api/{kind.version}"
            for kind in registry.kinds}


def openapi_document_name(path_parts: list[str]) -> str | None:
    """The file name of the upstream document for ``/openapi/v3/<api|apis>/...``."""
    if path_parts[:1] == ["api"] and len(path_parts) == 2:
        return f"api__{path_parts[1]}_openapi.json"
    if path_parts[:1] == ["apis"] and len(path_parts) == 3:
        return f"apis__{path_parts[1]}__{path_parts[2]}_openapi.json"
    return None
