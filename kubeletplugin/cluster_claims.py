"""The claims the API server allocated on this node against those the plugin prepared (its checkpoint).

- allocated here and reserved by a pod that runs here, but not prepared: the kubelet believes it
  prepared the claim, so the plugin lost its record (no live quota, no accounting, no board entry);
- prepared, but the claim is gone (stale): the kubelet's unprepare never reached the plugin, and the
  claim still holds its share of the device, so the next claims there can be refused at prepare;
- prepared, but the API server no longer allocates the claim on this node.

Only the claims allocated here and not prepared cost requests beyond the one list (a GET of each pod
that reserves them, at most ``MAX_POD_READS`` in all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from dra_driver.core.kubetypes import Obj
from kubeletplugin.checkpoint import PreparedClaim
from kubeletplugin.cluster_reader import items, object_name, text
from kubeletplugin.findings import Finding, Severity

MAX_POD_READS = 64
PodReader = Callable[[str, str], Obj | None]  # (namespace, name) -> the pod; None: gone, or not readable


def allocated_here(claim: Obj, driver: str, pool: str) -> bool:
    """Whether a result of ``claim``'s allocation is a device of ``driver`` in ``pool``."""
    results = items(claim, "status", "allocation", "devices", "results")
    return any(text(r, "driver") == driver and text(r, "pool") == pool for r in results)


def _ref(claim: Obj) -> str:
    meta = ("metadata",)
    return (
        f"claim {text(claim, *meta, 'namespace')}/{text(claim, *meta, 'name')} ({text(claim, *meta, 'uid')})"
    )


def _running_pod(read_pod: PodReader, claim: Obj, node: str, budget: list[int]) -> str:
    """The first pod that reserves ``claim`` and runs on ``node`` ("" when none does, or none was read)."""
    namespace = object_name(text(claim, "metadata", "namespace"))
    for entry in items(claim, "status", "reservedFor"):
        name = object_name(text(entry, "name"))
        if text(entry, "resource") != "pods" or text(entry, "apiGroup") or not name or not namespace:
            continue
        if budget[0] <= 0:
            return ""
        budget[0] -= 1
        pod = read_pod(namespace, name)
        if (
            pod is not None
            and text(pod, "spec", "nodeName") == node
            and text(pod, "metadata", "uid") == text(entry, "uid")
            and text(pod, "status", "phase") == "Running"
        ):
            return f"{namespace}/{name}"
    return ""


def claim_findings(
    read_pod: PodReader, claims: Sequence[Obj], prepared: Mapping[str, PreparedClaim], node: str, driver: str
) -> list[Finding]:
    """Findings from the API server's claims and the checkpoint's; the pods that reserve a claim
    allocated here but not prepared are read with ``read_pod``."""
    found: list[Finding] = []
    by_uid = {text(c, "metadata", "uid"): c for c in claims}
    here = [c for c in claims if allocated_here(c, driver, node)]
    budget = [MAX_POD_READS]
    for claim in (c for c in here if text(c, "metadata", "uid") not in prepared):
        pod = _running_pod(read_pod, claim, node, budget)
        if pod:
            found.append(
                Finding(
                    Severity.ERROR,
                    _ref(claim),
                    f"allocated on this node and reserved by pod {pod}, which runs here, but not prepared "
                    "by the plugin (not in its checkpoint)",
                    "its containers run without the plugin's record of their limits (no live quota, no "
                    "accounting, no board entry); delete the pod so that the kubelet prepares the claim "
                    "again",
                )
            )
    for uid, record in sorted(prepared.items(), key=lambda p: (p[1].namespace, p[1].name)):
        subject = f"claim {record.namespace}/{record.name} ({uid})"
        live = by_uid.get(uid)
        if live is None:
            found.append(
                Finding(
                    Severity.ERROR,
                    subject,
                    "prepared on this node, but the claim no longer exists (stale): it still holds its "
                    "share of the device, so the next claims there can be refused at prepare",
                    "the kubelet's unprepare did not reach the plugin: restart the plugin, which "
                    "unprepares claims that are gone at its start",
                )
            )
        elif not allocated_here(live, driver, node):
            found.append(
                Finding(
                    Severity.WARNING,
                    subject,
                    f"prepared on this node, but the API server no longer allocates it on node {node}",
                    "the kubelet unprepares it when its pods here end; until then it holds its share of "
                    "the device",
                )
            )
    found.append(
        Finding(
            Severity.INFO,
            "claims",
            f"{len(here)} allocated on this node by the API server, {len(prepared)} prepared here",
            "-",
        )
    )
    return found
