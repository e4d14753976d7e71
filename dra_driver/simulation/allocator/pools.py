"""Resource pools as the scheduler sees them, and which of their devices a node can reach.

Only the newest generation of each pool counts; a pool whose newest generation has fewer slices than its
``resourceSliceCount`` is incomplete and is skipped (its driver is mid-update), and a pool with duplicate
device names is invalid and skipped, as kube-scheduler does. Counter sets (KEP-4815) are collected from
every slice of the pool's newest generation, because since Kubernetes 1.35 a slice holds either devices
or counters. Order is fixed: pools by driver and name, slices by name, devices as published, which makes
first fit deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dra_driver.core.quantity import Quantity
from dra_driver.simulation.allocator.model import Device, Node, NodeSelection, Slice

__all__ = ["Pool", "gather_pools", "node_selector_matches", "reachable_devices"]


@dataclass(frozen=True, slots=True)
class Pool:
    driver: str
    name: str
    slices: tuple[Slice, ...]
    counter_sets: Mapping[str, Mapping[str, Quantity]] = field(default_factory=dict)
    unusable: str = ""  # why the pool is skipped (incomplete or invalid); empty when usable


def gather_pools(slices: Iterable[Slice]) -> tuple[Pool, ...]:
    """Group slices into pools, keeping only each pool's newest generation."""
    newest: dict[tuple[str, str], list[Slice]] = {}
    for s in slices:
        members = newest.setdefault((s.driver, s.pool), [])
        if members and s.generation < members[0].generation:
            continue
        if members and s.generation > members[0].generation:
            members.clear()
        members.append(s)
    return tuple(_make_pool(driver, name, newest[(driver, name)]) for driver, name in sorted(newest))


def _make_pool(driver: str, name: str, members: list[Slice]) -> Pool:
    ordered = tuple(sorted(members, key=lambda s: s.name))
    counters: dict[str, Mapping[str, Quantity]] = {}
    for s in ordered:
        counters.update(s.counter_sets)
    return Pool(driver, name, ordered, counters, _unusable(ordered))


def _unusable(members: Sequence[Slice]) -> str:
    expected = members[0].resource_slice_count
    if len(members) != expected:
        return f"incomplete: {len(members)} of {expected} slices of generation {members[0].generation}"
    seen: set[str] = set()
    for s in members:
        for device in s.devices:
            if device.name in seen:
                return f"invalid: duplicate device name {device.name}"
            seen.add(device.name)
    return ""


def reachable_devices(pool: Pool, node: Node) -> list[tuple[Slice, Device]]:
    """The pool's devices usable from ``node``, in slice order."""
    out: list[tuple[Slice, Device]] = []
    for s in pool.slices:
        if s.per_device_node_selection:
            out.extend((s, d) for d in s.devices if d.node is not None and _selection_matches(d.node, node))
        elif _selection_matches(s.node, node):
            out.extend((s, d) for d in s.devices)
    return out


def _selection_matches(selection: NodeSelection, node: Node) -> bool:
    if selection.node_name:
        return selection.node_name == node.name
    if selection.all_nodes:
        return True
    if selection.node_selector is not None:
        return node_selector_matches(selection.node_selector, node)
    return False


def node_selector_matches(selector: Mapping[str, Any], node: Node) -> bool:
    """core/v1 NodeSelector semantics: terms are ORed, requirements in a term ANDed; empty term fails."""
    for term in selector.get("nodeSelectorTerms") or ():
        expressions = term.get("matchExpressions") or ()
        fields = term.get("matchFields") or ()
        if not expressions and not fields:
            continue
        labels_ok = all(_requirement(r, node.labels) for r in expressions)
        if labels_ok and all(_requirement(r, {"metadata.name": node.name}) for r in fields):
            return True
    return False


def _requirement(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, op = str(req.get("key", "")), str(req.get("operator", ""))
    wanted = [str(v) for v in req.get("values") or ()]
    value = values.get(key)
    if op in {"Gt", "Lt"}:
        return value is not None and len(wanted) == 1 and _compare_ints(value, wanted[0], op)
    checks = {
        "In": value is not None and value in wanted,
        "NotIn": value is None or value not in wanted,
        "Exists": value is not None,
        "DoesNotExist": value is None,
    }
    return checks.get(op, False)


def _compare_ints(value: str, bound: str, op: str) -> bool:
    try:
        left, right = int(value), int(bound)
    except ValueError:
        return False
    return left > right if op == "Gt" else left < right
