"""Placing identical replicas one after another, spread over the nodes as kube-scheduler spreads pods.

Node order: kube-scheduler scores the nodes that fit and takes the best, ties at random. With no CPU or
memory requests, its NodeResourcesFit score counts each pod at the default non-zero requests (100m CPU,
200Mi), so the node running the fewest pods wins: it spreads. The planner does the same without
randomness: the node with the fewest pods (those already bound plus those planned), ties by name.
Which node a replica lands on may therefore differ from the scheduler's; how many fit does not, because
with node-local pools every node is filled independently, first fit within the node, as the scheduler's
allocator does.

Speed: replicas are identical, so a node that refused one refuses every later one (allocations only add
up); it is dropped for good, and each replica costs one attempt on one node (``nodemodels`` makes equal
empty nodes share their attempts).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from dra_driver.core.kubetypes import Obj
from dra_driver.planning.nodemodels import NodeModel
from dra_driver.planning.nodes import TOO_MANY_PODS, NodeSet

__all__ = ["CANNOT_ALLOCATE", "Placed", "Placement", "fits_one_more", "place_replicas", "summary"]

CANNOT_ALLOCATE = "cannot allocate all claims"


@dataclass(frozen=True, slots=True)
class Placed:
    replica: int
    node: str
    allocations: tuple[Obj, ...]  # one status.allocation per claim of the replica


@dataclass
class Placement:
    placed: list[Placed] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # node -> why it took no more replicas
    on_node: Counter[str] = field(default_factory=Counter)  # replicas this plan put on each node

    def per_node(self) -> Counter[str]:
        return Counter(p.node for p in self.placed)


def place_replicas(models: Mapping[str, NodeModel], nodes: NodeSet, replicas: int) -> Placement:
    """Place up to ``replicas`` replicas, fewest pods first; stops at the first that fits nowhere."""
    result = Placement()
    heap = [(c.pods, order, c) for order, c in enumerate(nodes.candidates)]
    heapq.heapify(heap)
    for replica in range(replicas):
        while heap:
            pods, order, candidate = heap[0]
            placed_here = result.on_node[candidate.name]
            if candidate.room is not None and placed_here >= candidate.room:
                heapq.heappop(heap)
                result.refused[candidate.name] = TOO_MANY_PODS
                continue
            answer = models[candidate.name].attempt(placed_here, replica)
            if isinstance(answer, str):
                heapq.heappop(heap)
                result.refused[candidate.name] = f"{CANNOT_ALLOCATE}: {answer}"
                continue
            models[candidate.name].commit(answer)
            result.placed.append(Placed(replica, candidate.name, answer))
            result.on_node[candidate.name] += 1
            heapq.heapreplace(heap, (pods + 1, order, candidate))
            break
        else:
            break
    return result


def fits_one_more(
    models: Mapping[str, NodeModel], nodes: NodeSet, placement: Placement, replica: int
) -> dict[str, bool]:
    """Per candidate: whether one more replica would fit now (nothing is committed)."""
    answers: dict[str, bool] = {}
    for candidate in nodes.candidates:
        placed_here = placement.on_node[candidate.name]
        full = candidate.room is not None and placed_here >= candidate.room
        answers[candidate.name] = (
            candidate.name not in placement.refused
            and not full
            and not isinstance(models[candidate.name].attempt(placed_here, replica), str)
        )
    return answers


def summary(total: int, why: Mapping[str, str]) -> str:
    """Worded like kube-scheduler's FitError: counts per reason, then the first node's details."""
    if not why:
        return f"0/{total} nodes are available: no nodes to consider."
    reasons = Counter(reason.split(":", 1)[0] for reason in why.values())
    parts = ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))  # as kube-scheduler
    detailed = next(((node, r) for node, r in sorted(why.items()) if r.startswith(CANNOT_ALLOCATE)), None)
    tail = f" {detailed[0]}: {detailed[1].split(': ', 1)[1]}" if detailed else ""
    return f"0/{total} nodes are available: {parts}.{tail}"
