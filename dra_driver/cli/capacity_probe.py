"""Whether a live cluster keeps the capacity requests of claims, and which requests of a file rely on them.

An API server with ``DRAConsumableCapacity`` off (Kubernetes 1.34 and 1.35 by default) drops
``capacity.requests`` from claims as they are written, without a warning, so a template that asks for
"16Gi and 25 %" silently asks for nothing there. The only reliable way to know is to ask that server:
a server-side dry-run create of a probe claim (nothing is stored) shows whether the field comes back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dra_driver.core.kube import KubeApi

_PROBE_CLAIM = {
    "apiVersion": "resource.k8s.io/v1",
    "kind": "ResourceClaim",
    "metadata": {"generateName": "xpushare-capacity-probe-"},
    "spec": {"devices": {"requests": [{
        "name": "probe",
        "exactly": {
            "deviceClassName": "xpushare-capacity-probe",
            "capacity": {"requests": {"memory": "1Mi"}},
        },
    }]}},
}
# Where each kind keeps its claim spec.
_CLAIM_SPECS = {"ResourceClaim": ("spec",), "ResourceClaimTemplate": ("spec", "spec")}


def keeps_capacity_requests(api: KubeApi, namespace: str = "default") -> bool:
    """Whether the cluster stores ``capacity.requests`` of claims (dry run: nothing is created)."""
    created = api.request("POST", f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims",
                          query=[("dryRun", "All")], body=_PROBE_CLAIM)
    requests = ((created.get("spec") or {}).get("devices") or {}).get("requests") or [{}]
    return "capacity" in (requests[0].get("exactly") or {})


def capacity_requests(document: Any) -> Iterator[str]:
    """The paths of the capacity requests in a claim or template (what such a cluster would drop)."""
    if not isinstance(document, Mapping) or document.get("kind") not in _CLAIM_SPECS:
        return
    spec: Any = document
    keys = _CLAIM_SPECS[str(document["kind"])]
    for key in keys:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
    requests = (spec.get("devices") or {}).get("requests") if isinstance(spec, Mapping) else None
    base = ".".join(keys) + ".devices.requests"
    for index, request in enumerate(requests if isinstance(requests, list) else []):
        if not isinstance(request, Mapping):
            continue
        exactly = request.get("exactly")
        if isinstance(exactly, Mapping) and (exactly.get("capacity") or {}).get("requests"):
            yield f"{base}[{index}].exactly.capacity.requests"
        for sub, alternative in enumerate(request.get("firstAvailable") or []):
            if isinstance(alternative, Mapping) and (alternative.get("capacity") or {}).get("requests"):
                yield f"{base}[{index}].firstAvailable[{sub}].capacity.requests"


def dropped_request_warnings(documents: list[Any], api: KubeApi) -> list[str]:
    """One warning per capacity request that the cluster behind ``api`` would drop; none if it keeps them."""
    paths = [(index, path) for index, doc in enumerate(documents) for path in capacity_requests(doc)]
    if not paths or keeps_capacity_requests(api):
        return []
    return [
        f"warning: {_document(index, len(documents))}{path}: this cluster drops capacity requests "
        "(DRAConsumableCapacity is off), so the claim gets a device or partition of any size; select a "
        'size with CEL on device.capacity["xpushare.io"] (docs/configuration.md)'
        for index, path in paths
    ]


def _document(index: int, count: int) -> str:
    return f"document {index + 1}: " if count > 1 else ""
