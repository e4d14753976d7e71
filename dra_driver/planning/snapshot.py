"""What the planner knows of a cluster: its slices, classes, claims, nodes and pods, as API JSON.

A snapshot is built from objects read from files (``planning.files``) or from a live API server
(``planning.live``); both hand their objects to ``ClusterSnapshot.of``, which sorts them by kind. Only
``resource.k8s.io/v1`` is read: older versions shape devices differently (``basic``), and guessing
their meaning would plan on the wrong numbers. Objects of kinds the planner does not use are counted,
not refused, so a wide ``kubectl get`` dump can be given as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.errors import ConfigError
from dra_driver.core.kubetypes import Obj

__all__ = ["ClusterSnapshot", "PlanInputError", "flatten"]

RESOURCE_API = "resource.k8s.io/v1"
_KINDS = {
    "ResourceSlice": "slices",
    "DeviceClass": "device_classes",
    "ResourceClaim": "claims",
    "ResourceClaimTemplate": "templates",
    "Node": "nodes",
    "Pod": "pods",
}
_RESOURCE_KINDS = frozenset({"ResourceSlice", "DeviceClass", "ResourceClaim", "ResourceClaimTemplate"})


class PlanInputError(ConfigError):
    """The cluster or workload given to ``xpushare plan`` cannot be planned on; the message says where."""


@dataclass(frozen=True)
class ClusterSnapshot:
    slices: tuple[Obj, ...] = ()
    device_classes: tuple[Obj, ...] = ()
    claims: tuple[Obj, ...] = ()
    templates: tuple[Obj, ...] = ()
    nodes: tuple[Obj, ...] = ()
    pods: tuple[Obj, ...] = ()
    ignored: Mapping[str, int] = field(default_factory=dict)  # kind -> objects not used

    @classmethod
    def of(cls, objects: Iterable[Any], source: str) -> ClusterSnapshot:
        """Sort objects by kind; ``source`` names where they came from in error messages."""
        found: dict[str, list[Obj]] = {name: [] for name in _KINDS.values()}
        ignored: Counter[str] = Counter()
        for index, obj in enumerate(objects):
            where = f"{source}: object {index + 1}"
            if not isinstance(obj, Mapping):
                raise PlanInputError(f"{where}: expected an object, got {type(obj).__name__}")
            kind = str(obj.get("kind") or "")
            if kind not in _KINDS:
                ignored[kind or "(no kind)"] += 1
                continue
            version = obj.get("apiVersion")
            if kind in _RESOURCE_KINDS and version not in (None, RESOURCE_API):
                raise PlanInputError(
                    f"{where} ({kind}): apiVersion {version} is not read; allowed {RESOURCE_API} "
                    "(kubectl gets it from a Kubernetes 1.34 or newer API server)"
                )
            found[_KINDS[kind]].append(dict(obj))
        return cls(**{name: tuple(items) for name, items in found.items()}, ignored=dict(ignored))

    def merged(self, other: ClusterSnapshot) -> ClusterSnapshot:
        """Both snapshots' objects (files given one after another)."""
        ignored = Counter(self.ignored)
        ignored.update(other.ignored)
        joined = {name: getattr(self, name) + getattr(other, name) for name in _KINDS.values()}
        return ClusterSnapshot(**joined, ignored=dict(ignored))


def flatten(document: Any, source: str) -> list[Any]:
    """The objects of one document: itself, or the items of a ``List`` (``kind: XList`` items get kind X,
    as the API server leaves it out of list items); a top-level JSON array is a list of objects."""
    if isinstance(document, list):
        return [obj for item in document for obj in flatten(item, source)]
    if not isinstance(document, Mapping) or not str(document.get("kind") or "").endswith("List"):
        return [document]
    items = document.get("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise PlanInputError(f"{source}: {document['kind']}.items: expected a list")
    kind = str(document["kind"])[: -len("List")]
    objects: list[Any] = []
    for item in items:
        kinded = item
        if kind and isinstance(item, Mapping) and not item.get("kind"):
            kinded = {**item, "kind": kind, "apiVersion": document.get("apiVersion")}
        objects.extend(flatten(kinded, source))
    return objects
