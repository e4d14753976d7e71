"""Structured-parameters allocation (DRA) as kube-scheduler does it, as a pure library.

Used by the simulation's scheduler stand-in and by capacity planning; in real clusters kube-scheduler
allocates. Inputs and outputs are API objects as plain dicts in the resource.k8s.io/v1 JSON shape. See
docs/allocation.md for the semantics covered.
"""

from dra_driver.core.quantity import Quantity, QuantityError, format_quantity, parse_quantity
from dra_driver.simulation.allocator.allocator import Placement, StructuredAllocator, UnschedulableError
from dra_driver.simulation.allocator.celenv import CelCache, SelectorError
from dra_driver.simulation.allocator.parse import InputError

__all__ = [
    "CelCache",
    "InputError",
    "Placement",
    "Quantity",
    "QuantityError",
    "SelectorError",
    "StructuredAllocator",
    "UnschedulableError",
    "format_quantity",
    "parse_quantity",
]
