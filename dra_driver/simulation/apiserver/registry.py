"""The resource kinds the embedded API server serves, and how each one behaves.

One frozen record per kind holds everything the other modules ask about it (where it lives in the URL
space, which schema validates it, which field selectors it supports, what DELETE answers), so adding a
kind is one table entry rather than edits spread over the handler, the validator and the discovery
documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceKind:
    """A served resource: group/version/plural identify it in URLs, kind and schema in bodies."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    schema: str
    schema_doc: str
    model: str = ""
    """The ``kubernetes.client.models`` class of the kind: the OpenAPI documents are generated from it
    when the upstream ones are absent."""
    has_status: bool = False
    short_names: tuple[str, ...] = ()
    field_labels: tuple[str, ...] = ()
    delete_returns_object: bool = True
    clear_status_on_create: bool = False
    initial_status: tuple[tuple[str, str], ...] = ()
    singular: str = ""
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def qualified(self) -> str:
        """``plural.group`` as real error messages name a resource (``resourceslices.resource.k8s.io``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def supports_field(self, label: str) -> bool:
        return label in _COMMON_FIELDS or label in self.field_labels


_CORE_DOC = "api__v1_openapi.json"
_RESOURCE_DOC = "apis__resource.k8s.io__v1_openapi.json"
_COORD_DOC = "apis__coordination.k8s.io__v1_openapi.json"
_RES = "resource.k8s.io"

KINDS: tuple[ResourceKind, ...] = (
    ResourceKind(
        "", "v1", "namespaces", "Namespace", False, "io.k8s.api.core.v1.Namespace", _CORE_DOC,
        model="V1Namespace", has_status=True, short_names=("ns",), field_labels=("status.phase",),
        delete_returns_object=False, initial_status=(("phase", "Active"),),
    ),
    ResourceKind(
        "", "v1", "nodes", "Node", False, "io.k8s.api.core.v1.Node", _CORE_DOC, model="V1Node",
        has_status=True, short_names=("no",), field_labels=("spec.unschedulable",),
        delete_returns_object=False,
    ),
    ResourceKind(
        "", "v1", "pods", "Pod", True, "io.k8s.api.core.v1.Pod", _CORE_DOC, model="V1Pod",
        has_status=True, short_names=("po",), categories=("all",),
        field_labels=(
            "spec.nodeName", "spec.schedulerName", "spec.serviceAccountName", "spec.restartPolicy",
            "status.phase", "status.podIP", "status.nominatedNodeName",
        ),
        clear_status_on_create=True, initial_status=(("phase", "Pending"),),
    ),
    ResourceKind(
        "", "v1", "events", "Event", True, "io.k8s.api.core.v1.Event", _CORE_DOC, model="CoreV1Event",
        short_names=("ev",), delete_returns_object=False,
        field_labels=(
            "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
            "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
            "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
        ),
    ),
    ResourceKind(
        _RES, "v1", "resourceslices", "ResourceSlice", False, "io.k8s.api.resource.v1.ResourceSlice",
        _RESOURCE_DOC, model="V1ResourceSlice",
        field_labels=("spec.nodeName", "spec.driver", "spec.pool.name"),
    ),
    ResourceKind(
        _RES, "v1", "resourceclaims", "ResourceClaim", True, "io.k8s.api.resource.v1.ResourceClaim",
        _RESOURCE_DOC, model="ResourceV1ResourceClaim", has_status=True, clear_status_on_create=True,
    ),
    ResourceKind(
        _RES, "v1", "resourceclaimtemplates", "ResourceClaimTemplate", True,
        "io.k8s.api.resource.v1.ResourceClaimTemplate", _RESOURCE_DOC, model="V1ResourceClaimTemplate",
    ),
    ResourceKind(
        _RES, "v1", "deviceclasses", "DeviceClass", False, "io.k8s.api.resource.v1.DeviceClass",
        _RESOURCE_DOC, model="V1DeviceClass",
    ),
    ResourceKind(
        "coordination.k8s.io", "v1", "leases", "Lease", True, "io.k8s.api.coordination.v1.Lease",
        _COORD_DOC, model="V1Lease", delete_returns_object=False,
    ),
)


class Registry:
    """Look-ups over ``KINDS`` by URL coordinates and by kind name."""

    def __init__(self, kinds: tuple[ResourceKind, ...] = KINDS) -> None:
        self.kinds = kinds
        self._by_path = {(k.group, k.version, k.plural): k for k in kinds}
        self._by_kind = {(k.group, k.kind): k for k in kinds}

    def lookup(self, group: str, version: str, plural: str) -> ResourceKind | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceKind | None:
        return self._by_kind.get((group, kind))

    def groups(self) -> dict[str, list[str]]:
        """Named API groups (the core group excluded) and their versions, in a stable order."""
        result: dict[str, list[str]] = {}
        for k in self.kinds:
            if k.group and k.version not in result.setdefault(k.group, []):
                result[k.group].append(k.version)
        return result

    def in_group_version(self, group: str, version: str) -> list[ResourceKind]:
        return [k for k in self.kinds if k.group == group and k.version == version]
