"""Which nodes a replica's pod may go to, and how many more pods each takes.

kube-scheduler filters nodes before it looks at claims: a node marked unschedulable, a node whose
``NoSchedule``/``NoExecute`` taints the pod does not tolerate, a node its node selector or required
node affinity rules out, and a node already running its ``pods`` allocatable are not considered. The
planner does the same where it knows the pod; for a bare claim or template it knows no pod, so only
``spec.unschedulable`` and the pod count apply, and ``notes`` says what was not checked. Without Node
objects the nodes are those the slices name, as the scheduler stand-in takes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dra_driver.core.kubetypes import Obj
from dra_driver.core.quantity import QuantityError, parse_quantity
from dra_driver.planning.snapshot import ClusterSnapshot
from dra_driver.planning.workload import PodTerms
from dra_driver.simulation.allocator.model import Node, Taint, Toleration
from dra_driver.simulation.allocator.parse import parse_node
from dra_driver.simulation.allocator.pools import node_selector_matches

__all__ = ["Candidate", "NodeSet", "candidate_nodes"]

_BLOCKING = frozenset({"NoSchedule", "NoExecute"})
_UNSCHEDULABLE = Taint("node.kubernetes.io/unschedulable", "NoSchedule")
_FINISHED = frozenset({"Succeeded", "Failed"})
# kube-scheduler's words for each filter, used in the summary of why replicas did not fit.
UNSCHEDULABLE = "node(s) were unschedulable"
UNTOLERATED = "node(s) had untolerated taint"
SELECTOR = "node(s) didn't match Pod's node affinity/selector"
TOO_MANY_PODS = "Too many pods"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node a replica may go to: ``node`` is what the allocator gets (labels count for slices)."""

    name: str
    node: Obj | str
    pods: int  # pods already bound there
    room: int | None  # how many more pods it takes; None when its allocatable is unknown


@dataclass(frozen=True, slots=True)
class NodeSet:
    candidates: tuple[Candidate, ...]
    excluded: Mapping[str, str]  # node -> one of the filter phrases above
    notes: tuple[str, ...] = ()


def _taints(obj: Obj) -> list[Taint]:
    raw = (obj.get("spec") or {}).get("taints") or []
    return [Taint(str(t.get("key", "")), str(t.get("effect", "")), str(t.get("value") or "")) for t in raw]


def _untolerated(taints: Iterable[Taint], tolerations: Iterable[Toleration]) -> Taint | None:
    held = tuple(tolerations)
    return next((t for t in taints if t.effect in _BLOCKING and not any(x.tolerates(t) for x in held)), None)


def _excluded(obj: Obj, node: Node, pod: PodTerms | None) -> str:
    tolerations = pod.tolerations if pod is not None else ()
    if (obj.get("spec") or {}).get("unschedulable") and _untolerated([_UNSCHEDULABLE], tolerations):
        return UNSCHEDULABLE
    if pod is None:
        return ""
    if _untolerated(_taints(obj), tolerations) is not None:
        return UNTOLERATED
    if any(node.labels.get(key) != value for key, value in pod.node_selector.items()):
        return SELECTOR
    if pod.affinity is not None and not node_selector_matches(pod.affinity, node):
        return SELECTOR
    return ""


def _bound_pods(pods: Iterable[Obj]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in _FINISHED:
            counts[str(node)] += 1
    return counts


def _allocatable_pods(obj: Obj) -> int | None:
    value = ((obj.get("status") or {}).get("allocatable") or {}).get("pods")
    if value is None:
        return None
    try:
        return int(parse_quantity(value).value)
    except QuantityError:
        return None


def candidate_nodes(snapshot: ClusterSnapshot, pod: PodTerms | None) -> NodeSet:
    """The nodes in name order, split into candidates and the excluded with kube-scheduler's reason."""
    bound = _bound_pods(snapshot.pods)
    if not snapshot.nodes:
        names = sorted(
            {str(s["spec"]["nodeName"]) for s in snapshot.slices if (s.get("spec") or {}).get("nodeName")}
        )
        return NodeSet(
            tuple(Candidate(n, n, bound[n], None) for n in names),
            {},
            ("no Node objects given: the nodes are those the slices name, with no pod limit",),
        )
    candidates, excluded = [], {}
    tainted = False
    for obj in sorted(snapshot.nodes, key=lambda o: str((o.get("metadata") or {}).get("name", ""))):
        node = parse_node(obj)
        tainted = tainted or _untolerated(_taints(obj), ()) is not None
        why = _excluded(obj, node, pod)
        if why:
            excluded[node.name] = why
            continue
        allocatable = _allocatable_pods(obj)
        room = None if allocatable is None else max(0, allocatable - bound[node.name])
        candidates.append(Candidate(node.name, obj, bound[node.name], room))
    notes: tuple[str, ...] = ()
    if pod is None and tainted:
        notes = (
            "node taints, node selectors and affinity were not checked: the workload has no pod spec "
            "(give a Pod or Deployment to have them applied)",
        )
    return NodeSet(tuple(candidates), excluded, notes)
