"""``plan``: how many replicas of a workload fit on a cluster, where, what is left, and which slice mode
would fit more. Every answer comes from the structured allocator; this module puts the steps in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from controller.deviceclasses import device_classes
from controller.settings import DRIVER_NAME
from dra_driver.core.kubetypes import ObjView
from dra_driver.planning.asks import attributes_read, check_classes, describe
from dra_driver.planning.celmemo import SharedCel
from dra_driver.planning.devices import DeviceBook, PhysicalDevice
from dra_driver.planning.modes import compare_modes
from dra_driver.planning.nodemodels import node_models
from dra_driver.planning.nodes import NodeSet, candidate_nodes
from dra_driver.planning.placement import Placement, fits_one_more, place_replicas, summary
from dra_driver.planning.probes import DeviceProbe, one_device_claims
from dra_driver.planning.report import DeviceReport, NodeReport, PlanReport
from dra_driver.planning.snapshot import ClusterSnapshot, PlanInputError
from dra_driver.planning.workload import Workload

__all__ = ["MAX_REPLICAS", "STRATEGY", "PlanOptions", "plan"]

MAX_REPLICAS = 100_000
STRATEGY = "spread: the node with the fewest pods first, ties by name"


@dataclass(frozen=True, slots=True)
class PlanOptions:
    replicas: int
    driver: str = DRIVER_NAME
    compare_modes: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise PlanInputError(f"--replicas: {self.replicas} is out of range; allowed 1..{MAX_REPLICAS}")


def _device_reports(
    book: DeviceBook, nodes: NodeSet, node_fits: dict[str, bool], probe: DeviceProbe
) -> tuple[DeviceReport, ...]:
    candidates = {c.name for c in nodes.candidates}
    reports = []
    for device in book.devices:
        if device.node and device.node not in candidates:
            continue
        if not device.replicas and not probe.serves(device, empty=True):
            continue  # a device this workload can never use: not its capacity
        node_ok = node_fits.get(device.node, False) if device.node else any(node_fits.values())
        one_more = node_ok and probe.serves(device)
        reports.append(_device_report(device, one_more))
    return tuple(reports)


def _device_report(device: PhysicalDevice, one_more: bool) -> DeviceReport:
    free = device.free
    return DeviceReport(
        device.node,
        device.driver,
        device.pool,
        device.name,
        dict(device.total),
        dict(device.used),
        len(device.replicas),
        one_more,
        not one_more and any(v > Fraction(0) for v in free.values()),
    )


def _node_reports(nodes: NodeSet, placement: Placement, node_fits: dict[str, bool]) -> tuple[NodeReport, ...]:
    per_node = placement.per_node()
    reports = [NodeReport(c.name, per_node[c.name], node_fits[c.name]) for c in nodes.candidates]
    reports += [NodeReport(name, 0, None, why) for name, why in nodes.excluded.items()]
    return tuple(sorted(reports, key=lambda r: r.name))


def _classes(snapshot: ClusterSnapshot, driver: str, notes: list[str]) -> Sequence[ObjView]:
    if snapshot.device_classes:
        return snapshot.device_classes
    notes.append(f"no DeviceClass given: used the product's own for {driver}")
    return device_classes(driver)


def _book(snapshot: ClusterSnapshot, placement: Placement) -> DeviceBook:
    """Every device with what the cluster's claims and the planned replicas hold of it."""
    book = DeviceBook(snapshot.slices)
    book.hold_claims(snapshot.claims)
    for placed in placement.placed:
        for allocation in placed.allocations:
            book.hold(allocation, placed.replica)
    return book


def _reason(nodes: NodeSet, placement: Placement, replicas: int) -> str:
    if len(placement.placed) == replicas:
        return ""
    return summary(len(nodes.candidates) + len(nodes.excluded), {**nodes.excluded, **placement.refused})


def plan(snapshot: ClusterSnapshot, workload: Workload, options: PlanOptions) -> PlanReport:
    """Place ``options.replicas`` replicas of ``workload`` on ``snapshot`` and report what it leaves."""
    notes: list[str] = []
    classes = _classes(snapshot, options.driver, notes)
    check_classes(workload, classes)
    nodes = candidate_nodes(snapshot, workload.pod)
    cel, keep = SharedCel(), attributes_read(classes, workload)
    models = node_models(
        snapshot.slices, classes, snapshot.claims, nodes, workload=workload, cel=cel, keep=keep
    )
    placement = place_replicas(models, nodes, options.replicas)
    node_fits = fits_one_more(models, nodes, placement, options.replicas)
    book = _book(snapshot, placement)
    probe = DeviceProbe(classes, cel, one_device_claims(workload), keep)
    comparison = None
    if options.compare_modes:
        comparison = compare_modes(
            book,
            snapshot.slices,
            classes,
            workload,
            nodes,
            replicas=options.replicas,
            driver=options.driver,
            cel=cel,
            keep=keep,
        )
    return PlanReport(
        workload=f"{workload.kind} {workload.namespace}/{workload.name}",
        requests=tuple(line for source in workload.claims for line in describe(source)),
        requested=options.replicas,
        placed=len(placement.placed),
        strategy=STRATEGY,
        nodes=_node_reports(nodes, placement, node_fits),
        devices=_device_reports(book, nodes, node_fits, probe),
        reason=_reason(nodes, placement, options.replicas),
        refused=dict(placement.refused),
        comparison=comparison,
        notes=(*notes, *nodes.notes),
    )
