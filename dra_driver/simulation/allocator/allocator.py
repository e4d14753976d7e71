"""The allocator's public face: feed it API objects as dicts, get ``status.allocation`` dicts back.

``StructuredAllocator`` parses slices, device classes and existing allocations once, then answers
``allocate`` (these claims on this node) and ``place`` (the first node, in the given order, where all of a
pod's claims fit). Both are pure with respect to the cluster: nothing is written anywhere, and the same
inputs give the same outputs. ``record`` adds an allocation the caller has committed so that later
answers account for it, which lets a scheduler stand-in or a capacity planner place many pods in a row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from celpy import celtypes

from api.errors import XPUShareError
from dra_driver.core.kubetypes import ObjView
from dra_driver.simulation.allocator.celenv import CelCache
from dra_driver.simulation.allocator.ledger import Ledger, Located
from dra_driver.simulation.allocator.model import Claim, DeviceClass, DeviceID, Node, Request
from dra_driver.simulation.allocator.parse import (
    allocated_devices,
    parse_claim,
    parse_device_class,
    parse_node,
    parse_slice,
)
from dra_driver.simulation.allocator.pools import gather_pools, node_selector_matches
from dra_driver.simulation.allocator.result import allocation_json
from dra_driver.simulation.allocator.search import NoSolutionError, Search, device_variable_for

__all__ = ["Placement", "StructuredAllocator", "UnschedulableError"]

_log = logging.getLogger(__name__)
_DEFAULT_CEL = CelCache()


class UnschedulableError(XPUShareError):
    """The claims fit nowhere; ``reason`` is the scheduler-style summary, ``details`` per node."""

    def __init__(self, reason: str, details: Mapping[str, str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = dict(details)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a pod's claims fit: the node and one ``status.allocation`` dict per claim, in order."""

    node: str
    allocations: tuple[dict[str, Any], ...]


class StructuredAllocator:
    """Structured-parameters allocation over a snapshot of ResourceSlices and DeviceClasses."""

    def __init__(
        self,
        slices: Iterable[ObjView],
        device_classes: Iterable[ObjView],
        allocated_claims: Iterable[ObjView] = (),
        *,
        cel: CelCache | None = None,
        max_steps: int = 100_000,
    ) -> None:
        self._pools = gather_pools(parse_slice(s) for s in slices)
        self._classes = {c.name: c for c in (parse_device_class(obj) for obj in device_classes)}
        self._index = {
            located.id: located
            for pool in self._pools
            if not pool.unusable
            for s in pool.slices
            for device in s.devices
            for located in [Located(DeviceID(pool.driver, pool.name, device.name), pool, s, device)]
        }
        self._ledger = Ledger.from_allocations(
            (d for c in allocated_claims for d in allocated_devices(c)), self._index
        )
        self._cel = cel or _DEFAULT_CEL
        self._max_steps = max_steps
        self._matches: dict[tuple[str, tuple[str, ...], DeviceID], bool] = {}
        self._variables: dict[DeviceID, celtypes.MapType] = {}
        for pool in self._pools:
            if pool.unusable:
                _log.info(
                    "skipping resource pool",
                    extra={"driver": pool.driver, "pool": pool.name, "why": pool.unusable},
                )

    def record(self, claim: ObjView) -> None:
        """Account for an allocation committed outside (for example written to the API server)."""
        self._ledger.hold(allocated_devices(claim), self._index)

    def allocate(self, claims: Sequence[ObjView], node: ObjView | str) -> tuple[dict[str, Any], ...]:
        """One ``status.allocation`` per claim on ``node``, or UnschedulableError saying why not."""
        return self._allocate([parse_claim(c) for c in claims], parse_node(node))

    def _allocate(self, claims: Sequence[Claim], node: Node) -> tuple[dict[str, Any], ...]:
        search = Search(
            claims,
            node,
            pools=self._pools,
            classes=self._classes,
            ledger=self._ledger.copy(),
            matcher=self._matches_request,
            max_steps=self._max_steps,
        )
        try:
            results = search.run()
        except NoSolutionError as err:
            raise UnschedulableError(f"cannot allocate all claims: {err}", {node.name: str(err)}) from err
        return tuple(allocation_json(r, self._classes, node) for r in results)

    def place(
        self, claims: Sequence[ObjView], nodes: Sequence[ObjView | str], pinned: Sequence[ObjView] = ()
    ) -> Placement:
        """The first node (in the given order) where every claim fits and every pinned allocation allows.

        ``pinned`` are ``status.allocation`` dicts of the pod's claims that are already allocated; their
        node selectors restrict the candidate nodes, as for the real scheduler.
        """
        details: dict[str, str] = {}
        parsed = [parse_claim(c) for c in claims]
        for raw in nodes:
            node = parse_node(raw)
            blocked = next((a for a in pinned if not _allows(a, node)), None)
            if blocked is not None:
                details[node.name] = "an already allocated claim is not available on this node"
                continue
            try:
                return Placement(node.name, self._allocate(parsed, node) if parsed else ())
            except UnschedulableError as err:
                details[node.name] = err.details[node.name]
        raise UnschedulableError(_summary(len(nodes), details), details)

    def _matches_request(self, request: Request, device_class: DeviceClass, located: Located) -> bool:
        key = (device_class.name, request.selectors, located.id)
        cached = self._matches.get(key)
        if cached is None:
            variable = self._variables.get(located.id)
            if variable is None:
                variable = self._variables[located.id] = device_variable_for(located)
            expressions = (*device_class.selectors, *request.selectors)
            cached = all(self._cel.matches(e, variable) for e in expressions)
            self._matches[key] = cached
        return cached


def _allows(allocation: ObjView, node: Node) -> bool:
    selector = allocation.get("nodeSelector")
    return selector is None or node_selector_matches(selector, node)


def _summary(total: int, details: Mapping[str, str]) -> str:
    """Worded like kube-scheduler's FitError, with the first node's reason appended."""
    if not details:
        return f"0/{total} nodes are available: no nodes to consider."
    first_node, first_reason = next(iter(details.items()))
    return (
        f"0/{total} nodes are available: {len(details)} cannot allocate all claims. "
        f"{first_node}: {first_reason}"
    )
