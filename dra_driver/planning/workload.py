"""The workload to plan: the claims each replica gets, and what kube-scheduler checks of its pod.

A workload file holds a ResourceClaimTemplate or a ResourceClaim (each replica gets one claim like it;
several of them: one of each per replica), or a Pod or a pod-managing object (Deployment, ReplicaSet,
StatefulSet, Job) whose pod spec names claim templates. Templates a pod names are looked up in the file
first, then in the cluster. Only a pod spec says where the pod may go (node selector, required node
affinity, tolerations of node taints); without one the planner cannot know and says so.

Bad input raises ``PlanInputError`` naming the object and field, as the API server would name them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dra_driver.core.kubetypes import Obj, dig
from dra_driver.planning.snapshot import PlanInputError
from dra_driver.simulation.allocator import InputError
from dra_driver.simulation.allocator.model import Toleration
from dra_driver.simulation.allocator.parse import parse_claim

__all__ = ["ClaimSource", "PodTerms", "TemplateLookup", "Workload", "parse_workload"]

TemplateLookup = Callable[[str, str], Obj | None]
"""(namespace, name) -> the ResourceClaimTemplate in the cluster, or None."""

# Where each kind keeps its pod spec.
POD_SPECS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
}
CLAIM_KINDS: Mapping[str, tuple[str, ...]] = {
    "ResourceClaimTemplate": ("spec", "spec"),
    "ResourceClaim": ("spec",),
}


@dataclass(frozen=True, slots=True)
class PodTerms:
    """What kube-scheduler checks of a pod besides its claims."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: Mapping[str, Any] | None = None  # requiredDuringSchedulingIgnoredDuringExecution
    tolerations: tuple[Toleration, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimSource:
    """One claim every replica gets: the pod's name for it, where it came from, and its spec."""

    name: str
    origin: str  # "ResourceClaimTemplate default/npu-16gi", for messages
    spec: Obj  # a ResourceClaim spec: {"devices": {...}}


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    name: str
    namespace: str
    claims: tuple[ClaimSource, ...]
    pod: PodTerms | None  # None: only claims were given
    replicas: int | None = None  # spec.replicas of a Deployment and the like

    def replica_claims(self, index: int) -> list[Obj]:
        """The claims of replica ``index``, named as the resourceclaim controller would (uid unique)."""
        return [
            {
                "metadata": {
                    "name": f"{self.name}-{index}" + (f"-{source.name}" if source.name != self.name else ""),
                    "namespace": self.namespace,
                    "uid": f"plan-{index}-{source.name}",
                },
                "spec": source.spec,
            }
            for source in self.claims
        ]


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return "", ""
    return str(meta.get("name") or ""), str(meta.get("namespace") or "")


def _claim_source(obj: Mapping[str, Any], name: str) -> ClaimSource:
    kind = str(obj["kind"])
    obj_name, namespace = _meta(obj)
    origin = f"{kind} {namespace or 'default'}/{obj_name}"
    path = ".".join(CLAIM_KINDS[kind])
    spec = dig(obj, *CLAIM_KINDS[kind])
    if not isinstance(spec, Mapping):
        raise PlanInputError(f"{origin}: {path}: required (the claim's devices)")
    requests = dig(spec, "devices", "requests")
    if not isinstance(requests, list) or not requests:
        raise PlanInputError(f"{origin}: {path}.devices.requests: empty; a replica must request a device")
    _check_counts(requests, f"{origin}: {path}.devices.requests")
    try:
        parse_claim({"metadata": {"name": obj_name, "namespace": namespace}, "spec": spec})
    except InputError as err:
        # The allocator names the field of a claim; say where it sits in this object.
        prefix = f"ResourceClaim {namespace}/{obj_name}: spec."
        raise PlanInputError(str(err).replace(prefix, f"{origin}: {path}.", 1)) from err
    return ClaimSource(name, origin, dict(spec))


def _check_counts(requests: list[Any], where: str) -> None:
    """``count`` must be above zero, as the API server checks (the allocator would read 0 as the default)."""
    for i, request in enumerate(requests):
        if not isinstance(request, Mapping):
            continue
        alternatives = [("exactly", request.get("exactly"))]
        alternatives += [
            (f"firstAvailable[{j}]", sub) for j, sub in enumerate(request.get("firstAvailable") or ())
        ]
        for name, alternative in alternatives:
            count = alternative.get("count") if isinstance(alternative, Mapping) else None
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
                raise PlanInputError(
                    f"{where}[{i}].{name}.count: must be an integer of at least 1, got {count!r}"
                )


def _tolerations(raw: Any, where: str) -> tuple[Toleration, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PlanInputError(f"{where}: expected a list")
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise PlanInputError(f"{where}[{index}]: expected an object")
        operator = str(item.get("operator") or "Equal")
        if operator not in {"Equal", "Exists"}:
            raise PlanInputError(f"{where}[{index}].operator: {operator!r}; allowed Equal, Exists")
        out.append(
            Toleration(
                str(item.get("key") or ""),
                operator,
                str(item.get("value") or ""),
                str(item.get("effect") or ""),
            )
        )
    return tuple(out)


def _pod_terms(spec: Mapping[str, Any], where: str) -> PodTerms:
    selector = spec.get("nodeSelector") or {}
    if not isinstance(selector, Mapping):
        raise PlanInputError(f"{where}.nodeSelector: expected an object of labels")
    required = dig(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    if required is not None and not isinstance(required, Mapping):
        raise PlanInputError(
            f"{where}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: "
            "expected a node selector"
        )
    return PodTerms(
        {str(k): str(v) for k, v in selector.items()},
        required,
        _tolerations(spec.get("tolerations"), f"{where}.tolerations"),
    )


def _template(
    name: str, namespace: str, documents: Sequence[Mapping[str, Any]], lookup: TemplateLookup | None
) -> Mapping[str, Any] | None:
    for doc in documents:
        doc_name, doc_namespace = _meta(doc)
        if (
            doc.get("kind") == "ResourceClaimTemplate"
            and doc_name == name
            and doc_namespace in ("", namespace)
        ):
            return doc
    found = lookup(namespace, name) if lookup is not None else None
    return {**found, "kind": "ResourceClaimTemplate"} if found is not None else None


def _pod_claims(
    spec: Mapping[str, Any],
    where: str,
    namespace: str,
    documents: Sequence[Mapping[str, Any]],
    lookup: TemplateLookup | None,
) -> tuple[ClaimSource, ...]:
    entries = spec.get("resourceClaims")
    if not isinstance(entries, list) or not entries:
        raise PlanInputError(f"{where}.resourceClaims: empty; the pod asks for no device, nothing to plan")
    sources = []
    for index, entry in enumerate(entries):
        at = f"{where}.resourceClaims[{index}]"
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise PlanInputError(f"{at}.name: required")
        if entry.get("resourceClaimName"):
            raise PlanInputError(
                f"{at}.resourceClaimName: a claim that every replica shares is allocated once, not per "
                "replica; plan the template it was made from (resourceClaimTemplateName)"
            )
        template_name = entry.get("resourceClaimTemplateName")
        if not template_name:
            raise PlanInputError(f"{at}: one of resourceClaimTemplateName or resourceClaimName is required")
        template = _template(str(template_name), namespace, documents, lookup)
        if template is None:
            missing = f"{at}.resourceClaimTemplateName: ResourceClaimTemplate {namespace}/{template_name}"
            if lookup is not None:
                raise PlanInputError(f"{missing} is in neither the file nor the cluster")
            raise PlanInputError(f"{missing} is not in the file (add it, or give --kubeconfig to read it)")
        sources.append(_claim_source(template, str(entry["name"])))
    return tuple(sources)


def _replicas(obj: Mapping[str, Any], where: str) -> int | None:
    value = dig(obj, "spec", "replicas")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PlanInputError(f"{where}: spec.replicas: {value!r}; must be an integer of at least 0")
    return value


def parse_workload(
    documents: Sequence[Any], source: str, lookup: TemplateLookup | None = None, namespace: str = ""
) -> Workload:
    """The workload in ``documents`` (one file's objects); ``namespace`` overrides the objects' own."""
    objects = [doc for doc in documents if isinstance(doc, Mapping)]
    if len(objects) != len(documents):
        raise PlanInputError(f"{source}: every document must be an object")
    pods = [obj for obj in objects if obj.get("kind") in POD_SPECS]
    if len(pods) > 1:
        names = ", ".join(f"{p['kind']} {_meta(p)[0]}" for p in pods)
        raise PlanInputError(f"{source}: holds several workloads ({names}); give one per plan")
    if pods:
        obj = pods[0]
        name, own_namespace = _meta(obj)
        kind, ns = str(obj["kind"]), namespace or own_namespace or "default"
        path = ".".join(POD_SPECS[kind])
        spec = dig(obj, *POD_SPECS[kind])
        if not isinstance(spec, Mapping):
            raise PlanInputError(f"{kind} {ns}/{name}: {path}: required (the pod spec)")
        where = f"{kind} {ns}/{name}: {path}"
        claims = _pod_claims(spec, where, ns, objects, lookup)
        return Workload(
            kind,
            name or "replica",
            ns,
            claims,
            _pod_terms(spec, where),
            _replicas(obj, f"{kind} {ns}/{name}") if kind != "Pod" else 1,
        )
    claims_docs = [obj for obj in objects if obj.get("kind") in CLAIM_KINDS]
    if not claims_docs:
        kinds = ", ".join([*CLAIM_KINDS, *POD_SPECS])
        raise PlanInputError(f"{source}: nothing to plan; give one of {kinds}")
    sources = tuple(_claim_source(obj, _meta(obj)[0] or f"claim{i}") for i, obj in enumerate(claims_docs))
    first_name, first_namespace = _meta(claims_docs[0])
    kind = str(claims_docs[0]["kind"])
    return Workload(kind, first_name or "replica", namespace or first_namespace or "default", sources, None)
