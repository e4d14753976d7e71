"""Capacity planning (``xpushare plan``): how many replicas of a workload fit on a cluster, and where.

The cluster is a ``ClusterSnapshot`` of API objects as plain dicts (``snapshot``), read from dumps
(``files``) or a live API server (``live``); the workload is what each replica asks for (``workload``,
``asks``). ``planner.plan`` puts the steps in order: filter the nodes as kube-scheduler does (``nodes``),
place the replicas one by one with the structured allocator of ``dra_driver.simulation.allocator``
(``placement``, with ``nodemodels`` deciding how many allocators answer; ``celmemo``, ``interning`` and
``keys`` keep that cheap), account per physical device (``devices``), ask which devices one more replica
could still use (``probes``), and compare the slice modes on the same hardware (``modes``, with
``rebuild`` and ``intent``). ``report`` renders the answer. See docs/planning.md.
"""

from dra_driver.planning.planner import MAX_REPLICAS, PlanOptions, plan
from dra_driver.planning.report import PlanReport, as_json, render_table
from dra_driver.planning.snapshot import ClusterSnapshot, PlanInputError
from dra_driver.planning.workload import Workload, parse_workload

__all__ = [
    "MAX_REPLICAS",
    "ClusterSnapshot",
    "PlanInputError",
    "PlanOptions",
    "PlanReport",
    "Workload",
    "as_json",
    "parse_workload",
    "plan",
    "render_table",
]
