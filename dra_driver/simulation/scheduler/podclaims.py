"""The resourceclaim controller's part: a pod's claims, created from templates where needed.

A claim made from a ResourceClaimTemplate is named ``<pod>-<podClaimName>-<random5>`` (the random part
from the same alphabet Kubernetes uses for generated names), owned by the pod (controller reference, so
it goes away with the pod), annotated with ``resource.kubernetes.io/pod-claim-name``, and recorded in
``pod.status.resourceClaimStatuses`` as the real controller does. A claim created on an earlier pass is
found again through that status or the owner reference, so passes never create duplicates.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.scheduler.cluster import Cluster

__all__ = ["POD_CLAIM_ANNOTATION", "PodClaims", "claim_from_template", "resolve_pod_claims"]

POD_CLAIM_ANNOTATION = "resource.kubernetes.io/pod-claim-name"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True)
class PodClaims:
    """The pod's claims as dicts (in pod order); ``missing`` says why some could not be had."""

    claims: tuple[Obj, ...]
    missing: str = ""


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def claim_from_template(pod: Mapping[str, Any], pod_claim_name: str, template: Mapping[str, Any]) -> Obj:
    """The ResourceClaim the resourceclaim controller would create for this pod and template."""
    meta = pod["metadata"]
    spec = template.get("spec") or {}
    template_meta = spec.get("metadata") or {}
    annotations = dict(template_meta.get("annotations") or {})
    annotations[POD_CLAIM_ANNOTATION] = pod_claim_name
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": f"{meta['name']}-{pod_claim_name}-{random_suffix()}"[:253],
            "namespace": meta["namespace"],
            "labels": dict(template_meta.get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta.get("uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": copy.deepcopy(spec.get("spec") or {}),
    }


def _status_name(pod: Mapping[str, Any], pod_claim_name: str) -> str | None:
    for entry in (pod.get("status") or {}).get("resourceClaimStatuses") or ():
        if entry.get("name") == pod_claim_name and entry.get("resourceClaimName"):
            return str(entry["resourceClaimName"])
    return None


def _owned_claim(pod: Mapping[str, Any], pod_claim_name: str, claims: Iterable[Obj]) -> Obj | None:
    uid = pod["metadata"].get("uid")
    for claim in claims:
        meta = claim.get("metadata") or {}
        owners = meta.get("ownerReferences") or ()
        owned = any(o.get("uid") == uid and o.get("controller") for o in owners)
        if owned and (meta.get("annotations") or {}).get(POD_CLAIM_ANNOTATION) == pod_claim_name:
            return claim
    return None


def template_spec_of(cluster: Cluster, pod: Mapping[str, Any], entry: Mapping[str, Any]) -> Obj | None:
    """The claim spec a pod entry asks for, without creating anything (to decide if the pod is ours)."""
    namespace = pod["metadata"]["namespace"]
    if entry.get("resourceClaimName"):
        claim = cluster.claim(namespace, str(entry["resourceClaimName"]))
        return None if claim is None else dict(claim.get("spec") or {})
    template = cluster.template(namespace, str(entry.get("resourceClaimTemplateName", "")))
    return None if template is None else dict((template.get("spec") or {}).get("spec") or {})


def resolve_pod_claims(
    cluster: Cluster, pod: Mapping[str, Any], claims: Mapping[tuple[str, str], Obj]
) -> PodClaims:
    """Every claim of the pod, creating those made from templates (and recording them in the pod status)."""
    namespace = pod["metadata"]["namespace"]
    found: list[Obj] = []
    for entry in (pod.get("spec") or {}).get("resourceClaims") or ():
        name = str(entry.get("name", ""))
        if entry.get("resourceClaimName"):
            claim = claims.get((namespace, str(entry["resourceClaimName"])))
            if claim is None:
                return PodClaims(tuple(found), f'resourceclaim "{entry["resourceClaimName"]}" not found')
            found.append(claim)
            continue
        claim = _existing_from_template(pod, name, claims)
        if claim is None:
            created = _create_from_template(cluster, pod, entry)
            if isinstance(created, str):
                return PodClaims(tuple(found), created)
            claim = created
        found.append(claim)
    return PodClaims(tuple(found))


def _existing_from_template(
    pod: Mapping[str, Any], name: str, claims: Mapping[tuple[str, str], Obj]
) -> Obj | None:
    namespace = pod["metadata"]["namespace"]
    recorded = _status_name(pod, name)
    if recorded is not None and (namespace, recorded) in claims:
        return claims[(namespace, recorded)]
    in_namespace = (c for (ns, _), c in claims.items() if ns == namespace)
    return _owned_claim(pod, name, in_namespace)


def _create_from_template(cluster: Cluster, pod: Mapping[str, Any], entry: Mapping[str, Any]) -> Obj | str:
    meta = pod["metadata"]
    template_name = str(entry.get("resourceClaimTemplateName", ""))
    template = cluster.template(meta["namespace"], template_name)
    if template is None:
        return f'resourceclaimtemplate "{template_name}" not found'
    created = cluster.create_claim(meta["namespace"], claim_from_template(pod, str(entry["name"]), template))
    statuses = [
        s
        for s in (pod.get("status") or {}).get("resourceClaimStatuses") or ()
        if s.get("name") != entry["name"]
    ]
    statuses.append({"name": entry["name"], "resourceClaimName": created["metadata"]["name"]})
    cluster.patch_pod_status(meta["namespace"], meta["name"], {"status": {"resourceClaimStatuses": statuses}})
    pod.setdefault("status", {})["resourceClaimStatuses"] = statuses  # type: ignore[attr-defined]
    return created
