"""What a plan answers, as values, as JSON (``-o json``) and as tables for people.

JSON numbers are plain integers (bytes, units) where the value is whole, and Kubernetes quantity
strings where it is not, so ``jq`` can add them up; tables print quantities (``48Gi``). A table lists
at most ``limit`` nodes and devices (those holding planned replicas or stranded capacity first) and
says how many it left out; JSON lists all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from dra_driver.core.quantity import QuantityFormat, format_quantity
from dra_driver.planning.modes import Comparison

__all__ = ["DeviceReport", "NodeReport", "PlanReport", "as_json", "column_order", "render_table"]


@dataclass(frozen=True, slots=True)
class DeviceReport:
    node: str
    driver: str
    pool: str
    device: str
    total: Mapping[str, Fraction]
    used: Mapping[str, Fraction]
    replicas: int  # planned replicas holding part of it
    one_more: bool  # one more replica could use it
    stranded: bool  # it has free capacity that no further replica can use

    @property
    def free(self) -> dict[str, Fraction]:
        return {k: max(Fraction(0), v - self.used.get(k, Fraction(0))) for k, v in self.total.items()}


@dataclass(frozen=True, slots=True)
class NodeReport:
    name: str
    replicas: int
    one_more: bool | None  # None: the pod may not go there at all
    excluded: str = ""


@dataclass(frozen=True, slots=True)
class PlanReport:
    workload: str  # "Deployment default/infer"
    requests: tuple[str, ...]  # one line per request of a replica
    requested: int
    placed: int
    strategy: str
    nodes: tuple[NodeReport, ...]
    devices: tuple[DeviceReport, ...]
    reason: str = ""  # why the rest did not fit (kube-scheduler's wording)
    refused: Mapping[str, str] = field(default_factory=dict)  # node -> why it took no more
    comparison: Comparison | None = None
    notes: tuple[str, ...] = ()

    def stranded(self) -> dict[str, Fraction]:
        """Free capacity, per capacity name, on devices no further replica can use."""
        total: Counter[str] = Counter()
        for device in self.devices:
            if device.stranded:
                for name, value in device.free.items():
                    total[name] += value  # type: ignore[assignment]
        return {name: Fraction(total[name]) for name in sorted(total, key=column_order)}


def _number(value: Fraction) -> int | str:
    return value.numerator if value.denominator == 1 else format_quantity(value)


def _amounts(device: DeviceReport) -> dict[str, Any]:
    free = device.free
    return {
        name: {
            "total": _number(total),
            "used": _number(device.used.get(name, Fraction(0))),
            "free": _number(free[name]),
        }
        for name, total in sorted(device.total.items())
    }


def _comparison_json(comparison: Comparison) -> dict[str, Any]:
    if comparison.skipped:
        return {"skipped": comparison.skipped}
    rows = [
        {
            "mode": r.variant,
            "request": r.request,
            "capacity": r.capacity,
            "placed": r.placed,
            "current": r.current,
            "capped": r.capped,
        }
        for r in comparison.rows
    ]
    return {"scope": comparison.scope, "note": comparison.note, "best": comparison.best, "rows": rows}


def _node_json(node: NodeReport) -> dict[str, Any]:
    where = {"excluded": node.excluded} if node.excluded else {"oneMore": node.one_more}
    return {"name": node.name, "replicas": node.replicas, **where}


def _device_json(device: DeviceReport) -> dict[str, Any]:
    return {
        "node": device.node,
        "driver": device.driver,
        "pool": device.pool,
        "device": device.device,
        "replicas": device.replicas,
        "capacity": _amounts(device),
        "oneMore": device.one_more,
        "stranded": device.stranded,
    }


def as_json(report: PlanReport) -> dict[str, Any]:
    """The machine-readable plan (the shape docs/planning.md documents)."""
    out: dict[str, Any] = {
        "workload": {"object": report.workload, "requests": list(report.requests)},
        "replicas": {
            "requested": report.requested,
            "placed": report.placed,
            "unplaced": report.requested - report.placed,
        },
        "strategy": report.strategy,
        "reason": report.reason,
        "nodes": [_node_json(n) for n in report.nodes],
        "refused": dict(report.refused),
        "devices": [_device_json(d) for d in report.devices],
        "fragmentation": {
            "devices": sum(d.stranded for d in report.devices),
            "stranded": {name: _number(value) for name, value in report.stranded().items()},
        },
        "notes": list(report.notes),
    }
    if report.comparison is not None:
        out["modes"] = _comparison_json(report.comparison)
    return out


_FIRST = ("memory", "cores")  # the columns people look for, before any other capacity


def column_order(name: str) -> tuple[int, str]:
    """Memory, then cores, then any other capacity by name."""
    return (_FIRST.index(name) if name in _FIRST else len(_FIRST), name)


def _quantity(name: str, value: Fraction) -> str:
    binary = "memory" in name.lower()
    return format_quantity(value, QuantityFormat.BINARY_SI if binary else QuantityFormat.DECIMAL_SI)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _yes(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "no"


def _nodes_lines(report: PlanReport, limit: int) -> list[str]:
    counts = Counter(n.replicas for n in report.nodes if not n.excluded)
    spread = ", ".join(f"{k} on {v} node{'s' * (v != 1)}" for k, v in sorted(counts.items(), reverse=True))
    lines = [f"Replicas per node: {spread or 'no candidate node'}"]
    if not report.nodes:
        return lines
    shown = sorted(report.nodes, key=lambda n: (-n.replicas, bool(n.excluded), n.name))[:limit]
    rows = [
        [
            n.name,
            str(n.replicas),
            _yes(n.one_more),
            n.excluded or report.refused.get(n.name, "").split(":", 1)[0],
        ]
        for n in shown
    ]
    lines += _table(["NODE", "REPLICAS", "ONE MORE", "WHY NOT"], rows)
    if len(report.nodes) > len(shown):
        lines.append(f"... {len(report.nodes) - len(shown)} more nodes (-o json lists all, or --limit)")
    return lines


def _devices_lines(report: PlanReport, limit: int) -> list[str]:
    if not report.devices:
        return ["No device this workload can use."]
    names = sorted({name for d in report.devices for name in d.total}, key=column_order)
    ordered = sorted(report.devices, key=lambda d: (not (d.replicas or d.stranded), d.node, d.device))
    shown = ordered[:limit]
    header = [
        "NODE",
        "DEVICE",
        "REPLICAS",
        *(f"{n.upper()} USED/TOTAL" for n in names),
        "ONE MORE",
        "STRANDED",
    ]
    rows = []
    for d in shown:
        amounts = [
            f"{_quantity(n, d.used.get(n, Fraction(0)))}/{_quantity(n, d.total[n])}" if n in d.total else "-"
            for n in names
        ]
        free = sorted(d.free.items(), key=lambda item: column_order(item[0]))
        stranded = ", ".join(f"{n} {_quantity(n, v)}" for n, v in free if v) if d.stranded else ""
        rows.append([d.node, d.device, str(d.replicas), *amounts, _yes(d.one_more), stranded])
    lines = _table(header, rows)
    if len(ordered) > len(shown):
        lines.append(f"... {len(ordered) - len(shown)} more devices (-o json lists all, or --limit)")
    return lines


def _modes_lines(comparison: Comparison, requested: int) -> list[str]:
    if comparison.skipped:
        return [f"Slice modes: not compared: {comparison.skipped}"]
    rows = [
        [
            r.variant + (" (current)" if r.current else ""),
            r.request,
            f"{r.capacity}{'+' if r.capped else ''}",
            str(r.placed),
        ]
        for r in comparison.rows
    ]
    return [
        f"Slice modes ({comparison.scope}):",
        *_table(["MODE", "REQUEST AS", "CAPACITY", f"PLACES OF {requested}"], rows),
        f"Fits the most: {comparison.best or 'none'}",
    ]


def render_table(report: PlanReport, limit: int = 20) -> str:
    """The plan for people: summary, nodes, devices, fragmentation, why not, slice modes."""
    lines = [
        f"Workload: {report.workload}",
        *(f"  {line}" for line in report.requests),
        f"Replicas: {report.placed} of {report.requested} placed ({report.strategy})",
        "",
    ]
    lines += [*_nodes_lines(report, limit), "", *_devices_lines(report, limit), ""]
    stranded = report.stranded()
    count = sum(d.stranded for d in report.devices)
    amounts = ", ".join(f"{name} {_quantity(name, value)}" for name, value in stranded.items())
    lines.append(
        f"Fragmentation: {count} device{'s' * (count != 1)} hold free capacity no further replica can "
        f"use{': ' + amounts if count else ''}"
    )
    if report.reason:
        lines.append(f"Not placed: {report.requested - report.placed}. {report.reason}")
    notes = list(report.notes)
    if report.comparison is not None:
        lines += ["", *_modes_lines(report.comparison, report.requested)]
        notes += [report.comparison.note] if report.comparison.note else []
    lines += [f"Note: {note}" for note in notes]
    return "\n".join(lines)
