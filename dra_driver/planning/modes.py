"""Which slice mode would fit more of the workload on the same hardware.

Each node's devices of our driver are read back from its slices (``rebuild``) and published again in
every mode by the product's slice builder, with default settings; the workload's requests are written
the way each mode needs them (``intent``). Usage is not carried over: a share of one mode has no exact
counterpart in another (16Gi of a consumable GPU is which partition?), so every mode is compared on the
cluster as if no claim of our driver existed. The current mode keeps the slices as published.

With node-local pools nodes fill independently, so the capacity of the cluster is the sum of each node's,
and nodes that publish the same devices hold the same number of replicas: each distinct node is rebuilt
and filled once (names, UUIDs and bus ids left out of "the same" unless a selector reads them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from controller.settings import PartitionLayout, SliceMode, SliceSettings
from controller.slices import build_slices
from dra_driver.core.devices import Device
from dra_driver.core.kubetypes import Obj, ObjView
from dra_driver.planning.devices import DeviceBook, PhysicalDevice
from dra_driver.planning.intent import UnknownIntent, our_classes, rewrite_claim
from dra_driver.planning.interning import QuantityInterner
from dra_driver.planning.keys import slices_key, visible_slices
from dra_driver.planning.nodemodels import node_local
from dra_driver.planning.nodes import Candidate, NodeSet
from dra_driver.planning.rebuild import published_mode, rebuild_device
from dra_driver.planning.workload import Workload
from dra_driver.simulation.allocator import CelCache, StructuredAllocator, UnschedulableError

__all__ = ["Comparison", "ModeFit", "Variant", "compare_modes"]

_REBUILT_FROM = frozenset({"type", "model", "partition", "parent", "sharing"})
UNBOUNDED_CAP = 1000
"""Replicas tried per node when the node's pod limit is unknown (no Node objects)."""
SCOPE = "on the same devices, as if no claim of {driver} existed"
NOTE = (
    "slice modes are compared without the existing claims of {driver}, since a share in one mode has no "
    "exact counterpart in another; modes the cluster does not publish are rebuilt with the default slice "
    "settings"
)


@dataclass(frozen=True, slots=True)
class Variant:
    mode: SliceMode
    layout: PartitionLayout | None = None

    @property
    def label(self) -> str:
        return f"{self.mode.value} ({self.layout.value})" if self.layout is not None else self.mode.value

    def settings(self, driver: str) -> SliceSettings:
        if self.layout is None:
            return SliceSettings(driver_name=driver, mode=self.mode)
        return SliceSettings(driver_name=driver, mode=self.mode, partition_layout=self.layout)


VARIANTS = (
    Variant(SliceMode.CONSUMABLE),
    Variant(SliceMode.PARTITIONED, PartitionLayout.FIXED),
    Variant(SliceMode.PARTITIONED, PartitionLayout.MENU),
    Variant(SliceMode.EXCLUSIVE),
)


@dataclass(frozen=True, slots=True)
class ModeFit:
    variant: str
    request: str  # how the workload asks in this mode
    capacity: int  # replicas that fit on the cluster without our claims
    placed: int  # of the replicas asked for
    current: bool  # the mode the cluster publishes
    capped: bool = False  # a node was tried only up to UNBOUNDED_CAP replicas


@dataclass(frozen=True, slots=True)
class Comparison:
    rows: tuple[ModeFit, ...] = ()
    scope: str = ""  # what the rows are counted on, in a few words
    note: str = ""
    skipped: str = ""  # why there is no comparison

    @property
    def best(self) -> str:
        top = max((row.capacity for row in self.rows), default=0)
        return ", ".join(row.variant for row in self.rows if row.capacity == top and top > 0)


def _published_variant(devices: Sequence[PhysicalDevice]) -> Variant | None:
    modes = {
        SliceMode(d.label) if d.label in {m.value for m in SliceMode} else published_mode(d.entries)
        for d in devices
    }
    if len(modes) != 1:
        return None
    mode = modes.pop()
    if mode is not SliceMode.PARTITIONED:
        return Variant(mode)
    counted = any(d.counter_set is not None for d in devices)
    return Variant(mode, PartitionLayout.MENU if counted else PartitionLayout.FIXED)


@dataclass
class _Shape:
    slices: list[Obj]
    nodes: list[Candidate]


class _Nodes:
    """Per candidate node: our devices as published and rebuilt, and other drivers' slices."""

    def __init__(
        self,
        book: DeviceBook,
        slices: Sequence[ObjView],
        nodes: NodeSet,
        driver: str,
        keep: frozenset[str] | None,
    ) -> None:
        names = {c.name for c in nodes.candidates}
        self.ours: dict[str, list[PhysicalDevice]] = {}
        for device in book.devices:
            if device.driver == driver and device.node in names:
                self.ours.setdefault(device.node, []).append(device)
        self.published: dict[str, list[ObjView]] = {}
        self.others: dict[str, list[ObjView]] = {}
        for s in slices:
            node = str(s["spec"].get("nodeName"))
            if node in names:
                (self.published if s["spec"].get("driver") == driver else self.others).setdefault(
                    node, []
                ).append(s)
        self.variant = {node: _published_variant(devices) for node, devices in self.ours.items()}
        # What a rebuild reads besides capacities and taints: equal keys, equal devices in every mode.
        self._keep = None if keep is None else keep | _REBUILT_FROM
        self._keys: dict[str, str] = {}
        self._rebuilt: dict[str, list[Device]] = {}

    def key(self, node: str) -> str:
        """The node's slices as a key; nodes with equal keys publish equal devices in every mode."""
        if node not in self._keys:
            self._keys[node] = slices_key(
                [*self.published.get(node, []), *self.others.get(node, [])], self._keep
            )
        return self._keys[node]

    def rebuilt(self, node: str) -> list[Device]:
        """Our devices of the node, read back from its slices (only for the nodes a shape is filled on)."""
        if node not in self._rebuilt:
            found = (rebuild_device(d) for d in self.ours.get(node, []))
            self._rebuilt[node] = [r.device for r in found if r is not None]
        return self._rebuilt[node]


def _fill(shape: _Shape, classes: Sequence[ObjView], workload: Workload, cap: int, cel: CelCache) -> int:
    allocator = StructuredAllocator(shape.slices, classes, cel=cel)
    node = shape.nodes[0]
    for replica in range(cap):
        try:
            allocations = allocator.allocate(workload.replica_claims(replica), node.node)
        except UnschedulableError:
            return replica
        for allocation in allocations:
            allocator.record({"status": {"allocation": allocation}})
    return cap


def _variant_fit(
    variant: Variant,
    per_node: _Nodes,
    workload: Workload,
    classes: Sequence[ObjView],
    nodes: NodeSet,
    *,
    driver: str,
    cel: CelCache,
    keep: frozenset[str] | None,
) -> tuple[int, bool]:
    shapes: dict[str, _Shape] = {}
    interned = QuantityInterner()
    for candidate in nodes.candidates:
        name = candidate.name
        published = per_node.variant.get(name) == variant
        key = f"{published}{per_node.key(name)}"
        shape = shapes.get(key)
        if shape is None:
            ours: Sequence[ObjView] = per_node.published.get(name, [])
            if not published:
                ours = build_slices(
                    name, per_node.rebuilt(name), variant.mode, variant.settings(driver), generation=1
                )
            own = visible_slices([*ours, *per_node.others.get(name, [])], keep)
            shape = shapes[key] = _Shape(interned.slices(own), [])
        shape.nodes.append(candidate)
    total, capped = 0, False
    for shape in shapes.values():
        rooms = [c.room for c in shape.nodes]
        cap = UNBOUNDED_CAP if None in rooms else max([0, *[r for r in rooms if r is not None]])
        fits = _fill(shape, classes, workload, cap, cel) if cap else 0
        capped = capped or (fits == cap and None in rooms)
        total += sum(fits if room is None else min(fits, room) for room in rooms)
    return total, capped


def _rewritten(
    workload: Workload, mode: SliceMode, driver: str, ours: frozenset[str]
) -> tuple[Workload, str]:
    """The workload with each of our requests written for ``mode``, and how it asks there."""
    rewritten = [rewrite_claim(c.spec, mode, driver, ours) for c in workload.claims]
    claims = tuple(
        dataclasses.replace(c, spec=spec) for c, (spec, _) in zip(workload.claims, rewritten, strict=True)
    )
    described = [line for _, lines in rewritten for line in lines]
    return dataclasses.replace(workload, claims=claims), "; ".join(dict.fromkeys(described))


def compare_modes(
    book: DeviceBook,
    slices: Sequence[ObjView],
    classes: Sequence[ObjView],
    workload: Workload,
    nodes: NodeSet,
    *,
    replicas: int,
    driver: str,
    cel: CelCache,
    keep: frozenset[str] | None,
) -> Comparison:
    """How many replicas each mode fits (and places of ``replicas``) on the candidate nodes."""
    if not node_local(slices):
        return Comparison(
            skipped="pools shared between nodes (slices without nodeName): nodes do not fill "
            "independently, so modes are not compared"
        )
    ours = our_classes(classes, driver)
    per_node = _Nodes(book, slices, nodes, driver, keep)
    currents = set(per_node.variant.values())
    rows = []
    for variant in VARIANTS:
        try:
            written, described = _rewritten(workload, variant.mode, driver, ours)
        except UnknownIntent as err:
            return Comparison(skipped=f"{err}; modes are not compared")
        if not described:
            return Comparison(skipped=f"the workload asks for no device of {driver}; modes are not compared")
        capacity, capped = _variant_fit(
            variant, per_node, written, classes, nodes, driver=driver, cel=cel, keep=keep
        )
        fit = ModeFit(
            variant.label, described, capacity, min(replicas, capacity), currents == {variant}, capped
        )
        rows.append(fit)
    return Comparison(tuple(rows), SCOPE.format(driver=driver), NOTE.format(driver=driver))
