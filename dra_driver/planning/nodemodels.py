"""How each node answers "where would the next replica go here", each as cheaply as stays exact.

Every answer comes from the structured allocator; what differs is how many allocators there are:

- pools shared between nodes (slices without ``nodeName``): one allocator for the whole cluster, since a
  placement on one node changes what the others can get;
- nodes that publish the same devices (same entries, counters and the attributes the selectors read;
  names of pools and nodes aside) and hold the same allocations on them: one allocator for all of them,
  over the first one's slices and allocations. Replicas are identical, so the n-th replica on any such
  node gets the same devices; the sequence is computed once, on demand, and each node's answers are that
  sequence with its own pool and node names;
- any other node (one with several pools of one driver): an allocator of its own over its own slices, so
  its attempts never copy the bookkeeping of the whole cluster.

Sharing keeps a plan of 500 equal nodes to one allocator's worth of work instead of 500 allocators'
parsing, CEL variables and attempts. Allocators get their slices with quantities parsed ahead
(``interning``) and without the attributes nothing reads (``keys.visible_slices``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dra_driver.core.kubetypes import Obj, ObjView
from dra_driver.planning.interning import QuantityInterner
from dra_driver.planning.keys import key_of, slices_key, visible_slices
from dra_driver.planning.nodes import Candidate, NodeSet
from dra_driver.planning.workload import Workload
from dra_driver.simulation.allocator import CelCache, StructuredAllocator, UnschedulableError

__all__ = ["NodeModel", "node_local", "node_models"]

Answer = tuple[Obj, ...] | str  # one status.allocation per claim, or why the replica does not fit


def node_local(slices: Sequence[ObjView]) -> bool:
    """Whether every slice belongs to one node (``nodeName``), so that nodes never share devices."""
    return all((s.get("spec") or {}).get("nodeName") for s in slices)


class NodeModel(Protocol):
    def attempt(self, on_node: int, replica: int) -> Answer:
        """Where the next replica (``replica``; ``on_node`` already placed here by this plan) would go."""

    def commit(self, allocations: Sequence[Obj]) -> None:
        """Account for the attempt's allocations, which the plan has taken."""


def _allocate(
    allocator: StructuredAllocator, workload: Workload, replica: int, candidate: Candidate
) -> Answer:
    try:
        return allocator.allocate(workload.replica_claims(replica), candidate.node)
    except UnschedulableError as err:
        return err.details.get(candidate.name, err.reason)


class _Own:
    """A node answered by an allocator that sees it (its own, or the cluster's)."""

    def __init__(self, allocator: StructuredAllocator, candidate: Candidate, workload: Workload) -> None:
        self._allocator, self._candidate, self._workload = allocator, candidate, workload

    def attempt(self, on_node: int, replica: int) -> Answer:
        return _allocate(self._allocator, self._workload, replica, self._candidate)

    def commit(self, allocations: Sequence[Obj]) -> None:
        for allocation in allocations:
            self._allocator.record({"status": {"allocation": allocation}})


class _Sequence:
    """The answers for the 1st, 2nd, ... replica on an empty node of one shape, computed once each."""

    def __init__(self, allocator: StructuredAllocator, candidate: Candidate, workload: Workload) -> None:
        self.allocator, self.candidate, self._workload = allocator, candidate, workload
        self._steps: list[Answer] = []

    def step(self, index: int) -> Answer:
        while len(self._steps) <= index:
            if self._steps and isinstance(self._steps[-1], str):
                return self._steps[-1]  # refused once, refused for good: nothing is ever freed
            answer = _allocate(self.allocator, self._workload, len(self._steps), self.candidate)
            if not isinstance(answer, str):
                for allocation in answer:
                    self.allocator.record({"status": {"allocation": allocation}})
            self._steps.append(answer)
        return self._steps[index]


class _Shaped:
    """A node that holds nothing yet, answered by the sequence of its shape with its own names."""

    def __init__(self, sequence: _Sequence, candidate: Candidate, pools: dict[tuple[str, str], str]) -> None:
        self._sequence, self._candidate, self._pools = sequence, candidate, pools

    def attempt(self, on_node: int, replica: int) -> Answer:
        answer = self._sequence.step(on_node)
        same = self._sequence.candidate.name
        if isinstance(answer, str):
            return answer.replace(f"node {same} ", f"node {self._candidate.name} ")
        return tuple(self._renamed(allocation, same) for allocation in answer)

    def _renamed(self, allocation: Obj, same: str) -> Obj:
        devices = allocation.get("devices") or {}
        results = [
            {**r, "pool": self._pools.get((str(r.get("driver")), str(r.get("pool"))), r.get("pool"))}
            for r in devices.get("results") or ()
        ]
        out: Obj = {**allocation, "devices": {**devices, "results": results}}
        if "nodeSelector" in allocation:
            out["nodeSelector"] = _replace_name(allocation["nodeSelector"], same, self._candidate.name)
        return out

    def commit(self, allocations: Sequence[Obj]) -> None:
        return None  # the sequence recorded them on its own allocator


def _replace_name(value: object, old: str, new: str) -> object:
    if isinstance(value, dict):
        return {k: _replace_name(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_name(v, old, new) for v in value]
    return new if value == old else value


def _shape(slices: Sequence[ObjView], keep: frozenset[str] | None) -> str | None:
    """A node's slices as a key; None when a driver has several pools there (no one-to-one renaming)."""
    pools = {(str(s["spec"].get("driver")), str(s["spec"]["pool"].get("name"))) for s in slices}
    if len({driver for driver, _ in pools}) != len(pools):
        return None
    return slices_key(slices, keep)


def _held_key(claims: Sequence[ObjView], pools: dict[str, str]) -> str:
    """What a node's devices hold, as a key: per result on its pools, the device and what it consumes."""
    held = []
    for claim in claims:
        results = (((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results")
        for result in results or ():
            if pools.get(str(result.get("driver"))) == result.get("pool"):
                consumed = result.get("consumedCapacity") or {}
                held.append(
                    [
                        result.get("driver"),
                        result.get("device"),
                        sorted(consumed.items()),
                        bool(result.get("shareID")),
                        bool(result.get("adminAccess")),
                    ]
                )
    return key_of(sorted(held, key=key_of))


def _pool_names(slices: Sequence[ObjView]) -> dict[str, str]:
    return {str(s["spec"].get("driver")): str(s["spec"]["pool"].get("name")) for s in slices}


def _by_node(slices: Sequence[ObjView]) -> dict[str, list[ObjView]]:
    by_node: dict[str, list[ObjView]] = {}
    for s in slices:
        by_node.setdefault(str(s["spec"]["nodeName"]), []).append(s)
    return by_node


def _held_by_node(claims: Sequence[ObjView], by_node: dict[str, list[ObjView]]) -> dict[str, list[ObjView]]:
    """The allocated claims that hold devices of each node's pools."""
    pool_node = {
        (str(s["spec"].get("driver")), str((s["spec"].get("pool") or {}).get("name"))): node
        for node, own in by_node.items()
        for s in own
    }
    held: dict[str, list[ObjView]] = {}
    for claim in claims:
        results = (((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results")
        found = {pool_node.get((str(r.get("driver")), str(r.get("pool")))) for r in results or ()}
        for node in found:
            if node is not None:
                held.setdefault(node, []).append(claim)
    return held


def node_models(
    slices: Sequence[ObjView],
    classes: Sequence[ObjView],
    claims: Sequence[ObjView],
    nodes: NodeSet,
    *,
    workload: Workload,
    cel: CelCache,
    keep: frozenset[str] | None,
) -> dict[str, NodeModel]:
    """One model per candidate node (see the module's docstring for which kind)."""
    interned = QuantityInterner()  # only the slices an allocator reads are worth parsing ahead

    def seen(own: Sequence[ObjView]) -> list[Obj]:
        return interned.slices(visible_slices(own, keep))

    if not node_local(slices):
        shared = StructuredAllocator(seen(slices), classes, claims, cel=cel)
        return {c.name: _Own(shared, c, workload) for c in nodes.candidates}
    by_node = _by_node(slices)
    held = _held_by_node(claims, by_node)
    models: dict[str, NodeModel] = {}
    sequences: dict[str, _Sequence] = {}
    for candidate in nodes.candidates:
        own, mine = by_node.get(candidate.name, []), held.get(candidate.name, [])
        shape = _shape(own, keep)
        if shape is None:
            allocator = StructuredAllocator(seen(own), classes, mine, cel=cel)
            models[candidate.name] = _Own(allocator, candidate, workload)
            continue
        pools = _pool_names(own)
        key = shape + _held_key(mine, pools)
        sequence = sequences.get(key)
        if sequence is None:
            allocator = StructuredAllocator(seen(own), classes, mine, cel=cel)
            sequence = sequences[key] = _Sequence(allocator, candidate, workload)
        same = _pool_names(by_node.get(sequence.candidate.name, []))
        models[candidate.name] = _Shaped(sequence, candidate, {(d, p): pools[d] for d, p in same.items()})
    return models
