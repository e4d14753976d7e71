"""What a replica asks for: its requests one by one, each with the path that names it in the object it
came from, the selectors they and their classes run, the attributes those read, and a line per request
for people. Checked before planning, so a request for a class the cluster lacks is refused naming its
field rather than turned down on every node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dra_driver.core.kubetypes import ObjView
from dra_driver.planning.celmemo import referenced_names
from dra_driver.planning.report import column_order
from dra_driver.planning.snapshot import PlanInputError
from dra_driver.planning.workload import CLAIM_KINDS, ClaimSource, Workload

__all__ = ["Ask", "asks", "attributes_read", "check_classes", "describe"]


@dataclass(frozen=True, slots=True)
class Ask:
    """One request, or one subrequest of a ``firstAvailable`` list."""

    path: str  # where it sits: "spec.spec.devices.requests[0].exactly"
    name: str  # "gpu", or "gpu/small" for a subrequest
    spec: ObjView  # the ExactDeviceRequest or DeviceSubRequest


def asks(source: ClaimSource) -> list[Ask]:
    base = ".".join(CLAIM_KINDS[source.origin.split(" ", 1)[0]]) + ".devices.requests"
    found = []
    for i, request in enumerate((source.spec.get("devices") or {}).get("requests") or ()):
        name = str(request.get("name", i))
        if request.get("exactly"):
            found.append(Ask(f"{base}[{i}].exactly", name, request["exactly"]))
        for j, sub in enumerate(request.get("firstAvailable") or ()):
            found.append(Ask(f"{base}[{i}].firstAvailable[{j}]", f"{name}/{sub.get('name', j)}", sub))
    return found


def check_classes(workload: Workload, classes: Sequence[ObjView]) -> None:
    """Every request names a DeviceClass the cluster has; PlanInputError naming the field otherwise."""
    known = sorted(str((c.get("metadata") or {}).get("name")) for c in classes)
    for source in workload.claims:
        for ask in asks(source):
            name = ask.spec.get("deviceClassName")
            if name not in known:
                raise PlanInputError(
                    f"{source.origin}: {ask.path}.deviceClassName: DeviceClass {name} is not in the "
                    f"cluster; known: {', '.join(known) or 'none'}"
                )


def describe(source: ClaimSource) -> list[str]:
    """One line per request: its class, count, capacity requests and how many selectors."""
    lines = []
    for ask in asks(source):
        parts = [str(ask.spec.get("deviceClassName"))]
        if ask.spec.get("allocationMode") == "All":
            parts.append("all matching devices")
        elif int(ask.spec.get("count") or 1) > 1:
            parts.append(f"{ask.spec['count']} devices")
        asked = (ask.spec.get("capacity") or {}).get("requests") or {}
        parts += [f"{k}={v}" for k, v in sorted(asked.items(), key=lambda kv: column_order(kv[0]))]
        if ask.spec.get("selectors"):
            parts.append(f"{len(ask.spec['selectors'])} selector(s)")
        lines.append(f"claim {source.name}, request {ask.name}: {' '.join(parts)}")
    return lines


def _expressions(classes: Sequence[ObjView], workload: Workload) -> list[str]:
    selectors = [s for c in classes for s in (c.get("spec") or {}).get("selectors") or ()]
    selectors += [
        s for source in workload.claims for ask in asks(source) for s in ask.spec.get("selectors") or ()
    ]
    return [str(((s or {}).get("cel") or {}).get("expression", "")) for s in selectors]


def attributes_read(classes: Sequence[ObjView], workload: Workload) -> frozenset[str] | None:
    """The attribute names anything of the allocation reads: selectors, and the workload's constraints
    (None when a selector reads them in a way that cannot be listed: then every attribute counts)."""
    names = referenced_names(_expressions(classes, workload))
    if names is None:
        return None
    for source in workload.claims:
        for constraint in (source.spec.get("devices") or {}).get("constraints") or ():
            for key in ("matchAttribute", "distinctAttribute"):
                if constraint.get(key):
                    names |= {str(constraint[key]).rpartition("/")[2]}
    return names
